//! The simulated engine does a server's work and paces tokens honestly (issue 12 item 6),
//! checked over real loopback HTTP with a plain reqwest client.

use std::time::{Duration, Instant};

use eyetest::backend::ImageData;
use eyetest::fixture::truth::encode_png;
use eyetest::sim::{Latency, SimConfig, SimServer};
use futures_util::StreamExt as _;
use serde_json::{json, Value};

/// A noise image big enough (> 64 KiB as base64) that the memo would take its body.
fn big_png_url() -> String {
    let (w, h) = (160u32, 160u32);
    let mut x: u32 = 12345;
    let rgb: Vec<u8> = (0..w * h * 3)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let png = encode_png(w, h, &rgb, None).unwrap();
    assert!(png.len() > 64 * 1024, "{}", png.len());
    ImageData::from_bytes(png).unwrap().data_url.to_string()
}

fn request(url: &str, stream: bool, tokens: u32) -> Value {
    json!({
        "model": "anything",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": "Describe this image."},
        ]}],
        "max_tokens": tokens,
        "min_tokens": tokens,
        "ignore_eos": true,
        "stream": stream,
    })
}

async fn metric(base: &str, name: &str) -> f64 {
    let root = base.trim_end_matches("/v1");
    let page = reqwest::get(format!("{root}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page = eyetest::throughput::telemetry::prometheus::parse(&page);
    let value = page
        .named(name)
        .next()
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
        .value;
    value
}

async fn work_done(memoize: bool) -> (u64, u64, f64) {
    let server = SimServer::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            memoize,
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let body = request(&big_png_url(), false, 3);
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let r = client
            .post(format!("{}/chat/completions", server.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let s = server.stats();
    let decoded = metric(&server.base_url(), "eyetest_sim:images_decoded_total").await;
    server.shutdown().await;
    (s.bodies_parsed, s.images_decoded, decoded)
}

#[tokio::test]
async fn identical_requests_are_each_parsed_and_decoded_unless_memoised() {
    assert_eq!(work_done(false).await, (2, 2, 2.0));
    assert_eq!(work_done(true).await, (1, 1, 1.0));
}

/// Arrival times of the content events of one streamed answer, as the client sees them.
async fn token_times(base_url: &str, body: &Value, on_token: impl Fn(usize)) -> Vec<Instant> {
    let resp = reqwest::Client::new()
        .post(format!("{base_url}/chat/completions"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut times = Vec::new();
    while let Some(chunk) = stream.next().await {
        let now = Instant::now();
        buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if event.contains("\"content\":") {
                times.push(now);
                on_token(times.len());
            }
        }
    }
    times
}

/// The engine's runtime is blocked for five TPOTs in the middle of an answer, as a loaded
/// machine would stall it. The tokens after the stall must come late, one TPOT apart, not
/// all at once to catch up with a schedule.
#[test]
fn a_stalled_engine_is_late_and_never_bursts() {
    const TPOT: Duration = Duration::from_millis(50);
    const TOKENS: u32 = 12;
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stall_tx, stall_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // One thread, one current-thread runtime: blocking it stops the engine entirely.
    let engine = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = SimConfig {
                latency: Latency::fixed(Duration::from_millis(20), TPOT),
                ..SimConfig::default()
            };
            let server = SimServer::start("127.0.0.1:0".parse().unwrap(), config)
                .await
                .unwrap();
            addr_tx.send(server.base_url()).unwrap();
            let mut stall_rx = stall_rx;
            tokio::spawn(async move {
                while stall_rx.recv().await.is_some() {
                    std::thread::sleep(5 * TPOT);
                }
            });
            let _ = stop_rx.await;
            server.shutdown().await;
        });
    });
    let base = addr_rx.recv().unwrap();
    let client_rt = tokio::runtime::Runtime::new().unwrap();
    let body = request(&big_png_url(), true, TOKENS);
    let times = client_rt.block_on(token_times(&base, &body, |n| {
        if n == 3 {
            let _ = stall_tx.send(());
        }
    }));
    let _ = stop_tx.send(());
    engine.join().unwrap();

    assert_eq!(times.len(), TOKENS as usize);
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
        .collect();
    let tpot = TPOT.as_secs_f64() * 1000.0;
    // The stall happened (so the test can tell bursting from pacing)...
    assert!(
        gaps.iter().any(|&g| g >= 3.0 * tpot),
        "no stall seen: {gaps:?}"
    );
    // ...and no token came much sooner than one TPOT after the one before it.
    assert!(
        gaps.iter().all(|&g| g >= 0.8 * tpot),
        "tokens came in a burst (gaps in ms, tpot {tpot}): {gaps:?}"
    );
}

/// The engine publishes its own side of TTFT and ITL (vLLM's histogram names, sum and
/// count) so a benchmark can tell its client's measurement error from the engine's
/// lateness. Fixed 40 ms TTFT and 15 ms per token: the engine's means are at least those,
/// the client's TTFT is at least the engine's, and every token but the first is one gap.
#[tokio::test]
async fn the_engine_publishes_its_own_ttft_and_itl() {
    const TOKENS: u32 = 6;
    let config = SimConfig {
        latency: Latency::fixed(Duration::from_millis(40), Duration::from_millis(15)),
        ..SimConfig::default()
    };
    let server = SimServer::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let base = server.base_url();
    let body = request(&big_png_url(), true, TOKENS);
    let start = Instant::now();
    let times = token_times(&base, &body, |_| {}).await;
    let client_ttft = (times[0] - start).as_secs_f64();
    let ttft_sum = metric(&base, "vllm:time_to_first_token_seconds_sum").await;
    let ttft_n = metric(&base, "vllm:time_to_first_token_seconds_count").await;
    let itl_sum = metric(&base, "vllm:inter_token_latency_seconds_sum").await;
    let itl_n = metric(&base, "vllm:inter_token_latency_seconds_count").await;
    server.shutdown().await;
    assert_eq!((ttft_n, itl_n), (1.0, f64::from(TOKENS - 1)));
    assert!(
        (0.040..client_ttft).contains(&ttft_sum),
        "engine TTFT {ttft_sum} s, client {client_ttft} s"
    );
    let itl_mean = itl_sum / itl_n;
    assert!(
        (0.015..0.5).contains(&itl_mean),
        "engine ITL mean {itl_mean} s"
    );
}
