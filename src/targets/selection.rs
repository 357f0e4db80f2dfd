//! Which targets a run asks, and what becomes of the others.
//!
//! The rule, the same in `cargo test`, `eyetest run`, `eyetest test` and `eyetest bench`:
//!
//! - Nothing selected (no `--target`, `EYETEST_TARGETS` unset): every target whose endpoint
//!   is configured here runs (simulated and replay targets, `openai` targets with a literal
//!   `base_url` or a set `base_url_env`, and their `api_key_env` set). The others are ignored,
//!   with the variable to set as the reason.
//! - Targets selected by name (or `all`): each one runs, and one that cannot run here
//!   (endpoint or key unset, simulated engine that does not start) FAILS with the reason.
//!   A gate must never go green because the model was not asked.
//! - Targets not selected are ignored, and the reason says how to select them.

use std::collections::BTreeSet;
use std::fmt;

use super::{ProjectConfig, Target, Use};

pub use crate::env::TARGETS as TARGETS_ENV;

/// Where a selection came from, for messages that say what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `EYETEST_TARGETS=...`
    Env,
    /// `--target ...`
    Flag,
}

/// Which targets run in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Nothing asked for: every target that is configured here runs, the rest are ignored.
    Configured,
    /// Every declared target, asked for (`all`): one that cannot run fails.
    All { origin: Origin },
    /// These targets, asked for by name: one that cannot run fails; the others are ignored.
    Named {
        names: BTreeSet<String>,
        origin: Origin,
    },
}

/// What a run does with one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Ask it.
    Run,
    /// Not asked for: ignored, and the reason says how to ask for it.
    NotSelected(String),
    /// Not asked for and not configured here: ignored, with what to set.
    Ignore(String),
    /// Asked for but cannot run here: a failure, with what to set.
    Fail(String),
}

/// A selection that names something that is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("{origin} names unknown target `{name}`{}; declared targets: {}", hint.as_ref().map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default(), declared.join(", "))]
    UnknownTarget {
        origin: String,
        name: String,
        hint: Option<String>,
        declared: Vec<String>,
    },
    #[error("{origin} names no target; declared targets: {}", declared.join(", "))]
    Empty {
        origin: String,
        declared: Vec<String>,
    },
}

impl Origin {
    fn shown(&self, list: &str) -> String {
        match self {
            Origin::Env => format!("{TARGETS_ENV}={list}"),
            Origin::Flag => format!("--target {list}"),
        }
    }
}

impl Selection {
    /// From `--target` when given, else `EYETEST_TARGETS`, else [`Selection::Configured`].
    pub fn choose(config: &ProjectConfig, flag: Option<&str>) -> Result<Selection, SelectionError> {
        match flag {
            Some(list) => Self::parse(config, list, Origin::Flag),
            None => Self::from_env(config),
        }
    }

    /// From `EYETEST_TARGETS`; unknown names are an error that lists the valid ones.
    pub fn from_env(config: &ProjectConfig) -> Result<Selection, SelectionError> {
        match crate::env::targets() {
            Some(v) => Self::parse(config, &v, Origin::Env),
            None => Ok(Selection::Configured),
        }
    }

    /// From a list like `sim,llama-11b` or `all`.
    pub fn parse(
        config: &ProjectConfig,
        list: &str,
        origin: Origin,
    ) -> Result<Selection, SelectionError> {
        let declared: Vec<String> = config.targets.keys().cloned().collect();
        if list.trim() == "all" {
            return Ok(Selection::All { origin });
        }
        let mut names = BTreeSet::new();
        for n in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !config.targets.contains_key(n) {
                let hint = crate::diagnostic::closest(n, declared.iter().map(String::as_str))
                    .map(str::to_string);
                return Err(SelectionError::UnknownTarget {
                    origin: origin.shown(list.trim()),
                    name: n.to_string(),
                    hint,
                    declared,
                });
            }
            names.insert(n.to_string());
        }
        if names.is_empty() {
            return Err(SelectionError::Empty {
                origin: origin.shown(list.trim()),
                declared,
            });
        }
        Ok(Selection::Named { names, origin })
    }

    /// Every declared target, asked for: what tests that build their own pairs use.
    pub fn all() -> Selection {
        Selection::All {
            origin: Origin::Flag,
        }
    }

    /// Whether targets were asked for (by `--target` or `EYETEST_TARGETS`).
    pub fn is_explicit(&self) -> bool {
        !matches!(self, Selection::Configured)
    }

    /// Whether `target` is among those asked for (always true for [`Selection::Configured`]).
    pub fn includes(&self, target: &str) -> bool {
        match self {
            Selection::Configured | Selection::All { .. } => true,
            Selection::Named { names, .. } => names.contains(target),
        }
    }

    /// The targets asked for by name, in order; every declared one for `all`; none when
    /// nothing was asked for.
    pub fn named<'a>(&'a self, config: &'a ProjectConfig) -> Vec<&'a str> {
        match self {
            Selection::Configured => Vec::new(),
            Selection::All { .. } => config.targets.keys().map(String::as_str).collect(),
            Selection::Named { names, .. } => names.iter().map(String::as_str).collect(),
        }
    }

    /// What this run does with `target` when it is asked for `purpose`.
    pub fn decide(&self, target: &Target, purpose: Use) -> Decision {
        if let Selection::Named { names, origin } = self {
            if !names.contains(&target.name) {
                let list: Vec<&str> = names.iter().map(String::as_str).collect();
                return Decision::NotSelected(format!(
                    "target `{}` not selected ({}); run it with {}",
                    target.name,
                    origin.shown(&list.join(",")),
                    origin.shown(&target.name),
                ));
            }
        }
        match target.unavailable(purpose) {
            None => Decision::Run,
            Some(why) if self.is_explicit() => Decision::Fail(format!(
                "target `{}` was selected ({self}) but cannot run: {why}",
                target.name
            )),
            Some(why) => Decision::Ignore(why.to_string()),
        }
    }
}

/// How the selection was made, as the user would write it.
impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selection::Configured => write!(f, "{TARGETS_ENV} unset: every configured target"),
            Selection::All { origin } => f.write_str(&origin.shown("all")),
            Selection::Named { names, origin } => {
                let list: Vec<&str> = names.iter().map(String::as_str).collect();
                f.write_str(&origin.shown(&list.join(",")))
            }
        }
    }
}
