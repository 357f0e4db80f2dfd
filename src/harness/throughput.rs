//! Throughput specs as cargo tests, in a test target of their own:
//!
//! ```toml
//! [[test]]
//! name = "throughput"
//! harness = false
//! ```
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     eyetest::harness::throughput::main(env!("CARGO_MANIFEST_DIR"))
//! }
//! ```
//!
//! A separate target because a throughput trial must own the machine: it runs with one test
//! thread, whatever `--test-threads` says, and cargo runs test binaries one after another, so
//! no qualitative trial shares the CPU with it. Configured through the environment, like the
//! qualitative harness: `EYETEST_TARGETS` picks targets, `EYETEST_ACCEPT_BASELINE=1` records
//! baselines, `EYETEST_THROUGHPUT_OUT` moves the reports.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Completion, Trial};

use crate::runtime::runtime;
use crate::spec::Suite;
use crate::targets::{Decision, Selection, Use};
use crate::throughput::run::{run, RunOptions};

/// The test kind shown in `cargo test` output: `[throughput] throughput/study::caption-560@sim`.
pub const KIND: &str = "throughput";

/// Runs the throughput specs of the project at `manifest_dir` as tests.
pub fn main(manifest_dir: &str) -> ExitCode {
    run_tests(Path::new(manifest_dir), Arguments::from_args())
}

/// Runs the throughput specs of the project at `root` with libtest-style `args`.
pub fn run_tests(root: &Path, mut args: Arguments) -> ExitCode {
    let (suite, selection) = match crate::project::load_project(root) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    // Two trials measuring at once would each measure the other.
    args.test_threads = Some(1);
    let mut opts = RunOptions::for_project(&suite.root, &suite.config.settings.golden);
    opts.warnings = crate::project::stderr_warnings();
    libtest_mimic::run(&args, trials(&suite, &selection, &opts)).exit_code()
}

/// One trial per throughput spec x target; building them touches neither the network nor
/// any image. Specs with `test = false` are left to `eyetest bench`.
pub fn trials(suite: &Arc<Suite>, selection: &Selection, opts: &RunOptions) -> Vec<Trial> {
    let mut out = Vec::new();
    for spec in suite.throughputs.iter().filter(|s| s.test) {
        for tname in &spec.targets {
            let Some(target) = suite.target(tname).cloned() else {
                continue;
            };
            let (spec, selection, opts) = (spec.clone(), selection.clone(), opts.clone());
            let trial = Trial::ignorable_test(spec.test_name(tname), move || {
                // The same rule as the case harness: asked for and cannot run is a failure.
                match selection.decide(&target, Use::Load) {
                    Decision::Run => {}
                    Decision::NotSelected(r) | Decision::Ignore(r) => {
                        return Ok(Completion::ignored_with(r))
                    }
                    Decision::Fail(r) => {
                        return Err(format!("{}: {r}", spec.test_name(&target.name)).into())
                    }
                }
                let report = runtime()
                    .block_on(run(&spec, &target, &opts))
                    .map_err(|e| format!("{}: {e}", spec.test_name(&target.name)))?;
                let text = report.render();
                if report.passed() {
                    // libtest-mimic captures nothing: this is how the gate's reasoning and
                    // the table reach the log of a passing run.
                    println!("{text}");
                    Ok(Completion::Completed)
                } else {
                    Err(text.into())
                }
            })
            .with_kind(KIND);
            out.push(trial);
        }
    }
    out
}
