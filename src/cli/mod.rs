//! The `eyetest` command line: one module per subcommand, each a thin shell over the library.

mod bench;
mod fetch;
mod fixtures;
mod init;
mod regrade;
mod report;
mod run;
mod sim;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::spec::Suite;

#[derive(Parser)]
#[command(
    name = "eyetest",
    version,
    about = "An eye exam for vision-language models"
)]
pub struct Cli {
    /// Project root (holds eyetest.toml, specs/, fixtures/, golden/).
    #[arg(long, global = true, default_value = ".")]
    root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run every spec case against the selected targets and print a verdict table.
    Run {
        /// Targets to run (comma-separated, or `all`); a target named here that cannot run
        /// fails. Default: $EYETEST_TARGETS, else every target configured here.
        #[arg(long, short)]
        target: Option<String>,
        /// Only cases whose test name contains this text (like `cargo test FILTER`).
        filter: Option<String>,
        /// JSON-lines file to append this run's results to as they arrive (default: a file of
        /// its own, `target/eyetest/runs/<run id>.jsonl`, which becomes the latest run).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Store every live answer under golden/recordings, for `replay` targets.
        #[arg(long)]
        record: bool,
        /// Run one shard of the tests, as `cargo nextest run --partition` does: `count:K/N`
        /// (dealt in turn) or `hash:K/N` (by test name). Merge the shards' results files with
        /// `eyetest report A.jsonl B.jsonl ...`.
        #[arg(long, value_name = "count:K/N|hash:K/N")]
        partition: Option<crate::targets::Partition>,
    },
    /// List the tests (case x target) the specs define, without running anything.
    List {
        /// Only tests whose name contains this text (the filter `run` takes).
        filter: Option<String>,
    },
    /// Run the specs as tests, like `cargo test --test specs` but without cargo:
    /// arguments after `--` are libtest's (`--list`, `--exact NAME`, a filter, ...).
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Validate eyetest.toml and every spec; report every problem at once.
    Check,
    /// Run throughput sweeps (`[[throughput]]` specs): per-level table, gate against the
    /// baseline for this hardware, CSV/JSON/chart under target/eyetest/throughput.
    Bench(bench::BenchArgs),
    /// Serve the simulated engine (a test double for a model) on an OpenAI-compatible endpoint.
    Sim(sim::SimArgs),
    /// Regenerate the generated fixture images under fixtures/ (or check them with --check).
    Fixtures {
        /// Compare the committed fixtures with freshly generated ones instead of writing.
        #[arg(long)]
        check: bool,
    },
    /// Download the photos the specs name (`photo = "MANIFEST/NAME"`) into .eyetest/photos,
    /// verified against their manifest; skips what is already there and verified.
    Fetch(fetch::FetchArgs),
    /// Render results files as a side-by-side markdown report, JUnit XML or JSON lines,
    /// or compare two runs (--compare). Exits 0 whatever the verdicts.
    Report(report::ReportArgs),
    /// Scaffold a new spec project (Cargo.toml, harness, example spec, fixture, snapshots)
    /// that passes `cargo test` on its first run.
    Init(init::InitArgs),
    /// Re-apply the current rubrics to stored answers (results files, recordings) without
    /// asking any model, and list the verdicts that flip.
    Regrade(regrade::RegradeArgs),
    /// Compare rubric verdicts with human grades (grades/*.toml): agreement, a confusion
    /// matrix and every disagreement with its answer, rubric and note.
    Agreement(regrade::AgreementArgs),
}

/// Parses the process arguments and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every EYETEST_* setting is checked up front: a typo must not read as "off".
    let bad = crate::env::check();
    for e in &bad {
        eprintln!("error: {e}");
    }
    if !bad.is_empty() {
        return ExitCode::FAILURE;
    }
    match cli.command {
        Command::Run {
            target,
            filter,
            out,
            record,
            partition,
        } => run::run(
            &cli.root,
            run::RunOptions {
                target,
                filter,
                out,
                record,
                partition,
            },
        ),
        Command::List { filter } => list(&cli.root, filter.as_deref()),
        Command::Test { args } => crate::harness::run(
            &cli.root,
            libtest_mimic::Arguments::from_iter(
                std::iter::once("eyetest test".to_string()).chain(args),
            ),
        ),
        Command::Check => match load(&cli.root) {
            Some(s) => {
                println!(
                    "ok: {} case(s), {} throughput sweep(s), {} target(s)",
                    s.cases.len(),
                    s.throughputs.len(),
                    s.config.targets.len()
                );
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        Command::Bench(args) => bench::run_bench(&cli.root, args),
        Command::Sim(args) => sim::run(args),
        Command::Fixtures { check } => fixtures::run(&cli.root, check),
        Command::Fetch(args) => fetch::run(&cli.root, args),
        Command::Report(args) => report::run(&cli.root, args),
        Command::Init(args) => init::run(&cli.root, args),
        Command::Regrade(args) => regrade::run_regrade(&cli.root, args),
        Command::Agreement(args) => regrade::run_agreement(&cli.root, args),
    }
}

/// Loads and validates the project, printing every problem on failure.
pub(crate) fn load(root: &Path) -> Option<Suite> {
    match Suite::load(root) {
        Ok(s) => Some(s),
        Err(e) => {
            eprint!("{}", e.render(std::io::stderr().is_terminal()));
            None
        }
    }
}

fn list(root: &Path, filter: Option<&str>) -> ExitCode {
    let Some(suite) = load(root) else {
        return ExitCode::FAILURE;
    };
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f));
    let mut shown = 0;
    for case in &suite.cases {
        for t in &case.targets {
            let name = case.test_name(t);
            if wanted(&name) {
                println!("{name}");
                shown += 1;
            }
        }
    }
    for spec in &suite.throughputs {
        for t in &spec.targets {
            let name = spec.test_name(t);
            if wanted(&name) {
                println!("{name} [throughput]");
                shown += 1;
            }
        }
    }
    match filter {
        // Like `run`: a filter that matches nothing is most likely a typo.
        Some(f) if shown == 0 => {
            eprintln!("error: no test name contains `{f}`");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
