//! Engine and GPU telemetry (issue 12 item 3): the scraper against the simulated engine's
//! `/metrics` over real loopback HTTP while it serves load, a server without `/metrics`,
//! failing scrapes, and a fake `nvidia-smi` script standing in for the real one.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use eyetest::backend::ImageData;
use eyetest::fixture::truth::encode_png;
use eyetest::sim::{Latency, SimConfig, SimServer};
use eyetest::throughput::telemetry::{
    chart, metrics_url_for, summarise, LevelWindow, Sampler, SourceStatus, TelemetryConfig,
    TelemetrySeries,
};
use serde_json::json;

fn body(tokens: u32) -> serde_json::Value {
    let rgb: Vec<u8> = (0..64 * 48 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let png = encode_png(64, 48, &rgb, None).unwrap();
    let url = ImageData::from_bytes(png).unwrap().data_url.to_string();
    json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": "What is this?"},
        ]}],
        "max_tokens": tokens, "min_tokens": tokens, "ignore_eos": true, "stream": true,
    })
}

fn config(metrics_url: Option<String>, nvidia_smi: Option<OsString>) -> TelemetryConfig {
    TelemetryConfig {
        metrics_url,
        nvidia_smi,
        interval: Duration::from_millis(25),
        timeout: Duration::from_millis(500),
        ..TelemetryConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_the_sim_while_it_serves_a_level() {
    let server = SimServer::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            latency: Latency::fixed(Duration::from_millis(30), Duration::from_millis(10)),
            max_concurrency: 2,
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let handle = Sampler::start(config(Some(metrics_url_for(&server.base_url())), None));
    tokio::time::sleep(Duration::from_millis(60)).await;

    // One level: 8 concurrent streams of 20 tokens against a batch limit of 2.
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", server.base_url());
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.clone(), body(20));
            tokio::spawn(async move {
                let r = client.post(url).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            })
        })
        .collect();
    for r in requests {
        r.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    let series = handle.stop().await;
    let generated = server.stats().generation_tokens;
    server.shutdown().await;

    let e = &series.engine;
    assert_eq!(e.status, SourceStatus::Sampled);
    assert!(e.attempts >= 10, "{}", e.attempts);
    assert_eq!(e.gaps_total, 0, "{:?}", e.gaps);
    assert_eq!(generated, 160);
    let max_of = |name: &str| {
        series
            .named(name)
            .flat_map(|s| s.points.iter().map(|p| p[1]))
            .fold(f64::NEG_INFINITY, f64::max)
    };
    assert_eq!(max_of("vllm:num_requests_running"), 2.0);
    assert!(max_of("vllm:num_requests_waiting") >= 4.0);
    assert_eq!(max_of("vllm:kv_cache_usage_perc"), 1.0);
    assert_eq!(max_of("vllm:generation_tokens_total"), 160.0);
    // Only the known series are kept by default; the sim's HELP-only families are not.
    assert!(series.named("vllm:request_success_total").next().is_none());

    let json = serde_json::to_string(&series).unwrap();
    let back: TelemetrySeries = serde_json::from_str(&json).unwrap();
    assert_eq!(back, series);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_of_a_level() {
    let server = SimServer::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            latency: Latency::fixed(Duration::from_millis(30), Duration::from_millis(10)),
            max_concurrency: 2,
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let handle = Sampler::start(config(Some(metrics_url_for(&server.base_url())), None));
    let origin = handle.origin();
    let start = Instant::now();
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", server.base_url());
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.clone(), body(30));
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
            })
        })
        .collect();
    for r in requests {
        r.await.unwrap();
    }
    let end = Instant::now();
    let series = handle.stop().await;
    server.shutdown().await;
    let windows = [LevelWindow::between("c=6", origin, start, end).with_images_per_s(6.0)];
    let l = &summarise(&series, &windows)[0];
    assert!(l.engine_samples >= 5, "{l:?}");
    let running = l.running.unwrap();
    assert_eq!(running.max, 2.0);
    assert!(running.mean > 1.0, "{running:?}");
    assert!(l.waiting.unwrap().max >= 2.0, "{l:?}");
    assert_eq!(l.kv_cache_usage.unwrap().max, 1.0);
    // 2 streams at a time, one token per 10 ms each: about 200 tokens/s when busy.
    let rate = l.generation_tokens_per_s.unwrap();
    assert!((60.0..=260.0).contains(&rate), "{rate}");
    assert_eq!(l.power_w, None);
    assert_eq!(l.images_per_s_per_watt, None);
}

#[tokio::test]
async fn a_server_without_metrics_is_reported_once() {
    let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let handle = Sampler::start(config(Some(format!("http://{addr}/metrics")), None));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let series = handle.stop().await;
    assert_eq!(series.engine.attempts, 1);
    assert_eq!(series.engine.gaps_total, 0);
    let notes = series.notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("no engine metrics: GET http://")
            && notes[0].contains("answered 404 Not Found"),
        "{notes:?}"
    );
}

#[tokio::test]
async fn failed_scrapes_are_gaps_with_their_errors() {
    // A port nobody listens on: every scrape is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let handle = Sampler::start(config(
        Some(format!("http://user:hunter2@127.0.0.1:{port}/metrics")),
        None,
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let series = handle.stop().await;
    let e = &series.engine;
    assert_eq!(e.status, SourceStatus::Sampled);
    assert!(e.attempts >= 3, "{}", e.attempts);
    assert_eq!(e.gaps_total, e.attempts);
    assert!(e.series.is_empty());
    let notes = series.notes().join("\n");
    assert!(notes.contains("samples failed"), "{notes}");
    assert!(!notes.contains("hunter2"), "{notes}");
    assert!(!serde_json::to_string(&series).unwrap().contains("hunter2"));

    // A page that is not Prometheus text (a 200 HTML page from a proxy) is a gap too.
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async { "<html>login</html>" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let handle = Sampler::start(config(Some(format!("http://{addr}/metrics")), None));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let series = handle.stop().await;
    assert!(series.engine.gaps_total >= 1);
    assert!(
        series.engine.gaps[0]
            .error
            .contains("no Prometheus samples"),
        "{:?}",
        series.engine.gaps
    );
}

#[cfg(unix)]
fn fake_nvidia_smi(dir: &std::path::Path, body: &str) -> OsString {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("nvidia-smi");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.into_os_string()
}

#[cfg(unix)]
#[tokio::test]
async fn a_fake_nvidia_smi_is_sampled_and_summarised() {
    let dir = tempfile::tempdir().unwrap();
    // Checks that it is asked the documented query, then prints two GPUs, one without
    // power readings.
    let smi = fake_nvidia_smi(
        dir.path(),
        r#"case "$1" in --query-gpu=index,name,utilization.gpu,memory.used,memory.total,power.draw) ;; *) echo "bad args: $*" >&2; exit 2 ;; esac
echo "0, NVIDIA H200, 87, 120000, 143771, 612.5"
echo "1, NVIDIA H200, 12, 3000, 143771, [N/A]""#,
    );
    let handle = Sampler::start(config(None, Some(smi)));
    let origin = handle.origin();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let series = handle.stop().await;
    let g = &series.gpu;
    assert_eq!(g.status, SourceStatus::Sampled);
    assert_eq!(g.gaps_total, 0, "{:?}", g.gaps);
    assert_eq!(g.gpus.len(), 2);
    assert!(g.gpus[0].points.len() >= 3, "{}", g.gpus[0].points.len());
    assert_eq!(g.gpus[0].points[0].power_w, Some(612.5));
    assert_eq!(g.gpus[1].points[0].power_w, None);
    assert_eq!(series.engine.status, SourceStatus::Off);

    let w = LevelWindow::between("c=1", origin, origin, origin + Duration::from_secs(1))
        .with_images_per_s(3.0);
    let l = &summarise(&series, &[w])[0];
    assert_eq!(l.gpu_util_pct.unwrap().max, 49.5);
    assert_eq!(l.gpu_mem_used_mib.unwrap().max, 123000.0);
    // One GPU never says its power: the total is unknown, and so is images/s per watt.
    assert_eq!(l.power_w, None);
    assert_eq!(l.images_per_s_per_watt, None);

    // With every GPU's power known, images/s per watt follows.
    let dir2 = tempfile::tempdir().unwrap();
    let smi = fake_nvidia_smi(
        dir2.path(),
        r#"echo "0, NVIDIA H200, 90, 100, 143771, 600""#,
    );
    let handle = Sampler::start(config(None, Some(smi)));
    let origin = handle.origin();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let series = handle.stop().await;
    let w = LevelWindow::between("c=1", origin, origin, origin + Duration::from_secs(1))
        .with_images_per_s(3.0);
    let l = &summarise(&series, &[w])[0];
    assert_eq!(l.power_w.unwrap().mean, 600.0);
    assert_eq!(l.images_per_s_per_watt, Some(0.005));

    let svg_path = dir2.path().join("out/telemetry.svg");
    chart::write_svg(&svg_path, "fake GPU", &series, &[]).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains("GPU power W"));
}

#[cfg(unix)]
#[tokio::test]
async fn no_nvidia_smi_is_said_once_and_a_hanging_one_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent/nvidia-smi").into_os_string();
    let handle = Sampler::start(config(None, Some(missing)));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let series = handle.stop().await;
    assert_eq!(series.gpu.attempts, 1);
    let notes = series.notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("no GPU telemetry: cannot run"),
        "{notes:?}"
    );

    let no_driver = fake_nvidia_smi(
        dir.path(),
        "echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"; exit 9",
    );
    let handle = Sampler::start(config(None, Some(no_driver)));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let series = handle.stop().await;
    assert_eq!(series.gpu.attempts, 1);
    assert!(
        matches!(series.gpu.status, SourceStatus::Unavailable(ref m) if m.contains("has failed"))
    );

    let hang = fake_nvidia_smi(dir.path(), "exec sleep 30");
    let mut c = config(None, Some(hang));
    c.interval = Duration::from_millis(100);
    c.timeout = Duration::from_millis(100);
    let t = Instant::now();
    let handle = Sampler::start(c);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let series = handle.stop().await;
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(series.gpu.gaps_total >= 2, "{:?}", series.gpu);
    assert!(series.gpu.gaps[0].error.contains("did not answer within"));
}
