//! End to end through the throughput core, from load-generator samples to a gate verdict
//! and the three report formats, with a baseline in a temporary golden/ directory.

use std::time::Duration;

use eyetest::throughput::baseline::{find_for, Baseline, BaselineLookup};
use eyetest::throughput::chart::{self, ChartSeries};
use eyetest::throughput::csv::{self, CsvRow};
use eyetest::throughput::gate::GateConfig;
use eyetest::throughput::json::Report;
use eyetest::throughput::verdict::{evaluate, BaselineStatus};
use eyetest::throughput::{Fingerprint, GpuInfo, LevelMetrics, LevelRun, Sample};

const LEVELS: [usize; 3] = [1, 4, 16];

fn fingerprint() -> Fingerprint {
    Fingerprint {
        gpu: GpuInfo::declared("H100 SXM", 1),
        model: "meta-llama/Llama-3.2-11B-Vision-Instruct".into(),
        engine: Some("vllm".into()),
        engine_version: None,
        image: "random 560x560".into(),
        max_tokens: 64,
        ignore_eos: true,
        prompt_sha256: Fingerprint::prompt_hash(
            "If I had to write a description for this image, it would be: ",
        ),
    }
}

/// A sweep repeat whose speed is `speed` x nominal: 32 requests per level, 64 tokens each,
/// wall time shrinking with concurrency; every tenth request at c=16 fails.
fn sweep(speed: f64) -> Vec<LevelRun> {
    LEVELS
        .iter()
        .map(|&c| {
            let ms = |x: f64| Duration::from_secs_f64(x / 1000.0 / speed);
            let samples = (0..32)
                .map(|i| {
                    if c == 16 && i % 10 == 0 {
                        return Sample {
                            ok: false,
                            error: Some("HTTP 503: overloaded".into()),
                            e2e: ms(5.0),
                            ..Default::default()
                        };
                    }
                    Sample {
                        ok: true,
                        error: None,
                        queued: ms(1.0),
                        ttft: Some(ms(80.0 + c as f64 * 5.0)),
                        e2e: ms(80.0 + c as f64 * 5.0 + 63.0 * 12.0),
                        itl: vec![ms(12.0); 63],
                        prompt_tokens: Some(1600),
                        output_tokens: Some(64),
                    }
                })
                .collect();
            LevelRun {
                concurrency: c,
                wall: Duration::from_secs_f64(32.0 * 0.85 / (c as f64).sqrt() / speed),
                samples,
            }
        })
        .collect()
}

/// `n` repeats around `speed` with +-`jitter` relative noise (deterministic).
fn repeats(speed: f64, jitter: f64, n: usize) -> Vec<LevelMetrics> {
    (0..n)
        .flat_map(|i| {
            let wobble = [0.0, 1.0, -1.0, 0.5, -0.5, 0.8, -0.8][i % 7] * jitter;
            sweep(speed * (1.0 + wobble))
        })
        .map(|run| LevelMetrics::from_run(&run))
        .collect()
}

#[test]
fn record_then_gate_then_report() {
    let golden = tempfile::tempdir().unwrap();
    let fp = fingerprint();
    let path = Baseline::path(
        golden.path(),
        "throughput/study",
        "caption-560",
        "llama-11b",
        &fp,
    );
    let dir = path.parent().unwrap();

    // Nothing recorded yet: the comparison is skipped with instructions, but failed
    // requests still fail the gate (none are allowed by default): 12.5% failed at c=16.
    let lookup = find_for(dir, &fp).unwrap();
    let out = evaluate(&GateConfig::default(), &fp, &repeats(1.0, 0.02, 5), &lookup);
    let text = out.render();
    assert!(!out.passed, "{text}");
    assert!(matches!(out.baseline, BaselineStatus::NoBaseline { .. }));
    assert!(text.contains("EYETEST_ACCEPT_BASELINE=1"));
    assert!(
        text.contains(
            "c=16: 20 of 160 requests failed (12.5%), allowed 0% (e.g. HTTP 503: overloaded): FAIL"
        ),
        "{text}"
    );
    assert!(text.ends_with("gate: FAIL\n"), "{text}");
    let status: Vec<&str> = out.levels.iter().map(|l| l.status()).collect();
    assert_eq!(status, ["ok", "ok", "FAIL"]);
    // With 15% of failures allowed, the skipped comparison passes.
    let lenient = GateConfig {
        max_failure_rate: 0.15,
        ..GateConfig::default()
    };
    let out = evaluate(&lenient, &fp, &repeats(1.0, 0.02, 5), &lookup);
    assert!(out.passed, "{}", out.render());

    // Accept a baseline, as `--accept` would.
    let recorded = repeats(1.0, 0.02, 5);
    Baseline::from_metrics(fp.clone(), "2026-11-27T10:00:00Z", &recorded)
        .save_atomic(&path)
        .unwrap();
    let lookup = find_for(dir, &fp).unwrap();
    assert!(matches!(lookup, BaselineLookup::Found { .. }));

    // Same speed with its own noise: passes at every level.
    let same = evaluate(&lenient, &fp, &repeats(1.0, 0.03, 5), &lookup);
    assert!(same.passed, "{}", same.render());
    assert_eq!(same.levels.len(), LEVELS.len());

    // 15% slower: fails at every level, and says so in numbers.
    let slow_metrics = repeats(0.85, 0.01, 5);
    let slow = evaluate(&lenient, &fp, &slow_metrics, &lookup);
    let text = slow.render();
    assert!(!slow.passed, "{text}");
    assert_eq!(text.matches("REGRESSION").count(), LEVELS.len(), "{text}");
    assert!(
        text.contains("(-15.0%, tolerance 5%, Mann-Whitney U p=0.004, n=5/5)"),
        "{text}"
    );
    assert!(
        text.contains("c=16: 20 of 160 requests failed (12.5%), within the allowed 15% (e.g. HTTP 503: overloaded): ok"),
        "{text}"
    );

    // Latency metric: 15% slower is 17.6% more TTFT.
    let ttft_gate = GateConfig {
        metric: eyetest::throughput::Metric::TtftP50,
        ..lenient.clone()
    };
    assert!(!evaluate(&ttft_gate, &fp, &slow_metrics, &lookup).passed);

    // Another machine: the comparison is skipped and the reason lists the differences.
    let mut laptop = fp.clone();
    laptop.gpu = GpuInfo::none();
    let lookup = find_for(dir, &laptop).unwrap();
    let other = evaluate(&lenient, &laptop, &slow_metrics, &lookup);
    assert!(other.passed);
    assert!(
        other.render().contains("gpu: no GPU vs 1x H100 SXM"),
        "{}",
        other.render()
    );

    // Reports.
    let out_dir = golden.path().join("reports");
    let rows: Vec<CsvRow> = slow_metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            CsvRow::new(
                "llama-11b",
                &fp,
                i / LEVELS.len(),
                m,
                "2026-11-27T11:00:00Z",
                "ok",
            )
        })
        .collect();
    csv::append(&out_dir.join("throughput.csv"), &rows).unwrap();
    csv::append(&out_dir.join("throughput.csv"), &rows).unwrap();
    let text = std::fs::read_to_string(out_dir.join("throughput.csv")).unwrap();
    assert_eq!(text.lines().count(), 1 + 2 * rows.len());
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("num_images,"))
            .count(),
        1
    );

    let series = vec![
        ChartSeries::from_metrics(chart::series_name("llama-11b", &fp.gpu), &recorded),
        ChartSeries::from_metrics(chart::series_name("llama-11b slow", &fp.gpu), &slow_metrics),
    ];
    assert_eq!(series[0].points.len(), LEVELS.len());
    chart::write_svg(
        &out_dir.join("throughput.svg"),
        "caption-560: images/s",
        &series,
    )
    .unwrap();
    let svg = std::fs::read_to_string(out_dir.join("throughput.svg")).unwrap();
    assert!(svg.contains("caption-560: images/s") && svg.contains("llama-11b slow (1x H100 SXM)"));

    let report = Report::new(
        "throughput/study",
        "caption-560",
        "llama-11b",
        fp,
        "t",
        &slow_metrics,
        Some(slow),
    );
    report.write(&out_dir.join("throughput.json")).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("throughput.json")).unwrap())
            .unwrap();
    assert_eq!(v["gate"]["passed"], false);
    assert_eq!(v["levels"][2]["repeats"].as_array().unwrap().len(), 5);
    assert_eq!(v["levels"][2]["repeats"][0]["failed"], 4);
}
