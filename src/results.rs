//! Results as JSON lines, one record per case x target, appended and flushed as each arrives:
//! an interrupted run keeps every result it finished, and reports are rendered from these
//! files rather than from memory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::Usage;
use crate::rubric::Verdict;
use crate::runner::Outcome;
use crate::spec::Case;
use crate::target::Target;

/// Verdict of one case x target, as written to and read from JSON lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    Error,
    Ignored,
}

/// One line of a results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultRecord {
    /// `study/count::people@sim`
    pub test: String,
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
    #[serde(default)]
    pub attempts: u32,
    /// Wall time of the case including queueing for a concurrency slot.
    pub elapsed_ms: f64,
    /// How the repeats came out, for cases asked several times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<crate::runner::Repeats>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl ResultRecord {
    pub fn new(case: &Case, target: &Target, outcome: &Outcome, elapsed: Duration) -> Self {
        let mut r = ResultRecord {
            test: case.test_name(&target.name),
            spec: case.spec.id.clone(),
            case: case.name.clone(),
            line: case.line,
            target: target.name.clone(),
            model: target.config.model.clone(),
            served_model: None,
            gpu: target.config.gpu.as_ref().map(|g| g.to_string()),
            category: case.category.clone(),
            subcategory: case.subcategory.clone(),
            image: case.image.display().to_string(),
            prompt: case.prompt.clone(),
            label: case.label.clone(),
            status: Status::Ignored,
            answer: None,
            verdict: None,
            reason: None,
            usage: None,
            ttft_ms: None,
            e2e_ms: None,
            attempts: 0,
            elapsed_ms: ms(elapsed),
            repeats: None,
        };
        match outcome {
            Outcome::Answered {
                answer,
                verdict,
                repeats,
            } => {
                r.repeats = repeats.clone();
                r.status = if outcome.passed() {
                    Status::Passed
                } else {
                    Status::Failed
                };
                r.answer = Some(answer.text.clone());
                r.served_model = Some(answer.model.clone()).filter(|m| !m.is_empty());
                r.verdict = Some(verdict.clone());
                r.usage = answer.usage;
                r.ttft_ms = answer.timing.ttft.map(ms);
                r.e2e_ms = Some(ms(answer.timing.e2e));
                r.attempts = answer.timing.attempts;
            }
            Outcome::Error(e) => {
                r.status = Status::Error;
                r.reason = Some(e.clone());
            }
            Outcome::Ignored(why) => r.reason = Some(why.clone()),
        }
        r
    }
}

/// Appends records to a JSON-lines file, one `write` + flush per record.
///
/// One `write_all` of a whole line to a file opened with `O_APPEND` keeps lines whole even
/// when several processes (nextest runs one per test) append to the same file. `File` has no
/// user-space buffer, so once `write` returns the line is the kernel's: a process killed
/// after that, by any signal, has lost nothing it reported (tests/interrupt.rs kills one).
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
pub fn read_results(path: &Path) -> std::io::Result<Vec<ResultRecord>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(e) => eprintln!(
                "eyetest: {}:{}: skipping unreadable result line: {e}",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

/// Temp files of [`write_atomic`] calls in progress, so that a process told to exit at once
/// can remove them instead of leaving half a file behind.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the temp files of atomic writes still in progress; for a process about to exit.
pub fn remove_pending_temp_files() {
    for tmp in pending().drain(..) {
        let _ = std::fs::remove_file(tmp);
    }
}

/// Writes a file so that readers see the old content or the new, never half of either:
/// a temp file in the same directory, flushed to disk, then renamed over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per call: two tasks of one process may write the same file at once.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}-{seq}.tmp", std::process::id()));
    pending().push(tmp.clone());
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    pending().retain(|p| p != &tmp);
    result
}
