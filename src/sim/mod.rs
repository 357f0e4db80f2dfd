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
//! - Judge prompts ([`crate::judge::prompt`]): answered with a verdict graded by words, with
//!   or without an image, so that a rubric's model judge is tested without a model (see the
//!   `judge` module; docs/rubrics.md).
//! - `GET /metrics`: Prometheus text with vLLM's names for running and waiting requests,
//!   a KV-cache-like usage (running / batch limit) and token counters, plus
//!   `eyetest_sim:*` work counters; every HELP line says it is simulated.

pub mod answer;
pub mod config;
mod fault;
pub mod image;
mod judge;
mod memo;
mod metrics;
mod pacing;
mod server;
mod sse;
pub mod study;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{Behaviour, Latency, SimConfig, UnknownBehaviour};

/// `system_fingerprint` of every response, and the `owned_by` of the model card.
pub const SYSTEM_FINGERPRINT: &str = "eyetest-sim";

/// How long [`SimServer::shutdown`] waits for open responses before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
}

/// The engine's routes, for embedding in another server. Counters are not reachable from
/// here; use [`SimServer`] when a test needs [`SimStats`].
pub fn router(config: SimConfig) -> axum::Router {
    server::app(server::Engine::new(config))
}

/// A running simulated engine on its own port, served by the current tokio runtime.
pub struct SimServer {
    addr: SocketAddr,
    engine: Arc<server::Engine>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl SimServer {
    /// Binds `addr` (`127.0.0.1:0` for an ephemeral port) and starts serving.
    pub async fn start(addr: SocketAddr, config: SimConfig) -> std::io::Result<SimServer> {
        let listener = bind(addr)?;
        let addr = listener.local_addr()?;
        let engine = server::Engine::new(config);
        let app = server::app(engine.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // A dropped SimServer drops the sender, which also stops the server.
            axum::serve(nodelay(listener), app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(SimServer {
            addr,
            engine,
            stop: Some(stop),
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`, what an OpenAI client takes as its base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn model_id(&self) -> &str {
        self.engine.model_id()
    }

    pub fn stats(&self) -> SimStats {
        self.engine.stats()
    }

    /// Stops accepting, lets open responses finish (for up to 5 s), then returns.
    pub async fn shutdown(mut self) {
        self.engine.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let abort = self.task.abort_handle();
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

impl Drop for SimServer {
    /// Releases `hang` and `stall` requests too, or the server task would outlive its owner
    /// waiting for them.
    fn drop(&mut self) {
        self.engine.close();
    }
}

/// Binds with a deep accept queue: a benchmark opening a thousand connections at once
/// overflows tokio's default backlog (1024), and the dropped handshakes then show up as
/// hundreds of milliseconds of fake TTFT.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Capped by the kernel (`net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 8192;

/// Token events are tiny writes; without TCP_NODELAY, Nagle's algorithm would hold them back
/// and add tens of milliseconds to measured ITL.
fn nodelay(
    listener: TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = SocketAddr> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

/// Runs the engine until Ctrl-C or SIGTERM, announcing on stdout that it is simulated.
pub async fn serve_forever(addr: SocketAddr, config: SimConfig) -> std::io::Result<()> {
    let listener = bind(addr)?;
    let addr = listener.local_addr()?;
    println!("{}", banner(addr, &config));
    let app = router(config);
    axum::serve(nodelay(listener), app)
        .with_graceful_shutdown(shutdown_signal())
        .await
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
