//! Targets: a model behind an endpoint plus the hardware it runs on, declared in `eyetest.toml`
//! and referenced from specs by name.
//!
//! Everything that depends on *which* target is asked lives here, so that the case runner and
//! the throughput runner cannot drift apart: reading and validating `[target.NAME]`
//! ([`ProjectConfig`]), deciding which targets a run asks and what becomes of the others
//! ([`Selection`]), whether a target can be reached from here ([`Target::unavailable`]), and
//! reaching it ([`connect()`](connect::connect): starting a simulated engine, trusting a `ca_file`, the API key).
//!
//! Only declared targets exist: a project without `[target.sim]` has no simulated engine.
//! A target never holds a secret: it names the environment variable that does
//! (`api_key_env`), so that `eyetest.toml` can be committed and shared.

mod connect;
mod partition;
mod project;
mod selection;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use connect::{client_for, connect, reach, start_sim, ConnectError, Connection, Live, Use};
pub use partition::{Deal, Partition, PartitionError};
pub use project::{behaviours, ProjectConfig, Settings};
pub use selection::{Decision, Origin, Selection, SelectionError, TARGETS_ENV};

/// How a target is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// Any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, TGI, llama.cpp, Ollama, OpenAI).
    Openai,
    /// The built-in simulated engine, started in-process on loopback: a test double for the model.
    Sim,
    /// Answers recorded from another target by `eyetest run --record` (see [`crate::record`]).
    Replay,
}

/// The GPU configuration a target runs on, as the study reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    pub name: String,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

impl std::fmt::Display for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x {}", self.count, self.name)
    }
}

/// Latency model of a simulated target, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimLatency {
    #[serde(default)]
    pub ttft_ms: f64,
    #[serde(default)]
    pub tpot_ms: f64,
    #[serde(default)]
    pub prefill_per_tile_ms: f64,
    /// Relative uniform jitter, e.g. 0.05 for +-5%.
    #[serde(default)]
    pub jitter: f64,
}

/// A target as written in `eyetest.toml` under `[target.NAME]`: every key of every backend,
/// so that a key on the wrong backend gets a message naming it; [`Target`] is what is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub backend: BackendKind,
    /// Model id sent in requests; for `openai` targets the served model name.
    #[serde(default)]
    pub model: String,
    /// Endpoint base, e.g. `http://localhost:8000/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Read the base URL from this environment variable instead (wins over `base_url` when set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url_env: Option<String>,
    /// Name of the environment variable holding the API key (never the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// PEM file of a CA to trust for this target's https endpoint (a self-signed or company
    /// CA), relative to the project root; checked when eyetest.toml is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Gpu>,
    /// Engine and version, e.g. "vLLM 0.10.2"; goes into reports and snapshot headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Requests in flight at once against this target (client side).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Stream with SSE (gives TTFT and ITL); some servers only do one or the other.
    #[serde(default = "yes")]
    pub stream: bool,
    /// Extra top-level request fields, passed through verbatim (e.g. `{ ignore_eos = true }`).
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub extra: toml::Table,
    /// Simulated engine only: which answers it gives (`terse`, `verbose`, `wrong`, `slow`), or
    /// which fault (`failing`, `flaky`, `rate-limited`, `reset`, ...: [`crate::sim::Behaviour`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<String>,
    /// Simulated engine only: a fault behaviour hits only the first N requests, so that a
    /// retry can be seen to recover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_first: Option<u64>,
    /// Simulated engine only: the share of requests (seeded) that get one of `faults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_rate: Option<f64>,
    /// Simulated engine only: the faults `fault_rate` draws from (default: `failing`,
    /// `unavailable`, `reset`, `cut-stream`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Vec<String>>,
    /// Simulated engine only: its latency model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<SimLatency>,
    /// Simulated engine only: requests it serves at once (its batch limit); 0 = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch: Option<usize>,
    /// Simulated engine only: parse each distinct body and decode each distinct image once
    /// (default false: every request is parsed and decoded, as a real server does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memoize: Option<bool>,
    /// Replay only: the target whose recordings this one answers from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    /// Whether a case that names no `targets` runs on this target. `false` for a target
    /// that exists for one purpose (a throughput study's simulated engine) and would
    /// otherwise need a snapshot of every case.
    #[serde(default = "yes")]
    pub default: bool,
}

fn default_concurrency() -> usize {
    8
}
fn default_timeout_s() -> f64 {
    120.0
}
fn default_retries() -> u32 {
    3
}
fn default_backoff_ms() -> u64 {
    500
}
fn yes() -> bool {
    true
}

/// A named, validated target: what every target has ([`Common`]), and what only its kind of
/// backend has ([`Kind`]), so that no code reads a sim setting off an `openai` target.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub common: Common,
    pub kind: Kind,
}

/// What every target has, whatever answers it: the model it names, the hardware it reports,
/// and how eyetest's client talks to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub model: String,
    pub gpu: Option<Gpu>,
    pub engine: Option<String>,
    pub notes: Option<String>,
    /// Requests in flight at once against this target (client side).
    pub concurrency: usize,
    pub timeout: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub stream: bool,
    pub extra: toml::Table,
    /// Whether a case that names no `targets` runs on this target.
    pub default: bool,
}

/// What answers a target.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Openai(OpenaiEndpoint),
    /// The built-in simulated engine, as it will be started.
    Sim(crate::sim::SimConfig),
    /// Answers recorded from the target `of`.
    Replay {
        of: String,
    },
}

/// Why a target built in code ([`Target::from_config`]) is not valid: the problem and what
/// to do, as [`ProjectConfig::load`] would place them at the target's table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}; {help}")]
pub struct InvalidTarget {
    pub message: String,
    pub help: String,
}

/// Where an `openai` target's server is and how to trust and authenticate to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenaiEndpoint {
    pub base_url: Option<String>,
    pub base_url_env: Option<String>,
    pub api_key_env: Option<String>,
    /// `ca_file` resolved against the project root when eyetest.toml was loaded.
    pub ca_path: Option<PathBuf>,
}

impl Target {
    /// A target from its `[target.NAME]` table, read as written; for targets built in code
    /// (tests, benches). A project's targets come from [`ProjectConfig::load`], which also
    /// validates them and says where a problem is.
    pub fn from_config(name: &str, config: &TargetConfig) -> Result<Target, InvalidTarget> {
        project::typed(name, config.clone(), Path::new(""))
            .map_err(|(message, help)| InvalidTarget { message, help })
    }

    /// The backend kind, for messages and records.
    pub fn backend(&self) -> BackendKind {
        match self.kind {
            Kind::Openai(_) => BackendKind::Openai,
            Kind::Sim(_) => BackendKind::Sim,
            Kind::Replay { .. } => BackendKind::Replay,
        }
    }

    /// The target whose recordings this one replays, if it is a replay target.
    pub fn replay_of(&self) -> Option<&str> {
        match &self.kind {
            Kind::Replay { of } => Some(of),
            _ => None,
        }
    }
}

/// Where a target's requests go, once the environment has been consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Url(String),
    /// Started in-process on first use.
    Sim,
    /// Answers come from recordings; no server.
    Replay,
    /// Not configured here: the reason says which variable to set.
    Missing(Unavailable),
}

/// Why a target cannot be asked from here. Each says what to set, because the fix is always
/// in the environment, never in eyetest.toml (that was validated when it was loaded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("endpoint not configured: set {var} to the server's base URL (e.g. http://localhost:8000/v1)")]
    EndpointUnset { var: String },
    #[error("API key not configured: set {var}")]
    ApiKeyUnset { var: String },
    /// A throughput sweep measures a running server; recorded answers have no latency.
    #[error("target `{target}` has no live engine: a throughput sweep measures a running server (a URL or the simulated engine), not recorded answers")]
    NoLiveEngine { target: String },
}

impl Target {
    pub fn timeout(&self) -> Duration {
        self.common.timeout
    }

    /// The built-in simulated engine answers for this target (a test double, not a model).
    pub fn is_simulated(&self) -> bool {
        matches!(self.kind, Kind::Sim(_))
    }

    /// This target answers from recordings of another ([`crate::record`]).
    pub fn is_replay(&self) -> bool {
        matches!(self.kind, Kind::Replay { .. })
    }

    /// Resolves the endpoint from the config and the environment: `base_url_env`, when set,
    /// wins over `base_url`, so a committed default can be pointed elsewhere in CI.
    pub fn endpoint(&self) -> Endpoint {
        let o = match &self.kind {
            Kind::Sim(_) => return Endpoint::Sim,
            Kind::Replay { .. } => return Endpoint::Replay,
            Kind::Openai(o) => o,
        };
        if let Some(var) = &o.base_url_env {
            if let Some(v) = crate::env::var(var) {
                return Endpoint::Url(v);
            }
            if o.base_url.is_none() {
                return Endpoint::Missing(Unavailable::EndpointUnset { var: var.clone() });
            }
        }
        match &o.base_url {
            Some(u) => Endpoint::Url(u.clone()),
            // Validation requires one of the two; a hand-built target may lack both.
            None => Endpoint::Missing(Unavailable::EndpointUnset {
                var: format!("base_url or base_url_env of target `{}`", self.name),
            }),
        }
    }

    /// The variable holding this target's API key, if it names one.
    pub fn api_key_env(&self) -> Option<&str> {
        match &self.kind {
            Kind::Openai(o) => o.api_key_env.as_deref(),
            _ => None,
        }
    }

    /// The CA this target's client trusts besides the usual roots, if any.
    pub fn ca_path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Openai(o) => o.ca_path.as_deref(),
            _ => None,
        }
    }

    /// The API key from the variable `api_key_env` names, if the target has one and it is set.
    pub fn api_key(&self) -> Option<String> {
        self.api_key_env().and_then(crate::env::var)
    }

    /// Why this target cannot be asked for `purpose` from here, if it cannot: the one check
    /// that cases and throughput sweeps share. `None` does not promise the server is up; it
    /// says everything eyetest needs to try is there.
    pub fn unavailable(&self, purpose: Use) -> Option<Unavailable> {
        match self.endpoint() {
            Endpoint::Missing(u) => return Some(u),
            Endpoint::Replay if purpose == Use::Load => {
                return Some(Unavailable::NoLiveEngine {
                    target: self.name.clone(),
                })
            }
            Endpoint::Url(_) | Endpoint::Sim | Endpoint::Replay => {}
        }
        match self.api_key_env() {
            Some(var) if self.api_key().is_none() => Some(Unavailable::ApiKeyUnset {
                var: var.to_string(),
            }),
            _ => None,
        }
    }

    /// A short description for tables: model, GPUs, engine.
    pub fn describe(&self) -> String {
        let mut s = self.common.model.clone();
        if let Some(g) = &self.common.gpu {
            s.push_str(&format!(" on {g}"));
        }
        if let Some(e) = &self.common.engine {
            s.push_str(&format!(" ({e})"));
        }
        s
    }
}
