//! `eyetest.toml`: reading and validating the project's targets and settings.
//!
//! Every target is checked on its own, so one mistake does not hide the next; semantic
//! checks (sim-only keys on an `openai` target, a `replay_of` naming nothing) say which key
//! to change and how.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{BackendKind, Common, Kind, OpenaiEndpoint, Target, TargetConfig};
use crate::diagnostic::{InputError, InputErrors};

/// `eyetest.toml`: the project's targets and settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProjectFile {
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    target: BTreeMap<String, Spanned<TargetConfig>>,
}

/// Project-wide settings (`[settings]` in eyetest.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where spec files live, relative to the project root.
    #[serde(default = "default_specs")]
    pub specs: PathBuf,
    /// Where snapshots and baselines live.
    #[serde(default = "default_golden")]
    pub golden: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            specs: default_specs(),
            golden: default_golden(),
        }
    }
}

fn default_specs() -> PathBuf {
    "specs".into()
}
fn default_golden() -> PathBuf {
    "golden".into()
}

/// Every sim behaviour name, for messages and suggestions.
pub fn behaviours() -> Vec<&'static str> {
    crate::sim::Behaviour::ALL
        .iter()
        .map(|b| b.as_str())
        .collect()
}

/// Targets and settings of a project, read from `eyetest.toml`.
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    pub settings: Settings,
    pub targets: BTreeMap<String, Arc<Target>>,
    pub path: PathBuf,
    /// Every `[target.NAME]` written in the file, valid or not; `None` when the file could
    /// not be read as TOML at all. Lets spec checks tell a misspelt target from one whose
    /// own declaration has a problem (already reported), so one mistake is reported once.
    declared: Option<std::collections::BTreeSet<String>>,
}

impl ProjectConfig {
    /// Reads and validates `eyetest.toml`. A project has exactly the targets it declares.
    pub fn load(path: &Path) -> Result<Self, InputErrors> {
        let (config, errors) = Self::load_all(path);
        errors.into_result()?;
        Ok(config.expect("a project file without problems loads"))
    }

    /// Whether specs may name `target` without a problem of their own: it is declared (even
    /// if its declaration has problems), or the file could not be read to know.
    pub fn declares(&self, target: &str) -> bool {
        self.targets.contains_key(target)
            || self.declared.as_ref().is_none_or(|d| d.contains(target))
    }

    /// What eyetest.toml's problems leave to check the specs against: default settings and
    /// no known targets, every name accepted.
    pub(crate) fn unreadable(path: &Path) -> Self {
        Self {
            settings: Settings::default(),
            targets: BTreeMap::new(),
            path: path.to_path_buf(),
            declared: None,
        }
    }

    /// Reads `eyetest.toml` as far as it can be read, with every problem found: the targets
    /// that are valid (the config is `None` when the file is missing, unreadable or not TOML).
    pub fn load_all(path: &Path) -> (Option<Self>, InputErrors) {
        let mut errors = InputErrors::default();
        match Self::load_into(path, &mut errors) {
            Ok(c) => (Some(c), errors),
            Err(()) => (None, errors),
        }
    }

    fn load_into(path: &Path, errors: &mut InputErrors) -> Result<Self, ()> {
        let text: Arc<str> = match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => s.into(),
                Err(e) => {
                    errors.push(InputError::file(
                        path,
                        format!("not valid UTF-8 (byte {})", e.utf8_error().valid_up_to()),
                    ));
                    return Err(());
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let folder = path.parent().unwrap_or(Path::new("."));
                errors.push(
                    InputError::file(
                        path,
                        format!(
                            "not found in `{}`: that folder is not an eyetest project",
                            folder.display()
                        ),
                    )
                        .with_help("run `eyetest init` to create a project here, or pass the project's folder with --root"),
                );
                return Err(());
            }
            Err(e) => {
                errors.push(InputError::file(path, format!("cannot read: {e}")));
                return Err(());
            }
        };
        let declared = text
            .parse::<toml::Table>()
            .ok()
            .map(|t| match t.get("target") {
                Some(toml::Value::Table(targets)) => targets.keys().cloned().collect(),
                _ => Default::default(),
            });
        let (raw, problems) = crate::diagnostic::parse_all::<RawProjectFile>(path, &text);
        for p in problems {
            errors.push(p);
        }
        let Some(raw) = raw else {
            return Err(());
        };
        let root = path.parent().unwrap_or(Path::new(""));
        let mut targets = BTreeMap::new();
        let mut replay_spans = std::collections::HashMap::new();
        for (name, spanned) in raw.target {
            let span = spanned.span();
            replay_spans.insert(name.clone(), span.clone());
            match typed(&name, spanned.into_inner(), root) {
                Ok(t) => {
                    targets.insert(name, Arc::new(t));
                }
                Err((m, help)) => errors.push(InputError::at(path, &text, span, m).with_help(help)),
            }
        }
        for t in targets.values() {
            let Some(source) = t.replay_of() else {
                continue;
            };
            let problem = match targets.get(source) {
                _ if source == t.name => Some(format!(
                    "`replay_of = \"{source}\"` names the target itself; name the live target whose recordings it replays"
                )),
                None => Some(format!("`replay_of = \"{source}\"` names no declared target")),
                Some(s) if s.is_replay() => Some(format!(
                    "`replay_of = \"{source}\"` names another replay target; replay the live target instead"
                )),
                _ => None,
            };
            if let Some(p) = problem {
                let valid: Vec<&str> = targets.keys().map(String::as_str).collect();
                let help = match crate::diagnostic::closest(source, valid.iter().copied()) {
                    Some(s) if s != source => format!("did you mean `{s}`?"),
                    _ => format!("declared targets: `{}`", valid.join("`, `")),
                };
                errors.push(
                    InputError::at(
                        path,
                        &text,
                        replay_spans[&t.name].clone(),
                        format!("target `{}`: {p}", t.name),
                    )
                    .with_help(help),
                );
            }
        }
        Ok(Self {
            settings: raw.settings,
            targets,
            path: path.to_path_buf(),
            declared,
        })
    }
}

/// A sim behaviour name, or why it is not one (with the closest name as a hint).
fn behaviour_named(
    name: &str,
    b: &str,
    key: &str,
) -> Result<crate::sim::Behaviour, (String, String)> {
    b.parse().map_err(|_| {
        let all = behaviours();
        let hint = match crate::diagnostic::closest(b, all.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? "),
            None => String::new(),
        };
        (
            format!("target `{name}`: unknown sim {key} `{b}`"),
            format!("{hint}expected one of `{}`", all.join("`, `")),
        )
    })
}

fn validate_sim(name: &str, c: &TargetConfig) -> Result<(), (String, String)> {
    let behaviour = match &c.behaviour {
        Some(b) => behaviour_named(name, b, "behaviour")?,
        None => crate::sim::Behaviour::default(),
    };
    if c.fail_first.is_some_and(|n| n > 0) && !behaviour.is_fault() {
        return Err((
            format!("target `{name}`: `fail_first` only applies to a fault behaviour, and `{behaviour}` is not one"),
            "set e.g. `behaviour = \"rate-limited\"`, or remove `fail_first`".into(),
        ));
    }
    if let Some(rate) = c.fault_rate {
        if !(0.0..=1.0).contains(&rate) {
            return Err((
                format!("target `{name}`: fault_rate must be between 0 and 1, got {rate}"),
                "e.g. `fault_rate = 0.02` to fault 2% of requests".into(),
            ));
        }
    }
    for f in c.faults.iter().flatten() {
        if !behaviour_named(name, f, "fault")?.is_injectable() {
            let injectable: Vec<&str> = crate::sim::Behaviour::INJECTABLE
                .iter()
                .map(|b| b.as_str())
                .collect();
            return Err((
                format!("target `{name}`: `faults` lists `{f}`, which is not a fault that can be injected"),
                format!("expected some of `{}`", injectable.join("`, `")),
            ));
        }
    }
    Ok(())
}

/// `ca_file` must be a readable PEM certificate, and only an `openai` target makes requests
/// that it could apply to.
fn check_ca_file(name: &str, c: &TargetConfig, root: &Path) -> Result<(), (String, String)> {
    let Some(ca) = &c.ca_file else {
        return Ok(());
    };
    if c.backend != BackendKind::Openai {
        return Err((
            format!("target `{name}`: `ca_file` only applies to `backend = \"openai\"`"),
            "remove it: simulated and replay targets make no TLS connections".into(),
        ));
    }
    crate::backend::openai::load_ca_file(&root.join(ca)).map(drop).map_err(|e| {
        (
            format!("target `{name}`: ca_file `{}` {e}", ca.display()),
            "give the path (relative to the project root) of the CA certificate in PEM form, e.g. `ca_file = \"certs/ca.pem\"`".into(),
        )
    })
}

/// A target's table, validated, as the [`Target`] the rest of eyetest uses: each backend's
/// settings in its own [`Kind`], a sim's already parsed into the engine's configuration.
pub(super) fn typed(name: &str, c: TargetConfig, root: &Path) -> Result<Target, (String, String)> {
    validate_target(name, &c)?;
    check_ca_file(name, &c, root)?;
    let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1000.0);
    let kind = match c.backend {
        BackendKind::Openai => Kind::Openai(OpenaiEndpoint {
            base_url: c.base_url,
            base_url_env: c.base_url_env,
            api_key_env: c.api_key_env,
            ca_path: c.ca_file.map(|ca| root.join(ca)),
        }),
        BackendKind::Replay => Kind::Replay {
            of: c.replay_of.unwrap_or_default(),
        },
        BackendKind::Sim => {
            let named = |b: &str, key| behaviour_named(name, b, key);
            let lat = c.latency.unwrap_or_default();
            let config = crate::sim::SimConfig {
                behaviour: match &c.behaviour {
                    Some(b) => named(b, "behaviour")?,
                    None => crate::sim::Behaviour::default(),
                },
                latency: crate::sim::Latency {
                    ttft: ms(lat.ttft_ms),
                    per_token: ms(lat.tpot_ms),
                    prefill_per_tile: ms(lat.prefill_per_tile_ms),
                    jitter: lat.jitter,
                },
                max_concurrency: c.max_batch.unwrap_or(0),
                seed: 0,
                fail_first: c.fail_first.unwrap_or(0),
                fault_rate: c.fault_rate.unwrap_or(0.0),
                faults: c
                    .faults
                    .iter()
                    .flatten()
                    .map(|f| named(f, "fault"))
                    .collect::<Result<_, _>>()?,
                memoize: c.memoize.unwrap_or(false),
            };
            config.check().map_err(|e| {
                (
                    format!("target `{name}`: {e}"),
                    "see the sim keys in docs/reference.md".to_string(),
                )
            })?;
            Kind::Sim(config)
        }
    };
    Ok(Target {
        name: name.to_string(),
        common: Common {
            model: c.model,
            gpu: c.gpu,
            engine: c.engine,
            notes: c.notes,
            concurrency: c.concurrency,
            timeout: Duration::from_secs_f64(c.timeout_s),
            retries: c.retries,
            retry_backoff: Duration::from_millis(c.retry_backoff_ms),
            stream: c.stream,
            extra: c.extra,
            default: c.default,
        },
        kind,
    })
}

fn validate_target(name: &str, c: &TargetConfig) -> Result<(), (String, String)> {
    if !name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.')
    {
        return Err((
            format!("target name `{name}` has characters that cannot go in a test or file name"),
            "use letters, digits, `-`, `_` and `.` only".into(),
        ));
    }
    if c.concurrency == 0 {
        return Err((
            format!("target `{name}`: concurrency must be at least 1"),
            "set `concurrency = 1` to send one request at a time".into(),
        ));
    }
    if !(c.timeout_s > 0.0 && c.timeout_s.is_finite()) {
        return Err((
            format!("target `{name}`: timeout_s must be a positive number of seconds"),
            "e.g. `timeout_s = 120`".into(),
        ));
    }
    match c.backend {
        BackendKind::Openai => {
            if c.model.trim().is_empty() {
                return Err((
                    format!("target `{name}`: an `openai` target needs `model`"),
                    "set `model` to the served model name, e.g. `model = \"meta-llama/Llama-3.2-11B-Vision-Instruct\"`".into(),
                ));
            }
            if c.base_url.is_none() && c.base_url_env.is_none() {
                return Err((
                    format!("target `{name}`: an `openai` target needs `base_url` or `base_url_env`"),
                    "e.g. `base_url = \"http://localhost:8000/v1\"`, or `base_url_env = \"VLLM_URL\"` to read it from the environment".into(),
                ));
            }
            if let Some(u) = &c.base_url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err((
                        format!("target `{name}`: base_url `{u}` is not an http(s) URL"),
                        "write it like `http://localhost:8000/v1`".into(),
                    ));
                }
            }
            if c.replay_of.is_some() {
                return Err((
                    format!("target `{name}`: `replay_of` only applies to `backend = \"replay\"`"),
                    "remove it, or set `backend = \"replay\"`".into(),
                ));
            }
            if c.behaviour.is_some()
                || c.latency.is_some()
                || c.max_batch.is_some()
                || c.fail_first.is_some()
                || c.fault_rate.is_some()
                || c.memoize.is_some()
                || c.faults.is_some()
            {
                return Err((
                    format!("target `{name}`: `behaviour`, `latency`, `max_batch`, `fail_first`, `fault_rate`, `faults` and `memoize` only apply to `backend = \"sim\"`"),
                    "remove them, or set `backend = \"sim\"`".into(),
                ));
            }
        }
        BackendKind::Replay => {
            if c.replay_of.is_none() {
                return Err((
                    format!("target `{name}`: a `replay` target needs `replay_of`"),
                    "name the target whose recordings it replays, e.g. `replay_of = \"llama-11b\"`"
                        .into(),
                ));
            }
        }
        BackendKind::Sim => validate_sim(name, c)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> Result<(), (String, String)> {
        let c: TargetConfig = toml::from_str(toml_text).unwrap();
        validate_target("t", &c)
    }

    #[test]
    fn sim_fault_keys_are_validated() {
        let sim = "backend = \"sim\"\n";
        assert_eq!(
            check(&format!(
                "{sim}behaviour = \"rate-limited\"\nfail_first = 1"
            )),
            Ok(())
        );
        assert_eq!(
            check(&format!(
                "{sim}fault_rate = 0.02\nfaults = [\"reset\", \"hang\"]"
            )),
            Ok(())
        );
        let (m, help) = check(&format!("{sim}behaviour = \"rate-limitd\"")).unwrap_err();
        assert_eq!(m, "target `t`: unknown sim behaviour `rate-limitd`");
        assert!(
            help.starts_with("did you mean `rate-limited`? expected one of `terse`"),
            "{help}"
        );
        let (m, _) = check(&format!("{sim}fail_first = 2")).unwrap_err();
        assert_eq!(
            m,
            "target `t`: `fail_first` only applies to a fault behaviour, and `terse` is not one"
        );
        let (m, _) = check(&format!("{sim}fault_rate = -0.1")).unwrap_err();
        assert_eq!(
            m,
            "target `t`: fault_rate must be between 0 and 1, got -0.1"
        );
        let (m, help) = check(&format!("{sim}fault_rate = 0.1\nfaults = [\"slow\"]")).unwrap_err();
        assert_eq!(
            m,
            "target `t`: `faults` lists `slow`, which is not a fault that can be injected"
        );
        assert!(
            help.starts_with("expected some of `failing`, `unavailable`"),
            "{help}"
        );
        let (m, _) = check(&format!("{sim}faults = [\"rest\"]")).unwrap_err();
        assert_eq!(m, "target `t`: unknown sim fault `rest`");
        let openai = "backend = \"openai\"\nmodel = \"m\"\nbase_url = \"http://h/v1\"\n";
        let (m, _) = check(&format!("{openai}fault_rate = 0.1")).unwrap_err();
        assert!(
            m.contains("`faults` and `memoize` only apply to `backend = \"sim\"`"),
            "{m}"
        );
        let (m, _) = check(&format!("{openai}memoize = true")).unwrap_err();
        assert!(m.contains("only apply to `backend = \"sim\"`"), "{m}");
        assert!(check(&format!("{sim}memoize = true")).is_ok());
    }
}
