//! Memory: peak RSS of the load generator for 1,000, 10,000, 100,000 and 1,000,000
//! requests of 560x560 images. The bodies are built once and shared, and every finished
//! request goes into fixed-size histograms and is dropped, so peak memory should be a
//! fixed base (runtime, client, request bodies) that does not grow with the request count.
//!
//! Each run is a child process of this bench (peak RSS only ever rises within a process),
//! against a zero-latency simulated engine in another process (`--memoize`, so the engine
//! is not the bottleneck of a million requests). 16 distinct images (as a spec's
//! `count = 16` would make), c=32, 16 tokens per answer. Every run is printed; the summary
//! is the median per count with min-max, and the growth per request is the difference of
//! the medians at the largest and the smallest count, divided by the extra requests.
//!
//! `cargo bench --bench memory` (3 runs per count, 1 run of the million);
//! `-- --runs 5` and `-- --max 100000` change that.

#[path = "common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::Arc;

use eyetest::runtime::runtime;
use eyetest::throughput::load::{run_level, Progress, Workload};
use eyetest::throughput::run::{load_client, template};
use eyetest::throughput::spec::{ImageSource, ThroughputSpec};
use eyetest::throughput::LevelMetrics;

const IMAGES: usize = 16;
const CONCURRENCY: usize = 32;
const MAX_TOKENS: u32 = 16;

fn spec(requests: usize) -> ThroughputSpec {
    ThroughputSpec {
        name: "memory".into(),
        spec_id: "bench".into(),
        spec_path: "bench.toml".into(),
        line: 1,
        targets: vec![],
        images: ImageSource::Random {
            width: 560,
            height: 560,
            count: IMAGES,
            seed: 0,
        },
        prompt: "If I had to write a description for this image, it would be: ".into(),
        max_tokens: MAX_TOKENS,
        ignore_eos: true,
        min_tokens: None,
        temperature: 0.0,
        concurrency: vec![CONCURRENCY],
        requests: vec![requests],
        warmup: Some(0),
        repeats: 1,
        stream: true,
        test: true,
        gate: Default::default(),
        slo: Default::default(),
        arrival: Default::default(),
        telemetry: None,
    }
}

/// The child: one level of `requests` requests; prints peak RSS and what it held.
fn child(base_url: &str, requests: usize) {
    let spec = spec(requests);
    let target = common::target(base_url);
    let workload =
        Arc::new(Workload::build(&spec.images, &template(&spec, &target)).expect("workload"));
    let (client, _) = load_client(&target, base_url.to_string()).unwrap();
    let run = runtime().block_on(run_level(
        &client,
        &workload,
        CONCURRENCY,
        requests,
        &Progress::none(),
    ));
    let m = LevelMetrics::from_run(&run);
    assert_eq!(m.completed, requests, "{:?}", m.errors);
    println!(
        "{} {} {}",
        common::peak_rss_kib().unwrap_or(0),
        workload.body_bytes(),
        m.requests_per_s
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], args[i + 2].parse().expect("request count"));
        return;
    }
    let opt = |name: &str| -> Option<usize> {
        let i = args.iter().position(|a| a == name)?;
        args.get(i + 1)?.parse().ok()
    };
    let runs = opt("--runs").unwrap_or(3).max(1);
    let max = opt("--max").unwrap_or(1_000_000);
    let sim = common::SimProcess::start(&["--memoize"]);
    let me = std::env::current_exe().expect("own path");
    println!(
        "memory: {IMAGES} distinct 560x560 noise images, c={CONCURRENCY}, {MAX_TOKENS} tokens per answer, zero-latency simulated engine (separate process, --memoize); {}; load average {} at start",
        common::machine(),
        common::loadavg()
    );
    let mut medians: Vec<(usize, f64)> = Vec::new();
    for requests in [1_000usize, 10_000, 100_000, 1_000_000] {
        if requests > max {
            continue;
        }
        // A million requests take minutes: one run of it.
        let n_runs = if requests >= 1_000_000 { 1 } else { runs };
        let mut peaks = Vec::new();
        for run in 1..=n_runs {
            let out = Command::new(&me)
                .args(["--child", &sim.base_url, &requests.to_string()])
                .output()
                .expect("child runs");
            assert!(
                out.status.success(),
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let nums: Vec<f64> = text
                .split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect();
            let (peak_kib, bodies, rps) = (nums[0], nums[1], nums[2]);
            println!(
                "  {requests:>9} requests, run {run}: peak RSS {:>6.1} MiB (request bodies {:.1} MiB; {rps:.0} req/s)",
                peak_kib / 1024.0,
                bodies / (1024.0 * 1024.0)
            );
            peaks.push(peak_kib);
        }
        let (med, lo, hi) = common::spread(&peaks);
        println!(
            "  {requests:>9} requests: median {:.1} MiB (min {:.1}, max {:.1}) over {n_runs} run(s)",
            med / 1024.0,
            lo / 1024.0,
            hi / 1024.0
        );
        medians.push((requests, med));
    }
    if let (Some(&(n0, p0)), Some(&(n1, p1))) = (medians.first(), medians.last()) {
        if n1 > n0 {
            println!(
                "  {n0} -> {n1} requests: peak RSS x{:.2} ({:+.1} MiB, {:+.1} bytes per extra request); load average {} at end",
                p1 / p0,
                (p1 - p0) / 1024.0,
                (p1 - p0) * 1024.0 / (n1 - n0) as f64,
                common::loadavg()
            );
        }
    }
}
