//! The HTTP side: routes, request validation, admission (the batch limit), and the timed
//! response, streamed or not.
//!
//! When tokens are due is [`super::pacing`]'s business. Every request's body is parsed and
//! its image decoded, unless [`SimConfig::memoize`] asks to reuse the work for identical
//! requests ([`super::memo`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::answer::{self, Budget, Plan, MAX_OUTPUT_TOKENS};
use super::config::{Behaviour, Latency, SimConfig};
use super::image::{ImageInfo, ImageProblem};
use super::memo::Memo;
use super::pacing::{after, sleep_until, Clock};
use super::{model_id, SimStats, SYSTEM_FINGERPRINT};
use crate::backend::wire::{ChatCompletionRequest, ModelCard, ModelList};

/// Large enough for a 4-tile photo as base64; axum's 2 MiB default is not.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Shared state behind every route.
pub(crate) struct Engine {
    pub(super) config: SimConfig,
    pub(super) latency: Latency,
    model_id: String,
    /// `model_id` as a JSON string literal, spliced into pre-serialized chunks.
    pub(super) model_json: String,
    semaphore: Option<Arc<Semaphore>>,
    counters: Counters,
    /// Used only with [`SimConfig::memoize`].
    images: Memo<Arc<ImageInfo>>,
    requests: Memo<Job>,
    /// Set when the server stops, so that `hang` and `stall` let go of their connections
    /// instead of holding up a graceful shutdown.
    closing: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    cancelled: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    waiting: AtomicU64,
    bodies_parsed: AtomicU64,
    images_decoded: AtomicU64,
    prompt_tokens: AtomicU64,
    generation_tokens: AtomicU64,
    ttft_ns_sum: AtomicU64,
    ttft_count: AtomicU64,
    itl_ns_sum: AtomicU64,
    itl_count: AtomicU64,
}

impl Engine {
    pub(crate) fn new(config: SimConfig) -> Arc<Self> {
        let model_id = model_id(config.behaviour);
        let model_json = serde_json::to_string(&model_id).unwrap_or_else(|_| "\"\"".into());
        let semaphore = (config.max_concurrency > 0).then(|| {
            Arc::new(Semaphore::new(
                config.max_concurrency.min(Semaphore::MAX_PERMITS),
            ))
        });
        Arc::new(Self {
            latency: config.effective_latency(),
            config,
            model_id,
            model_json,
            semaphore,
            counters: Counters::default(),
            images: Memo::default(),
            requests: Memo::default(),
            closing: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Lets `hang` and `stall` requests go: the server is stopping.
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Engine::close`] has been called (at once if it already has been).
    pub(super) async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|closing| *closing).await;
    }

    /// Counts a request that got a simulated fault without ever holding a batch slot.
    pub(super) fn count_failed(&self) {
        self.counters.failed.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn model_id(&self) -> &str {
        &self.model_id
    }

    pub(crate) fn stats(&self) -> SimStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        SimStats {
            received: get(&c.received),
            completed: get(&c.completed),
            failed: get(&c.failed),
            rejected: get(&c.rejected),
            cancelled: get(&c.cancelled),
            in_flight: get(&c.in_flight),
            max_in_flight: get(&c.max_in_flight),
            waiting: get(&c.waiting),
            bodies_parsed: get(&c.bodies_parsed),
            images_decoded: get(&c.images_decoded),
            prompt_tokens: get(&c.prompt_tokens),
            generation_tokens: get(&c.generation_tokens),
            ttft_ns_sum: get(&c.ttft_ns_sum),
            ttft_count: get(&c.ttft_count),
            itl_ns_sum: get(&c.itl_ns_sum),
            itl_count: get(&c.itl_count),
        }
    }

    /// Records a token's send: the first one's delay since the request was parsed (TTFT),
    /// or the gap since the previous token (ITL).
    pub(super) fn time_token(&self, first: bool, since: Duration) {
        let c = &self.counters;
        let ns = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        let (sum, count) = if first {
            (&c.ttft_ns_sum, &c.ttft_count)
        } else {
            (&c.itl_ns_sum, &c.itl_count)
        };
        sum.fetch_add(ns, Ordering::Relaxed);
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts tokens as a real engine's counters do: the prompt once prefill is done, each
    /// output token when it is sent.
    pub(super) fn count_tokens(&self, prompt: u64, generated: u64) {
        let c = &self.counters;
        c.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
        c.generation_tokens.fetch_add(generated, Ordering::Relaxed);
    }

    /// Waits for a batch slot (FIFO: tokio's semaphore is fair) and counts the request in.
    /// The slot's clock starts at `arrival` if a slot was free at once, else when one freed
    /// up (see [`super::pacing`]).
    pub(super) async fn admit(self: &Arc<Self>, arrival: Instant) -> Slot {
        let (permit, start) = match &self.semaphore {
            None => (None, arrival),
            Some(s) => match s.clone().try_acquire_owned() {
                Ok(p) => (Some(p), arrival),
                Err(_) => {
                    let waiting = Waiting::new(&self.counters.waiting);
                    let permit = s.clone().acquire_owned().await.ok();
                    drop(waiting);
                    (permit, Instant::now())
                }
            },
        };
        let c = &self.counters;
        let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Slot {
            engine: self.clone(),
            _permit: permit,
            done: false,
            start,
        }
    }

    pub(super) fn clock(&self, request: u64) -> Clock {
        Clock::new(self.config.seed, request, &self.latency)
    }
}

/// Counts a request as waiting for a batch slot for as long as it lives, so that a client
/// that gives up while queued is not counted forever.
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn new(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A request's batch slot. Dropping it without [`Slot::complete`] means the client went away
/// mid-answer; it is counted as cancelled.
pub(super) struct Slot {
    engine: Arc<Engine>,
    _permit: Option<OwnedSemaphorePermit>,
    done: bool,
    /// Where the request's clock starts ([`Engine::admit`]).
    pub(super) start: Instant,
}

impl Slot {
    pub(super) fn complete(mut self) {
        self.done = true;
        self.engine
            .counters
            .completed
            .fetch_add(1, Ordering::SeqCst);
    }

    /// Counts the request as failed (a simulated fault) while it keeps its slot, for faults
    /// that go on holding the connection; it is never counted twice.
    pub(super) fn fail(&mut self) {
        if !self.done {
            self.done = true;
            self.engine.count_failed();
        }
    }
}

impl Drop for Slot {
    // Runs before the permit field is dropped, so the next request's in-flight increment
    // always follows this decrement and `max_in_flight` never overshoots the limit.
    fn drop(&mut self) {
        let c = &self.engine.counters;
        c.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.done {
            c.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// An OpenAI-style error body: `{"error":{"message":..,"type":..}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) message: String,
    pub(super) kind: &'static str,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
        }
    }
}

impl From<ImageProblem> for ApiError {
    fn from(p: ImageProblem) -> Self {
        match p {
            ImageProblem::Internal(_) => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: p.to_string(),
                kind: "server_error",
            },
            _ => Self::bad_request(p.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": self.kind}});
        (self.status, Json(body)).into_response()
    }
}

pub(crate) fn app(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/health", get(health))
        .route("/metrics", get(super::metrics::page))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(engine)
}

async fn models(State(engine): State<Arc<Engine>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list".into(),
        data: vec![ModelCard {
            id: engine.model_id.clone(),
            object: "model".into(),
            owned_by: SYSTEM_FINGERPRINT.into(),
        }],
    })
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "engine": SYSTEM_FINGERPRINT, "simulated": true}))
}

const ROUTES: &str = "GET /v1/models, POST /v1/chat/completions, GET /health, GET /metrics";

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("no route for {method} {uri}; the simulated engine serves {ROUTES}"),
        kind: "invalid_request_error",
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} is not allowed on {uri}; the simulated engine serves {ROUTES}"),
        kind: "invalid_request_error",
    }
}

/// A validated request, ready to be timed and sent; apart from `arrival`, independent of the
/// request, so that identical bodies can share one.
#[derive(Clone)]
pub(super) struct Job {
    /// When this request's body had been read; set per request, after any memo lookup.
    pub(super) arrival: Instant,
    pub(super) plan: Arc<Plan>,
    pub(super) stream: bool,
    pub(super) include_usage: bool,
    pub(super) tiles: u32,
}

async fn chat(State(engine): State<Arc<Engine>>, body: Result<Bytes, BytesRejection>) -> Response {
    let arrival = Instant::now();
    let c = &engine.counters;
    let index = c.received.fetch_add(1, Ordering::SeqCst);
    let fault = engine.config.fault_for(index);
    // HTTP errors and `hang` come before any validation: a down or overloaded engine does not
    // look at what it was sent.
    if let Some(f) = fault {
        if let Some(response) = super::fault::before_validation(&engine, f).await {
            return response;
        }
    }
    let job = match body {
        Ok(body) => prepare(&engine, &body)
            .await
            .map(|job| Job { arrival, ..job }),
        Err(rejection) => Err(ApiError {
            status: rejection.status(),
            message: format!("could not read the request body: {}", rejection.body_text()),
            kind: "invalid_request_error",
        }),
    };
    match job {
        Err(e) => {
            c.rejected.fetch_add(1, Ordering::SeqCst);
            e.into_response()
        }
        Ok(job) => match fault {
            Some(f) if super::fault::replaces_the_answer(f, job.stream) => {
                super::fault::answer(engine, job, index, f).await
            }
            _ if job.stream => super::sse::stream_response(engine, job, index, fault),
            _ => complete(engine, job, index, fault == Some(Behaviour::NoUsage)).await,
        },
    }
}

/// With [`SimConfig::memoize`], bodies at least this big carry a real image and are memoised
/// whole ([`super::memo`]): parsing 1.3 MB of JSON costs more than the rest of a
/// zero-latency request. Small bodies are cheap to parse and would only churn the memo.
const MEMO_MIN_BODY: usize = 64 * 1024;

async fn prepare(engine: &Engine, body: &[u8]) -> Result<Job, ApiError> {
    if engine.config.memoize && body.len() >= MEMO_MIN_BODY {
        engine
            .requests
            .get_or_try_init(body, || parse(engine, body))
            .await
    } else {
        parse(engine, body).await
    }
}

async fn parse(engine: &Engine, body: &[u8]) -> Result<Job, ApiError> {
    engine
        .counters
        .bodies_parsed
        .fetch_add(1, Ordering::Relaxed);
    let req: ChatCompletionRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON request body: {e}")))?;
    let budget = budget(&req)?;
    let (url, prompt) = req.image_and_prompt();
    // A judge prompt is graded from its text; the image, if sent, is not looked at.
    if let Some(text) = super::judge::reply(engine.config.behaviour, &prompt) {
        return Ok(Job {
            arrival: Instant::now(),
            plan: Arc::new(Plan::new(text, budget, answer::prompt_tokens(&prompt, 0))),
            stream: req.stream,
            include_usage: req.stream_options.is_some_and(|o| o.include_usage),
            tiles: 0,
        });
    }
    let url = url.ok_or_else(|| {
        ApiError::bad_request(
            "no image_url content part: the simulated engine answers questions about an image; \
             send one as an image_url part with a base64 data URL",
        )
    })?;
    let info = if engine.config.memoize {
        engine
            .images
            .get_or_try_init(url.as_bytes(), || decode(engine, url))
            .await?
    } else {
        decode(engine, url).await?
    };
    let tiles = answer::tiles(info.width, info.height);
    let text = answer::answer_text(
        engine.config.behaviour,
        info.truth.as_ref(),
        info.width,
        info.height,
    );
    Ok(Job {
        arrival: Instant::now(),
        plan: Arc::new(Plan::new(
            text,
            budget,
            answer::prompt_tokens(&prompt, tiles),
        )),
        stream: req.stream,
        include_usage: req.stream_options.is_some_and(|o| o.include_usage),
        tiles,
    })
}

/// Decodes for real, on the blocking pool: it takes milliseconds and must not delay other
/// streams' tokens.
async fn decode(engine: &Engine, url: &str) -> Result<Arc<ImageInfo>, ImageProblem> {
    engine
        .counters
        .images_decoded
        .fetch_add(1, Ordering::Relaxed);
    super::image::decode_blocking(url).await
}

/// Reads `max_tokens` (or `max_completion_tokens`) and vLLM's `min_tokens` / `ignore_eos`,
/// rejecting what a real engine would reject.
fn budget(req: &ChatCompletionRequest) -> Result<Budget, ApiError> {
    let extra_u32 = |name: &str| -> Result<Option<u32>, ApiError> {
        match req.extra.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(n.min(u32::MAX as u64) as u32))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{name} must be a non-negative integer"))
                }),
        }
    };
    let max_tokens = match req.max_tokens {
        Some(m) => Some(m),
        None => extra_u32("max_completion_tokens")?,
    };
    let min_tokens = extra_u32("min_tokens")?.unwrap_or(0);
    let ignore_eos = match req.extra.get("ignore_eos") {
        None | Some(serde_json::Value::Null) => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| ApiError::bad_request("ignore_eos must be a boolean"))?,
    };
    if max_tokens == Some(0) {
        return Err(ApiError::bad_request("max_tokens must be at least 1"));
    }
    let limit = MAX_OUTPUT_TOKENS;
    if max_tokens.is_some_and(|m| m > limit) || min_tokens > limit {
        return Err(ApiError::bad_request(format!(
            "max_tokens / min_tokens above the simulated context length ({limit})"
        )));
    }
    if max_tokens.is_some_and(|m| min_tokens > m) {
        return Err(ApiError::bad_request(
            "min_tokens must be less than or equal to max_tokens",
        ));
    }
    Ok(Budget {
        max_tokens,
        min_tokens,
        ignore_eos,
    })
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn complete(engine: Arc<Engine>, job: Job, index: u64, no_usage: bool) -> Response {
    let slot = compute(&engine, &job, index).await;
    let mut body = completion_json(&engine, &job, index);
    if no_usage {
        if let Some(map) = body.as_object_mut() {
            map.remove("usage");
        }
    }
    let p = &job.plan;
    engine.count_tokens(p.prompt_tokens, p.completion_tokens as u64);
    slot.complete();
    Json(body).into_response()
}

/// Waits for a batch slot, then for as long as the whole answer takes to generate: when a
/// non-streaming body is due.
pub(super) async fn compute(engine: &Arc<Engine>, job: &Job, index: u64) -> Slot {
    let slot = engine.admit(job.arrival).await;
    let clock = engine.clock(index);
    let busy = clock
        .prefill(&engine.latency, job.tiles)
        .saturating_add(clock.decode_time(job.plan.completion_tokens));
    sleep_until(after(slot.start, busy)).await;
    slot
}

/// The whole non-streaming answer, as the engine sends it when nothing goes wrong.
pub(super) fn completion_json(engine: &Engine, job: &Job, index: u64) -> serde_json::Value {
    let p = &job.plan;
    json!({
        "id": format!("chatcmpl-sim-{index}"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": engine.model_id,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": p.content()},
            "finish_reason": p.finish_reason,
        }],
        "usage": usage(p),
    })
}

pub(super) fn usage(p: &Plan) -> serde_json::Value {
    let c = p.completion_tokens as u64;
    json!({"prompt_tokens": p.prompt_tokens, "completion_tokens": c, "total_tokens": p.prompt_tokens + c})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_reads_vllm_extensions_and_rejects_nonsense() {
        let req = |extra: serde_json::Value| -> ChatCompletionRequest {
            let mut body = json!({"messages": [], "max_tokens": 20});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            serde_json::from_value(body).unwrap()
        };
        let b = budget(&req(json!({"ignore_eos": true, "min_tokens": 5}))).unwrap();
        assert_eq!(
            (b.max_tokens, b.min_tokens, b.ignore_eos),
            (Some(20), 5, true)
        );
        let b = budget(&req(
            json!({"max_tokens": null, "max_completion_tokens": 7}),
        ))
        .unwrap();
        assert_eq!(b.max_tokens, Some(7));
        for bad in [
            json!({"max_tokens": 0}),
            json!({"min_tokens": 21}),
            json!({"min_tokens": -1}),
            json!({"ignore_eos": "yes"}),
            json!({"max_tokens": 1_000_000}),
        ] {
            let e = budget(&req(bad.clone())).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
