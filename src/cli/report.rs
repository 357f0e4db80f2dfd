//! `eyetest report`: renders results files for people (markdown, text) and CI (JUnit, JSON),
//! or compares two runs.
//!
//! Reporting never gates: it exits 0 whatever the verdicts, and non-zero only when it cannot
//! read its inputs or write its output. The gate is `eyetest run` / `cargo test`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::report::runs::{absolute, latest, load_runs, LoadError};
use crate::report::{compare, junit, markdown, table};
use crate::results::ResultRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Side by side per task, like the study's report (image, label, question, one row per target).
    Markdown,
    /// JUnit XML for CI: one test suite per target.
    Junit,
    /// The merged records as JSON lines.
    Json,
    /// A verdict matrix for a terminal.
    Text,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results files (JSON lines) to merge, in order: when a test is in several, the last record
    /// wins, so a re-run supersedes. Of a file several runs appended to, only the latest run
    /// counts (see --all-runs). Relative paths are relative to --root. Default: the latest
    /// `eyetest run` (target/eyetest/latest).
    #[arg(value_name = "RESULTS.jsonl")]
    inputs: Vec<PathBuf>,
    /// Merge every run of each file instead of reporting only the latest one.
    #[arg(long)]
    all_runs: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Markdown)]
    format: Format,
    /// Write the report to FILE instead of stdout (relative to --root); markdown image links
    /// are then relative to FILE's directory.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Show what changed since the run in BEFORE.jsonl: flipped verdicts and a word diff of each
    /// changed answer (markdown, or text with --format text).
    #[arg(long, value_name = "BEFORE.jsonl")]
    compare: Option<PathBuf>,
}

pub fn run(root: &Path, args: ReportArgs) -> ExitCode {
    match render(root, &args) {
        Ok(text) => match write(root, args.out.as_deref(), &text) {
            Ok(Some(path)) => {
                eprintln!("wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Ok(None) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn resolve(root: &Path, p: &Path) -> PathBuf {
    if p.is_relative() {
        root.join(p)
    } else {
        p.to_path_buf()
    }
}

/// Why a report was not made.
#[derive(Debug, thiserror::Error)]
enum ReportError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("--compare renders markdown or text: drop --format, or use --format text")]
    CompareFormat,
    #[error("cannot write JUnit XML: {0}")]
    Junit(#[source] quick_junit::SerializeError),
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
}

fn render(root: &Path, args: &ReportArgs) -> Result<String, ReportError> {
    let given = if args.inputs.is_empty() {
        vec![latest(root)?]
    } else {
        args.inputs.clone()
    };
    let inputs: Vec<PathBuf> = given.iter().map(|p| resolve(root, p)).collect();
    let (records, left_out) = load_runs(&inputs, args.all_runs)?;
    for note in left_out.notes() {
        eprintln!("{note}");
    }
    let names: Vec<String> = given.iter().map(|p| p.display().to_string()).collect();
    if let Some(before_path) = &args.compare {
        let (before, left_out) = load_runs(&[resolve(root, before_path)], args.all_runs)?;
        for note in left_out.notes() {
            eprintln!("{note}");
        }
        let c = compare::compare(&before, &records);
        return match args.format {
            Format::Markdown => Ok(compare::render_markdown(
                &c,
                &before_path.display().to_string(),
                &names.join(", "),
            )),
            Format::Text => Ok(compare::render_text(&c)),
            Format::Junit | Format::Json => Err(ReportError::CompareFormat),
        };
    }
    Ok(match args.format {
        Format::Markdown => {
            let mut opts = markdown::Options::new(root);
            opts.sources = names;
            if let Some(out) = &args.out {
                let out = absolute(&resolve(root, out));
                opts.link_base = out
                    .parent()
                    .map_or_else(|| root.to_path_buf(), Path::to_path_buf);
            }
            markdown::render(&records, &opts)
        }
        Format::Junit => junit::render(&records).map_err(ReportError::Junit)?,
        Format::Json => json_lines(&records)?,
        Format::Text => text(&records),
    })
}

fn json_lines(records: &[ResultRecord]) -> Result<String, ReportError> {
    let mut out = String::new();
    for r in records {
        out.push_str(&serde_json::to_string(r).map_err(ReportError::Json)?);
        out.push('\n');
    }
    Ok(out)
}

fn text(records: &[ResultRecord]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&table::progress_line(r));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&table::verdict_table(records));
    out.push_str(&table::error_summary(records));
    out
}

/// Writes to `out` (creating its directory) or to stdout; returns the file written, if any.
fn write(root: &Path, out: Option<&Path>, text: &str) -> Result<Option<PathBuf>, ReportError> {
    match out {
        Some(p) => {
            let p = resolve(root, p);
            // Atomic, so a CI step reading the report never sees half of one.
            crate::atomic::write_atomic(&p, text.as_bytes()).map_err(|source| {
                ReportError::Write {
                    path: p.clone(),
                    source,
                }
            })?;
            Ok(Some(p))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|_| stdout.flush())
            {
                Ok(()) => Ok(None),
                // `eyetest report | head` is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(None),
                Err(e) => Err(ReportError::Stdout(e)),
            }
        }
    }
}
