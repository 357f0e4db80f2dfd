//! The simulated engine ("sim"): a test double for the *model*, never for eyetest's code.
//!
//! It is a real HTTP server on loopback speaking OpenAI chat completions (SSE streaming and
//! not), so eyetest's own client runs the same code path against it as against vLLM. It
//! decodes the image for real and answers from the ground truth that generated fixtures carry
//! in their PNG ([`crate::fixture::truth`]), or, for the study's own photos, from a table of
//! their labels keyed by sha256 ([`study`]); other images get a generic caption.
//! A latency model (prefill, per-tile prefill, per-token decode, batch limit, seeded jitter)
//! gives throughput sweeps a known shape to check measurements against.
//!
//! It says it is simulated wherever a client can see it: the `model` field
//! ([`model_id`]), `system_fingerprint` ([`SYSTEM_FINGERPRINT`]), `/health` and the start-up
//! line of [`serve_forever`].
//!
//! Wire details, documented so that tests can predict them:
//! - Tokens: see [`answer`]; one SSE content event per token, so `completion_tokens` equals
//!   the number of content events.
//! - `prompt_tokens`: prompt words + [`answer::TOKENS_PER_TILE`] per 560x560 image tile.
//! - `max_tokens` (or `max_completion_tokens`) truncates, with finish_reason `length`;
//!   vLLM's `ignore_eos: true` pads with filler up to `max_tokens` (finish_reason `length`)
//!   and `min_tokens` pads up to itself.
//! - Streaming: a role-only delta, one event per token (the last carries finish_reason), a
//!   usage-only event with empty `choices` if `stream_options.include_usage`, `data: [DONE]`.
//! - Timing ([`pacing`](self) module): from the request's arrival (or from when it got a
//!   batch slot, if it had to queue), the first token at `ttft + tiles * prefill_per_tile`,
//!   then each token `per_token` after the previous one was actually sent, so an overloaded
//!   engine is late rather than bursting; a non-streaming body is sent when the last token
//!   would be, i.e. after `ttft + (n - 1) * per_token`.
//! - Errors: `{"error":{"message","type"}}` bodies; 400 for bad JSON, a missing image, bad
//!   base64 or bytes that do not decode; 500 (`failing`), 503 (`flaky`, `unavailable`), 429
//!   (`rate-limited`, `rate-limited-bare`) and `hang` before validation.
//! - Faults ([`Behaviour`] lists them): every request, or the first `fail_first`, or a seeded
//!   `fault_rate` share drawn from `faults` ([`SimConfig::fault_for`] says which request gets
//!   which). A faulted request counts as `failed`, except `no-usage`, which is a complete
//!   answer. Mid-stream faults strike after [`config::FAULT_AFTER_TOKENS`] tokens.
//! - Cost: like a real server, every request's body is parsed and its image decoded, so a
//!   benchmark against the sim loads the server side too. With [`SimConfig::memoize`]
//!   (`memoize = true` on a sim target), identical bodies over 64 KiB are parsed once and
//!   each distinct image is decoded once (memoised by a fingerprint of all their bytes), so
//!   that a zero-latency capacity run measures the HTTP path alone.
//! - Judge prompts ([`crate::rubric::judge::prompt`]): answered with a verdict graded by words, with
//!   or without an image, so that a rubric's model judge is tested without a model (see the
//!   `judge` module; docs/rubrics.md).
//! - `GET /metrics`: Prometheus text with vLLM's names for running and waiting requests,
//!   a KV-cache-like usage (running / batch limit) and token counters, plus
//!   `eyetest_sim:*` work counters; every HELP line says it is simulated.

// Without the server, its answer and image logic has no caller but the unit tests.
#![cfg_attr(not(feature = "sim"), allow(dead_code))]

pub mod answer;
pub mod config;
#[cfg(feature = "sim")]
mod fault;
pub mod image;
#[cfg(feature = "sim")]
mod judge;
#[cfg(feature = "sim")]
mod memo;
#[cfg(feature = "sim")]
mod metrics;
#[cfg(feature = "sim")]
mod pacing;
#[cfg(feature = "sim")]
mod serve;
#[cfg(feature = "sim")]
mod server;
#[cfg(feature = "sim")]
mod sse;
pub mod study;
#[cfg(not(feature = "sim"))]
mod unavailable;

use std::net::SocketAddr;
use std::time::Duration;

pub use config::{Behaviour, FaultError, Latency, SimConfig, UnknownBehaviour};
#[cfg(feature = "sim")]
pub use serve::{router, serve_forever, SimServer};
#[cfg(not(feature = "sim"))]
pub use unavailable::SimServer;

/// `system_fingerprint` of every response, and the `owned_by` of the model card.
pub const SYSTEM_FINGERPRINT: &str = "eyetest-sim";

/// The model id the engine reports: explicit that no model is behind it, and naming the
/// behaviour so that a snapshot or report shows which double produced an answer.
pub fn model_id(behaviour: Behaviour) -> String {
    format!("eyetest-sim/{behaviour} (simulated engine, not a real model)")
}

/// Counters since start, for tests that check what the engine saw (not for timing).
///
/// Every chat request is `received`, then ends as exactly one of `failed` (a simulated fault),
/// `rejected` (a 4xx that is not a simulated 429), `completed` (answer fully produced) or `cancelled` (the client
/// went away after the request got a batch slot), unless it is still queued or `in_flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    pub received: u64,
    pub completed: u64,
    pub failed: u64,
    pub rejected: u64,
    pub cancelled: u64,
    /// Requests holding a batch slot now.
    pub in_flight: u64,
    /// The most requests ever holding a batch slot at once (at most `max_concurrency`).
    pub max_in_flight: u64,
    /// Requests queued for a batch slot now.
    pub waiting: u64,
    /// Request bodies parsed as JSON, and images decoded: one each per request unless
    /// [`SimConfig::memoize`] is on.
    pub bodies_parsed: u64,
    pub images_decoded: u64,
    /// Prompt tokens of requests whose first token was sent (or whole answer, unstreamed),
    /// and output tokens sent.
    pub prompt_tokens: u64,
    pub generation_tokens: u64,
    /// Streamed answers' time to first token as the engine saw it, from the parsed request
    /// to the first token's send, summed in nanoseconds, and how many: the engine side of
    /// vLLM's `time_to_first_token_seconds`, so a benchmark can tell the client's
    /// measurement error from the engine being late.
    pub ttft_ns_sum: u64,
    pub ttft_count: u64,
    /// Gaps between consecutive tokens' sends, summed in nanoseconds, and how many.
    pub itl_ns_sum: u64,
    pub itl_count: u64,
}

/// The start-up line: says plainly that this is a test double.
pub fn banner(addr: SocketAddr, config: &SimConfig) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_secs_f64() * 1000.0);
    let conc = match config.max_concurrency {
        0 => "unlimited".to_string(),
        n => n.to_string(),
    };
    let mut faults = String::new();
    if config.fail_first > 0 {
        faults.push_str(&format!(", fail_first={}", config.fail_first));
    }
    if config.fault_rate > 0.0 {
        let mix: &[Behaviour] = if config.faults.is_empty() {
            &config::DEFAULT_FAULT_MIX
        } else {
            &config.faults
        };
        let mix: Vec<&str> = mix.iter().map(|b| b.as_str()).collect();
        faults.push_str(&format!(
            ", fault_rate={} of {}",
            config.fault_rate,
            mix.join("/")
        ));
    }
    if config.memoize {
        faults.push_str(", memoize");
    }
    format!(
        "eyetest-sim: SIMULATED engine (a test double, not a model) listening on \
         http://{addr}/v1 (behaviour={}, ttft={}, per_token={}, max_concurrency={conc}{faults})",
        config.behaviour,
        ms(config.latency.ttft),
        ms(config.latency.per_token),
    )
}
