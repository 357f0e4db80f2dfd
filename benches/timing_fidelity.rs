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
//! `cargo bench --bench timing_fidelity` (add `-- 1000` to run only the levels listed).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;

use eyetest::backend::ImageData;
use eyetest::runner::runtime;
use eyetest::throughput::load::{run_level, Progress, RequestTemplate, Workload};
use eyetest::throughput::run::load_client;
use eyetest::throughput::LevelMetrics;

const TTFT_MS: f64 = 50.0;
const ITL_MS: f64 = 10.0;
const TOKENS: u32 = 100;
/// (concurrency, measured requests): at least two full waves per level, and 20 requests at
/// c=1, so every level takes seconds, not minutes.
const LEVELS: [(usize, usize); 5] = [(1, 20), (10, 100), (100, 500), (500, 1000), (1000, 2000)];

fn main() {
    let only: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .flat_map(|a| {
            a.split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
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
        "timing_fidelity: simulated engine in a separate process (ttft 50 ms, a token every 10 ms, {TOKENS} tokens); {}",
        common::machine()
    );
    println!(
        "{:>6} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9} {:>10}",
        "c", "requests", "ok/fail", "TTFT mean", "TTFT err", "TTFT p99", "ITL p99", "ITL p99err"
    );
    let row = |label: String, n: usize, m: &LevelMetrics| {
        let ttft = m.ttft_ms.expect("streamed answers have TTFT");
        let itl = m.itl_ms.expect("streamed answers have ITL");
        println!(
            "{label:>6} {n:>9} {:>9} {:>8.1}ms {:>+8.1}ms {:>7.1}ms {:>7.1}ms {:>+8.1}ms",
            format!("{}/{}", m.completed, m.failed),
            ttft.mean,
            ttft.mean - TTFT_MS,
            ttft.p99,
            itl.p99,
            itl.p99 - ITL_MS,
        );
    };
    runtime().block_on(async {
        let (client, _) = load_client(&target, sim.base_url.clone()).unwrap();
        for (c, n) in LEVELS {
            if !only.is_empty() && !only.contains(&c) {
                continue;
            }
            run_level(&client, &workload, c, c, &Progress::none()).await;
            let run = run_level(&client, &workload, c, n, &Progress::none()).await;
            row(c.to_string(), n, &LevelMetrics::from_run(&run));
        }
        for (c, _) in LEVELS.into_iter().filter(|&(c, _)| c >= 100) {
            if !only.is_empty() && !only.contains(&c) {
                continue;
            }
            // A fresh client has an empty pool: every request of this one wave connects
            // first, all at once, which is the worst case a sweep without warm-up meets.
            let (cold, _) = load_client(&target, sim.base_url.clone()).unwrap();
            let run = run_level(&cold, &workload, c, c, &Progress::none()).await;
            row(format!("{c}*"), c, &LevelMetrics::from_run(&run));
        }
    });
    println!("* one wave from a fresh client, no warm-up: every request opens its connection");
    println!(
        "reference (reqwest + tokio client, 2 cores, same kind of mock): TTFT error 2.6 / 3.0 / 4.7 / 25 / 26 ms, p99 ITL 10.6 / 11.3 / 11.3 / 11.8 / 22.4 ms at c = 1 / 10 / 100 / 500 / 1000"
    );
}
