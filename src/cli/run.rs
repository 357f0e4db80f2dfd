//! `eyetest run`: the main job. Every case against the selected targets, concurrently,
//! each judged as `cargo test` judges it (rubric and snapshot, [`crate::verdict::judge`]),
//! results written as they arrive to a file of this run's own, a verdict table and every
//! distinct error in full at the end.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::results::{ResultRecord, ResultsWriter, Status};
use crate::runner::{run_all, Session};
use crate::runtime::runtime;
use crate::targets::{Decision, Partition, Selection, Use};
use crate::warning::Warnings;

/// What `eyetest run` was asked for on the command line.
pub struct RunOptions {
    pub target: Option<String>,
    pub filter: Option<String>,
    pub out: Option<PathBuf>,
    pub record: bool,
    pub partition: Option<Partition>,
}

pub fn run(root: &Path, opts: RunOptions) -> ExitCode {
    let RunOptions {
        target,
        filter,
        out,
        record,
        partition,
    } = opts;
    // Snapshot mismatches are reported by insta's diff and the verdict, not by a panic.
    crate::harness::quiet_snapshot_panics();
    let Some(suite) = super::load(root) else {
        return ExitCode::FAILURE;
    };
    let suite = Arc::new(suite);
    let selection = match Selection::choose(&suite.config, target.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run_id = crate::results::new_run_id();
    // Without --out the run gets a file of its own and becomes the latest run.
    let own_file = out.is_none();
    let out = match out {
        Some(out) if out.is_relative() => root.join(out),
        Some(out) => out,
        None => crate::results::run_file(root, &run_id),
    };
    let writer = match ResultsWriter::append(&out) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: cannot open results file {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    };
    let Some(pairs) = select_pairs(&suite, filter.as_deref(), &selection) else {
        return ExitCode::FAILURE;
    };
    let pairs = match partition {
        None => pairs,
        Some(p) => {
            let total = pairs.len();
            let mine: Vec<_> = pairs
                .into_iter()
                .enumerate()
                .filter(|(i, (case, t))| p.keeps(*i, &case.test_name(&t.name)))
                .map(|(_, pair)| pair)
                .collect();
            // An empty shard would pass without asking any model: a gate must not.
            if mine.is_empty() {
                eprintln!(
                    "error: partition {p} holds none of the {total} test(s) selected: use fewer shards than tests"
                );
                return ExitCode::FAILURE;
            }
            println!("partition {p}: {} of {total} test(s)", mine.len());
            mine
        }
    };
    let sims: Vec<&str> = suite
        .config
        .targets
        .values()
        .filter(|t| t.is_simulated() && pairs.iter().any(|(_, p)| p.name == t.name))
        .map(|t| t.name.as_str())
        .collect();
    if !sims.is_empty() {
        println!(
            "note: target(s) {} use the SIMULATED engine, a test double that answers from the fixtures' ground truth, not a model",
            sims.join(", ")
        );
    }
    let session = if record {
        Session::recording(suite.clone(), Warnings::new(|w| eprintln!("{w}")))
    } else {
        Session::new(suite.clone(), Warnings::new(|w| eprintln!("{w}")))
    };
    let stopped = {
        let _in_runtime = runtime().enter();
        match crate::halt::on_signals(session.halt().clone(), crate::halt::grace(), |n| {
            eprintln!("{n}")
        }) {
            Ok(rx) => rx,
            Err(e) => {
                eprintln!("error: cannot listen for SIGINT/SIGTERM: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    if own_file {
        if let Err(e) = crate::results::set_latest(root, &run_id) {
            eprintln!(
                "error: cannot write {}: {e}",
                root.join(crate::results::LATEST_FILE).display()
            );
            return ExitCode::FAILURE;
        }
    }
    let total = pairs.len();
    // Only now, with the signal handlers in place, is it safe to be interrupted: tests wait
    // for this line before they send a signal.
    println!(
        "running {total} case x target pair(s) as run {run_id}; results -> {}",
        out.display()
    );
    let mut records: Vec<ResultRecord> = Vec::new();
    let start = std::time::Instant::now();
    let bar = progress_bar(pairs.len() as u64);
    let unfinished = runtime().block_on(run_all(
        session,
        pairs,
        selection,
        |case, target, outcome, timing| {
            // insta prints a changed snapshot's diff: keep it clear of the bar.
            let verdict =
                bar.suspend(|| crate::verdict::judge(&suite, case, target, outcome, timing));
            let record = ResultRecord::new(&run_id, case, target, &verdict);
            if let Err(e) = writer.write(&record) {
                eprintln!("error: cannot write result: {e}");
            }
            let line = crate::report::table::progress_line(&record);
            if bar.is_hidden() {
                println!("{line}");
            } else {
                bar.println(line);
            }
            bar.inc(1);
            records.push(record);
        },
    ));
    bar.finish_and_clear();
    println!();
    print!("{}", crate::report::table::verdict_table(&records));
    print!("{}", crate::report::table::error_summary(&records));
    print!("{}", crate::report::table::snapshot_summary(&records));
    let count = |s: Status| records.iter().filter(|r| r.status == s).count();
    let (passed, failed, errors, ignored) = (
        count(Status::Passed),
        count(Status::Failed),
        count(Status::Error),
        count(Status::Ignored),
    );
    println!(
        "\n{passed} passed, {failed} failed, {errors} errors, {ignored} ignored in {:.2} s; results in {}",
        start.elapsed().as_secs_f64(),
        out.display()
    );
    if let Some(stop) = *stopped.borrow() {
        println!(
            "stopped by {}: {} of {total} result(s) finished and written; {} not started, {} in flight dropped",
            stop.name(),
            records.len(),
            unfinished.not_started,
            unfinished.aborted
        );
        return ExitCode::from(stop.exit_code());
    }
    if failed + errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A bar on stderr for interactive runs; hidden when stderr is not a terminal (CI logs,
/// pipes), where the per-result lines alone are the better record.
fn progress_bar(len: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} cases {elapsed} (eta {eta})")
            .expect("valid template"),
    );
    bar
}

/// The case x target pairs this run asks: those the filter matches on targets that run or
/// were asked for (one that cannot run then fails, like in `cargo test`). Targets left out
/// because they are not configured are named with the reason; `None` after saying why
/// nothing would run.
fn select_pairs(
    suite: &crate::spec::Suite,
    filter: Option<&str>,
    selection: &Selection,
) -> Option<Vec<(Arc<crate::spec::Case>, Arc<crate::targets::Target>)>> {
    let mut pairs = Vec::new();
    let mut matched = 0;
    let mut left_out: Vec<(String, String)> = Vec::new();
    for case in &suite.cases {
        for t in &case.targets {
            if filter.is_some_and(|f| !case.test_name(t).contains(f)) {
                continue;
            }
            let Some(target) = suite.target(t) else {
                continue;
            };
            matched += 1;
            match selection.decide(target, Use::Cases) {
                Decision::Run | Decision::Fail(_) => pairs.push((case.clone(), target.clone())),
                Decision::NotSelected(r) | Decision::Ignore(r) => {
                    if !left_out.iter().any(|(n, _)| n == t) {
                        left_out.push((t.clone(), r));
                    }
                }
            }
        }
    }
    if matched == 0 {
        let example = suite
            .cases
            .first()
            .and_then(|c| c.targets.first().map(|t| c.test_name(t)));
        match (filter, example) {
            (Some(f), Some(e)) => eprintln!(
                "error: no test name contains `{f}`; names look like `{e}` (`eyetest list` shows them all)"
            ),
            (_, None) => eprintln!(
                "error: the project has no cases: add a [[case]] to a spec file under {}",
                suite.config.settings.specs.display()
            ),
            (None, Some(_)) => eprintln!("error: no case names a declared target"),
        }
        return None;
    }
    if pairs.is_empty() {
        let reasons: Vec<String> = left_out
            .iter()
            .map(|(n, r)| format!("  {n}: {r}"))
            .collect();
        let matching = match filter {
            Some(f) => format!(" matching `{f}`"),
            None => String::new(),
        };
        eprintln!(
            "error: none of the {matched} case x target pair(s){matching} can run ({selection}):\n{}",
            reasons.join("\n")
        );
        return None;
    }
    // Said once per target, whole, before the per-result lines repeat it.
    let mut failing: Vec<&str> = Vec::new();
    for (_, target) in &pairs {
        if let Decision::Fail(reason) = selection.decide(target, Use::Cases) {
            if !failing.contains(&target.name.as_str()) {
                eprintln!("error: {reason}");
                failing.push(&target.name);
            }
        }
    }
    if !selection.is_explicit() {
        for (name, reason) in &left_out {
            println!("note: not running target `{name}`: {reason}");
        }
    }
    Some(pairs)
}
