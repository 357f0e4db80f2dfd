//! `eyetest bench`: run throughput sweeps from the command line with a progress bar, print
//! the per-level table and the gate's verdict, write CSV/JSON/chart, and with `--accept`
//! record the baseline (the explicit step `cargo insta accept` is for snapshots).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use crate::runtime::runtime;
use crate::targets::{Decision, Selection, Use};
use crate::throughput::load::{Progress, ProgressEvent};
use crate::throughput::run::{run, RunOptions};
use crate::throughput::spec::ThroughputSpec;
use crate::warning::Warnings;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Which sweeps: a throughput name (`caption-560`), a spec id (`throughput/study`), a
    /// spec file, or `SPEC::NAME`; default: every `[[throughput]]` of every spec.
    pub spec: Option<String>,
    /// Targets to run (comma-separated, or `all`), even ones the spec does not list; a
    /// target named here that cannot run fails. Default: the spec's targets that
    /// $EYETEST_TARGETS selects, else those configured here.
    #[arg(long, short)]
    pub target: Option<String>,
    /// Record this run as the baseline for its fingerprint (then review and commit golden/).
    #[arg(long)]
    pub accept: bool,
    /// Directory for the CSV, JSON reports and charts [default: target/eyetest/throughput,
    /// or $EYETEST_THROUGHPUT_OUT].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run_bench(root: &Path, a: BenchArgs) -> ExitCode {
    let Some(suite) = super::load(root) else {
        return ExitCode::FAILURE;
    };
    let specs: Vec<&Arc<ThroughputSpec>> = suite
        .throughputs
        .iter()
        .filter(|s| a.spec.as_deref().is_none_or(|q| matches(s, q)))
        .collect();
    if specs.is_empty() {
        let known: Vec<String> = suite.throughputs.iter().map(|s| s.id()).collect();
        eprintln!(
            "error: no throughput spec matches {:?}; known: {}",
            a.spec.as_deref().unwrap_or(""),
            if known.is_empty() {
                "none (add a [[throughput]] table to a spec file)".to_string()
            } else {
                known.join(", ")
            }
        );
        return ExitCode::FAILURE;
    }
    let selection = match Selection::choose(&suite.config, a.target.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut opts = RunOptions::for_project(&suite.root, &suite.config.settings.golden);
    opts.accept |= a.accept;
    if let Some(out) = &a.out {
        opts.out_dir = suite.root.join(out);
    }
    // An explicit --target may name a target the spec does not list: benchmarking a spec on
    // a new server should not need an edit.
    let explicit: Vec<String> = match a.target {
        Some(_) => selection
            .named(&suite.config)
            .into_iter()
            .map(String::from)
            .collect(),
        None => Vec::new(),
    };
    let (mut ran, mut failed) = (0, 0);
    let mut left_out: Vec<String> = Vec::new();
    for spec in specs {
        let names = if explicit.is_empty() {
            &spec.targets
        } else {
            &explicit
        };
        for tname in names {
            let Some(target) = suite.target(tname) else {
                continue;
            };
            match selection.decide(target, Use::Load) {
                Decision::Run => {}
                Decision::NotSelected(reason) => {
                    left_out.push(format!("  {}: {reason}", spec.test_name(tname)));
                    continue;
                }
                Decision::Ignore(reason) => {
                    eprintln!("not run: {}: {reason}", spec.test_name(tname));
                    left_out.push(format!("  {}: {reason}", spec.test_name(tname)));
                    continue;
                }
                Decision::Fail(reason) => {
                    eprintln!("error: {}: {reason}", spec.test_name(tname));
                    ran += 1;
                    failed += 1;
                    continue;
                }
            }
            let bar = progress_bar(spec);
            let mut o = opts.clone();
            o.progress = progress(&bar);
            o.warnings = {
                let bar = bar.clone();
                Warnings::new(move |w| bar.suspend(|| eprintln!("{w}")))
            };
            let result = runtime().block_on(run(spec, target, &o));
            bar.finish_and_clear();
            ran += 1;
            match result {
                Ok(report) => {
                    println!("{}", report.render());
                    failed += usize::from(!report.passed());
                }
                Err(e) => {
                    eprintln!("error: {}: {e}", spec.test_name(tname));
                    failed += 1;
                }
            }
        }
    }
    if ran == 0 {
        // Name the targets that would run, so the hint is one the user can follow.
        let runnable: Vec<&str> = suite
            .config
            .targets
            .values()
            .filter(|t| t.unavailable(Use::Load).is_none())
            .map(|t| t.name.as_str())
            .collect();
        let hint = match runnable.first() {
            Some(t) => format!(
                "pick a target with --target (configured here: {}), e.g. --target {t}",
                runnable.join(", ")
            ),
            None => "no declared target can run a sweep here: declare a `backend = \"sim\"` target, or set a target's endpoint variable".to_string(),
        };
        eprintln!(
            "error: nothing ran ({selection}):\n{}\n{hint}",
            left_out.join("\n")
        );
        return ExitCode::FAILURE;
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Whether `query` names `spec`: its name, its spec id, `id::name`, or its file.
fn matches(spec: &ThroughputSpec, query: &str) -> bool {
    let q = query.trim().trim_start_matches("./");
    let file = spec.spec_path.to_string_lossy().replace('\\', "/");
    q == spec.name
        || q == spec.spec_id
        || q == spec.id()
        || q == file
        || q.trim_end_matches(".toml") == file.trim_end_matches(".toml")
}

fn progress_bar(spec: &ThroughputSpec) -> ProgressBar {
    let sweep = spec.arrival.profile == crate::throughput::level::ProfileKind::Sweep;
    let per_repeat: usize = if sweep {
        // The sweep's rates are found at run time; each sends `requests` (its probes once).
        spec.requests.first().copied().unwrap_or(0) * spec.arrival.sweep_points
    } else if spec.arrival.is_rate() {
        // With `duration_s` the count is known only once the schedule has run: the bar
        // then just counts requests sent.
        spec.requests.iter().sum()
    } else {
        spec.concurrency
            .iter()
            .map(|&c| spec.warmup_at(c) + spec.requests_at(c))
            .sum()
    };
    let probes = if sweep {
        2 * spec.requests.first().copied().unwrap_or(0)
    } else {
        0
    };
    let total = (per_repeat * spec.repeats + probes) as u64;
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} requests {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(spec.id());
    bar
}

fn progress(bar: &ProgressBar) -> Progress {
    let bar = bar.clone();
    Progress::new(move |e| match e {
        ProgressEvent::Phase {
            repeat,
            repeats,
            concurrency,
            warmup,
            ..
        } => bar.set_message(format!(
            "repeat {}/{repeats}, c={concurrency}{}",
            repeat + 1,
            if warmup { " (warm-up)" } else { "" }
        )),
        ProgressEvent::Request { .. } => bar.inc(1),
    })
}
