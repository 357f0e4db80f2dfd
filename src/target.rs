//! Targets: a model behind an endpoint plus the hardware it runs on, declared in `eyetest.toml`
//! and referenced from specs by name.
//!
//! A target never holds a secret: it names the environment variable that does
//! (`api_key_env`), so that `eyetest.toml` can be committed and shared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::diagnostic::{from_toml_error, InputError, InputErrors};

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

/// A target as written in `eyetest.toml` under `[target.NAME]`.
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

/// A named, validated target.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub config: TargetConfig,
}

/// Where a target's requests go, once the environment has been consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Url(String),
    /// Started in-process on first use.
    Sim,
    /// Answers come from recordings; no server.
    Replay,
    /// Not configured: the reason says which variable to set.
    Missing(String),
}

impl Target {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.config.timeout_s)
    }

    /// Resolves the endpoint from the config and the environment.
    pub fn endpoint(&self) -> Endpoint {
        match self.config.backend {
            BackendKind::Sim => Endpoint::Sim,
            BackendKind::Replay => Endpoint::Replay,
            BackendKind::Openai => {
                if let Some(var) = &self.config.base_url_env {
                    match std::env::var(var) {
                        Ok(v) if !v.trim().is_empty() => return Endpoint::Url(v.trim().to_string()),
                        _ if self.config.base_url.is_none() => {
                            return Endpoint::Missing(format!(
                                "endpoint not configured: set {var} to the server's base URL (e.g. http://localhost:8000/v1)"
                            ))
                        }
                        _ => {}
                    }
                }
                match &self.config.base_url {
                    Some(u) => Endpoint::Url(u.clone()),
                    None => Endpoint::Missing(format!(
                        "target `{}` has no base_url or base_url_env",
                        self.name
                    )),
                }
            }
        }
    }

    /// A short description for tables: model, GPUs, engine.
    pub fn describe(&self) -> String {
        let mut s = self.config.model.clone();
        if let Some(g) = &self.config.gpu {
            s.push_str(&format!(" on {g}"));
        }
        if let Some(e) = &self.config.engine {
            s.push_str(&format!(" ({e})"));
        }
        s
    }
}

/// `eyetest.toml`: the project's targets and settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProjectFile {
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    target: BTreeMap<String, Spanned<TargetConfig>>,
}

/// Project-wide settings (`[settings]` in eyetest.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where spec files live, relative to the project root.
    #[serde(default = "default_specs")]
    pub specs: PathBuf,
    /// Where snapshots and baselines live.
    #[serde(default = "default_golden")]
    pub golden: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            specs: default_specs(),
            golden: default_golden(),
        }
    }
}

fn default_specs() -> PathBuf {
    "specs".into()
}
fn default_golden() -> PathBuf {
    "golden".into()
}

/// Every sim behaviour name, for messages and suggestions.
pub fn behaviours() -> Vec<&'static str> {
    crate::sim::Behaviour::ALL
        .iter()
        .map(|b| b.as_str())
        .collect()
}

/// Targets and settings of a project, read from `eyetest.toml`.
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    pub settings: Settings,
    pub targets: BTreeMap<String, Arc<Target>>,
    pub path: PathBuf,
}

impl ProjectConfig {
    /// Reads and validates `eyetest.toml`. A missing file means "only the built-in `sim` target".
    pub fn load(path: &Path) -> Result<Self, InputErrors> {
        let mut errors = InputErrors::default();
        let text: Arc<str> = match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => s.into(),
                Err(e) => {
                    errors.push(InputError::file(
                        path,
                        format!("not valid UTF-8 (byte {})", e.utf8_error().valid_up_to()),
                    ));
                    return Err(errors);
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::builtin(path));
            }
            Err(e) => {
                errors.push(InputError::file(path, format!("cannot read: {e}")));
                return Err(errors);
            }
        };
        let raw: RawProjectFile = match toml::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(from_toml_error(path, &text, &e));
                return Err(errors);
            }
        };
        let mut targets = BTreeMap::new();
        let mut replay_spans = std::collections::HashMap::new();
        for (name, spanned) in raw.target {
            let span = spanned.span();
            replay_spans.insert(name.clone(), span.clone());
            let config = spanned.into_inner();
            if let Err(msg) = validate_target(&name, &config).and_then(|()| {
                check_ca_file(&name, &config, path.parent().unwrap_or(Path::new("")))
            }) {
                let (m, help) = msg;
                errors.push(InputError::at(path, &text, span, m).with_help(help));
                continue;
            }
            targets.insert(name.clone(), Arc::new(Target { name, config }));
        }
        if !targets.contains_key("sim") {
            targets.insert("sim".into(), Arc::new(builtin_sim()));
        }
        for t in targets.values() {
            let Some(source) = &t.config.replay_of else {
                continue;
            };
            let problem = match targets.get(source) {
                _ if source == &t.name => Some(format!(
                    "`replay_of = \"{source}\"` names the target itself; name the live target whose recordings it replays"
                )),
                None => Some(format!("`replay_of = \"{source}\"` names no declared target")),
                Some(s) if s.config.backend == BackendKind::Replay => Some(format!(
                    "`replay_of = \"{source}\"` names another replay target; replay the live target instead"
                )),
                _ => None,
            };
            if let Some(p) = problem {
                let valid: Vec<&str> = targets.keys().map(String::as_str).collect();
                let help = match crate::diagnostic::closest(source, valid.iter().copied()) {
                    Some(s) if s != source => format!("did you mean `{s}`?"),
                    _ => format!("declared targets: `{}`", valid.join("`, `")),
                };
                errors.push(
                    InputError::at(
                        path,
                        &text,
                        replay_spans[&t.name].clone(),
                        format!("target `{}`: {p}", t.name),
                    )
                    .with_help(help),
                );
            }
        }
        errors.into_result()?;
        Ok(Self {
            settings: raw.settings,
            targets,
            path: path.to_path_buf(),
        })
    }

    fn builtin(path: &Path) -> Self {
        let mut targets = BTreeMap::new();
        targets.insert("sim".into(), Arc::new(builtin_sim()));
        Self {
            settings: Settings::default(),
            targets,
            path: path.to_path_buf(),
        }
    }
}

/// The `sim` target every project has, even without an eyetest.toml.
pub fn builtin_sim() -> Target {
    Target {
        name: "sim".into(),
        config: toml::from_str("backend = \"sim\"\nmodel = \"eyetest-sim\"\nbehaviour = \"terse\"")
            .expect("built-in sim target parses"),
    }
}

/// A sim behaviour name, or why it is not one (with the closest name as a hint).
fn behaviour_named(
    name: &str,
    b: &str,
    key: &str,
) -> Result<crate::sim::Behaviour, (String, String)> {
    b.parse().map_err(|_| {
        let all = behaviours();
        let hint = match crate::diagnostic::closest(b, all.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? "),
            None => String::new(),
        };
        (
            format!("target `{name}`: unknown sim {key} `{b}`"),
            format!("{hint}expected one of `{}`", all.join("`, `")),
        )
    })
}

fn validate_sim(name: &str, c: &TargetConfig) -> Result<(), (String, String)> {
    let behaviour = match &c.behaviour {
        Some(b) => behaviour_named(name, b, "behaviour")?,
        None => crate::sim::Behaviour::default(),
    };
    if c.fail_first.is_some_and(|n| n > 0) && !behaviour.is_fault() {
        return Err((
            format!("target `{name}`: `fail_first` only applies to a fault behaviour, and `{behaviour}` is not one"),
            "set e.g. `behaviour = \"rate-limited\"`, or remove `fail_first`".into(),
        ));
    }
    if let Some(rate) = c.fault_rate {
        if !(0.0..=1.0).contains(&rate) {
            return Err((
                format!("target `{name}`: fault_rate must be between 0 and 1, got {rate}"),
                "e.g. `fault_rate = 0.02` to fault 2% of requests".into(),
            ));
        }
    }
    for f in c.faults.iter().flatten() {
        if !behaviour_named(name, f, "fault")?.is_injectable() {
            let injectable: Vec<&str> = crate::sim::Behaviour::INJECTABLE
                .iter()
                .map(|b| b.as_str())
                .collect();
            return Err((
                format!("target `{name}`: `faults` lists `{f}`, which is not a fault that can be injected"),
                format!("expected some of `{}`", injectable.join("`, `")),
            ));
        }
    }
    Ok(())
}

/// `ca_file` must be a readable PEM certificate, and only an `openai` target makes requests
/// that it could apply to.
fn check_ca_file(name: &str, c: &TargetConfig, root: &Path) -> Result<(), (String, String)> {
    let Some(ca) = &c.ca_file else {
        return Ok(());
    };
    if c.backend != BackendKind::Openai {
        return Err((
            format!("target `{name}`: `ca_file` only applies to `backend = \"openai\"`"),
            "remove it: simulated and replay targets make no TLS connections".into(),
        ));
    }
    crate::backend::openai::load_ca_file(&root.join(ca)).map(drop).map_err(|e| {
        (
            format!("target `{name}`: ca_file `{}` {e}", ca.display()),
            "give the path (relative to the project root) of the CA certificate in PEM form, e.g. `ca_file = \"certs/ca.pem\"`".into(),
        )
    })
}

fn validate_target(name: &str, c: &TargetConfig) -> Result<(), (String, String)> {
    if !name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.')
    {
        return Err((
            format!("target name `{name}` has characters that cannot go in a test or file name"),
            "use letters, digits, `-`, `_` and `.` only".into(),
        ));
    }
    if c.concurrency == 0 {
        return Err((
            format!("target `{name}`: concurrency must be at least 1"),
            "set `concurrency = 1` to send one request at a time".into(),
        ));
    }
    if !(c.timeout_s > 0.0 && c.timeout_s.is_finite()) {
        return Err((
            format!("target `{name}`: timeout_s must be a positive number of seconds"),
            "e.g. `timeout_s = 120`".into(),
        ));
    }
    match c.backend {
        BackendKind::Openai => {
            if c.model.trim().is_empty() {
                return Err((
                    format!("target `{name}`: an `openai` target needs `model`"),
                    "set `model` to the served model name, e.g. `model = \"meta-llama/Llama-3.2-11B-Vision-Instruct\"`".into(),
                ));
            }
            if c.base_url.is_none() && c.base_url_env.is_none() {
                return Err((
                    format!("target `{name}`: an `openai` target needs `base_url` or `base_url_env`"),
                    "e.g. `base_url = \"http://localhost:8000/v1\"`, or `base_url_env = \"VLLM_URL\"` to read it from the environment".into(),
                ));
            }
            if let Some(u) = &c.base_url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err((
                        format!("target `{name}`: base_url `{u}` is not an http(s) URL"),
                        "write it like `http://localhost:8000/v1`".into(),
                    ));
                }
            }
            if c.replay_of.is_some() {
                return Err((
                    format!("target `{name}`: `replay_of` only applies to `backend = \"replay\"`"),
                    "remove it, or set `backend = \"replay\"`".into(),
                ));
            }
            if c.behaviour.is_some()
                || c.latency.is_some()
                || c.max_batch.is_some()
                || c.fail_first.is_some()
                || c.fault_rate.is_some()
                || c.faults.is_some()
                || c.memoize.is_some()
            {
                return Err((
                    format!("target `{name}`: `behaviour`, `latency`, `max_batch`, `fail_first`, `fault_rate`, `faults` and `memoize` only apply to `backend = \"sim\"`"),
                    "remove them, or set `backend = \"sim\"`".into(),
                ));
            }
        }
        BackendKind::Replay => {
            if c.replay_of.is_none() {
                return Err((
                    format!("target `{name}`: a `replay` target needs `replay_of`"),
                    "name the target whose recordings it replays, e.g. `replay_of = \"llama-11b\"`"
                        .into(),
                ));
            }
        }
        BackendKind::Sim => validate_sim(name, c)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> Result<(), (String, String)> {
        let c: TargetConfig = toml::from_str(toml_text).unwrap();
        validate_target("t", &c)
    }

    #[test]
    fn sim_fault_keys_are_validated() {
        let sim = "backend = \"sim\"\n";
        assert_eq!(
            check(&format!(
                "{sim}behaviour = \"rate-limited\"\nfail_first = 1"
            )),
            Ok(())
        );
        assert_eq!(
            check(&format!(
                "{sim}fault_rate = 0.02\nfaults = [\"reset\", \"hang\"]"
            )),
            Ok(())
        );
        let (m, help) = check(&format!("{sim}behaviour = \"rate-limitd\"")).unwrap_err();
        assert_eq!(m, "target `t`: unknown sim behaviour `rate-limitd`");
        assert!(
            help.starts_with("did you mean `rate-limited`? expected one of `terse`"),
            "{help}"
        );
        let (m, _) = check(&format!("{sim}fail_first = 2")).unwrap_err();
        assert_eq!(
            m,
            "target `t`: `fail_first` only applies to a fault behaviour, and `terse` is not one"
        );
        let (m, _) = check(&format!("{sim}fault_rate = -0.1")).unwrap_err();
        assert_eq!(
            m,
            "target `t`: fault_rate must be between 0 and 1, got -0.1"
        );
        let (m, help) = check(&format!("{sim}fault_rate = 0.1\nfaults = [\"slow\"]")).unwrap_err();
        assert_eq!(
            m,
            "target `t`: `faults` lists `slow`, which is not a fault that can be injected"
        );
        assert!(
            help.starts_with("expected some of `failing`, `unavailable`"),
            "{help}"
        );
        let (m, _) = check(&format!("{sim}faults = [\"rest\"]")).unwrap_err();
        assert_eq!(m, "target `t`: unknown sim fault `rest`");
        let openai = "backend = \"openai\"\nmodel = \"m\"\nbase_url = \"http://h/v1\"\n";
        let (m, _) = check(&format!("{openai}fault_rate = 0.1")).unwrap_err();
        assert!(
            m.contains("`faults` and `memoize` only apply to `backend = \"sim\"`"),
            "{m}"
        );
        let (m, _) = check(&format!("{openai}memoize = true")).unwrap_err();
        assert!(m.contains("only apply to `backend = \"sim\"`"), "{m}");
        assert!(check(&format!("{sim}memoize = true")).is_ok());
    }
}
