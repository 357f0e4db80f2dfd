//! Request capacity: the most requests per second eyetest's load generator drives, each
//! carrying a 560x560 noise image (a 1.25 MB base64 body), against the simulated engine
//! with zero latency in a separate process, side by side with `oha`, the HTTP ceiling,
//! sending the same body bytes at the same concurrency.
//!
//! Both are closed loops with C connections; each runs three times, alternating, and the
//! best and the median run of each are reported (on a shared machine the slower runs are
//! the ones another process got in the way of).
//! eyetest parses every SSE event of every answer and times it; oha only reads the bytes.
//!
//! `cargo bench --bench capacity` (oha from `cargo install oha --locked`, or `$OHA`);
//! `-- 64 20000` sets concurrency and requests (default 32 and 10000).

#[path = "common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use eyetest::backend::openai::request_body;
use eyetest::backend::{ChatRequest, ImageData};
use eyetest::runner::runtime;
use eyetest::throughput::load::{run_level, Progress, RequestTemplate, Workload};
use eyetest::throughput::run::load_client;
use eyetest::throughput::LevelMetrics;

const MAX_TOKENS: u32 = 16;

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

/// Requests per second and failures of one oha run.
fn oha(oha: &str, url: &str, body: &std::path::Path, c: usize, n: usize) -> (f64, f64) {
    let out = Command::new(oha)
        .args(["--no-tui", "--output-format", "json", "-m", "POST"])
        .args(["-T", "application/json", "-A", "text/event-stream"])
        .args(["-c", &c.to_string(), "-n", &n.to_string()])
        .arg("-D")
        .arg(body)
        .arg(url)
        .output()
        .expect("oha runs");
    assert!(
        out.status.success(),
        "oha failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("oha prints JSON");
    let rps = v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0);
    let ok = v["summary"]["successRate"].as_f64().unwrap_or(0.0);
    (rps, ok)
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

    let sim = common::SimProcess::start(&[]);
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
        "capacity: zero-latency simulated engine (separate process), one 560x560 noise image per request ({} byte body, stream, {MAX_TOKENS} tokens), c={c}, {n} requests per run; {}",
        body.len(),
        common::machine()
    );
    let oha_bin = oha_path();
    let target = common::target(&sim.base_url);
    let (client, _) = load_client(&target, sim.base_url.clone()).unwrap();
    let mut eyetest_runs: Vec<f64> = Vec::new();
    let mut oha_runs: Vec<f64> = Vec::new();
    runtime().block_on(run_level(&client, &workload, c, c * 20, &Progress::none()));
    for round in 1..=3 {
        let t = Instant::now();
        let run = runtime().block_on(run_level(&client, &workload, c, n, &Progress::none()));
        let secs = t.elapsed().as_secs_f64();
        let m = LevelMetrics::from_run(&run);
        println!(
            "  round {round} eyetest: {:>8.0} req/s  ({} ok, {} failed, {secs:.2} s incl. collection, e2e p50 {:.2} ms)",
            m.requests_per_s,
            m.completed,
            m.failed,
            m.e2e_ms.map_or(0.0, |s| s.p50)
        );
        eyetest_runs.push(m.requests_per_s);
        if let Some(oha_bin) = &oha_bin {
            let (rps, ok) = oha(oha_bin, &url, &body_path, c, n);
            println!(
                "  round {round} oha:     {rps:>8.0} req/s  (success rate {:.1}%)",
                ok * 100.0
            );
            oha_runs.push(rps);
        }
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let (e_best, e_med) = (best(&eyetest_runs), median(&eyetest_runs));
    if oha_bin.is_some() {
        let (o_best, o_med) = (best(&oha_runs), median(&oha_runs));
        println!(
            "best:   eyetest {e_best:.0} req/s, oha {o_best:.0} req/s: eyetest/oha = {:.2}",
            e_best / o_best
        );
        println!(
            "median: eyetest {e_med:.0} req/s, oha {o_med:.0} req/s: eyetest/oha = {:.2}",
            e_med / o_med
        );
    } else {
        println!(
            "best: eyetest {e_best:.0} req/s, median {e_med:.0} (oha not found: cargo install oha --locked, or set OHA)"
        );
    }
}
