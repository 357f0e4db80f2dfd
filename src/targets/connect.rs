//! Reaching a target: the one place a client for it is built, used by the case runner and
//! the throughput runner alike, so that what one applies (the target's `ca_file`, its API
//! key, its timeouts) the other cannot forget.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Endpoint, Kind, Target, Unavailable};
use crate::backend::openai::{CaError, OpenAiClient, OpenAiConfig, Secret};
use crate::sim::SimServer;

/// What the client is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Asking spec cases: the target's retries, and the process-wide connection pool (a
    /// target with a `ca_file` gets its own, since trust is per target).
    Cases,
    /// A throughput sweep: no retries (a retried request would hide a failure and bend the
    /// latencies), and a connection pool of its own so no other traffic shares it.
    Load,
}

/// Why a target could not be reached. Cloneable: a session reaches each target once and
/// hands the same answer to every case.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error("target `{target}` replays recorded answers; it has no endpoint to connect to")]
    Replay { target: String },
    #[error("target `{target}`: not a `sim` target: it has no simulated engine to start")]
    NotSim { target: String },
    #[error("cannot start the simulated engine for `{target}`: {source}")]
    SimStart {
        target: String,
        source: Arc<std::io::Error>,
    },
    #[error("target `{target}`: ca_file `{}` {source}", path.display())]
    Ca {
        target: String,
        path: PathBuf,
        source: CaError,
    },
}

/// A target's endpoint, up: its URL, and the simulated engine behind it if it is one (which
/// runs until [`Live::shutdown`] or until this is dropped with the runtime).
pub struct Live {
    base_url: String,
    sim: Option<SimServer>,
}

impl Live {
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops the simulated engine, if this started one.
    pub async fn shutdown(self) {
        if let Some(s) = self.sim {
            s.shutdown().await;
        }
    }
}

/// A reached target: its endpoint and a client for it.
pub struct Connection {
    pub live: Live,
    pub client: OpenAiClient,
    /// The HTTP client under `client`, for calls outside the chat API (the throughput probe).
    pub http: reqwest::Client,
}

/// Brings the endpoint up: resolves the URL from the environment, or starts the simulated
/// engine on an ephemeral loopback port.
pub async fn reach(target: &Target) -> Result<Live, ConnectError> {
    match target.endpoint() {
        Endpoint::Url(base_url) => Ok(Live {
            base_url,
            sim: None,
        }),
        Endpoint::Missing(why) => Err(why.into()),
        Endpoint::Replay => Err(ConnectError::Replay {
            target: target.name.clone(),
        }),
        Endpoint::Sim => {
            let server = start_sim(target).await?;
            Ok(Live {
                base_url: server.base_url(),
                sim: Some(server),
            })
        }
    }
}

/// Reaches `target` and builds its client for `purpose`. `shared` is the process-wide pool
/// that [`Use::Cases`] reuses when the target needs no CA of its own.
pub async fn connect(
    target: &Target,
    purpose: Use,
    shared: Option<&reqwest::Client>,
) -> Result<Connection, ConnectError> {
    let live = reach(target).await?;
    let (client, http) = client_for(target, live.base_url(), purpose, shared)?;
    Ok(Connection { live, client, http })
}

/// The client for `target` at `base_url` (an endpoint that is already up): the only place
/// eyetest applies a target's `ca_file`, API key, timeouts and retries.
pub fn client_for(
    target: &Target,
    base_url: &str,
    purpose: Use,
    shared: Option<&reqwest::Client>,
) -> Result<(OpenAiClient, reqwest::Client), ConnectError> {
    let connect_timeout = Duration::from_secs(10).min(target.timeout());
    let config = OpenAiConfig {
        base_url: base_url.to_string(),
        api_key: target.api_key().map(Secret::new),
        timeout: target.timeout(),
        connect_timeout,
        max_retries: match purpose {
            Use::Cases => target.common.retries,
            Use::Load => 0,
        },
        backoff: target.common.retry_backoff,
    };
    // A private CA is trusted by its target's own client, never by a shared one.
    let http = match (target.ca_path(), shared, purpose) {
        (Some(ca), _, _) => crate::backend::openai::http_client_with_ca(ca, connect_timeout)
            .map_err(|source| ConnectError::Ca {
                target: target.name.clone(),
                path: ca.to_path_buf(),
                source,
            })?,
        (None, Some(shared), Use::Cases) => shared.clone(),
        (None, _, _) => crate::backend::openai::http_client_for(&config),
    };
    Ok((OpenAiClient::new(http.clone(), config), http))
}

/// Starts the simulated engine a `sim` target describes, on an ephemeral loopback port.
pub async fn start_sim(target: &Target) -> Result<SimServer, ConnectError> {
    let Kind::Sim(config) = &target.kind else {
        return Err(ConnectError::NotSim {
            target: target.name.clone(),
        });
    };
    SimServer::start(([127, 0, 0, 1], 0).into(), config.clone())
        .await
        .map_err(|e| ConnectError::SimStart {
            target: target.name.clone(),
            source: Arc::new(e),
        })
}
