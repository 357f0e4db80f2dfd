//! Timing fidelity: how close the load generator's measurements come to a known truth.
//!
//! The simulated engine runs as a separate process (`eyetest sim --ttft-ms 50 --tpot-ms 10`)
//! and answers every request with exactly 100 tokens (`ignore_eos`): the first 50 ms after
//! the request is admitted, then one every 10 ms. The load generator measures mean TTFT and
//! p99 ITL at concurrency 1, 10, 100, 500 and 1000; the error of mean TTFT is measured minus
//! 50 ms. Each level first runs one warm-up request per slot (what a spec does by default),
//! so the pool holds a connection per slot; the last rows send one wave at c=100, 500 and
//! 1000 from a fresh client with no warm-up, to show what the connect burst alone costs.
//!
//! The image is 64x64 noise, so that what is measured is the client's timing rather than
//! the upload of 1.3 MB bodies (which is real TTFT, but not an error of measurement).
//!
//! The engine publishes its own side of the same timings (`/metrics`, under vLLM's
//! `time_to_first_token_seconds` and `inter_token_latency_seconds`, sum and count), scraped
//! before and after each measured level. So the table splits the error of mean TTFT into
//! the engine being late (its mean TTFT minus 50 ms: CPU contention on the machine) and the
//! client's measurement error proper (the client's mean minus the engine's: the network,
//! the parsing and the client's own scheduling), and the same for mean ITL.
//!
//! The whole sequence runs three times (a new client each time) and every run is printed;
//! the summary per level is the median with min-max. The truth here is what the engine
//! was asked to do: its own lateness under CPU load (it paces each token from the previous
//! token's actual send time) counts against the figures, as it would with a real server.
//!
//! `cargo bench --bench timing_fidelity` (`-- 100,1000` runs only the levels listed,
//! `-- --runs 5` sets the number of runs).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;

use eyetest::backend::openai::OpenAiClient;
use eyetest::backend::ImageData;
use eyetest::runtime::runtime;
use eyetest::throughput::load::{run_level, Progress, RequestTemplate, Workload};
use eyetest::throughput::run::load_client;
use eyetest::throughput::telemetry::prometheus;
use eyetest::throughput::LevelMetrics;

const TTFT_MS: f64 = 50.0;
const ITL_MS: f64 = 10.0;
const TOKENS: u32 = 100;
/// (concurrency, measured requests): at least two full waves per level, and 20 requests at
/// c=1, so every level takes seconds, not minutes.
const LEVELS: [(usize, usize); 5] = [(1, 20), (10, 100), (100, 500), (500, 1000), (1000, 2000)];

/// The engine's cumulative timing sums (seconds) and counts from its `/metrics`.
#[derive(Clone, Copy, Default)]
struct EngineTimes {
    ttft_sum: f64,
    ttft_n: f64,
    itl_sum: f64,
    itl_n: f64,
}

impl EngineTimes {
    async fn scrape(base_url: &str) -> EngineTimes {
        let root = base_url.trim_end_matches('/').trim_end_matches("/v1");
        let text = reqwest::get(format!("{root}/metrics"))
            .await
            .and_then(|r| r.error_for_status())
            .expect("the engine serves /metrics")
            .text()
            .await
            .expect("a /metrics page");
        let page = prometheus::parse(&text);
        let v = |name: &str| page.named(name).next().map_or(0.0, |s| s.value);
        EngineTimes {
            ttft_sum: v("vllm:time_to_first_token_seconds_sum"),
            ttft_n: v("vllm:time_to_first_token_seconds_count"),
            itl_sum: v("vllm:inter_token_latency_seconds_sum"),
            itl_n: v("vllm:inter_token_latency_seconds_count"),
        }
    }

    /// Mean TTFT and mean ITL in ms between two scrapes.
    fn means_since(&self, before: &EngineTimes) -> (f64, f64) {
        let mean = |sum: f64, n: f64| if n > 0.0 { sum / n * 1000.0 } else { f64::NAN };
        (
            mean(self.ttft_sum - before.ttft_sum, self.ttft_n - before.ttft_n),
            mean(self.itl_sum - before.itl_sum, self.itl_n - before.itl_n),
        )
    }
}

/// One measured level: the client's metrics and the engine's mean TTFT and ITL over the
/// same requests (scraped just before and just after).
async fn measure(
    client: &OpenAiClient,
    workload: &Arc<Workload>,
    c: usize,
    n: usize,
    base_url: &str,
) -> (LevelMetrics, (f64, f64)) {
    let before = EngineTimes::scrape(base_url).await;
    let m = LevelMetrics::from_run(&run_level(client, workload, c, n, &Progress::none()).await);
    let engine = EngineTimes::scrape(base_url).await.means_since(&before);
    (m, engine)
}

/// One level's figures from one run.
#[derive(Clone, Copy)]
struct Row {
    ok: usize,
    failed: usize,
    /// Client mean TTFT minus the nominal 50 ms.
    ttft_err: f64,
    /// Engine mean TTFT minus the nominal 50 ms: how late the engine was.
    engine_late: f64,
    /// Client mean TTFT minus the engine's: the measurement error proper.
    ttft_meas: f64,
    ttft_p99: f64,
    itl_p99: f64,
    /// Client mean ITL minus the engine's.
    itl_meas: f64,
}

impl Row {
    fn of(m: &LevelMetrics, engine: (f64, f64)) -> Row {
        let ttft = m.ttft_ms.expect("streamed answers have TTFT");
        let itl = m.itl_ms.expect("streamed answers have ITL");
        Row {
            ok: m.completed,
            failed: m.failed,
            ttft_err: ttft.mean - TTFT_MS,
            engine_late: engine.0 - TTFT_MS,
            ttft_meas: ttft.mean - engine.0,
            ttft_p99: ttft.p99,
            itl_p99: itl.p99,
            itl_meas: itl.mean - engine.1,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3);
    let only: Vec<usize> = args
        .iter()
        .enumerate()
        // Level lists only: not flags, nor the number after `--runs`.
        .filter(|&(i, a)| {
            let after_runs = i > 0 && args[i - 1] == "--runs";
            !a.starts_with("--") && !after_runs
        })
        .flat_map(|(_, a)| {
            a.split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    let wanted = |c: usize| only.is_empty() || only.contains(&c);
    let sim = common::SimProcess::start(&["--ttft-ms", "50", "--tpot-ms", "10"]);
    let target = common::target(&sim.base_url);
    let png = eyetest::fixture::random_noise_png(64, 64, 7).expect("noise image");
    let image = Arc::new(ImageData::from_bytes(png).expect("png"));
    let mut extra = serde_json::Map::new();
    extra.insert("ignore_eos".into(), true.into());
    let template = RequestTemplate {
        model: "eyetest-sim".into(),
        prompt: "If I had to write a description for this image, it would be: ".into(),
        max_tokens: TOKENS,
        temperature: 0.0,
        stream: true,
        extra,
    };
    let workload =
        Arc::new(Workload::from_images(&[image], &template, "random 64x64").expect("workload"));

    println!(
        "timing_fidelity: simulated engine in a separate process (ttft {TTFT_MS} ms, a token every {ITL_MS} ms, {TOKENS} tokens), {runs} runs; {}; load average {} at start",
        common::machine(),
        common::loadavg()
    );
    println!(
        "{:>5} {:>6} {:>9} {:>9} {:>10} {:>11} {:>10} {:>9} {:>9} {:>10}",
        "run",
        "c",
        "requests",
        "ok/fail",
        "TTFT err",
        "engine late",
        "TTFT meas",
        "TTFT p99",
        "ITL p99",
        "ITL meas"
    );
    // (label, requests) -> one Row per run.
    let mut table: Vec<(String, usize, Vec<Row>)> = Vec::new();
    let mut record = |run: usize, label: String, n: usize, m: &LevelMetrics, engine: (f64, f64)| {
        let r = Row::of(m, engine);
        println!(
            "{run:>5} {label:>6} {n:>9} {:>9} {:>+8.1}ms {:>+9.1}ms {:>+8.1}ms {:>7.1}ms {:>7.1}ms {:>+8.2}ms",
            format!("{}/{}", r.ok, r.failed),
            r.ttft_err,
            r.engine_late,
            r.ttft_meas,
            r.ttft_p99,
            r.itl_p99,
            r.itl_meas,
        );
        match table.iter_mut().find(|(l, _, _)| *l == label) {
            Some((_, _, rows)) => rows.push(r),
            None => table.push((label, n, vec![r])),
        }
    };
    for run in 1..=runs {
        runtime().block_on(async {
            let (client, _) = load_client(&target, sim.base_url.clone()).unwrap();
            for (c, n) in LEVELS.into_iter().filter(|&(c, _)| wanted(c)) {
                run_level(&client, &workload, c, c, &Progress::none()).await;
                let (m, engine) = measure(&client, &workload, c, n, &sim.base_url).await;
                record(run, c.to_string(), n, &m, engine);
            }
            for (c, _) in LEVELS.into_iter().filter(|&(c, _)| c >= 100 && wanted(c)) {
                // A fresh client has an empty pool: every request of this one wave connects
                // first, all at once, which is the worst case a sweep without warm-up meets.
                let (cold, _) = load_client(&target, sim.base_url.clone()).unwrap();
                let (m, engine) = measure(&cold, &workload, c, c, &sim.base_url).await;
                record(run, format!("{c}*"), c, &m, engine);
            }
        });
    }
    println!("* one wave from a fresh client, no warm-up: every request opens its connection");
    println!("\nsummary over {runs} runs: median (min-max)");
    println!(
        "{:>6} {:>9} {:>7} {:>26} {:>26} {:>26} {:>24} {:>24} {:>26}",
        "c",
        "requests",
        "failed",
        "TTFT mean error",
        "of it engine late",
        "of it measurement",
        "TTFT p99",
        "ITL p99",
        "ITL mean measurement"
    );
    let cell = |v: Vec<f64>, sign: bool| {
        let (m, lo, hi) = common::spread(&v);
        if sign {
            format!("{m:+.2} ({lo:+.2} to {hi:+.2}) ms")
        } else {
            format!("{m:.1} ({lo:.1}-{hi:.1}) ms")
        }
    };
    for (label, n, rows) in &table {
        println!(
            "{label:>6} {n:>9} {:>7} {:>26} {:>26} {:>26} {:>24} {:>24} {:>26}",
            rows.iter().map(|r| r.failed).sum::<usize>(),
            cell(rows.iter().map(|r| r.ttft_err).collect(), true),
            cell(rows.iter().map(|r| r.engine_late).collect(), true),
            cell(rows.iter().map(|r| r.ttft_meas).collect(), true),
            cell(rows.iter().map(|r| r.ttft_p99).collect(), false),
            cell(rows.iter().map(|r| r.itl_p99).collect(), false),
            cell(rows.iter().map(|r| r.itl_meas).collect(), true),
        );
    }
    println!("load average {} at end", common::loadavg());
}
