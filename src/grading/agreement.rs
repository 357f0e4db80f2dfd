//! Agreement between rubric verdicts and human grades: how far a project's rubrics can be
//! trusted, measured on the project's own answers.
//!
//! Human grades live beside the specs in `grades/*.toml`:
//!
//! ```toml
//! [[grade]]
//! case = "study/count::people"    # spec id :: case name, as in test names
//! target = "llama-11b"
//! correct = true
//! note = "counts the ball boy"    # optional: why, for whoever reads a disagreement
//! answer = "There are two ..."    # optional: the answer graded (else the results' answer)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::rubric::{explain, Verdict};
use crate::spec::{Case, Suite};

use super::regrade::Stored;

/// One human grade.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grade {
    pub case: String,
    pub target: String,
    pub correct: bool,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub answer: Option<String>,
    /// `grades/study.toml:12`, filled in on load.
    #[serde(skip)]
    pub origin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GradesFile {
    #[serde(default)]
    grade: Vec<Grade>,
}

/// Loads grades from a file, or from every `*.toml` in a directory (sorted). Errors name the
/// file and line and say what to write.
pub fn load_grades(path: &Path) -> Result<Vec<Grade>, String> {
    let mut files = Vec::new();
    if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
        files.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml")),
        );
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_file(&f) {
            Ok(g) => out.extend(g),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("\n"))
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

fn load_file(path: &Path) -> Result<Vec<Grade>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let parsed: GradesFile = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(&text, s.start));
        format!(
            "{}:{line}: {}; a grade reads [[grade]] case = \"spec/id::case\" target = \"name\" correct = true",
            path.display(),
            e.message()
        )
    })?;
    // Lines of the [[grade]] headers, in order, so each grade can name where it is.
    let headers: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[grade]]"))
        .map(|(i, _)| i + 1)
        .collect();
    Ok(parsed
        .grade
        .into_iter()
        .enumerate()
        .map(|(i, mut g)| {
            g.origin = format!(
                "{}:{}",
                path.display(),
                headers.get(i).copied().unwrap_or(1)
            );
            g
        })
        .collect())
}

/// A human grade beside the rubric's verdict on the same answer.
#[derive(Debug, Clone)]
pub struct Compared {
    pub grade: Grade,
    pub answer: String,
    pub case: Arc<Case>,
    pub verdict: Verdict,
}

impl Compared {
    pub fn agrees(&self) -> bool {
        self.grade.correct == self.verdict.passed
    }
}

/// Counts of (human, rubric) pairs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Confusion {
    /// Human correct, rubric passed.
    pub both_pass: usize,
    /// Human wrong, rubric passed: the rubric is too lenient.
    pub false_pass: usize,
    /// Human correct, rubric failed: the rubric is too strict.
    pub false_fail: usize,
    /// Human wrong, rubric failed.
    pub both_fail: usize,
}

impl Confusion {
    pub fn add(&mut self, human: bool, rubric: bool) {
        match (human, rubric) {
            (true, true) => self.both_pass += 1,
            (false, true) => self.false_pass += 1,
            (true, false) => self.false_fail += 1,
            (false, false) => self.both_fail += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.both_pass + self.false_pass + self.false_fail + self.both_fail
    }

    /// Share of answers where rubric and human agree, in percent (100 when there are none).
    pub fn percent(&self) -> f64 {
        match self.total() {
            0 => 100.0,
            n => 100.0 * (self.both_pass + self.both_fail) as f64 / n as f64,
        }
    }

    /// The summary line and the 2x2 matrix, for a terminal or a markdown code block.
    pub fn render(&self) -> String {
        format!(
            "agreement: {:.1}% ({} of {} answers)\n\n                 rubric pass  rubric fail\n  human correct  {:>11}  {:>11}\n  human wrong    {:>11}  {:>11}\n",
            self.percent(),
            self.both_pass + self.both_fail,
            self.total(),
            self.both_pass,
            self.false_fail,
            self.false_pass,
            self.both_fail
        )
    }
}

/// What comparing grades with verdicts found.
#[derive(Debug, Default)]
pub struct Agreement {
    pub compared: Vec<Compared>,
    /// Grades that could not be compared, each with why (no such case, no answer, stale).
    pub unmatched: Vec<String>,
}

impl Agreement {
    pub fn confusion(&self) -> Confusion {
        let mut c = Confusion::default();
        for x in &self.compared {
            c.add(x.grade.correct, x.verdict.passed);
        }
        c
    }

    /// Agreement, the matrix, then every disagreement with its answer, rubric and note.
    pub fn render(&self) -> String {
        let mut out = self.confusion().render();
        for x in self.compared.iter().filter(|x| !x.agrees()) {
            let human = if x.grade.correct { "correct" } else { "wrong" };
            let rubric = if x.verdict.passed { "passes" } else { "fails" };
            out.push_str(&format!(
                "\nDISAGREE {}@{} ({}): human says {human}, rubric {rubric}\n",
                x.grade.case, x.grade.target, x.grade.origin
            ));
            if let Some(note) = &x.grade.note {
                out.push_str(&format!("  note: {note}\n"));
            }
            let rubric_toml = toml::to_string(&x.case.rubric).unwrap_or_default();
            out.push_str(&format!(
                "  rubric ({}:{}): {}\n",
                x.case.spec.path.display(),
                x.case.line,
                rubric_toml.trim().replace('\n', "; ")
            ));
            for line in explain(&x.answer, &x.verdict).lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
        for u in &self.unmatched {
            out.push_str(&format!("\nnot compared: {u}\n"));
        }
        out
    }
}

/// Compares each grade with the current rubric's verdict on the graded answer: the grade's own
/// `answer`, else the stored answer of that case and target. A grade whose `answer` differs
/// from the stored one is stale (the human graded another answer) and is not compared.
pub fn compare(suite: &Suite, grades: Vec<Grade>, stored: &[Stored]) -> Agreement {
    let cases: BTreeMap<String, &Arc<Case>> = suite.cases.iter().map(|c| (c.id(), c)).collect();
    let answers: BTreeMap<(&str, &str), &Stored> = stored
        .iter()
        .map(|s| ((s.case_id.as_str(), s.target.as_str()), s))
        .collect();
    let mut out = Agreement::default();
    for g in grades {
        let Some(case) = cases.get(&g.case) else {
            out.unmatched
                .push(format!("{}: no case {} in the specs", g.origin, g.case));
            continue;
        };
        let record = answers.get(&(g.case.as_str(), g.target.as_str())).copied();
        let stored = record.map(|s| s.answer.as_str());
        let answer = match (&g.answer, stored) {
            (Some(a), Some(s)) if a.trim() != s.trim() => {
                out.unmatched.push(format!(
                    "{}: the graded answer differs from the stored answer of {}@{}; grade the new answer or drop `answer`",
                    g.origin, g.case, g.target
                ));
                continue;
            }
            (Some(a), _) => a.clone(),
            (None, Some(s)) => s.to_string(),
            (None, None) => {
                out.unmatched.push(format!(
                    "{}: no stored answer for {}@{} (run it, or put the graded answer in `answer`)",
                    g.origin, g.case, g.target
                ));
                continue;
            }
        };
        // The stored judge verdict is about the stored answer: reused only for that answer.
        let judged = record
            .filter(|s| s.answer.trim() == answer.trim())
            .and_then(|s| s.judge.as_ref());
        let verdict = crate::rubric::judge::regrade(&case.rubric, &answer, judged);
        out.compared.push(Compared {
            grade: g,
            answer,
            case: Arc::clone(case),
            verdict,
        });
    }
    out
}

/// Where grades are looked for by default: `grades/` in the project root.
pub fn default_dir(root: &Path) -> PathBuf {
    root.join("grades")
}
