//! `eyetest sim`: the simulated engine as a standalone OpenAI-compatible server.

use std::process::ExitCode;

use crate::runtime::runtime;

#[derive(clap::Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one). 8090 by default, apart from 8000 (vLLM,
    /// SGLang) and 8011 (the interop script's server), so the sim never answers for them.
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// terse, verbose, wrong or slow; or a fault: failing, flaky, unavailable, rate-limited,
    /// rate-limited-bare, hang, stall, reset, cut-stream, error-event, bad-json,
    /// empty-choices, no-usage, wrong-content-type, huge-body.
    #[arg(long, default_value = "terse")]
    behaviour: String,
    /// A fault behaviour hits only the first N requests (0 = all), then the engine answers.
    #[arg(long, default_value_t = 0)]
    fail_first: u64,
    /// Share of requests (0..1, seeded per request) that get one of --faults.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Comma-separated faults for --fault-rate [default: failing,unavailable,reset,cut-stream].
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
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
    /// Seed for jitter, flaky failures and the fault rate.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Parse each distinct body and decode each distinct image once and reuse them (default:
    /// every request is parsed and decoded, as a real server does).
    #[arg(long)]
    memoize: bool,
}

pub fn run(a: SimArgs) -> ExitCode {
    use std::time::Duration;
    let behaviour = match a.behaviour.parse() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: --behaviour: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut faults = Vec::new();
    for f in &a.faults {
        match f.parse() {
            Ok(b) => faults.push(b),
            Err(e) => {
                eprintln!("error: --faults: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1000.0);
    let config = crate::sim::SimConfig {
        behaviour,
        latency: crate::sim::Latency {
            ttft: ms(a.ttft_ms),
            per_token: ms(a.tpot_ms),
            prefill_per_tile: ms(a.prefill_per_tile_ms),
            jitter: a.jitter,
        },
        max_concurrency: a.max_batch,
        seed: a.seed,
        fail_first: a.fail_first,
        fault_rate: a.fault_rate,
        faults,
        memoize: a.memoize,
    };
    if let Err(e) = config.check() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let addr = std::net::SocketAddr::new(a.host, a.port);
    match runtime().block_on(crate::sim::serve_forever(addr, config, |banner| {
        println!("{banner}")
    })) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: simulated engine on {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
