//! The verdict on one case x target, the same under `cargo test` (the harness), `eyetest run`
//! and in results files: the rubric on the answer (or the pass rate over repeats) *and* the
//! snapshot check. Before this module the verdict was assembled three times over (runner,
//! harness, results record), and `eyetest run` skipped the snapshot, so its PASS meant less.
//!
//! The flow reads straight down: the runner asks and produces an [`Outcome`]; [`judge`] adds
//! the snapshot check and gives a [`CaseVerdict`]; the harness turns that into a trial result
//! and `eyetest run` into a line, both writing the same [`crate::results::ResultRecord`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{Answer, BackendError};
use crate::record::ReplayError;
use crate::rubric::Verdict;
use crate::snapshot::SnapshotCheck;
use crate::spec::{Case, Suite};
use crate::target::Target;

pub use crate::snapshot::SnapshotStatus;

/// Verdict of one case x target, as shown and as written to and read from JSON lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The rubric (or the pass rate) accepted the answer and the snapshot matched.
    Passed,
    /// The model answered, and the rubric rejected it or the snapshot did not match.
    Failed,
    /// No answer: the request, the image or the recording failed.
    Error,
    /// Not run, with the reason (not selected, no endpoint, photo absent).
    Ignored,
}

impl Status {
    /// `PASS`, `FAIL`, `ERROR`, `IGNORED`: the words `eyetest run` prints.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Passed => "PASS",
            Status::Failed => "FAIL",
            Status::Error => "ERROR",
            Status::Ignored => "IGNORED",
        }
    }
}

/// How the answers of a case asked several times (`repeats = N`) came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repeats {
    pub total: u32,
    pub passed: u32,
    /// Fraction of repeats that must pass.
    pub pass_rate: f64,
    /// How many different answers came back.
    pub distinct: u32,
    /// Different answers at temperature 0, where a deterministic engine gives one.
    pub unstable: bool,
}

impl Repeats {
    pub fn met(&self) -> bool {
        self.passed as f64 >= self.pass_rate * self.total as f64 - 1e-9
    }
}

/// Why a case got no answer. Each variant keeps what a report needs (the attempts made).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CaseError {
    /// The run was told to stop before this case was sent.
    #[error("not started: the run was stopped")]
    NotStarted,
    #[error("{0}")]
    Image(String),
    /// The target could not be set up (client, private CA, simulated engine).
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("cannot write recording {}: {reason}", path.display())]
    Record { path: PathBuf, reason: String },
}

impl CaseError {
    /// Requests sent before giving up: 0 when none was (bad image, stopped, no client).
    pub fn attempts(&self) -> u32 {
        match self {
            CaseError::Backend(e) => e.attempts(),
            CaseError::Record { .. } => 1,
            _ => 0,
        }
    }
}

/// What became of one case x target before the snapshot check.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The model answered; the rubric judged it. With repeats, `answer` is the most common
    /// answer (what gets snapshotted) and `verdict` its rubric verdict.
    Answered {
        answer: Answer,
        verdict: Verdict,
        repeats: Option<Repeats>,
        /// Of the image sent, for the snapshot header (the runner hashed it once already).
        image_sha256: String,
    },
    /// No answer: an HTTP, protocol or input error.
    Error(CaseError),
    /// Not run, and why (target not selected, endpoint not configured, photo absent).
    Ignored(String),
}

impl Outcome {
    /// Whether the rubric (or the pass rate over repeats) accepted the answer; the snapshot
    /// is not part of this (see [`CaseVerdict::status`]).
    pub fn passed(&self) -> bool {
        match self {
            Outcome::Answered {
                repeats: Some(r), ..
            } => r.met(),
            Outcome::Answered { verdict, .. } => verdict.passed,
            _ => false,
        }
    }
}

/// Where the time of a case went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CaseTiming {
    /// The case's own requests, from holding a concurrency slot to the last byte (retries
    /// and their backoff included; summed over repeats).
    pub request: Duration,
    /// Waiting for a free concurrency slot of the target: the suite's doing, not the model's.
    pub queued: Duration,
}

/// The whole verdict on one case x target.
#[derive(Debug, Clone)]
pub struct CaseVerdict {
    pub outcome: Outcome,
    /// `None` when there was no answer to check.
    pub snapshot: Option<SnapshotCheck>,
    pub timing: CaseTiming,
}

impl CaseVerdict {
    /// Rubric and snapshot together: an answer passes only if both do.
    pub fn status(&self) -> Status {
        match &self.outcome {
            Outcome::Ignored(_) => Status::Ignored,
            Outcome::Error(_) => Status::Error,
            // A judge that failed or answered unparseably decided nothing: never a pass.
            Outcome::Answered { verdict, .. }
                if verdict.judge.as_ref().is_some_and(|j| j.is_error()) =>
            {
                Status::Error
            }
            Outcome::Answered { .. } => {
                if self.outcome.passed() && self.snapshot.as_ref().is_none_or(|s| s.passed) {
                    Status::Passed
                } else {
                    Status::Failed
                }
            }
        }
    }

    /// Why the case did not pass, in full, for a failing test; empty when it passed.
    pub fn problems(&self, target: &str) -> Vec<String> {
        let mut problems = Vec::new();
        match &self.outcome {
            Outcome::Ignored(_) => {}
            Outcome::Error(e) => problems.push(format!("no answer from target `{target}`: {e}")),
            Outcome::Answered {
                answer,
                verdict,
                repeats,
                ..
            } => {
                if !self.outcome.passed() {
                    let head = match repeats {
                        Some(r) => format!(
                            "only {} of {} answers passed the rubric for target `{target}` (pass_rate {} needs {}); the most common answer:",
                            r.passed,
                            r.total,
                            r.pass_rate,
                            (r.pass_rate * r.total as f64).ceil()
                        ),
                        None if verdict.judge.as_ref().is_some_and(|j| j.is_error()) => {
                            format!("the judge gave no verdict on the answer of target `{target}`:")
                        }
                        None => format!("rubric failed for target `{target}`:"),
                    };
                    problems.push(format!(
                        "{head}\n{}",
                        crate::rubric::explain(&answer.text, verdict)
                    ));
                }
                if let Some(p) = self.snapshot.as_ref().and_then(SnapshotCheck::problem) {
                    problems.push(p);
                }
            }
        }
        problems
    }
}

/// Completes an outcome into the verdict: checks an answer against its snapshot (insta
/// prints a diff for a changed one and, outside CI, leaves a `.snap.new` for review).
pub fn judge(
    suite: &Suite,
    case: &Case,
    target: &Target,
    outcome: Outcome,
    timing: CaseTiming,
) -> CaseVerdict {
    let snapshot = match &outcome {
        Outcome::Answered {
            answer,
            image_sha256,
            verdict,
            ..
        } => Some(crate::snapshot::check_judged(
            &suite.root,
            &suite.config.settings.golden,
            case,
            target,
            answer,
            image_sha256,
            verdict.judge.as_deref(),
        )),
        _ => None,
    };
    CaseVerdict {
        outcome,
        snapshot,
        timing,
    }
}
