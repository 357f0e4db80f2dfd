//! A model judge in a rubric: `judge = { target = "...", ... }` has a declared target grade
//! the answer against the case's label, for what keyword lists cannot say ("the coat is red",
//! a paraphrase, a correct answer in another language).
//!
//! A judge is a model too, so its verdict is never taken on trust: a failed call or a reply
//! without a readable PASS/FAIL is an error carrying the judge's text, never a pass; judge
//! calls are recorded and replayed like answers (see [`recording_path`]); and how keywords
//! and judge combined, and which decided, is written into the verdict.
//!
//! The call itself lives with the runner's session (`runner/judge.rs`), which owns the
//! targets' connections; this module is the pure part: keys, prompt, reply, combination.

pub mod prompt;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::rubric::{CheckKind, Rubric, Verdict};

/// Output tokens a judge may use when `max_tokens` is unset: a verdict and a sentence, with
/// room for a model that explains first.
pub const DEFAULT_MAX_TOKENS: u32 = 256;

/// The `judge = { ... }` table of a rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSpec {
    /// A target declared in eyetest.toml; any backend, the simulated engine included.
    pub target: String,
    /// What the judge should weigh beyond the label: "any shade of red counts".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria: Option<String>,
    /// Send the case's image to the judge. Off by default: the label is the truth, and a
    /// text-only judge is cheaper and works with text-only models.
    #[serde(default, skip_serializing_if = "is_false")]
    pub image: bool,
    /// When the judge is asked and how it combines with the keyword checks.
    #[serde(default, skip_serializing_if = "When::is_always")]
    pub when: When,
    /// Output tokens for the judge's reply (default [`DEFAULT_MAX_TOKENS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<i64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// When the judge is asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Every answer: the case passes only when the keyword checks *and* the judge pass.
    #[default]
    Always,
    /// Only when the keyword checks are inconclusive (see [`inconclusive`]); conclusive
    /// keyword verdicts stand without a judge call.
    Inconclusive,
}

impl When {
    fn is_always(&self) -> bool {
        *self == When::Always
    }
}

/// What the judge said, or why it said nothing usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeStatus {
    Pass,
    Fail,
    /// The call failed or the reply had no readable verdict: the case is an error.
    Error,
    /// `when = "inconclusive"` and the keyword checks were conclusive.
    NotAsked,
}

impl JudgeStatus {
    pub fn word(self) -> &'static str {
        match self {
            JudgeStatus::Pass => "PASS",
            JudgeStatus::Fail => "FAIL",
            JudgeStatus::Error => "ERROR",
            JudgeStatus::NotAsked => "not asked",
        }
    }
}

/// The judge's part of a verdict, as results files store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeOutcome {
    /// The judge target.
    pub target: String,
    pub status: JudgeStatus,
    /// The judge's one-line reason; for an error, what failed and the judge's text.
    pub reason: String,
    /// Which path decided the case and why: "keywords and judge", "judge: keyword checks
    /// inconclusive (no keyword check found anything)", "keywords: conclusive ...".
    pub decided_by: String,
    /// The judge's reply came from a recording, not a live call.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replayed: bool,
}

impl JudgeOutcome {
    pub fn is_error(&self) -> bool {
        self.status == JudgeStatus::Error
    }
}

impl fmt::Display for JudgeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let replayed = if self.replayed { ", replayed" } else { "" };
        write!(
            f,
            "judge `{}`{replayed}: {}",
            self.target,
            self.status.word()
        )?;
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        write!(f, "\n  decided by {}", self.decided_by)
    }
}

/// Why the keyword checks cannot decide on their own, or `None` when they can.
///
/// Inconclusive means: no keyword check is configured, or every failed check failed because
/// it found *nothing* (a keyword, number or relation missing: the answer may say it in words
/// the rubric did not list). A failed check that points at text in the answer (a forbidden
/// word found, the opposite relation, a different count stated) or a too-long answer is
/// conclusive, and so is a pass.
pub fn inconclusive(keywords: &Verdict) -> Option<String> {
    if keywords.checks.is_empty() {
        return Some("no keyword check is configured".into());
    }
    let failed: Vec<_> = keywords.failures().collect();
    if failed.is_empty() {
        return None;
    }
    let found_wrong = failed
        .iter()
        .any(|c| c.at.is_some() || c.kind == CheckKind::MaxWords);
    (!found_wrong).then(|| {
        format!(
            "the failed checks found nothing ({}), which other words may say",
            keywords.summary()
        )
    })
}

/// Whether the judge must be asked about an answer whose keyword verdict is `keywords`.
pub fn must_ask(spec: &JudgeSpec, keywords: &Verdict) -> bool {
    spec.when == When::Always || inconclusive(keywords).is_some()
}

/// What the judge replied, before combination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ruling {
    Pass(String),
    Fail(String),
    /// The message to report: the failed call, or the unparseable reply's text.
    Error(String),
}

/// The verdict of keywords and judge together. `ruling` is `None` when the judge was not
/// asked (see [`must_ask`]); `passed` of the result is the case's.
pub fn combine(
    spec: &JudgeSpec,
    mut keywords: Verdict,
    ruling: Option<Ruling>,
    replayed: bool,
) -> Verdict {
    let has_checks = !keywords.checks.is_empty();
    let (status, reason) = match ruling {
        None => (JudgeStatus::NotAsked, String::new()),
        Some(Ruling::Pass(r)) => (JudgeStatus::Pass, r),
        Some(Ruling::Fail(r)) => (JudgeStatus::Fail, r),
        Some(Ruling::Error(r)) => (JudgeStatus::Error, r),
    };
    let judged = status == JudgeStatus::Pass;
    let (passed, decided_by) = match (spec.when, status) {
        (_, JudgeStatus::Error) => (
            false,
            "nothing: the judge failed, so the case is an error".to_string(),
        ),
        (When::Always, _) if has_checks => (
            keywords.passed && judged,
            "keywords and judge (when = \"always\": both must pass)".to_string(),
        ),
        (_, JudgeStatus::NotAsked) => (
            keywords.passed,
            format!(
                "keywords: they {} conclusively, so the judge was not asked",
                if keywords.passed { "passed" } else { "failed" }
            ),
        ),
        (_, _) => (
            judged,
            format!(
                "judge: keyword checks inconclusive: {}",
                inconclusive(&keywords).unwrap_or_else(|| "no keyword check is configured".into())
            ),
        ),
    };
    keywords.passed = passed;
    keywords.judge = Some(Box::new(JudgeOutcome {
        target: spec.target.clone(),
        status,
        reason,
        decided_by,
        replayed,
    }));
    keywords
}

/// The verdict on a stored answer without asking any model: keyword checks re-applied, and
/// the judge's stored ruling on that answer reused. A judge that must be asked and has no
/// stored ruling makes an error verdict (never a pass): re-grading never calls a judge, and
/// a changed judge request (criteria, label) is re-checked by replaying, not here.
pub fn regrade(rubric: &Rubric, answer: &str, stored: Option<&JudgeOutcome>) -> Verdict {
    let keywords = rubric.check(answer);
    let Some(spec) = &rubric.judge else {
        return keywords;
    };
    if !must_ask(spec, &keywords) {
        return combine(spec, keywords, None, false);
    }
    let stored = stored.filter(|j| j.target == spec.target);
    let ruling = match stored.map(|j| (j.status, j.reason.clone())) {
        Some((JudgeStatus::Pass, r)) => Ruling::Pass(r),
        Some((JudgeStatus::Fail, r)) => Ruling::Fail(r),
        Some((JudgeStatus::Error, r)) => Ruling::Error(r),
        Some((JudgeStatus::NotAsked, _)) | None => Ruling::Error(format!(
            "no stored verdict of judge `{}` on this answer; re-grading never calls a judge: \
             run (or replay) the case to have it judged",
            spec.target
        )),
    };
    combine(spec, keywords, Some(ruling), true)
}

/// Where a judge's call about one answer is recorded:
/// `golden/judge-recordings/<judge target>/<answering target>/<spec id>/<case>.toml`. Beside
/// `golden/recordings/`, not in it, so that re-grading never mistakes a verdict for an answer.
pub fn recording_path(
    golden_dir: &Path,
    judge_target: &str,
    answering_target: &str,
    spec_id: &str,
    case: &str,
) -> PathBuf {
    golden_dir
        .join("judge-recordings")
        .join(judge_target)
        .join(answering_target)
        .join(spec_id)
        .join(format!("{case}.toml"))
}

#[cfg(test)]
mod tests;
