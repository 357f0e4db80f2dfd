//! Runs cases against targets: one shared tokio runtime and HTTP client per process, images
//! read and encoded once, simulated engines started on first use, and a per-target bound on
//! requests in flight so a suite's wall time approaches its slowest case, not the sum.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, Semaphore};

use crate::backend::openai::{OpenAiClient, OpenAiConfig, Secret};
use crate::backend::{Answer, ChatRequest, ImageData};
use crate::rubric::Verdict;
use crate::sim::{Behaviour, Latency, SimConfig, SimServer};
use crate::spec::{Case, Suite};
use crate::target::{BackendKind, Endpoint, Target};

/// The process-wide runtime. RUST-NOTES: several runtimes sharing one reqwest client fail
/// with "dispatch task is gone", so every trial `block_on`s this one.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("eyetest-rt")
            .build()
            .expect("tokio runtime starts")
    })
}

/// Environment variable that selects the targets to run, like `INSTA_UPDATE` for insta:
/// a comma-separated list of target names, or `all`. Unset: the simulated targets only.
pub const TARGETS_ENV: &str = "EYETEST_TARGETS";

/// Which targets run in this process.
#[derive(Debug, Clone)]
pub struct Selection {
    names: Option<BTreeSet<String>>,
    source: String,
}

impl Selection {
    /// From `EYETEST_TARGETS`; unknown names are an error that lists the valid ones.
    pub fn from_env(suite: &Suite) -> Result<Selection, String> {
        match std::env::var(TARGETS_ENV) {
            Ok(v) if !v.trim().is_empty() => Self::parse(suite, &v, TARGETS_ENV),
            _ => Ok(Selection {
                names: None,
                source: format!("{TARGETS_ENV} unset: simulated targets only"),
            }),
        }
    }

    /// From a list like `sim,llama-11b` or `all`; `origin` names where it came from, for errors.
    pub fn parse(suite: &Suite, list: &str, origin: &str) -> Result<Selection, String> {
        if list.trim() == "all" {
            return Ok(Selection {
                names: Some(suite.config.targets.keys().cloned().collect()),
                source: format!("{origin}=all"),
            });
        }
        let mut names = BTreeSet::new();
        for n in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !suite.config.targets.contains_key(n) {
                let valid: Vec<&str> = suite.config.targets.keys().map(String::as_str).collect();
                let hint = crate::diagnostic::closest(n, valid.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "{origin} names unknown target `{n}`{hint}; declared targets: {}",
                    valid.join(", ")
                ));
            }
            names.insert(n.to_string());
        }
        Ok(Selection {
            names: Some(names),
            source: format!("{origin}={list}"),
        })
    }

    pub fn all() -> Selection {
        Selection {
            names: None,
            source: "all".into(),
        }
    }

    /// `None` when the target runs; otherwise why not, and how to make it run.
    pub fn skip_reason(&self, target: &Target) -> Option<String> {
        let selected = match &self.names {
            Some(n) => n.contains(&target.name),
            None if self.source == "all" => true,
            None => target.config.backend == BackendKind::Sim,
        };
        if selected {
            None
        } else {
            Some(format!(
                "target `{}` not selected ({}); run it with {TARGETS_ENV}={}",
                target.name, self.source, target.name
            ))
        }
    }
}

/// What became of one case x target.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The model answered; the rubric judged it.
    Answered { answer: Answer, verdict: Verdict },
    /// No answer: an HTTP, protocol or input error.
    Error(String),
    /// Not run, and why (target not selected, endpoint not configured, photo absent).
    Ignored(String),
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Answered { verdict, .. } if verdict.passed)
    }
}

/// An image read and encoded at most once, shared by every request that sends it.
type ImageCell = OnceCell<Result<Arc<ImageData>, String>>;

struct TargetState {
    permits: Arc<Semaphore>,
    client: OnceCell<Result<OpenAiClient, String>>,
    sim: OnceCell<Result<SimServer, String>>,
}

/// Everything shared by the trials of one process.
pub struct Session {
    pub suite: Arc<Suite>,
    http: reqwest::Client,
    targets: HashMap<String, TargetState>,
    images: Mutex<HashMap<PathBuf, Arc<ImageCell>>>,
}

impl Session {
    pub fn new(suite: Arc<Suite>) -> Arc<Session> {
        let targets = suite
            .config
            .targets
            .values()
            .map(|t| {
                (
                    t.name.clone(),
                    TargetState {
                        permits: Arc::new(Semaphore::new(t.config.concurrency)),
                        client: OnceCell::new(),
                        sim: OnceCell::new(),
                    },
                )
            })
            .collect();
        Arc::new(Session {
            suite,
            http: crate::backend::openai::default_http_client(),
            targets,
            images: Mutex::new(HashMap::new()),
        })
    }

    /// Reads and encodes an image once per process, however many targets ask about it.
    pub async fn image(&self, case: &Case) -> Result<Arc<ImageData>, String> {
        let cell = self
            .images
            .lock()
            .expect("image cache lock")
            .entry(case.image_path.clone())
            .or_default()
            .clone();
        let path = case.image_path.clone();
        let shown = case.image.display().to_string();
        cell.get_or_init(|| async move {
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| format!("cannot read image `{shown}`: {e}"))?;
            ImageData::from_bytes(bytes)
                .map(Arc::new)
                .map_err(|e| format!("image `{shown}`: {e}"))
        })
        .await
        .clone()
    }

    /// Whether the case would run on the target here, and if not, why.
    pub fn ignore_reason(
        &self,
        case: &Case,
        target: &Target,
        selection: &Selection,
    ) -> Option<String> {
        if let Some(r) = selection.skip_reason(target) {
            return Some(r);
        }
        if let Endpoint::Missing(r) = target.endpoint() {
            return Some(r);
        }
        if let Some(var) = &target.config.api_key_env {
            if std::env::var(var).map(|v| v.is_empty()).unwrap_or(true) {
                return Some(format!("API key not configured: set {var}"));
            }
        }
        if case.user_image && !case.image_path.exists() {
            return Some(format!(
                "user-supplied photo `{}` is absent: put a PNG or JPEG of the subject there to run this case",
                case.image.display()
            ));
        }
        None
    }

    /// The client for a target, starting its simulated engine on first use.
    async fn client(&self, target: &Target) -> Result<OpenAiClient, String> {
        let state = &self.targets[&target.name];
        state
            .client
            .get_or_init(|| async {
                let base_url = match target.endpoint() {
                    Endpoint::Url(u) => u,
                    Endpoint::Missing(r) => return Err(r),
                    Endpoint::Sim => state
                        .sim
                        .get_or_init(|| start_sim(target))
                        .await
                        .as_ref()
                        .map_err(Clone::clone)?
                        .base_url(),
                };
                let api_key = target
                    .config
                    .api_key_env
                    .as_ref()
                    .and_then(|v| std::env::var(v).ok())
                    .filter(|k| !k.is_empty())
                    .map(Secret::new);
                Ok(OpenAiClient::new(
                    self.http.clone(),
                    OpenAiConfig {
                        base_url,
                        api_key,
                        timeout: target.timeout(),
                        connect_timeout: Duration::from_secs(10).min(target.timeout()),
                        max_retries: target.config.retries,
                        backoff: Duration::from_millis(target.config.retry_backoff_ms),
                    },
                ))
            })
            .await
            .clone()
    }

    /// Asks one case of one target, waiting for a slot under the target's concurrency bound.
    pub async fn ask(&self, case: &Case, target: &Target) -> Result<Answer, String> {
        let image = self.image(case).await?;
        let client = self.client(target).await?;
        let request = ChatRequest {
            model: target.config.model.clone(),
            prompt: case.prompt.clone(),
            image,
            max_tokens: case.max_tokens,
            temperature: case.temperature,
            seed: case.seed,
            stream: target.config.stream,
            extra: toml_to_json_map(&target.config.extra),
        };
        let _permit = self.targets[&target.name]
            .permits
            .acquire()
            .await
            .map_err(|_| "target closed".to_string())?;
        client.chat(&request).await.map_err(|e| e.to_string())
    }

    /// Runs one case on one target to a verdict.
    pub async fn run(&self, case: &Case, target: &Target, selection: &Selection) -> Outcome {
        if let Some(reason) = self.ignore_reason(case, target, selection) {
            return Outcome::Ignored(reason);
        }
        match self.ask(case, target).await {
            Ok(answer) => {
                let verdict = case.rubric.check(&answer.text);
                Outcome::Answered { answer, verdict }
            }
            Err(e) => Outcome::Error(e),
        }
    }
}

/// Starts the simulated engine a `sim` target describes, on an ephemeral loopback port.
pub async fn start_sim(target: &Target) -> Result<SimServer, String> {
    let c = &target.config;
    let behaviour: Behaviour = c
        .behaviour
        .as_deref()
        .unwrap_or("terse")
        .parse()
        .map_err(|e| format!("target `{}`: {e}", target.name))?;
    let lat = c.latency.clone().unwrap_or_default();
    let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1000.0);
    let config = SimConfig {
        behaviour,
        latency: Latency {
            ttft: ms(lat.ttft_ms),
            per_token: ms(lat.tpot_ms),
            prefill_per_tile: ms(lat.prefill_per_tile_ms),
            jitter: lat.jitter,
        },
        max_concurrency: c.max_batch.unwrap_or(0),
        seed: 0,
    };
    SimServer::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .map_err(|e| {
            format!(
                "cannot start the simulated engine for `{}`: {e}",
                target.name
            )
        })
}

fn toml_to_json_map(t: &toml::Table) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// Runs every given (case, target) pair concurrently (bounded per target) and hands each
/// outcome to `on_done` as soon as it arrives, so results are written as they come.
pub async fn run_all(
    session: Arc<Session>,
    pairs: Vec<(Arc<Case>, Arc<Target>)>,
    selection: Selection,
    mut on_done: impl FnMut(&Case, &Target, &Outcome, Duration),
) {
    let selection = Arc::new(selection);
    let mut set = tokio::task::JoinSet::new();
    for (case, target) in pairs {
        let session = session.clone();
        let selection = selection.clone();
        set.spawn(async move {
            let start = Instant::now();
            let outcome = session.run(&case, &target, &selection).await;
            (case, target, outcome, start.elapsed())
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((case, target, outcome, elapsed)) => on_done(&case, &target, &outcome, elapsed),
            Err(e) => eprintln!("eyetest: a case task failed: {e}"),
        }
    }
}
