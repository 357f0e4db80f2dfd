//! Several results files read as one run, and what the records say about each target.
//!
//! Every report format starts here so that they agree on which record counts: from a file
//! that several runs appended to, only the latest run (by the run id of its last record), so
//! that a report never mixes runs; a second file given later on the command line supersedes
//! what came before, test by test.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::results::{read_results_lenient, ResultRecord, SkippedLine, Status};

/// Marker the simulated engine puts in the model id it answers with
/// (`eyetest-sim/terse (simulated engine, not a real model)`).
pub const SIMULATED_MARKER: &str = "simulated";

/// Why the inputs of a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no results file at {}: run `eyetest run` (or the tests with EYETEST_RESULTS set) first", .0.display())]
    Missing(PathBuf),
    #[error("no run yet: {} does not exist; run `eyetest run` first, or name a results file", .0.display())]
    NoLatest(PathBuf),
    #[error("cannot read results file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What [`load`] left out: records of earlier runs in files that several runs appended to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// Lines that are not records (a torn last line), in file order.
    pub skipped: Vec<SkippedLine>,
    /// `(file, runs in it, records of earlier runs left out, run kept)`
    pub files: Vec<(PathBuf, usize, usize, String)>,
}

impl LeftOut {
    /// One line per skipped line, then one per file, for stderr; empty when nothing was left
    /// out.
    pub fn notes(&self) -> Vec<String> {
        let runs = self.files.iter().map(|(path, runs, dropped, kept)| {
            format!(
                "note: {} holds {runs} runs; reporting the latest ({kept}) and leaving out \
                 {dropped} result(s) of earlier runs (--all-runs merges them)",
                path.display()
            )
        });
        self.skipped
            .iter()
            .map(ToString::to_string)
            .chain(runs)
            .collect()
    }
}

/// The results file of the latest `eyetest run` in `root`.
pub fn latest(root: &Path) -> Result<PathBuf, LoadError> {
    crate::results::latest(root).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LoadError::NoLatest(root.join(crate::results::LATEST_FILE))
        } else {
            LoadError::Io {
                path: root.join(crate::results::LATEST_FILE),
                source: e,
            }
        }
    })
}

/// Reads every file, in order, keeping only the latest run of each, and merges them (see
/// [`merge`]).
pub fn load(paths: &[PathBuf]) -> Result<Vec<ResultRecord>, LoadError> {
    load_runs(paths, false).map(|(records, _)| records)
}

/// [`load`], or with `all_runs` every run of every file, saying what was left out.
pub fn load_runs(
    paths: &[PathBuf],
    all_runs: bool,
) -> Result<(Vec<ResultRecord>, LeftOut), LoadError> {
    let mut all = Vec::new();
    let mut left_out = LeftOut::default();
    for path in paths {
        let (records, skipped) = read_results_lenient(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                LoadError::Missing(path.clone())
            } else {
                LoadError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        left_out.skipped.extend(skipped);
        let records = if all_runs {
            records
        } else {
            let (kept, runs, dropped) = latest_run(records);
            if dropped > 0 {
                let id = kept
                    .last()
                    .and_then(|r| r.run.clone())
                    .unwrap_or_else(|| "without id".into());
                left_out.files.push((path.clone(), runs, dropped, id));
            }
            kept
        };
        all.extend(records);
    }
    let mut merged = merge(all);
    // Results arrive in completion order; reports read in spec order.
    merged.sort_by(|a, b| (&a.spec, a.line, &a.target).cmp(&(&b.spec, b.line, &b.target)));
    Ok((merged, left_out))
}

/// The records of the run the last record belongs to; how many runs there were and how many
/// records of the others were dropped. Records without a run id (older files) count as one run.
pub fn latest_run(records: Vec<ResultRecord>) -> (Vec<ResultRecord>, usize, usize) {
    let runs: BTreeSet<Option<&str>> = records.iter().map(|r| r.run.as_deref()).collect();
    let count = runs.len();
    let Some(last) = records.last().map(|r| r.run.clone()) else {
        return (records, 0, 0);
    };
    let total = records.len();
    let kept: Vec<ResultRecord> = records.into_iter().filter(|r| r.run == last).collect();
    let dropped = total - kept.len();
    (kept, count, dropped)
}

/// One record per test: the last one wins (a re-run supersedes), at the place where the test
/// first appeared, so that reports keep the order in which the specs declare their cases.
pub fn merge(records: impl IntoIterator<Item = ResultRecord>) -> Vec<ResultRecord> {
    let mut out: Vec<ResultRecord> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for r in records {
        match at.get(&r.test) {
            Some(&i) => out[i] = r,
            None => {
                at.insert(r.test.clone(), out.len());
                out.push(r);
            }
        }
    }
    out
}

/// What the records tell about one target: enough for a report header.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetInfo {
    pub name: String,
    /// The model id configured on the target.
    pub model: String,
    pub gpu: Option<String>,
    /// The model ids the server answered with, in order of first appearance.
    pub served_models: Vec<String>,
    /// The server said it is the simulated engine. Only answers carry the served model, so a
    /// target without any answer is never marked simulated: reports say "unknown" instead.
    pub simulated: bool,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub ignored: usize,
}

impl TargetInfo {
    /// Cases that ran to a verdict or an error (not ignored).
    pub fn run(&self) -> usize {
        self.passed + self.failed + self.errors
    }

    /// Whether any answer told what the server is.
    pub fn answered(&self) -> bool {
        !self.served_models.is_empty()
    }
}

/// The targets of the records, by name (a stable column order, whatever order results came in).
pub fn targets(records: &[ResultRecord]) -> Vec<TargetInfo> {
    let mut out: Vec<TargetInfo> = Vec::new();
    for r in records {
        let i = match out.iter().position(|t| t.name == r.target) {
            Some(i) => i,
            None => {
                out.push(TargetInfo {
                    name: r.target.clone(),
                    model: r.model.clone(),
                    gpu: None,
                    served_models: Vec::new(),
                    simulated: false,
                    passed: 0,
                    failed: 0,
                    errors: 0,
                    ignored: 0,
                });
                out.len() - 1
            }
        };
        let t = &mut out[i];
        if t.gpu.is_none() {
            t.gpu.clone_from(&r.gpu);
        }
        if let Some(m) = r.served_model.as_deref().filter(|m| !m.is_empty()) {
            if !t.served_models.iter().any(|s| s == m) {
                t.served_models.push(m.to_string());
            }
            t.simulated |= is_simulated(m);
        }
        match r.status {
            Status::Passed => t.passed += 1,
            Status::Failed => t.failed += 1,
            Status::Error => t.errors += 1,
            Status::Ignored => t.ignored += 1,
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Whether a served model id is the simulated engine's.
pub fn is_simulated(served_model: &str) -> bool {
    served_model.to_lowercase().contains(SIMULATED_MARKER)
}

/// `Category / Sub-category` of a record, with stand-ins for what a spec left out.
pub fn group_key(r: &ResultRecord) -> (String, String) {
    (
        r.category.clone().unwrap_or_else(|| "Uncategorised".into()),
        r.subcategory.clone().unwrap_or_else(|| "—".into()),
    )
}

/// `study/count::people`: the test name without its target.
pub fn case_id(r: &ResultRecord) -> String {
    format!("{}::{}", r.spec, r.case)
}

/// The distinct case ids, in order of first appearance.
pub fn case_ids(records: &[ResultRecord]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    records
        .iter()
        .map(case_id)
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// `path` made absolute against the current directory and cleaned of `.` and `..` without
/// touching the file system: report paths may name files that do not exist yet.
pub fn absolute(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The path that leads from directory `from` to `to`, for links inside a report.
///
/// Computed lexically (symlinks are not resolved), because the report may be written before
/// the directory it goes into exists. When the two share no root (another drive on Windows)
/// the absolute path of `to` is the only thing that works.
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let (from, to) = (absolute(from), absolute(to));
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return to;
    }
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_line_is_left_out_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let record = serde_json::json!({
            "test": "a@t", "spec": "s", "case": "a", "target": "t", "model": "m",
            "image": "i.png", "prompt": "p", "status": "passed", "elapsed_ms": 1.0,
        });
        std::fs::write(&path, format!("{record}\n{{\"test\": \"b@")).unwrap();
        let (records, left_out) = load_runs(std::slice::from_ref(&path), false).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(
            (left_out.skipped[0].path.as_path(), left_out.skipped[0].line),
            (path.as_path(), 2)
        );
        let notes = left_out.notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("eyetest: ")
                && notes[0].contains(":2: skipping unreadable result line: "),
            "{}",
            notes[0]
        );
    }

    #[test]
    fn relative_paths() {
        let rel = |a: &str, b: &str| relative_path(Path::new(a), Path::new(b));
        assert_eq!(
            rel("/p", "/p/fixtures/a.png"),
            PathBuf::from("fixtures/a.png")
        );
        assert_eq!(
            rel("/p/target/reports", "/p/fixtures/a.png"),
            PathBuf::from("../../fixtures/a.png")
        );
        assert_eq!(
            rel("/p/./x/../docs", "/p/fixtures/a.png"),
            PathBuf::from("../fixtures/a.png")
        );
        assert_eq!(rel("/p", "/p"), PathBuf::from("."));
        assert_eq!(rel("/a/b", "/c/d.png"), PathBuf::from("../../c/d.png"));
    }
}
