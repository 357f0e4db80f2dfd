//! `eyetest regrade` and `eyetest agreement`: the rubric author's loop, offline.
//!
//! Both re-apply the current rubrics to answers already stored (results files, recordings),
//! so editing a rubric and checking it costs no model call.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::grading::{agreement, regrade};

#[derive(Debug, Args)]
pub struct RegradeArgs {
    /// Results files (JSON lines) whose answers to re-grade; when a test is in several, the
    /// last record wins. Relative paths are relative to --root.
    #[arg(long = "results", value_name = "RESULTS.jsonl")]
    results: Vec<PathBuf>,
    /// Also re-grade every answer recorded under golden/recordings (they keep no verdict, so
    /// each is listed with today's).
    #[arg(long)]
    recordings: bool,
    /// Exit 1 when a verdict flipped (for CI: a rubric edit changed verdicts).
    #[arg(long)]
    fail_on_flip: bool,
}

#[derive(Debug, Args)]
pub struct AgreementArgs {
    /// Human grades: a TOML file or a directory of them (default: grades/ in the project).
    #[arg(long, value_name = "FILE|DIR")]
    grades: Option<PathBuf>,
    /// Results files that hold the graded answers (default: the latest `eyetest run`).
    #[arg(long = "results", value_name = "RESULTS.jsonl")]
    results: Vec<PathBuf>,
    /// Exit 1 when agreement is below this percentage (for CI).
    #[arg(long, value_name = "PERCENT")]
    min: Option<f64>,
}

fn rooted(root: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

/// Reads stored answers from results files; a missing default file is an empty run, a
/// missing named file is an error.
fn stored(
    root: &Path,
    files: &[PathBuf],
    explicit: bool,
) -> Result<(Vec<regrade::Stored>, Vec<String>), String> {
    let mut all = Vec::new();
    let mut skipped = Vec::new();
    for f in files {
        let path = rooted(root, f);
        match regrade::read_results(&path) {
            Ok((s, k)) => {
                all.extend(s);
                skipped.extend(k);
            }
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read results {}: {e}", path.display())),
        }
    }
    Ok((all, skipped))
}

/// The results files to read, and whether the user named them: those given, else the latest
/// `eyetest run` (none yet: nothing stored to read; what needs an answer says so later).
fn results_files(root: &Path, given: &[PathBuf]) -> (Vec<PathBuf>, bool) {
    if !given.is_empty() {
        return (given.to_vec(), true);
    }
    match crate::report::runs::latest(root) {
        Ok(p) => (vec![p], false),
        Err(e) => {
            eprintln!("note: {e}");
            (Vec::new(), false)
        }
    }
}

pub fn run_regrade(root: &Path, args: RegradeArgs) -> ExitCode {
    let Some(suite) = super::load(root) else {
        return ExitCode::FAILURE;
    };
    let (files, explicit) = results_files(root, &args.results);
    let (mut answers, mut skipped) = match stored(root, &files, explicit) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.recordings {
        let (rec, k) = regrade::read_recordings(&root.join(&suite.config.settings.golden));
        answers.extend(rec);
        skipped.extend(k);
    }
    if answers.is_empty() {
        eprintln!(
            "error: no stored answers to re-grade in {}{}; run `eyetest run` first",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if args.recordings {
                " or golden/recordings"
            } else {
                ""
            }
        );
        return ExitCode::FAILURE;
    }
    let mut report = regrade::regrade(&suite, answers);
    report.skipped = skipped;
    print!("{}", regrade::render(&report));
    if args.fail_on_flip && report.flips().next().is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

pub fn run_agreement(root: &Path, args: AgreementArgs) -> ExitCode {
    let Some(suite) = super::load(root) else {
        return ExitCode::FAILURE;
    };
    let grades_path = args
        .grades
        .as_deref()
        .map_or_else(|| agreement::default_dir(root), |g| rooted(root, g));
    if !grades_path.exists() {
        eprintln!(
            "error: no human grades at {}; write [[grade]] case = \"spec/id::case\" target = \"name\" correct = true in grades/*.toml (see docs/rubrics.md)",
            grades_path.display()
        );
        return ExitCode::FAILURE;
    }
    let grades = match agreement::load_grades(&grades_path) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (files, explicit) = results_files(root, &args.results);
    let answers = match stored(root, &files, explicit) {
        Ok((a, _)) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = agreement::compare(&suite, grades, &answers);
    print!("{}", result.render());
    match args.min {
        Some(min) if result.confusion().percent() < min => {
            eprintln!(
                "agreement {:.1}% is below --min {min}",
                result.confusion().percent()
            );
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
