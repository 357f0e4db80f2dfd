//! The `cargo test` face of eyetest: every case x target becomes a libtest-mimic trial.
//!
//! A project's whole test file is:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     eyetest::harness::main(env!("CARGO_MANIFEST_DIR"))
//! }
//! ```
//!
//! libtest-mimic rejects unknown flags, so the harness is configured through the environment
//! ([`crate::env`]): `EYETEST_TARGETS` picks targets (default: every target configured here,
//! see [`crate::targets::Selection`]), `EYETEST_RESULTS` names a JSON-lines file to append
//! results to (tagged with the run id `EYETEST_RUN_ID`, else nextest's
//! `NEXTEST_RUN_ID`, else a new one per process), `EYETEST_RECORD=1` records answers for replay.
//!
//! A target that was selected and cannot run fails its trials; one that was not selected is
//! ignored with the reason in the test output (decided when the trial runs, so that plain
//! `cargo test` shows why).
//!
//! A trial's verdict is [`crate::verdict::judge`]'s, the same as `eyetest run`'s.
//!
//! Throughput specs have a harness of their own, [`throughput`], in a second test target.

pub mod throughput;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::project::{load_project, stderr_warnings};
use crate::results::{ResultRecord, ResultsWriter};
use crate::runner::Session;
use crate::runtime::runtime;
use crate::spec::Suite;
use crate::targets::{Decision, Selection, Use};
use crate::verdict::{CaseVerdict, Outcome};

/// Names the run the results of this process belong to, so that processes of one run (nextest
/// starts one per test) write one run; unset, nextest's `NEXTEST_RUN_ID` is used, else a new id.
pub const RUN_ID_ENV: &str = "EYETEST_RUN_ID";

/// Environment variable naming a JSON-lines file that trials append their results to.
pub const RESULTS_ENV: &str = crate::env::RESULTS;

/// Set to `1` to store every live answer under golden/recordings (like `eyetest run --record`).
pub const RECORD_ENV: &str = crate::env::RECORD;

/// Runs the specs of the project at `manifest_dir` as tests; returns the process exit code.
pub fn main(manifest_dir: &str) -> ExitCode {
    run(Path::new(manifest_dir), Arguments::from_args())
}

/// Runs the specs of the project at `root` as tests with libtest-style `args`
/// (what `eyetest test -- ARGS` does without cargo).
pub fn run(root: &Path, mut args: Arguments) -> ExitCode {
    // insta resolves a relative snapshot path against the *source file* that asserts, so
    // everything below works from an absolute root.
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    quiet_snapshot_panics();
    // insta finds the workspace through the macro's own crate (eyetest's source) unless told
    // otherwise: snapshots and pending files must belong to the project under test.
    if std::env::var_os("INSTA_WORKSPACE_ROOT").is_none() {
        std::env::set_var("INSTA_WORKSPACE_ROOT", &root);
    }
    let (suite, selection) = match load_project(&root) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let writer = match crate::env::results_file() {
        Some(p) if !args.list => match ResultsWriter::append(&p) {
            Ok(w) => Some(Arc::new(w)),
            Err(e) => {
                eprintln!("error: cannot open {RESULTS_ENV}={}: {e}", p.display());
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let record = match crate::env::record() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let writer = writer.map(|w| (w, run_id()));
    let trials = trials_with(&suite, &selection, writer, record);
    if args.test_threads.is_none() {
        // Each trial blocks its thread while its request is in flight; enough threads let
        // every selected target reach its configured concurrency.
        let wanted: usize = suite
            .config
            .targets
            .values()
            .filter(|t| selection.decide(t, Use::Cases) == Decision::Run)
            .map(|t| t.common.concurrency)
            .sum();
        args.test_threads = Some(wanted.clamp(1, 64));
    }
    libtest_mimic::run(&args, trials).exit_code()
}

fn run_id() -> String {
    [RUN_ID_ENV, "NEXTEST_RUN_ID"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
        .unwrap_or_else(crate::results::new_run_id)
}

/// insta reports a changed snapshot with a diff and then panics; the panic's own message
/// and backtrace would only bury that diff, so they are not printed (other panics are).
pub(crate) fn quiet_snapshot_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if !payload.starts_with("snapshot assertion for") {
            previous(info);
        }
    }));
}

/// One trial per case x target; building them touches neither the network nor any image.
pub fn trials(
    suite: &Arc<Suite>,
    selection: &Selection,
    writer: Option<(Arc<ResultsWriter>, String)>,
) -> Vec<Trial> {
    trials_with(
        suite,
        selection,
        writer,
        crate::env::record().unwrap_or(false),
    )
}

fn trials_with(
    suite: &Arc<Suite>,
    selection: &Selection,
    writer: Option<(Arc<ResultsWriter>, String)>,
    record: bool,
) -> Vec<Trial> {
    let session = if record {
        Session::recording(suite.clone(), stderr_warnings())
    } else {
        Session::new(suite.clone(), stderr_warnings())
    };
    let mut out = Vec::new();
    for case in &suite.cases {
        for tname in &case.targets {
            let Some(target) = suite.target(tname).cloned() else {
                continue;
            };
            let (case, session, selection, writer) = (
                case.clone(),
                session.clone(),
                selection.clone(),
                writer.clone(),
            );
            let name = case.test_name(tname);
            out.push(Trial::ignorable_test(name, move || {
                // Not asked for: no request and no result, only the reason.
                if let Decision::NotSelected(reason) = selection.decide(&target, Use::Cases) {
                    return Ok(Completion::ignored_with(reason));
                }
                let (outcome, timing) =
                    runtime().block_on(session.run_timed(&case, &target, &selection));
                let verdict =
                    crate::verdict::judge(&session.suite, &case, &target, outcome, timing);
                if let Some((w, run)) = &writer {
                    let record = ResultRecord::new(run, &case, &target, &verdict);
                    if let Err(e) = w.write(&record) {
                        eprintln!(
                            "eyetest: cannot write result to {}: {e}",
                            w.path().display()
                        );
                    }
                }
                completion(&case, &target.name, &verdict)
            }));
        }
    }
    out
}

/// The trial's result: the verdict's problems, in full, fail it.
fn completion(
    case: &crate::spec::Case,
    target: &str,
    verdict: &CaseVerdict,
) -> Result<Completion, Failed> {
    if let Outcome::Ignored(reason) = &verdict.outcome {
        return Ok(Completion::ignored_with(reason.clone()));
    }
    if let Outcome::Answered {
        repeats: Some(r), ..
    } = &verdict.outcome
    {
        if r.unstable {
            // Reported, not failed: the pass rate decides; flakiness is worth a look.
            println!(
                "warning: {} is unstable: {} different answers in {} repeats at temperature 0",
                case.test_name(target),
                r.distinct,
                r.total
            );
        }
    }
    let problems = verdict.problems(target);
    if problems.is_empty() {
        Ok(Completion::Completed)
    } else {
        Err(problems.join("\n\n").into())
    }
}
