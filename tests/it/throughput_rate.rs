//! Arrival-rate profiles end to end against the simulated engine on loopback: constant and
//! Poisson levels keep their rate, the concurrency cap turns into measured queueing delay,
//! the sweep finds its range and measures the rates inside it, SLOs at a rate fail the
//! trial with the numbers. Small images (64x64) and short levels keep each test to a few
//! seconds; the tests run one at a time (a lock) so they do not measure each other.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::support::sim_target;
use eyetest::runtime::runtime;
use eyetest::sim::{Behaviour, Latency, SimConfig, SimServer};
use eyetest::throughput::arrival::{level_seed, Arrival, Schedule};
use eyetest::throughput::gate::GateConfig;
use eyetest::throughput::level::ProfileKind;
use eyetest::throughput::run::{run_at, RunOptions, TrialReport};
use eyetest::throughput::slo::{set, Slo, Value};
use eyetest::throughput::spec::{ImageSource, ThroughputSpec};

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn spec(arrival: Arrival, requests: Vec<usize>) -> ThroughputSpec {
    ThroughputSpec {
        name: "rate-check".into(),
        spec_id: "throughput/rate".into(),
        spec_path: "specs/throughput/rate.toml".into(),
        line: 1,
        targets: vec!["sim".into()],
        images: ImageSource::Random {
            width: 64,
            height: 64,
            count: 4,
            seed: 0,
        },
        prompt: "Describe the image.".into(),
        max_tokens: 4,
        ignore_eos: true,
        min_tokens: None,
        temperature: 0.0,
        concurrency: Vec::new(),
        requests,
        warmup: Some(2),
        repeats: 1,
        stream: true,
        test: true,
        gate: GateConfig::default(),
        slo: Slo::default(),
        arrival,
        telemetry: None,
    }
}

fn engine(ttft_ms: u64, tpot_ms: u64, batch: usize) -> SimConfig {
    SimConfig {
        behaviour: Behaviour::Terse,
        latency: Latency::fixed(
            Duration::from_millis(ttft_ms),
            Duration::from_millis(tpot_ms),
        ),
        max_concurrency: batch,
        ..SimConfig::default()
    }
}

fn run_on(config: SimConfig, spec: &ThroughputSpec) -> (TrialReport, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions::new(&dir.path().join("golden"), &dir.path().join("out"), false);
    let report = runtime().block_on(async {
        let server = SimServer::start(([127, 0, 0, 1], 0).into(), config)
            .await
            .unwrap();
        let r = run_at(spec, &sim_target(), &server.base_url(), &opts)
            .await
            .unwrap();
        server.shutdown().await;
        r
    });
    (report, dir)
}

fn rates(profile: ProfileKind, rates: &[f64]) -> Arrival {
    Arrival {
        profile,
        rates: rates.to_vec(),
        max_concurrency: 64,
        seed: 7,
        ..Arrival::default()
    }
}

/// One CSV line's cells (RFC 4180 quoting: the sim's GPU name has a comma).
fn cells(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[test]
fn constant_rate_is_kept_and_reported() {
    let _g = serial();
    // 40 requests at 20/s: 1.95 s of schedule; the engine answers in ~20 ms.
    let s = spec(rates(ProfileKind::Constant, &[20.0]), vec![40]);
    let (r, dir) = run_on(engine(10, 2, 0), &s);
    let text = r.render();
    assert!(r.passed(), "{text}");
    let m = &r.pooled[0];
    assert_eq!(
        (m.rate, m.completed, m.failed),
        (Some(20.0), 40, 0),
        "{text}"
    );
    let sent = m.sent_per_s.unwrap();
    assert!(
        (sent / 20.0 - 1.0).abs() < 0.05,
        "sent {sent}/s for 20/s\n{text}"
    );
    // Completions over first send to last completion: one latency (~20 ms) longer.
    assert!(
        m.images_per_s > 0.9 * 20.0 && m.images_per_s < 20.5,
        "{}\n{text}",
        m.images_per_s
    );
    // The cap (64) never binds: queueing is a scheduler tick, not a request's latency.
    let q = m.queued_ms.unwrap();
    assert!(q.p99 < 10.0, "queue p99 {} ms\n{text}", q.p99);
    for needle in ["rate=20/s", "sent/s", "queue mean", "queue p99"] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let csv = std::fs::read_to_string(dir.path().join("out/throughput.csv")).unwrap();
    let header = cells(csv.lines().next().unwrap());
    let row = cells(csv.lines().nth(1).unwrap());
    assert_eq!(header.len(), row.len(), "{csv}");
    let col = |name: &str| row[header.iter().position(|h| h == name).unwrap()].as_str();
    assert_eq!(
        (col("profile"), col("rate"), col("batch_size")),
        ("constant", "20.0000", "64")
    );
    assert!(!col("queued_p99_ms").is_empty() && !col("sent_per_s").is_empty());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.output("json").unwrap()).unwrap()).unwrap();
    assert_eq!(json["profile"], "constant");
    assert_eq!(json["levels"][0]["rate"], 20.0);
    assert!(json["levels"][0]["pooled"]["queued_ms"]["p99"].is_number());
    let curve = r.output("latency curve").expect("rate runs draw the curve");
    assert!(std::fs::read_to_string(curve).unwrap().contains("20/s"));
}

#[test]
fn poisson_rate_follows_its_seeded_schedule() {
    let _g = serial();
    let n = 60;
    let s = spec(rates(ProfileKind::Poisson, &[30.0]), vec![n]);
    // The schedule the level will send: same seed, same intervals.
    let mut sched = Schedule::new(30.0, Some(1.0), level_seed(7, 0, 0));
    let last = (0..n).map(|_| sched.next_offset()).last().unwrap();
    let scheduled_rate = (n - 1) as f64 / last.as_secs_f64();
    // With n = 60 exponential intervals the schedule's own rate is within +-4 standard
    // deviations (1/sqrt(59) = 13% each) of the asked rate.
    assert!(
        (scheduled_rate / 30.0 - 1.0).abs() < 4.0 / 59f64.sqrt(),
        "{scheduled_rate}"
    );
    let (r, _dir) = run_on(engine(10, 2, 0), &s);
    let text = r.render();
    assert!(r.passed(), "{text}");
    let m = &r.pooled[0];
    let sent = m.sent_per_s.unwrap();
    assert!(
        (sent / scheduled_rate - 1.0).abs() < 0.05,
        "sent {sent}/s, schedule {scheduled_rate}/s\n{text}"
    );
    assert_eq!(m.completed, n, "{text}");
}

#[test]
fn the_cap_turns_into_queueing_delay_when_the_engine_is_slow() {
    let _g = serial();
    // 10/s for 12 requests against an engine taking ~300 ms: with one request allowed in
    // flight, request k waits about k * (300 - 100) ms behind the ones before it.
    let mut a = rates(ProfileKind::Constant, &[10.0]);
    a.max_concurrency = 1;
    let s = spec(a.clone(), vec![12]);
    let (capped, _d1) = run_on(engine(300, 1, 0), &s);
    let q = capped.pooled[0].queued_ms.unwrap();
    let text = capped.render();
    assert!(
        q.mean > 500.0 && q.p99 > 1500.0,
        "mean {} p99 {}\n{text}",
        q.mean,
        q.p99
    );
    // The open loop kept its schedule for the waiting ones: the sending fell behind.
    assert!(capped.pooled[0].sent_per_s.unwrap() < 5.0, "{text}");
    a.max_concurrency = 64;
    let (free, _d2) = run_on(engine(300, 1, 0), &spec(a, vec![12]));
    let q = free.pooled[0].queued_ms.unwrap();
    assert!(
        q.p99 < 20.0,
        "uncapped queue p99 {}\n{}",
        q.p99,
        free.render()
    );
}

#[test]
fn sweep_finds_the_range_and_measures_the_rates_inside() {
    let _g = serial();
    // The engine serves 4 at once, each in ~30 ms: about 130 requests/s at most, about
    // 33/s one at a time.
    let a = Arrival {
        profile: ProfileKind::Sweep,
        max_concurrency: 16,
        sweep_points: 3,
        seed: 1,
        ..Arrival::default()
    };
    let s = spec(a, vec![40]);
    let (r, _dir) = run_on(engine(20, 2, 4), &s);
    let text = r.render();
    assert!(r.passed(), "{text}");
    let sw = r.sweep.clone().expect("a sweep summary");
    assert!(
        sw.throughput_per_s > 1.5 * sw.synchronous_per_s,
        "probes {} vs {}\n{text}",
        sw.throughput_per_s,
        sw.synchronous_per_s
    );
    assert_eq!(sw.rates.len(), 3, "{text}");
    let step = (sw.throughput_per_s - sw.synchronous_per_s) / 3.0;
    for (i, rate) in sw.rates.iter().enumerate() {
        let want = sw.synchronous_per_s + step * (i + 1) as f64;
        assert!((rate - want).abs() < 1e-9, "{rate} vs {want}");
    }
    // Two probes (closed loops at c=16 and c=1) and three rate levels, each measured.
    let keys: Vec<(usize, Option<f64>)> =
        r.pooled.iter().map(|m| (m.concurrency, m.rate)).collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert_eq!((keys[0], keys[1]), ((1, None), (16, None)));
    for m in r.pooled.iter().filter(|m| m.rate.is_some()) {
        assert_eq!((m.completed, m.failed), (40, 0), "{text}");
    }
    let max = sw.max_sustainable.expect("the lower rates are sustained");
    // Levels name their rate to a thousandth of a request per second.
    assert!(
        max >= sw.rates[0] - 1e-3 && max <= sw.throughput_per_s + 1e-3,
        "{max}\n{text}"
    );
    assert!(text.contains("sweep: max sustainable rate="), "{text}");
}

#[test]
fn an_slo_missed_at_a_rate_fails_with_the_numbers() {
    let _g = serial();
    let mut s = spec(rates(ProfileKind::Gamma, &[20.0]), vec![20]);
    s.arrival.burstiness = 0.5;
    let mut slo = Slo::default();
    set(&mut slo, "ttft_p99_ms", Value::Num(2.0)).unwrap();
    s.slo = slo;
    let (r, _dir) = run_on(engine(30, 1, 0), &s);
    let text = r.render();
    assert!(!r.passed(), "{text}");
    assert!(
        text.contains("rate=20/s: SLO TTFT p99 (all repeats)")
            && text.contains("limit 2.00 ms: FAIL"),
        "{text}"
    );
    assert!(text.contains("slo: FAIL"), "{text}");
}
