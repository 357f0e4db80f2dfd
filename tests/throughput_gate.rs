//! The throughput gate end to end against simulated engines on loopback: a real sweep, a
//! baseline recorded with the accept step, and the verdict on engines that changed or not.
//!
//! One baseline engine (3% jitter) is recorded once and shared; the sweeps run one at a time
//! (a lock), because two sweeps sharing two cores would measure each other.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use eyetest::runner::runtime;
use eyetest::sim::{Behaviour, Latency, SimConfig, SimServer};
use eyetest::target::Target;
use eyetest::throughput::baseline::Baseline;
use eyetest::throughput::gate::{BaselineStatus, GateConfig};
use eyetest::throughput::load::{run_level, Progress, RequestTemplate, Workload};
use eyetest::throughput::run::{load_client, run_at, RunOptions, TrialReport};
use eyetest::throughput::spec::{ImageSource, ThroughputSpec};
use eyetest::throughput::{Fingerprint, GpuInfo, LevelMetrics};

const TTFT_MS: f64 = 15.0;
const TPOT_MS: f64 = 2.0;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn spec() -> ThroughputSpec {
    ThroughputSpec {
        name: "gate-check".into(),
        spec_id: "throughput/gate".into(),
        spec_path: "specs/throughput/gate.toml".into(),
        line: 1,
        targets: vec!["sim".into()],
        images: ImageSource::Random {
            width: 64,
            height: 64,
            count: 4,
            seed: 0,
        },
        prompt: "If I had to write a description for this image, it would be: ".into(),
        max_tokens: 6,
        ignore_eos: true,
        min_tokens: None,
        temperature: 0.0,
        concurrency: vec![1, 4],
        requests: vec![8, 8],
        warmup: None,
        repeats: 3,
        stream: true,
        test: true,
        gate: GateConfig::default(),
    }
}

fn sim_target() -> Target {
    Target {
        name: "sim".into(),
        config: toml::from_str("backend = \"sim\"\nmodel = \"eyetest-sim\"").unwrap(),
    }
}

fn engine(scale: f64, jitter: f64, seed: u64) -> SimConfig {
    let ms = |v: f64| Duration::from_secs_f64(v * scale / 1000.0);
    SimConfig {
        behaviour: Behaviour::Terse,
        latency: Latency {
            ttft: ms(TTFT_MS),
            per_token: ms(TPOT_MS),
            prefill_per_tile: Duration::ZERO,
            jitter,
        },
        max_concurrency: 0,
        seed,
        ..SimConfig::default()
    }
}

fn options(golden: &Path, out: &Path, accept: bool) -> RunOptions {
    RunOptions {
        golden: golden.to_path_buf(),
        out_dir: out.to_path_buf(),
        accept,
        progress: Progress::none(),
    }
}

/// Runs the spec against a fresh engine with `config`.
fn sweep_on(config: SimConfig, spec: &ThroughputSpec, opts: &RunOptions) -> TrialReport {
    runtime().block_on(async {
        let server = SimServer::start(([127, 0, 0, 1], 0).into(), config)
            .await
            .unwrap();
        let report = run_at(spec, &sim_target(), &server.base_url(), opts)
            .await
            .unwrap();
        server.shutdown().await;
        report
    })
}

/// A golden dir holding the baseline of the unchanged engine, recorded once with accept.
fn golden() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let r = sweep_on(
            engine(1.0, 0.03, 1),
            &spec(),
            &options(dir.path(), &out, true),
        );
        let path = r.accepted.clone().expect("accept writes a baseline");
        assert!(path.starts_with(dir.path().join("baselines/throughput/gate/gate-check@sim")));
        dir
    })
    .path()
}

fn gated(config: SimConfig) -> TrialReport {
    let golden = golden();
    let out = tempfile::tempdir().unwrap();
    let r = sweep_on(config, &spec(), &options(golden, out.path(), false));
    assert!(
        matches!(r.outcome.baseline, BaselineStatus::Compared { .. }),
        "{}",
        r.render()
    );
    r
}

#[test]
fn gate_passes_on_the_unchanged_engine() {
    let _g = serial();
    let r = gated(engine(1.0, 0.03, 1));
    assert!(r.passed(), "{}", r.render());
    assert!(!r.render().contains("REGRESSION"), "{}", r.render());
}

#[test]
fn gate_fails_on_an_engine_15_percent_slower() {
    let _g = serial();
    let r = gated(engine(1.15, 0.03, 2));
    let text = r.render();
    assert!(!r.passed(), "{text}");
    assert!(
        text.contains("REGRESSION") && text.contains("gate: FAIL"),
        "{text}"
    );
    assert!(text.contains("Mann-Whitney"), "{text}");
}

#[test]
fn gate_does_not_fail_on_run_to_run_jitter() {
    let _g = serial();
    let r = gated(engine(1.0, 0.10, 7));
    assert!(r.passed(), "{}", r.render());
}

#[test]
fn fingerprint_mismatch_is_skipped_with_what_differs() {
    let _g = serial();
    let golden = tempfile::tempdir().unwrap();
    let spec = spec();
    // A baseline recorded "elsewhere": a real GPU and another answer length.
    let other = Fingerprint {
        gpu: GpuInfo::declared("H100 SXM", 1),
        model: "meta-llama/Llama-3.2-11B-Vision-Instruct".into(),
        engine: Some("vLLM".into()),
        engine_version: Some("0.10.2".into()),
        image: "random 64x64".into(),
        max_tokens: 512,
        ignore_eos: true,
        prompt_sha256: Fingerprint::prompt_hash(&spec.prompt),
    };
    let path = Baseline::path(golden.path(), &spec.spec_id, &spec.name, "sim", &other);
    Baseline::from_metrics(other, "2026-01-01T00:00:00Z", &[])
        .save_atomic(&path)
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = sweep_on(
        engine(1.0, 0.0, 1),
        &spec,
        &options(golden.path(), out.path(), false),
    );
    let text = r.render();
    let BaselineStatus::FingerprintMismatch { candidates } = &r.outcome.baseline else {
        panic!("expected a fingerprint mismatch:\n{text}");
    };
    let diffs = &candidates[0].differences;
    assert!(
        diffs.contains(&"gpu: simulated, no GPU vs 1x H100 SXM".to_string()),
        "{diffs:?}"
    );
    assert!(
        diffs.contains(&"max_tokens: 6 vs 512".to_string()),
        "{diffs:?}"
    );
    assert!(text.contains("comparison skipped"), "{text}");
    // Skipped, not passed silently: the reason is in the output, and the trial passes
    // unless the gate requires a baseline.
    assert!(r.passed(), "{text}");
    let mut strict = spec.clone();
    strict.gate.require_baseline = true;
    let r = sweep_on(
        engine(1.0, 0.0, 1),
        &strict,
        &options(golden.path(), out.path(), false),
    );
    assert!(!r.passed(), "{}", r.render());
    // The outputs were written all the same.
    for p in [&r.outputs.csv, &r.outputs.json, &r.outputs.chart] {
        assert!(p.as_ref().is_some_and(|p| p.exists()), "{p:?}");
    }
}

/// Measures one level against a fresh engine, without the gate.
fn level(config: SimConfig, concurrency: usize, requests: usize) -> LevelMetrics {
    let spec = spec();
    let target = sim_target();
    runtime().block_on(async {
        let server = SimServer::start(([127, 0, 0, 1], 0).into(), config)
            .await
            .unwrap();
        let tmpl: RequestTemplate = eyetest::throughput::run::template(&spec, &target);
        let workload = Arc::new(Workload::build(&spec.images, &tmpl).unwrap());
        let (client, _) = load_client(&target, server.base_url()).unwrap();
        // One warm-up request per slot, as a sweep does: connections open, engine warm.
        run_level(
            &client,
            &workload,
            concurrency,
            concurrency,
            &Progress::none(),
        )
        .await;
        let run = run_level(&client, &workload, concurrency, requests, &Progress::none()).await;
        server.shutdown().await;
        assert_eq!(run.samples.len(), requests);
        LevelMetrics::from_run(&run)
    })
}

#[test]
fn failed_requests_are_counted_not_averaged() {
    let _g = serial();
    let mut flaky = engine(1.0, 0.0, 3);
    flaky.behaviour = Behaviour::Flaky;
    let m = level(flaky, 4, 40);
    assert!(m.failed > 0 && m.completed > 0, "{m:?}");
    assert_eq!(m.completed + m.failed, 40);
    assert!(m.errors[0].message.contains("HTTP 503"), "{:?}", m.errors);
    assert_eq!(m.errors.iter().map(|e| e.count).sum::<usize>(), m.failed);
    // A 503 comes back at once; averaged in, it would pull E2E far below the engine's time.
    let e2e = m.e2e_ms.unwrap();
    let expected = TTFT_MS + 5.0 * TPOT_MS;
    assert!(e2e.min >= expected * 0.95, "{e2e:?}");
    assert_eq!(m.output_len.unwrap().min, 6.0);
    assert!((m.images_per_s - m.completed as f64 / m.wall_s).abs() < 1e-9);
}

#[test]
fn queueing_is_recorded_where_it_happens() {
    let _g = serial();
    // The engine serves 2 at a time, the client keeps 4 in flight: the engine's queue
    // shows in TTFT; the client's own queue (8 requests for 4 slots) in `queued`.
    let mut small = engine(1.0, 0.0, 4);
    small.max_concurrency = 2;
    let m = level(small, 4, 8);
    let one = TTFT_MS + 5.0 * TPOT_MS;
    let ttft = m.ttft_ms.unwrap();
    assert!(
        ttft.max >= TTFT_MS + one * 0.95,
        "engine queue not in TTFT: {ttft:?}"
    );
    let queued = m.queued_ms.unwrap();
    assert!(
        queued.min < 5.0,
        "the first 4 requests do not wait: {queued:?}"
    );
    assert!(
        queued.max >= one * 0.95,
        "later requests wait for a slot: {queued:?}"
    );
    // E2E starts at send, so it never includes the client-side wait: at most one turn in
    // the engine's queue plus the request's own time.
    assert!(m.e2e_ms.unwrap().max < 2.5 * one, "{m:?}");
}

fn eyetest(root: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eyetest"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("EYETEST_TARGETS")
        .env_remove("EYETEST_ACCEPT_BASELINE")
        .env_remove("EYETEST_THROUGHPUT_OUT")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn bench_cli_accepts_then_gates_and_writes_reports() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs")).unwrap();
    std::fs::write(
        root.join("eyetest.toml"),
        "[target.fast-sim]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\nlatency = { ttft_ms = 5, tpot_ms = 1 }\ndefault = false\n",
    )
    .unwrap();
    std::fs::write(
        root.join("specs/tp.toml"),
        "[[throughput]]\nname = \"quick\"\ntargets = [\"fast-sim\"]\nimages = { random = { width = 64, height = 64, count = 2 } }\nprompt = \"Describe.\"\nmax_tokens = 4\nignore_eos = true\nconcurrency = [1, 2]\nrequests = 4\n",
    )
    .unwrap();
    let (ok, text) = eyetest(root, &["list"]);
    assert!(
        ok && text.contains("tp::quick@fast-sim [throughput]"),
        "{text}"
    );

    let (ok, text) = eyetest(root, &["bench", "quick", "--accept"]);
    assert!(ok, "{text}");
    assert!(text.contains("accepted: wrote baseline"), "{text}");
    let baselines = root.join("golden/baselines/tp/quick@fast-sim");
    assert_eq!(std::fs::read_dir(&baselines).unwrap().count(), 1);

    let (ok, text) = eyetest(root, &["bench", "tp::quick"]);
    assert!(ok, "{text}");
    for needle in ["compared with baseline", "gate: PASS", "img/s", "TTFT p50"] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let out = root.join("target/eyetest/throughput");
    let csv = std::fs::read_to_string(out.join("throughput.csv")).unwrap();
    assert!(csv.starts_with("num_images,model_id,batch_size,total_time,throughput,"));
    // Two runs x 2 levels x 3 repeats, appended under one header.
    assert_eq!(csv.lines().count(), 1 + 12, "{csv}");
    assert!(out.join("tp/quick@fast-sim.json").exists());
    let svg = std::fs::read_to_string(out.join("tp/quick-simulated.svg")).unwrap();
    assert!(svg.contains("fast-sim (simulated, no GPU)"), "{svg}");

    let (ok, text) = eyetest(root, &["bench", "nope"]);
    assert!(!ok && text.contains("known: tp::quick"), "{text}");
}
