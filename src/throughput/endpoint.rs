//! The one place throughput touches target knowledge: whether a target can be measured
//! here, reaching its endpoint (starting a simulated engine for a `sim` target), and the
//! HTTP client load is sent with. Everything else in `throughput` sees a base URL and a
//! client, so when targets gain one `connect()` for cases and throughput alike, only this
//! file changes.

use std::time::Duration;

use crate::backend::openai::{http_client_for, OpenAiClient, OpenAiConfig, Secret};
use crate::runner::start_sim;
use crate::sim::SimServer;
use crate::target::{Endpoint, Target};

pub use crate::runner::{runtime, Selection};

/// Why the trial cannot run here, if it cannot: target not selected, no endpoint, no key.
pub fn ignore_reason(target: &Target, selection: &Selection) -> Option<String> {
    if let Some(r) = selection.skip_reason(target) {
        return Some(r);
    }
    match target.endpoint() {
        Endpoint::Url(_) | Endpoint::Sim => {}
        Endpoint::Missing(r) => return Some(r),
        #[allow(unreachable_patterns)]
        _ => return Some(no_live_engine(target)),
    }
    if let Some(var) = &target.config.api_key_env {
        if std::env::var(var).map(|v| v.is_empty()).unwrap_or(true) {
            return Some(format!("API key not configured: set {var}"));
        }
    }
    None
}

/// For a target that answers without a running engine (recorded answers): there is no
/// latency to measure.
fn no_live_engine(target: &Target) -> String {
    format!(
        "target `{}` has no live engine: a throughput sweep measures a running server (a URL or the simulated engine), not recorded answers",
        target.name
    )
}

/// A reachable endpoint; holds the simulated engine, if one was started, until
/// [`Live::close`].
pub struct Live {
    pub base_url: String,
    sim: Option<SimServer>,
}

impl Live {
    pub async fn close(self) {
        if let Some(s) = self.sim {
            s.shutdown().await;
        }
    }
}

/// Reaches `target`'s endpoint, starting its simulated engine if it is one.
pub async fn connect(target: &Target) -> Result<Live, String> {
    match target.endpoint() {
        Endpoint::Url(base_url) => Ok(Live {
            base_url,
            sim: None,
        }),
        Endpoint::Missing(r) => Err(r),
        Endpoint::Replay => Err(format!(
            "target `{}` replays recorded answers: throughput needs a live endpoint",
            target.name
        )),
        Endpoint::Sim => {
            let server = start_sim(target).await?;
            Ok(Live {
                base_url: server.base_url(),
                sim: Some(server),
            })
        }
        #[allow(unreachable_patterns)]
        _ => Err(no_live_engine(target)),
    }
}

/// A client for load: the target's endpoint and timeout, its own connection pool, and no
/// retries (see [`super::load`]).
pub fn load_client(target: &Target, base_url: String) -> (OpenAiClient, reqwest::Client) {
    let api_key = target
        .config
        .api_key_env
        .as_ref()
        .and_then(|v| std::env::var(v).ok())
        .filter(|k| !k.is_empty())
        .map(Secret::new);
    let config = OpenAiConfig {
        base_url,
        api_key,
        timeout: target.timeout(),
        connect_timeout: Duration::from_secs(10).min(target.timeout()),
        max_retries: 0,
        backoff: Duration::from_millis(target.config.retry_backoff_ms),
    };
    let http = http_client_for(&config);
    (OpenAiClient::new(http.clone(), config), http)
}
