//! Results as JSON lines, one record per case x target, appended and flushed as each arrives:
//! an interrupted run keeps every result it finished, and reports are rendered from these
//! files rather than from memory.
//!
//! Runs are kept apart: every record carries the id of the run that wrote it, and `eyetest
//! run` writes each run to a file of its own, `target/eyetest/runs/<run id>.jsonl`, with
//! `target/eyetest/latest` naming the last one. A report of a file that several runs appended
//! to shows the latest run only (see [`crate::report::runs`]), never a mix.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::backend::Usage;
use crate::rubric::Verdict;
use crate::spec::Case;
use crate::target::Target;
use crate::verdict::{CaseVerdict, Outcome, Repeats, SnapshotStatus};

pub use crate::verdict::Status;

/// Older callers wrote atomically through this module; the function lives in [`crate::atomic`].
#[doc(hidden)]
pub use crate::atomic::write_atomic;

/// One line of a results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultRecord {
    /// `study/count::people@sim`
    pub test: String,
    /// The run that wrote this record (see [`new_run_id`]); absent in files from before runs
    /// had ids, which read as one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub spec: String,
    pub case: String,
    /// Line of the case in its spec file: reports order cases as the specs declare them.
    #[serde(default)]
    pub line: usize,
    pub target: String,
    /// The model id configured on the target.
    pub model: String,
    /// The model id the server answered with (the simulated engine says it is simulated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcategory: Option<String>,
    pub image: String,
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub status: Status,
    /// How the answer compared with its snapshot; absent when there was no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Error message, or the reason a case was ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
    /// Requests sent, retries included; 0 when none was (bad image, not started).
    #[serde(default)]
    pub attempts: u32,
    /// The case's own request time, retries included, *without* the wait for a concurrency
    /// slot (`queued_ms`). Files from before `queued_ms` existed included the wait here.
    pub elapsed_ms: f64,
    /// Time spent waiting for a free concurrency slot of the target before sending.
    #[serde(default)]
    pub queued_ms: f64,
    /// How the repeats came out, for cases asked several times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<Repeats>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl ResultRecord {
    /// The record of `verdict`, written by run `run`.
    pub fn new(run: &str, case: &Case, target: &Target, verdict: &CaseVerdict) -> Self {
        let mut r = ResultRecord {
            test: case.test_name(&target.name),
            run: Some(run.to_string()),
            spec: case.spec.id.clone(),
            case: case.name.clone(),
            line: case.line,
            target: target.name.clone(),
            model: target.common.model.clone(),
            served_model: None,
            gpu: target.common.gpu.as_ref().map(|g| g.to_string()),
            category: case.category.clone(),
            subcategory: case.subcategory.clone(),
            image: case.image.display().to_string(),
            prompt: case.prompt.clone(),
            label: case.label.clone(),
            status: verdict.status(),
            snapshot: verdict.snapshot.as_ref().map(|s| s.status),
            answer: None,
            verdict: None,
            reason: None,
            usage: None,
            ttft_ms: None,
            e2e_ms: None,
            attempts: 0,
            elapsed_ms: ms(verdict.timing.request),
            queued_ms: ms(verdict.timing.queued),
            repeats: None,
        };
        match &verdict.outcome {
            Outcome::Answered {
                answer,
                verdict,
                repeats,
                ..
            } => {
                r.repeats = repeats.clone();
                r.answer = Some(answer.text.clone());
                r.served_model = Some(answer.model.clone()).filter(|m| !m.is_empty());
                r.verdict = Some(verdict.clone());
                r.usage = answer.usage;
                r.ttft_ms = answer.timing.ttft.map(ms);
                r.e2e_ms = Some(ms(answer.timing.e2e));
                r.attempts = answer.timing.attempts;
                // The record's verdict carries the judge; an error also says why in `reason`.
                if let Some(j) = verdict.judge.as_ref().filter(|j| j.is_error()) {
                    r.reason = Some(j.reason.clone());
                }
            }
            Outcome::Error(e) => {
                r.reason = Some(e.to_string());
                r.attempts = e.attempts();
            }
            Outcome::Ignored(why) => r.reason = Some(why.clone()),
        }
        r
    }
}

/// A new run id: the UTC start time, sortable as text, and a random tail so that two runs
/// started in the same second differ: `20261201T114519Z-3f2a9c`.
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let tail = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(now.as_nanos());
        h.finish() & 0xff_ffff
    };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z-{tail:06x}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Where `eyetest run` keeps its runs, relative to the project root.
pub const RUNS_DIR: &str = "target/eyetest/runs";

/// The file naming the latest run of `eyetest run`, relative to the project root.
pub const LATEST_FILE: &str = "target/eyetest/latest";

/// The results file of run `id` under `root`.
pub fn run_file(root: &Path, id: &str) -> PathBuf {
    root.join(RUNS_DIR).join(format!("{id}.jsonl"))
}

/// Makes run `id` the one reports read by default. The pointer is a one-line text file
/// (not a symlink, which not every file system or archive keeps).
pub fn set_latest(root: &Path, id: &str) -> std::io::Result<()> {
    crate::atomic::write_atomic(
        &root.join(LATEST_FILE),
        format!("runs/{id}.jsonl\n").as_bytes(),
    )
}

/// The results file of the latest run, if `eyetest run` has run here.
pub fn latest(root: &Path) -> std::io::Result<PathBuf> {
    let pointer = root.join(LATEST_FILE);
    let text = std::fs::read_to_string(&pointer)?;
    let rel = text.trim();
    if rel.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is empty", pointer.display()),
        ));
    }
    Ok(pointer.parent().unwrap_or(root).join(rel))
}

/// Appends records to a JSON-lines file, one `write` + flush per record.
///
/// One `write_all` of a whole line to a file opened with `O_APPEND` keeps lines whole even
/// when several processes (nextest runs one per test) append to the same file. `File` has no
/// user-space buffer, so once `write` returns the line is the kernel's: a process killed
/// after that, by any signal, has lost nothing it reported (tests/it/interrupt.rs kills one).
pub struct ResultsWriter {
    file: Mutex<File>,
    path: PathBuf,
}

impl ResultsWriter {
    /// Opens (creating parents) `path` for appending.
    pub fn append(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(file),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&self, record: &ResultRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&line)?;
        f.flush()
    }
}

/// Reads a results file; a torn last line (a run killed mid-write) is skipped, not fatal.
/// For callers that do not report skipped lines (tests); reports use [`read_results_lenient`].
pub fn read_results(path: &Path) -> std::io::Result<Vec<ResultRecord>> {
    read_results_lenient(path).map(|(records, _)| records)
}

/// A line of a results file that is not a record (a run killed mid-write tears the last).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("eyetest: {}:{line}: skipping unreadable result line: {reason}", path.display())]
pub struct SkippedLine {
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
    /// What the JSON parser said.
    pub reason: String,
}

/// Reads a results file, with the lines that are not records, for the caller to report.
pub fn read_results_lenient(path: &Path) -> std::io::Result<(Vec<ResultRecord>, Vec<SkippedLine>)> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(e) => skipped.push(SkippedLine {
                path: path.to_path_buf(),
                line: i + 1,
                reason: e.to_string(),
            }),
        }
    }
    Ok((out, skipped))
}
