//! Scripted OpenAI-compatible servers on loopback, and the requests and configs the tests
//! send them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use eyetest::backend::openai::{http_client_for, OpenAiClient, OpenAiConfig};
use eyetest::backend::{ChatRequest, ImageData};
use serde_json::{json, Value};

pub const KEY: &str = "sk-eyetest-SECRET-1234567890abcdef";

pub fn question(stream: bool) -> ChatRequest {
    let png = b"\x89PNG\r\n\x1a\nonly the magic matters here".to_vec();
    ChatRequest {
        model: "test-model".into(),
        prompt: "How many people are there in this image?".into(),
        image: Arc::new(ImageData::from_bytes(png).unwrap()),
        max_tokens: 16,
        temperature: 0.0,
        seed: Some(0),
        stream,
        extra: Default::default(),
    }
}

pub fn config(base_url: &str) -> OpenAiConfig {
    OpenAiConfig {
        base_url: base_url.to_owned(),
        api_key: None,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        max_retries: 3,
        backoff: Duration::from_millis(10),
    }
}

/// A client of its own per test: each test has its own runtime, and pooled connections must
/// not outlive the runtime that opened them.
pub fn client(config: OpenAiConfig) -> OpenAiClient {
    OpenAiClient::new(http_client_for(&config), config)
}

pub struct Server {
    pub base: String,
    pub hits: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Server {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn chat_url(&self) -> String {
        format!("{}/chat/completions", self.base)
    }

    pub fn request(&self, i: usize) -> (HeaderMap, Value) {
        let seen = self.seen.lock().unwrap();
        let (headers, body) = &seen[i];
        (headers.clone(), serde_json::from_slice(body).unwrap())
    }
}

pub async fn spawn(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Without TCP_NODELAY, Nagle's algorithm could bunch paced chunks and skew ITL checks.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

/// Serves `/v1/chat/completions` and `/v1/models`, answering the `n`th request (from 0)
/// with `script(n, headers)` and recording every request.
pub async fn serve<F>(script: F) -> Server
where
    F: Fn(usize, &HeaderMap) -> Response + Send + Sync + 'static,
{
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let (h, s) = (hits.clone(), seen.clone());
    let handler = move |headers: HeaderMap, body: Bytes| {
        let n = h.fetch_add(1, Ordering::SeqCst);
        s.lock().unwrap().push((headers.clone(), body));
        let response = script(n, &headers);
        async move { response }
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(handler.clone()))
        .route("/v1/models", get(handler));
    Server {
        base: spawn(app).await,
        hits,
        seen,
    }
}

pub fn json_reply(status: u16, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

pub fn completion(text: &str) -> String {
    json!({
        "id": "cmpl-1",
        "object": "chat.completion",
        "model": "m-json",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    })
    .to_string()
}

/// One piece of a scripted SSE body.
pub enum Part {
    Send(String),
    /// Fail the body stream, which makes hyper reset the connection mid-response.
    Abort,
}

pub fn sse_reply(parts: Vec<Part>, gap: Duration) -> Response {
    let stream = futures_util::stream::unfold(
        (parts.into_iter(), true),
        move |(mut parts, first)| async move {
            if !first {
                tokio::time::sleep(gap).await;
            }
            let item = match parts.next()? {
                Part::Send(text) => Ok(Bytes::from(text)),
                Part::Abort => Err(std::io::Error::other("scripted abort")),
            };
            Some((item, (parts, false)))
        },
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

pub fn delta(delta: Value, finish: Option<&str>) -> Part {
    let chunk = json!({
        "id": "c1", "object": "chat.completion.chunk", "model": "m-stream",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    Part::Send(format!("data: {chunk}\n\n"))
}

pub fn role() -> Part {
    delta(json!({"role": "assistant"}), None)
}

pub fn content(text: &str) -> Part {
    delta(json!({"content": text}), None)
}

pub fn finish() -> Part {
    delta(json!({}), Some("stop"))
}

pub fn usage_only(prompt: u64, completion: u64) -> Part {
    let chunk = json!({
        "id": "c1", "object": "chat.completion.chunk", "model": "m-stream", "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    });
    Part::Send(format!("data: {chunk}\n\n"))
}

pub fn done() -> Part {
    Part::Send("data: [DONE]\n\n".into())
}

pub fn gap() -> Duration {
    Duration::from_millis(5)
}

/// An address where nothing listens: bind a port, then let it go.
pub fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
