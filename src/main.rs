//! The `eyetest` command: a thin shell over the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use eyetest::results::{ResultRecord, ResultsWriter, Status};
use eyetest::runner::{runtime, run_all, Selection, Session, TARGETS_ENV};
use eyetest::spec::Suite;

#[derive(Parser)]
#[command(name = "eyetest", version, about = "An eye exam for vision-language models")]
struct Cli {
    /// Project root (holds eyetest.toml, specs/, fixtures/, golden/).
    #[arg(long, global = true, default_value = ".")]
    root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every spec case against the selected targets and print a verdict table.
    Run {
        /// Targets to run (comma-separated, or `all`); default: $EYETEST_TARGETS, else the simulated ones.
        #[arg(long, short)]
        target: Option<String>,
        /// Only cases whose test name contains this text (like `cargo test FILTER`).
        filter: Option<String>,
        /// JSON-lines file results are appended to as they arrive.
        #[arg(long, default_value = "target/eyetest/results.jsonl")]
        out: PathBuf,
    },
    /// List the tests (case x target) the specs define, without running anything.
    List,
    /// Run the specs as tests, like `cargo test --test specs` but without cargo:
    /// arguments after `--` are libtest's (`--list`, `--exact NAME`, a filter, ...).
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Validate eyetest.toml and every spec; report every problem at once.
    Check,
    /// Serve the simulated engine (a test double for a model) on an OpenAI-compatible endpoint.
    Sim(SimArgs),
    /// Regenerate the generated fixture images under fixtures/ (or check them with --check).
    Fixtures {
        /// Compare the committed fixtures with freshly generated ones instead of writing.
        #[arg(long)]
        check: bool,
    },
}

#[derive(clap::Args)]
struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8011)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// terse, verbose, wrong, failing, slow or flaky.
    #[arg(long, default_value = "terse")]
    behaviour: String,
    /// Time to first token, ms.
    #[arg(long, default_value_t = 0.0)]
    ttft_ms: f64,
    /// Time per output token, ms.
    #[arg(long, default_value_t = 0.0)]
    tpot_ms: f64,
    /// Extra prefill time per 560x560 image tile, ms.
    #[arg(long, default_value_t = 0.0)]
    prefill_per_tile_ms: f64,
    /// Relative latency jitter (0.05 = +-5%).
    #[arg(long, default_value_t = 0.0)]
    jitter: f64,
    /// Requests served at once (the engine's batch limit); 0 = unlimited.
    #[arg(long, default_value_t = 0)]
    max_batch: usize,
    /// Seed for jitter and flaky failures.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn cmd_sim(a: SimArgs) -> ExitCode {
    use std::time::Duration;
    let behaviour = match a.behaviour.parse() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: --behaviour: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1000.0);
    let config = eyetest::sim::SimConfig {
        behaviour,
        latency: eyetest::sim::Latency {
            ttft: ms(a.ttft_ms),
            per_token: ms(a.tpot_ms),
            prefill_per_tile: ms(a.prefill_per_tile_ms),
            jitter: a.jitter,
        },
        max_concurrency: a.max_batch,
        seed: a.seed,
    };
    let addr = std::net::SocketAddr::new(a.host, a.port);
    match runtime().block_on(eyetest::sim::serve_forever(addr, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: simulated engine on {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_fixtures(root: &std::path::Path, check: bool) -> ExitCode {
    let dir = root.join("fixtures");
    if check {
        match eyetest::fixture::check_all(&dir) {
            Ok(m) if m.is_empty() => {
                println!("ok: every generated fixture under {} matches its catalogue", dir.display());
                ExitCode::SUCCESS
            }
            Ok(m) => {
                for x in &m {
                    eprintln!("mismatch: {x}");
                }
                eprintln!("{} fixture(s) differ; regenerate with `eyetest fixtures`", m.len());
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        match eyetest::fixture::generate_all(&dir) {
            Ok(paths) => {
                println!("wrote {} fixture(s) under {}", paths.len(), dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            target,
            filter,
            out,
        } => cmd_run(&cli.root, target, filter, out),
        Command::List => cmd_list(&cli.root),
        Command::Test { args } => eyetest::harness::run(
            &cli.root,
            libtest_mimic::Arguments::from_iter(std::iter::once("eyetest test".to_string()).chain(args)),
        ),
        Command::Check => match load(&cli.root) {
            Some(s) => {
                println!(
                    "ok: {} case(s), {} target(s)",
                    s.cases.len(),
                    s.config.targets.len()
                );
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        Command::Sim(args) => cmd_sim(args),
        Command::Fixtures { check } => cmd_fixtures(&cli.root, check),
    }
}

fn load(root: &std::path::Path) -> Option<Suite> {
    match Suite::load(root) {
        Ok(s) => Some(s),
        Err(e) => {
            eprint!("{}", e.render(std::io::stderr().is_terminal()));
            None
        }
    }
}

fn cmd_list(root: &std::path::Path) -> ExitCode {
    let Some(suite) = load(root) else {
        return ExitCode::FAILURE;
    };
    for case in &suite.cases {
        for t in &case.targets {
            println!("{}", case.test_name(t));
        }
    }
    ExitCode::SUCCESS
}

fn cmd_run(
    root: &std::path::Path,
    target: Option<String>,
    filter: Option<String>,
    out: PathBuf,
) -> ExitCode {
    let Some(suite) = load(root) else {
        return ExitCode::FAILURE;
    };
    let suite = Arc::new(suite);
    let selection = match &target {
        Some(t) => Selection::parse(&suite, t, "--target"),
        None => Selection::from_env(&suite),
    };
    let selection = match selection {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = if out.is_relative() { root.join(out) } else { out };
    let writer = match ResultsWriter::append(&out) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: cannot open results file {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    };
    let mut pairs = Vec::new();
    for case in &suite.cases {
        for t in &case.targets {
            let name = case.test_name(t);
            if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
                continue;
            }
            if let Some(target) = suite.target(t) {
                if selection.skip_reason(target).is_none() {
                    pairs.push((case.clone(), target.clone()));
                }
            }
        }
    }
    if pairs.is_empty() {
        eprintln!("error: no case x target selected (filter {filter:?}, {TARGETS_ENV} or --target)");
        return ExitCode::FAILURE;
    }
    let sims: Vec<&str> = suite
        .config
        .targets
        .values()
        .filter(|t| {
            t.config.backend == eyetest::target::BackendKind::Sim
                && selection.skip_reason(t).is_none()
        })
        .map(|t| t.name.as_str())
        .collect();
    if !sims.is_empty() {
        println!(
            "note: target(s) {} use the SIMULATED engine, a test double that answers from the fixtures' ground truth, not a model",
            sims.join(", ")
        );
    }
    println!("running {} case x target pair(s); results -> {}", pairs.len(), out.display());
    let session = Session::new(suite.clone());
    let mut records: Vec<ResultRecord> = Vec::new();
    let start = std::time::Instant::now();
    runtime().block_on(run_all(session, pairs, selection, |case, target, outcome, elapsed| {
        let record = ResultRecord::new(case, target, outcome, elapsed);
        if let Err(e) = writer.write(&record) {
            eprintln!("error: cannot write result: {e}");
        }
        println!("{}", eyetest::report::table::progress_line(&record));
        records.push(record);
    }));
    println!();
    print!("{}", eyetest::report::table::verdict_table(&records));
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
    if failed + errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
