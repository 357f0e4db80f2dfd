//! The simulated engine over real loopback HTTP, driven by a plain reqwest client, so that
//! what is checked is the wire protocol any OpenAI-compatible client sees.

use std::time::{Duration, Instant};

use eyetest::backend::ImageData;
use eyetest::fixture::truth::{encode_png, Truth};
use eyetest::sim::config::SLOW_MIN_TTFT;
use eyetest::sim::{answer, Behaviour, Latency, SimConfig, SimServer};
use futures_util::StreamExt as _;
use serde_json::{json, Value};

const PROMPT: &str = "How many people are there in this image?";

fn truth() -> Truth {
    Truth {
        kind: "count".into(),
        terse: "2".into(),
        verbose: "There are two people in this image: one on the left, one on the right.".into(),
        wrong: "3".into(),
    }
}

fn png(truth: Option<&Truth>) -> Vec<u8> {
    let (w, h) = (64u32, 48u32);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
    encode_png(w, h, &rgb, truth).unwrap()
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 200) as u8).collect();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode(&rgb, w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn data_url(bytes: Vec<u8>) -> String {
    ImageData::from_bytes(bytes).unwrap().data_url.to_string()
}

fn request(url: &str, stream: bool) -> Value {
    json!({
        "model": "anything",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": PROMPT},
        ]}],
        "max_tokens": 200,
        "temperature": 0.0,
        "stream": stream,
        "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
    })
}

async fn start(behaviour: Behaviour, latency: Latency, max_concurrency: usize) -> SimServer {
    let config = SimConfig {
        behaviour,
        latency,
        max_concurrency,
        seed: 42,
        ..SimConfig::default()
    };
    SimServer::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

async fn post(server: &SimServer, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Status and JSON body of a non-streaming request.
async fn ask(server: &SimServer, body: &Value) -> (u16, Value) {
    let resp = post(server, body).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// One SSE `data:` payload and when it arrived, relative to just before the request was sent.
struct Event {
    at: Duration,
    data: String,
}

async fn stream(server: &SimServer, body: &Value) -> Vec<Event> {
    let t0 = Instant::now();
    let resp = post(server, body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut bytes = resp.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    while let Some(chunk) = bytes.next().await {
        buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data = event.trim().strip_prefix("data: ").expect("data: event");
            events.push(Event {
                at: t0.elapsed(),
                data: data.to_string(),
            });
        }
    }
    assert!(buf.is_empty(), "trailing bytes: {buf:?}");
    events
}

/// The parts of a stream, checked for shape: role chunk, content chunks, usage, [DONE].
struct Streamed {
    contents: Vec<Value>,
    usage: Value,
    events: Vec<Event>,
}

impl Streamed {
    fn text(&self) -> String {
        self.contents
            .iter()
            .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
            .collect()
    }

    fn finish_reason(&self) -> &str {
        self.contents.last().unwrap()["choices"][0]["finish_reason"]
            .as_str()
            .unwrap()
    }
}

fn parse_stream(events: Vec<Event>) -> Streamed {
    let n = events.len();
    assert!(n >= 3, "too few events: {n}");
    assert_eq!(events[n - 1].data, "[DONE]");
    let parsed: Vec<Value> = events[..n - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    for p in &parsed {
        assert_eq!(p["object"], "chat.completion.chunk");
        assert_eq!(p["system_fingerprint"], "eyetest-sim");
        assert!(p["model"].as_str().unwrap().contains("simulated"));
    }
    assert_eq!(
        parsed[0]["choices"][0]["delta"],
        json!({"role": "assistant"})
    );
    let usage = parsed.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    let contents = parsed[1..parsed.len() - 1].to_vec();
    for (i, c) in contents.iter().enumerate() {
        let choice = &c["choices"][0];
        assert!(choice["delta"]["content"].is_string(), "{c}");
        assert!(choice["delta"].get("role").is_none());
        assert_eq!(choice["finish_reason"].is_null(), i + 1 < contents.len());
    }
    Streamed {
        contents,
        usage: usage["usage"].clone(),
        events,
    }
}

fn content(body: &Value) -> &str {
    body["choices"][0]["message"]["content"].as_str().unwrap()
}

fn zero() -> Latency {
    Latency::default()
}

#[tokio::test]
async fn models_endpoint_lists_the_sim_model_and_says_simulated() {
    let server = start(Behaviour::Terse, zero(), 0).await;
    let client = reqwest::Client::new();
    let models: Value = client
        .get(format!("{}/models", server.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    let id = models["data"][0]["id"].as_str().unwrap();
    assert_eq!(id, server.model_id());
    assert!(id.starts_with("eyetest-sim/terse"), "{id}");
    assert!(
        id.contains("simulated") && id.contains("not a real model"),
        "{id}"
    );
    let health = client
        .get(format!("http://{}/health", server.local_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let missing = client
        .get(format!("{}/nope", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v1/chat/completions"));
    server.shutdown().await;
}

#[tokio::test]
async fn non_streaming_answers_follow_the_behaviour_and_the_truth() {
    let url = data_url(png(Some(&truth())));
    let t = truth();
    for (behaviour, expected) in [
        (Behaviour::Terse, &t.terse),
        (Behaviour::Verbose, &t.verbose),
        (Behaviour::Wrong, &t.wrong),
    ] {
        let server = start(behaviour, zero(), 0).await;
        let (status, body) = ask(&server, &request(&url, false)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(content(&body), expected, "{behaviour}");
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["system_fingerprint"], "eyetest-sim");
        assert_eq!(body["model"], eyetest::sim::model_id(behaviour));
        assert_eq!(body["choices"][0]["message"]["role"], "assistant");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        let n = answer::tokenize(expected).len() as u64;
        assert_eq!(body["usage"]["completion_tokens"], n);
        // 8 prompt words + one 560x560 tile.
        assert_eq!(body["usage"]["prompt_tokens"], 8 + 1601);
        assert_eq!(body["usage"]["total_tokens"], 8 + 1601 + n);
        let stats = server.stats();
        assert_eq!((stats.received, stats.completed), (1, 1));
        server.shutdown().await;
    }
}

#[tokio::test]
async fn images_without_truth_get_a_generic_caption() {
    let server = start(Behaviour::Verbose, zero(), 0).await;
    let (status, body) = ask(&server, &request(&data_url(jpeg(600, 300)), false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content(&body), "A 600x300 image.");
    // 600x300 is two tiles wide, one high.
    assert_eq!(body["usage"]["prompt_tokens"], 8 + 2 * 1601);
    let (_, body) = ask(&server, &request(&data_url(png(None)), false)).await;
    assert_eq!(content(&body), "A 64x48 image.");
    server.shutdown().await;
}

/// 560x560 noise: the size of a capacity benchmark's images, big enough that the engine
/// memoises whole request bodies; repeated and varied requests must still answer correctly.
#[tokio::test]
async fn repeated_large_requests_answer_like_the_first() {
    let server = start(Behaviour::Verbose, zero(), 0).await;
    let mut x = 7u64;
    let rgb: Vec<u8> = (0..560 * 560 * 3)
        .map(|_| {
            x = answer::splitmix64(x);
            x as u8
        })
        .collect();
    let url = data_url(encode_png(560, 560, &rgb, Some(&truth())).unwrap());
    assert!(url.len() > 1_000_000);
    let body = request(&url, false);
    for _ in 0..3 {
        let (status, whole) = ask(&server, &body).await;
        assert_eq!((status, content(&whole)), (200, truth().verbose.as_str()));
    }
    let mut short = body.clone();
    short["max_tokens"] = json!(2);
    let (_, whole) = ask(&server, &short).await;
    assert_eq!(content(&whole), "There are");
    let s = parse_stream(stream(&server, &request(&url, true)).await);
    assert_eq!(s.text(), truth().verbose);
    let mut broken = body.clone();
    broken["messages"][0]["content"][0]["image_url"]["url"] = json!(url.replace("A", "_"));
    assert_eq!(ask(&server, &broken).await.0, 400);
    assert_eq!(ask(&server, &body).await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn streaming_sends_role_tokens_usage_done_and_matches_non_streaming() {
    let server = start(Behaviour::Verbose, zero(), 0).await;
    let url = data_url(png(Some(&truth())));
    let (_, whole) = ask(&server, &request(&url, false)).await;
    let s = parse_stream(stream(&server, &request(&url, true)).await);
    assert_eq!(s.text(), content(&whole));
    assert_eq!(s.text(), truth().verbose);
    assert_eq!(s.usage["completion_tokens"], s.contents.len() as u64);
    assert_eq!(s.usage, whole["usage"]);
    assert_eq!(s.finish_reason(), "stop");
    assert!(s.contents.len() > 10);

    // Without include_usage there is no usage chunk.
    let mut body = request(&url, true);
    body["stream_options"] = Value::Null;
    let events = stream(&server, &body).await;
    assert_eq!(events.len(), 1 + s.contents.len() + 1);
    server.shutdown().await;
}

#[tokio::test]
async fn failing_answers_500_with_a_json_error() {
    let server = start(Behaviour::Failing, zero(), 0).await;
    let (status, body) = ask(&server, &request(&data_url(png(Some(&truth()))), false)).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        json!({"error": {"message": "simulated failure (behaviour = failing)", "type": "server_error"}})
    );
    let resp = post(&server, &request(&data_url(png(None)), true)).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(server.stats().failed, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn flaky_mixes_503_and_200_deterministically_for_a_seed() {
    let url = data_url(png(Some(&truth())));
    let mut patterns = Vec::new();
    for seed in [7, 7, 8] {
        let config = SimConfig {
            behaviour: Behaviour::Flaky,
            seed,
            ..SimConfig::default()
        };
        let server = SimServer::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let mut statuses = Vec::new();
        for _ in 0..50 {
            let (status, body) = ask(&server, &request(&url, false)).await;
            match status {
                200 => assert_eq!(content(&body), "2"),
                503 => assert!(body["error"]["message"].as_str().unwrap().contains("flaky")),
                other => panic!("unexpected status {other}: {body}"),
            }
            statuses.push(status);
        }
        let failures = statuses.iter().filter(|&&s| s == 503).count();
        assert!((5..=25).contains(&failures), "{failures} of 50 failed");
        let stats = server.stats();
        assert_eq!(
            (stats.failed, stats.completed),
            (failures as u64, 50 - failures as u64)
        );
        patterns.push(statuses);
        server.shutdown().await;
    }
    assert_eq!(patterns[0], patterns[1], "same seed, same failures");
    assert_ne!(patterns[0], patterns[2], "another seed, other failures");
}

fn five_token_truth() -> Truth {
    Truth {
        terse: "one two three four five".into(),
        ..truth()
    }
}

#[tokio::test]
async fn latency_follows_ttft_and_per_token() {
    let latency = Latency::fixed(Duration::from_millis(100), Duration::from_millis(20));
    let server = start(Behaviour::Terse, latency, 0).await;
    let url = data_url(png(Some(&five_token_truth())));
    // Warm the decode cache so that the timed requests measure only the latency model.
    ask(&server, &request(&url, false)).await;

    let s = parse_stream(stream(&server, &request(&url, true)).await);
    assert_eq!(s.contents.len(), 5);
    let content_at: Vec<Duration> = s.events[1..6].iter().map(|e| e.at).collect();
    let (first, last) = (content_at[0], content_at[4]);
    assert!(first >= Duration::from_millis(100), "TTFT {first:?}");
    assert!(last >= Duration::from_millis(180), "E2E {last:?}");
    assert!(last < Duration::from_millis(330), "E2E {last:?}");
    // Never early: token k is due 100 + 20k ms after the request (late is load, not error).
    for (k, at) in content_at.iter().enumerate() {
        assert!(
            *at >= Duration::from_millis(100 + 20 * k as u64),
            "token {k} at {at:?}"
        );
    }

    let t0 = Instant::now();
    let (_, body) = ask(&server, &request(&url, false)).await;
    let total = t0.elapsed();
    assert_eq!(content(&body), "one two three four five");
    assert!(total >= Duration::from_millis(180), "{total:?}");
    assert!(total < Duration::from_millis(330), "{total:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn bigger_images_take_longer_to_prefill() {
    let latency = Latency {
        prefill_per_tile: Duration::from_millis(100),
        ..Latency::default()
    };
    let server = start(Behaviour::Terse, latency, 0).await;
    // 600x300 is two tiles.
    let url = data_url(jpeg(600, 300));
    ask(&server, &request(&url, false)).await;
    let t0 = Instant::now();
    let (status, _) = ask(&server, &request(&url, false)).await;
    let elapsed = t0.elapsed();
    assert_eq!(status, 200);
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(350), "{elapsed:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn slow_is_slow_even_with_zero_latency() {
    let server = start(Behaviour::Slow, zero(), 0).await;
    let t0 = Instant::now();
    let (status, body) = ask(&server, &request(&data_url(png(Some(&truth()))), false)).await;
    assert_eq!((status, content(&body)), (200, "2"));
    assert!(t0.elapsed() >= SLOW_MIN_TTFT);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_queues_requests_in_waves() {
    let latency = Latency::fixed(Duration::from_millis(100), Duration::ZERO);
    let server = start(Behaviour::Terse, latency, 2).await;
    let url = data_url(png(Some(&truth())));
    ask(&server, &request(&url, false)).await;

    let t0 = Instant::now();
    let body = request(&url, false);
    let answers = futures_util::future::join_all((0..6).map(|_| ask(&server, &body))).await;
    let elapsed = t0.elapsed();
    assert!(answers.iter().all(|(s, _)| *s == 200));
    let stats = server.stats();
    assert_eq!(stats.max_in_flight, 2);
    assert_eq!((stats.completed, stats.in_flight), (7, 0));
    // Three waves of two, 100 ms each.
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(450), "{elapsed:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn max_tokens_truncates_with_finish_reason_length() {
    let server = start(Behaviour::Verbose, zero(), 0).await;
    let url = data_url(png(Some(&truth())));
    let mut body = request(&url, false);
    body["max_tokens"] = json!(3);
    let (_, whole) = ask(&server, &body).await;
    assert_eq!(content(&whole), "There are two");
    assert_eq!(whole["choices"][0]["finish_reason"], "length");
    assert_eq!(whole["usage"]["completion_tokens"], 3);

    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let s = parse_stream(stream(&server, &body).await);
    assert_eq!(s.text(), "There are two");
    assert_eq!(s.finish_reason(), "length");
    assert_eq!(s.usage["completion_tokens"], 3);
    server.shutdown().await;
}

#[tokio::test]
async fn ignore_eos_and_min_tokens_pad_the_answer() {
    let server = start(Behaviour::Terse, zero(), 0).await;
    let url = data_url(png(Some(&truth())));
    let mut body = request(&url, true);
    body["max_tokens"] = json!(64);
    body["ignore_eos"] = json!(true);
    let s = parse_stream(stream(&server, &body).await);
    assert_eq!(s.contents.len(), 64);
    assert_eq!(s.usage["completion_tokens"], 64);
    assert_eq!(s.finish_reason(), "length");
    assert!(
        s.text().starts_with("2 This is simulated filler"),
        "{}",
        s.text()
    );

    let mut body = request(&url, false);
    body["min_tokens"] = json!(10);
    let (_, whole) = ask(&server, &body).await;
    assert_eq!(whole["usage"]["completion_tokens"], 10);
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_400_with_a_json_message() {
    let server = start(Behaviour::Terse, zero(), 0).await;
    let truncated_png = {
        let mut p = png(None);
        p.truncate(p.len() / 2);
        p
    };
    let b64 = |b: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    let cases = [
        (
            "data:image/png;base64,%%%not-base64%%%".to_string(),
            "invalid base64",
        ),
        (
            format!("data:image/png;base64,{}", b64(b"hello, not an image")),
            "not a PNG or JPEG",
        ),
        (
            format!("data:image/png;base64,{}", b64(&truncated_png)),
            "could not be decoded",
        ),
        (
            "https://example.com/cat.png".to_string(),
            "does not fetch remote images",
        ),
    ];
    for (url, expected) in &cases {
        let (status, body) = ask(&server, &request(url, false)).await;
        assert_eq!(status, 400, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    let text_only = json!({"messages": [{"role": "user", "content": PROMPT}]});
    let (status, body) = ask(&server, &text_only).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no image_url content part"));

    let resp = reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("content-type", "application/json")
        .body("{\"messages\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("invalid JSON"));

    let mut zero_tokens = request(&data_url(png(None)), false);
    zero_tokens["max_tokens"] = json!(0);
    assert_eq!(ask(&server, &zero_tokens).await.0, 400);

    assert_eq!(server.stats().rejected, cases.len() as u64 + 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_is_counted_as_cancelled() {
    let latency = Latency::fixed(Duration::ZERO, Duration::from_millis(20));
    let server = start(Behaviour::Terse, latency, 0).await;
    let mut body = request(&data_url(png(None)), true);
    body["max_tokens"] = json!(1000);
    body["ignore_eos"] = json!(true);
    let resp = post(&server, &body).await;
    let mut bytes = resp.bytes_stream();
    bytes.next().await.unwrap().unwrap();
    drop(bytes);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().cancelled == 0 {
        assert!(Instant::now() < deadline, "{:?}", server.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.stats().in_flight, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn banner_says_it_is_simulated() {
    let config = SimConfig {
        latency: Latency::fixed(Duration::from_millis(50), Duration::from_millis(10)),
        max_concurrency: 8,
        ..SimConfig::default()
    };
    let line = eyetest::sim::banner("127.0.0.1:8000".parse().unwrap(), &config);
    assert_eq!(
        line,
        "eyetest-sim: SIMULATED engine (a test double, not a model) listening on \
         http://127.0.0.1:8000/v1 (behaviour=terse, ttft=50ms, per_token=10ms, max_concurrency=8)"
    );
}
