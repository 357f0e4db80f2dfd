//! What a rubric concluded: one outcome per configured check, each saying what it matched and
//! where, so a failing test (or a re-grade) reads without the rubric beside it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::text::{count_words, wrap};

/// Which kind of check an outcome belongs to; serialized as the rubric's TOML key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    All,
    Any,
    None,
    Regex,
    Number,
    MaxWords,
    DigitsInOrder,
    About,
    NotAbout,
    Relation,
    Count,
}

impl CheckKind {
    /// The TOML key that configures this check.
    pub fn key(self) -> &'static str {
        match self {
            CheckKind::All => "all",
            CheckKind::Any => "any",
            CheckKind::None => "none",
            CheckKind::Regex => "regex",
            CheckKind::Number => "number",
            CheckKind::MaxWords => "max_words",
            CheckKind::DigitsInOrder => "digits_in_order",
            CheckKind::About => "about",
            CheckKind::NotAbout => "not_about",
            CheckKind::Relation => "relation",
            CheckKind::Count => "count",
        }
    }

    /// How a failure of this kind reads in a one-line summary.
    fn failure_label(self) -> &'static str {
        match self {
            CheckKind::All => "missing",
            CheckKind::Any => "missing any of",
            CheckKind::None => "found forbidden",
            CheckKind::Regex => "no match for",
            CheckKind::Number => "missing number",
            CheckKind::MaxWords => "too long",
            CheckKind::DigitsInOrder => "missing digits",
            CheckKind::About => "not said about",
            CheckKind::NotAbout => "said about",
            CheckKind::Relation => "relation not stated",
            CheckKind::Count => "wrong count",
        }
    }
}

/// The result of one configured check: one per keyword of `all` and `none`, one for the whole
/// `any` list, one per regex and per number, one each for `max_words` and `digits_in_order`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub kind: CheckKind,
    /// What was looked for, as the spec wrote it: `"red"`, `/\d+/`, `29`, `12`.
    pub expected: String,
    pub passed: bool,
    /// What matched (as the model wrote it) or what was missing.
    pub detail: String,
    /// Byte span in the answer of what matched (or, for a forbidden match, what was found),
    /// so tools can underline it; absent when nothing matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<(usize, usize)>,
}

impl fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { '✓' } else { '✗' };
        write!(
            f,
            "{mark} {} {}: {}",
            self.kind.key(),
            self.expected,
            self.detail
        )
    }
}

/// The outcome of checking one answer: passed only when every check passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub passed: bool,
    pub checks: Vec<CheckOutcome>,
    /// The part of the answer the checks read when the rubric set `scope` (e.g. the final
    /// answer after "Answer:"), and how it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The model judge's verdict and which path decided, when the rubric has a `judge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed: most verdicts have none, and every outcome carries a verdict.
    pub judge: Option<Box<super::judge::JudgeOutcome>>,
}

impl Verdict {
    pub fn failures(&self) -> impl Iterator<Item = &CheckOutcome> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// One line for test names, progress bars and reports: failures grouped by kind, e.g.
    /// `missing: "red", "coat"; found forbidden: "blue"`, or `ok`.
    pub fn summary(&self) -> String {
        let keywords = self.keyword_summary();
        match &self.judge {
            None => keywords,
            Some(j) if self.checks.is_empty() => judge_summary(j),
            Some(j) if keywords == "ok" => format!("keywords ok; {}", judge_summary(j)),
            Some(j) => format!("{keywords}; {}", judge_summary(j)),
        }
    }

    fn keyword_summary(&self) -> String {
        if self.checks.is_empty() {
            return "rubric checks nothing".into();
        }
        let mut groups: Vec<(CheckKind, Vec<&str>)> = Vec::new();
        for c in self.failures() {
            let item = if c.kind == CheckKind::MaxWords {
                &c.detail
            } else {
                &c.expected
            };
            match groups.iter_mut().find(|(k, _)| *k == c.kind) {
                Some((_, items)) => items.push(item),
                None => groups.push((c.kind, vec![item])),
            }
        }
        if groups.is_empty() {
            return "ok".into();
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|(k, items)| format!("{}: {}", k.failure_label(), items.join(", ")))
            .collect();
        parts.join("; ")
    }
}

/// `judge FAIL: "says blue"`: the judge's part of a one-line summary.
fn judge_summary(j: &super::judge::JudgeOutcome) -> String {
    match j.reason.as_str() {
        "" => format!("judge {}", j.status.word()),
        r => format!("judge {}: {}", j.status.word(), super::text::quote(r)),
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.checks.len();
        let failed = self.failures().count();
        if let Some(j) = &self.judge {
            let word = if self.passed { "passed" } else { "FAILED" };
            write!(f, "verdict: {word}\n{j}")?;
            if total == 0 {
                return Ok(());
            }
            f.write_str("\n")?;
        } else if total == 0 {
            return write!(f, "rubric: FAILED, it checks nothing");
        }
        if failed == 0 {
            write!(f, "rubric: passed ({total} of {total} checks)")?;
        } else {
            write!(f, "rubric: FAILED ({failed} of {total} checks failed)")?;
        }
        if let Some(scope) = &self.scope {
            write!(f, "\n  scope: {scope}")?;
        }
        for c in &self.checks {
            write!(f, "\n  {c}")?;
        }
        Ok(())
    }
}

/// What a failing test prints: the answer, quoted and wrapped, then every check.
pub fn explain(answer: &str, verdict: &Verdict) -> String {
    let words = count_words(answer);
    let mut out = format!(
        "answer ({words} word{}):\n",
        if words == 1 { "" } else { "s" }
    );
    if answer.trim().is_empty() {
        out.push_str("  │ (empty answer)\n");
    } else {
        for line in wrap(answer.trim_matches('\n'), 96) {
            out.push_str(format!("  │ {line}").trim_end());
            out.push('\n');
        }
    }
    out.push_str(&verdict.to_string());
    out
}
