//! Request capacity: the most requests per second eyetest's load generator drives, each
//! carrying a 560x560 noise image (a 1.26 MB base64 body), side by side with `oha`, the
//! HTTP ceiling, against the same engine process.
//!
//! Like for like:
//! - the same server: one `eyetest sim` process with zero latency and `--memoize` (it parses
//!   a body it has seen before only once, so that the engine is not the bottleneck);
//! - the same bytes: oha sends the very body eyetest sends (asserted), with the same headers
//!   that matter (JSON, `Accept: text/event-stream`), at the same concurrency, for the same
//!   number of requests;
//! - the same start: one untimed run of each before round 1 warms the engine; every measured
//!   run starts cold for both (oha is a new process, eyetest a new client with an empty
//!   connection pool);
//! - the same clock: requests divided by the wall time around the whole run, taken here;
//! - rounds alternate which goes first (A B, B A, ...), and every run is printed; the
//!   summary is medians with min-max, never the best run.
//!
//! CPU time per 1,000 requests is reported for each client (getrusage) and for the engine
//! while each ran (`/proc/<pid>/stat`), so a client cannot look fast by starving the engine.
//! eyetest parses every SSE event of every answer and times it; oha only reads the bytes.
//!
//! `benches/run capacity` installs oha first (`cargo install oha --locked`); plain
//! `cargo bench --bench capacity` uses `$OHA`, `~/.cargo/bin/oha` or `oha` on PATH.
//! `-- 64 20000 7` sets concurrency, requests per run and rounds (default 32, 10000, 5).

#[path = "common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use eyetest::backend::openai::request_body;
use eyetest::backend::{ChatRequest, ImageData};
use eyetest::runtime::runtime;
use eyetest::target::Target;
use eyetest::throughput::load::{run_level, Progress, RequestTemplate, Workload};
use eyetest::throughput::run::load_client;
use eyetest::throughput::LevelMetrics;

use common::Who;

const MAX_TOKENS: u32 = 16;

/// One measured run of either client.
struct Run {
    rps: f64,
    ok: usize,
    failed: usize,
    client_cpu_s: f64,
    engine_cpu_s: f64,
}

impl Run {
    fn cpu_ms_per_1k(cpu_s: f64, n: usize) -> f64 {
        cpu_s * 1e6 / n as f64
    }
}
fn oha_path() -> Option<String> {
    if let Ok(p) = std::env::var("OHA") {
        return Some(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    [format!("{home}/.cargo/bin/oha"), "oha".to_string()]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// One oha run of `n` requests: its success count comes from its own JSON summary.
fn oha(oha: &str, url: &str, body: &std::path::Path, c: usize, n: usize, engine: u32) -> Run {
    let (cpu0, engine0) = (common::cpu_s(Who::Children), common::process_cpu_s(engine));
    let t = Instant::now();
    let out = Command::new(oha)
        .args(["--no-tui", "--output-format", "json", "-m", "POST"])
        .args(["-T", "application/json", "-A", "text/event-stream"])
        .args(["-c", &c.to_string(), "-n", &n.to_string()])
        .arg("-D")
        .arg(body)
        .arg(url)
        .output()
        .expect("oha runs");
    let wall = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "oha failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("oha prints JSON");
    let rate = v["summary"]["successRate"].as_f64().unwrap_or(0.0);
    let ok = (rate * n as f64).round() as usize;
    Run {
        rps: n as f64 / wall,
        ok,
        failed: n - ok,
        client_cpu_s: common::cpu_s(Who::Children) - cpu0,
        engine_cpu_s: common::process_cpu_s(engine) - engine0,
    }
}

/// One eyetest run of `n` requests, from a new client (an empty connection pool).
fn eyetest(
    target: &Target,
    base_url: &str,
    workload: &Arc<Workload>,
    c: usize,
    n: usize,
    engine: u32,
) -> Run {
    let (cpu0, engine0) = (common::cpu_s(Who::Me), common::process_cpu_s(engine));
    let t = Instant::now();
    let (client, _) = load_client(target, base_url.to_string()).expect("client");
    let run = runtime().block_on(run_level(&client, workload, c, n, &Progress::none()));
    let wall = t.elapsed().as_secs_f64();
    let m = LevelMetrics::from_run(&run);
    Run {
        rps: n as f64 / wall,
        ok: m.completed,
        failed: m.failed,
        client_cpu_s: common::cpu_s(Who::Me) - cpu0,
        engine_cpu_s: common::process_cpu_s(engine) - engine0,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let nums: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let c = nums.first().copied().unwrap_or(32);
    let n = nums.get(1).copied().unwrap_or(10_000);
    let rounds = nums.get(2).copied().unwrap_or(5).max(1);

    let sim = common::SimProcess::start(&["--memoize"]);
    let engine = sim.pid();
    let url = format!("{}/chat/completions", sim.base_url);
    let png = eyetest::fixture::random_noise_png(560, 560, 0).expect("noise image");
    let image = Arc::new(ImageData::from_bytes(png).expect("png"));
    let mut extra = serde_json::Map::new();
    extra.insert("ignore_eos".into(), true.into());
    let template = RequestTemplate {
        model: "eyetest-sim".into(),
        prompt: "If I had to write a description for this image, it would be: ".into(),
        max_tokens: MAX_TOKENS,
        temperature: 0.0,
        stream: true,
        extra: extra.clone(),
    };
    let workload = Arc::new(
        Workload::from_images(std::slice::from_ref(&image), &template, "random 560x560")
            .expect("workload"),
    );
    // The very bytes eyetest sends, for oha.
    let body = request_body(&ChatRequest {
        model: template.model.clone(),
        prompt: template.prompt.clone(),
        image,
        max_tokens: MAX_TOKENS,
        temperature: 0.0,
        seed: None,
        stream: true,
        extra,
    })
    .expect("body");
    assert_eq!(body, workload.body_for(0));
    let dir = tempfile::tempdir().expect("temp dir");
    let body_path = dir.path().join("body.json");
    std::fs::write(&body_path, &body).expect("write body");

    println!(
        "capacity: zero-latency simulated engine (separate process, --memoize), one 560x560 noise image per request ({} byte body, stream, {MAX_TOKENS} tokens), c={c}, {n} requests per run, {rounds} rounds; {}; load average {} at start",
        body.len(),
        common::machine(),
        common::loadavg()
    );
    let Some(oha_bin) = oha_path() else {
        eprintln!("oha not found: `benches/run capacity` installs it, or `cargo install oha --locked`, or set OHA");
        std::process::exit(2);
    };
    let target = common::target(&sim.base_url);
    // Warm-up: one untimed run of each.
    let warm = (c * 20).min(n);
    eyetest(&target, &sim.base_url, &workload, c, warm, engine);
    oha(&oha_bin, &url, &body_path, c, warm, engine);

    let (mut e_runs, mut o_runs): (Vec<Run>, Vec<Run>) = (Vec::new(), Vec::new());
    let line = |who: &str, round: usize, r: &Run| {
        println!(
            "  round {round} {who:<8} {:>7.0} req/s  {:>6} ok {:>3} failed  client CPU {:>6.1} ms/1k req  engine CPU {:>6.1} ms/1k req",
            r.rps,
            r.ok,
            r.failed,
            Run::cpu_ms_per_1k(r.client_cpu_s, n),
            Run::cpu_ms_per_1k(r.engine_cpu_s, n),
        )
    };
    for round in 1..=rounds {
        let eyetest_first = round % 2 == 1;
        for first in [true, false] {
            if first == eyetest_first {
                let r = eyetest(&target, &sim.base_url, &workload, c, n, engine);
                line("eyetest", round, &r);
                e_runs.push(r);
            } else {
                let r = oha(&oha_bin, &url, &body_path, c, n, engine);
                line("oha", round, &r);
                o_runs.push(r);
            }
        }
    }
    let summary = |who: &str, runs: &[Run]| {
        let (rps, rps_lo, rps_hi) = common::spread(&runs.iter().map(|r| r.rps).collect::<Vec<_>>());
        let cpu: Vec<f64> = runs
            .iter()
            .map(|r| Run::cpu_ms_per_1k(r.client_cpu_s, n))
            .collect();
        let eng: Vec<f64> = runs
            .iter()
            .map(|r| Run::cpu_ms_per_1k(r.engine_cpu_s, n))
            .collect();
        let ((cpu, cpu_lo, cpu_hi), (eng, _, _)) = (common::spread(&cpu), common::spread(&eng));
        let failed: usize = runs.iter().map(|r| r.failed).sum();
        println!(
            "{who:<8} median {rps:>7.0} req/s (min {rps_lo:.0}, max {rps_hi:.0}); client CPU median {cpu:.1} ms per 1k requests (min {cpu_lo:.1}, max {cpu_hi:.1}); engine CPU median {eng:.1} ms per 1k; {failed} failed in all"
        );
        (rps, cpu)
    };
    let (e_rps, e_cpu) = summary("eyetest", &e_runs);
    let (o_rps, o_cpu) = summary("oha", &o_runs);
    let ratios: Vec<f64> = e_runs
        .iter()
        .zip(&o_runs)
        .map(|(e, o)| e.rps / o.rps)
        .collect();
    let (_, r_lo, r_hi) = common::spread(&ratios);
    println!(
        "eyetest/oha: {:.2}x the requests per second (ratio of medians; per round {r_lo:.2}-{r_hi:.2}), {:.2}x the client CPU per request; load average {} at end",
        e_rps / o_rps,
        e_cpu / o_cpu,
        common::loadavg()
    );
}
