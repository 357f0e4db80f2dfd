//! Re-applies the current rubrics to stored answers and lists the verdicts that flip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::rubric::Verdict;
use crate::spec::{Case, Suite};

/// One answer as stored by a past run or a recording.
#[derive(Debug, Clone)]
pub struct Stored {
    /// `study/count::people`
    pub case_id: String,
    pub target: String,
    pub answer: String,
    /// The stored verdict (passed or failed); `None` for recordings, which keep no verdict.
    pub passed: Option<bool>,
    /// Where it came from: `results.jsonl:12` or a recording path.
    pub origin: String,
    /// The judge's stored verdict on this answer, reused when re-grading (a re-grade never
    /// calls a judge); `None` for recordings and for runs without a judge.
    pub judge: Option<crate::rubric::judge::JudgeOutcome>,
}

/// A stored answer graded by today's rubric.
#[derive(Debug, Clone)]
pub struct Regraded {
    pub stored: Stored,
    pub case: Arc<Case>,
    pub now: Verdict,
}

impl Regraded {
    /// The stored verdict and today's differ.
    pub fn flipped(&self) -> bool {
        self.stored.passed.is_some_and(|p| p != self.now.passed)
    }
}

/// What a re-grade found.
#[derive(Debug, Default)]
pub struct Regrade {
    pub items: Vec<Regraded>,
    /// Stored answers whose case no longer exists (renamed or deleted), with their origin.
    pub orphans: Vec<Stored>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

impl Regrade {
    pub fn flips(&self) -> impl Iterator<Item = &Regraded> {
        self.items.iter().filter(|r| r.flipped())
    }
}

/// Reads answered records (passed or failed) from a results file. Fields are read leniently
/// (only `spec`, `case`, `target`, `status`, `answer`), so files written by older or newer
/// versions re-grade too. When a test occurs several times (appended runs), the last wins.
pub fn read_results(path: &Path) -> std::io::Result<(Vec<Stored>, Vec<String>)> {
    let text = std::fs::read_to_string(path)?;
    let mut by_test: BTreeMap<(String, String), Stored> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let origin = format!("{}:{}", path.display(), i + 1);
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                skipped.push(format!("{origin}: not a JSON record ({e})"));
                continue;
            }
        };
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(spec), Some(case), Some(target)) = (s("spec"), s("case"), s("target")) else {
            skipped.push(format!("{origin}: record without spec, case and target"));
            continue;
        };
        let by_status = match s("status").as_deref() {
            Some("passed") => true,
            Some("failed") => false,
            _ => continue,
        };
        // The rubric's own verdict where the record has one: a run's status also counts the
        // snapshot, so it can fail an answer the rubric accepted; re-grading re-applies the
        // rubric alone. Older records without a verdict fall back to the status.
        let passed = v
            .get("verdict")
            .and_then(|x| x.get("passed"))
            .and_then(Value::as_bool)
            .or(Some(by_status));
        let Some(answer) = s("answer") else { continue };
        let judge = v
            .get("verdict")
            .and_then(|x| x.get("judge"))
            .and_then(|j| serde_json::from_value(j.clone()).ok());
        let case_id = format!("{spec}::{case}");
        by_test.insert(
            (case_id.clone(), target.clone()),
            Stored {
                case_id,
                target,
                answer,
                passed,
                origin,
                judge,
            },
        );
    }
    Ok((by_test.into_values().collect(), skipped))
}

/// Reads every recording under `golden/recordings/<target>/<spec id>/<case>.toml`.
pub fn read_recordings(golden: &Path) -> (Vec<Stored>, Vec<String>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let dir = golden.join("recordings");
    let mut files = Vec::new();
    collect(&dir, &mut files);
    files.sort();
    for f in files {
        let Ok(rel) = f.strip_prefix(&dir) else {
            continue;
        };
        let parts: Vec<String> = rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.len() < 3 {
            continue;
        }
        let (target, spec, case) = (
            &parts[0],
            parts[1..parts.len() - 1].join("/"),
            &parts[parts.len() - 1],
        );
        match crate::record::Recording::load(&f) {
            Ok(Some(rec)) => out.push(Stored {
                case_id: format!("{spec}::{case}"),
                target: target.clone(),
                answer: rec.answer,
                passed: None,
                origin: f.display().to_string(),
                judge: None,
            }),
            Ok(None) => {}
            Err(e) => skipped.push(e.to_string()),
        }
    }
    (out, skipped)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

/// Grades each stored answer with its case's current rubric.
pub fn regrade(suite: &Suite, stored: Vec<Stored>) -> Regrade {
    let cases: BTreeMap<String, &Arc<Case>> = suite.cases.iter().map(|c| (c.id(), c)).collect();
    let mut out = Regrade::default();
    for s in stored {
        match cases.get(&s.case_id) {
            Some(case) => {
                let now = crate::rubric::judge::regrade(&case.rubric, &s.answer, s.judge.as_ref());
                out.items.push(Regraded {
                    stored: s,
                    case: Arc::clone(case),
                    now,
                });
            }
            None => out.orphans.push(s),
        }
    }
    out
}

/// The terminal report: every flip with the answer and today's checks, then a summary line.
pub fn render(r: &Regrade) -> String {
    let mut out = String::new();
    for f in r.flips() {
        let was = if f.stored.passed == Some(true) {
            "passed"
        } else {
            "failed"
        };
        let now = if f.now.passed { "passes" } else { "fails" };
        out.push_str(&format!(
            "FLIP {}@{}: {was} then, {now} now ({})\n",
            f.stored.case_id, f.stored.target, f.stored.origin
        ));
        for line in crate::rubric::explain(&f.stored.answer, &f.now).lines() {
            out.push_str(&format!("    {line}\n"));
        }
        out.push('\n');
    }
    let unverdicted: Vec<&Regraded> = r
        .items
        .iter()
        .filter(|i| i.stored.passed.is_none())
        .collect();
    for i in &unverdicted {
        out.push_str(&format!(
            "{} {}@{}: {}\n",
            if i.now.passed { "pass" } else { "FAIL" },
            i.stored.case_id,
            i.stored.target,
            i.now.summary()
        ));
    }
    for o in &r.orphans {
        out.push_str(&format!(
            "no case {} any more (answer from {}); skipped\n",
            o.case_id, o.origin
        ));
    }
    for s in &r.skipped {
        out.push_str(&format!("skipped {s}\n"));
    }
    let flips = r.flips().count();
    let passing = r.items.iter().filter(|i| i.now.passed).count();
    out.push_str(&format!(
        "regraded {} answer(s) offline: {passing} pass now, {flips} verdict(s) flipped\n",
        r.items.len()
    ));
    out
}
