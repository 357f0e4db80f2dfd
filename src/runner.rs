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
use crate::halt::{Halt, Phase};
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
/// a comma-separated list of target names, or `all`. Unset: the targets that need no server
/// (simulated and replay).
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
                source: format!("{TARGETS_ENV} unset: simulated and replay targets only"),
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
            // Simulated and replayed targets need no server, so they run unless told otherwise.
            None => target.config.backend != BackendKind::Openai,
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

/// How the answers of a case asked several times (`repeats = N`) came out.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Repeats {
    pub total: u32,
    pub passed: u32,
    /// Fraction of repeats that must pass.
    pub pass_rate: f64,
    /// How many different answers came back.
    pub distinct: u32,
    /// Different answers at temperature 0, where a deterministic engine gives one.
    pub unstable: bool,
}

impl Repeats {
    pub fn met(&self) -> bool {
        self.passed as f64 >= self.pass_rate * self.total as f64 - 1e-9
    }
}

/// What became of one case x target.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The model answered; the rubric judged it. With repeats, `answer` is the most common
    /// answer (what gets snapshotted) and `verdict` its rubric verdict.
    Answered {
        answer: Answer,
        verdict: Verdict,
        repeats: Option<Repeats>,
    },
    /// No answer: an HTTP, protocol or input error.
    Error(String),
    /// Not run, and why (target not selected, endpoint not configured, photo absent).
    Ignored(String),
}

impl Outcome {
    pub fn passed(&self) -> bool {
        match self {
            Outcome::Answered {
                repeats: Some(r), ..
            } => r.met(),
            Outcome::Answered { verdict, .. } => verdict.passed,
            _ => false,
        }
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
    /// Store every live answer under golden/recordings (`--record`, `EYETEST_RECORD=1`).
    record: bool,
    /// Stops new requests once a run is told to stop (`eyetest run` on SIGINT/SIGTERM).
    halt: Halt,
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
            record: false,
            halt: Halt::default(),
        })
    }

    /// Like [`Session::new`], storing every live answer as a recording for replay targets.
    pub fn recording(suite: Arc<Suite>) -> Arc<Session> {
        let mut s = Arc::into_inner(Session::new(suite)).expect("fresh session");
        s.record = true;
        Arc::new(s)
    }

    /// The switch that stops this session's run: draining makes every request not yet sent
    /// fail with [`NOT_STARTED`], which [`run_all`] reports as never run.
    pub fn halt(&self) -> &Halt {
        &self.halt
    }

    fn golden_dir(&self) -> PathBuf {
        self.suite.root.join(&self.suite.config.settings.golden)
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
                    Endpoint::Replay => {
                        return Err(format!(
                            "target `{}` replays recordings; it has no client",
                            target.name
                        ))
                    }
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
                let connect_timeout = Duration::from_secs(10).min(target.timeout());
                // A private CA is trusted by its target's own client, never by the shared one.
                let http = match &target.config.ca_file {
                    Some(ca) => crate::backend::openai::http_client_with_ca(
                        &self.suite.root.join(ca),
                        connect_timeout,
                    )
                    .map_err(|e| format!("target `{}`: {e}", target.name))?,
                    None => self.http.clone(),
                };
                Ok(OpenAiClient::new(
                    http,
                    OpenAiConfig {
                        base_url,
                        api_key,
                        timeout: target.timeout(),
                        connect_timeout,
                        max_retries: target.config.retries,
                        backoff: Duration::from_millis(target.config.retry_backoff_ms),
                    },
                ))
            })
            .await
            .clone()
    }

    /// The request a case sends. A replay target asks as the target it replays, so that the
    /// recorded request and this one can be compared part by part.
    fn request(&self, case: &Case, target: &Target, image: Arc<ImageData>) -> ChatRequest {
        let model_of = target
            .config
            .replay_of
            .as_ref()
            .and_then(|s| self.suite.target(s))
            .map_or(&target.config.model, |s| &s.config.model);
        ChatRequest {
            model: model_of.clone(),
            prompt: case.prompt.clone(),
            image,
            max_tokens: case.max_tokens,
            temperature: case.temperature,
            seed: case.seed,
            stream: target.config.stream,
            extra: toml_to_json_map(&target.config.extra),
        }
    }

    /// Asks one case of one target once, waiting for a slot under the target's concurrency
    /// bound; replays from golden/recordings for a replay target, and records when asked to.
    pub async fn ask(&self, case: &Case, target: &Target) -> Result<Answer, String> {
        if self.halt.phase() >= Phase::Draining {
            return Err(NOT_STARTED.into());
        }
        let image = self.image(case).await?;
        let request = self.request(case, target, image);
        if let Some(source) = &target.config.replay_of {
            let path = crate::record::path(&self.golden_dir(), source, &case.spec.id, &case.name);
            return crate::record::replay(&path, source, &case.id(), &request)
                .map_err(|e| e.to_string());
        }
        let client = self.client(target).await?;
        let answer = {
            let permits = &self.targets[&target.name].permits;
            // A case waiting for a slot has not started; a drain must not let it start.
            let _permit = tokio::select! {
                biased;
                _ = self.halt.reached(Phase::Draining) => return Err(NOT_STARTED.into()),
                permit = permits.acquire() => permit.map_err(|_| "target closed".to_string())?,
            };
            client.chat(&request).await.map_err(|e| e.to_string())?
        };
        if self.record {
            let path =
                crate::record::path(&self.golden_dir(), &target.name, &case.spec.id, &case.name);
            crate::record::Recording::new(&target.name, &request, &answer)
                .save(&path)
                .map_err(|e| format!("cannot write recording {}: {e}", path.display()))?;
        }
        Ok(answer)
    }

    /// Runs one case on one target to a verdict (asking `repeats` times when the case says so).
    pub async fn run(&self, case: &Case, target: &Target, selection: &Selection) -> Outcome {
        if let Some(reason) = self.ignore_reason(case, target, selection) {
            return Outcome::Ignored(reason);
        }
        if case.repeats <= 1 {
            return match self.ask(case, target).await {
                Ok(answer) => {
                    let verdict = case.rubric.check(&answer.text);
                    Outcome::Answered {
                        answer,
                        verdict,
                        repeats: None,
                    }
                }
                Err(e) => Outcome::Error(e),
            };
        }
        let asks = (0..case.repeats).map(|_| self.ask(case, target));
        let mut answers = Vec::with_capacity(case.repeats as usize);
        for result in futures_util::future::join_all(asks).await {
            match result {
                Ok(a) => answers.push(a),
                Err(e) => return Outcome::Error(e),
            }
        }
        judge_repeats(case, answers)
    }
}

/// The verdict of a case asked several times: the pass rate decides, and the most common
/// answer stands for the case in snapshots and reports.
fn judge_repeats(case: &Case, answers: Vec<Answer>) -> Outcome {
    let verdicts: Vec<Verdict> = answers.iter().map(|a| case.rubric.check(&a.text)).collect();
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for a in &answers {
        match counts.iter_mut().find(|(t, _)| *t == a.text) {
            Some((_, n)) => *n += 1,
            None => counts.push((&a.text, 1)),
        }
    }
    // Most common answer; ties go to the one seen first.
    let best = counts
        .iter()
        .enumerate()
        .max_by_key(|(i, (_, n))| (*n, std::cmp::Reverse(*i)))
        .map(|(_, (t, _))| *t)
        .unwrap_or_default();
    let idx = answers.iter().position(|a| a.text == best).unwrap_or(0);
    let repeats = Repeats {
        total: answers.len() as u32,
        passed: verdicts.iter().filter(|v| v.passed).count() as u32,
        pass_rate: case.pass_rate,
        distinct: counts.len() as u32,
        unstable: counts.len() > 1 && case.temperature == 0.0,
    };
    let verdict = verdicts[idx].clone();
    let answer = answers.into_iter().nth(idx).expect("index of an answer");
    Outcome::Answered {
        answer,
        verdict,
        repeats: Some(repeats),
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
        fail_first: c.fail_first.unwrap_or(0),
        fault_rate: c.fault_rate.unwrap_or(0.0),
        faults: c
            .faults
            .iter()
            .flatten()
            .map(|f| f.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("target `{}`: {e}", target.name))?,
        memoize: c.memoize.unwrap_or(false),
    };
    config
        .check()
        .map_err(|e| format!("target `{}`: {e}", target.name))?;
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

/// The error of a request that a draining run never sent.
pub const NOT_STARTED: &str = "not started: the run was stopped";

/// What became of the pairs of a run that was stopped part-way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unfinished {
    /// Had not started when the run began draining.
    pub not_started: usize,
    /// Were in flight past the grace period and were dropped.
    pub aborted: usize,
}

/// Runs every given (case, target) pair concurrently (bounded per target) and hands each
/// outcome to `on_done` as soon as it arrives, so results are written as they come.
///
/// When the session's [`Halt`] drains, pairs not yet started are not run, and when it
/// aborts, those in flight are dropped: neither reaches `on_done`, so every result handed
/// out is a whole one. Returns how many pairs ended that way.
pub async fn run_all(
    session: Arc<Session>,
    pairs: Vec<(Arc<Case>, Arc<Target>)>,
    selection: Selection,
    mut on_done: impl FnMut(&Case, &Target, &Outcome, Duration),
) -> Unfinished {
    let selection = Arc::new(selection);
    let mut set = tokio::task::JoinSet::new();
    for (case, target) in pairs {
        let session = session.clone();
        let selection = selection.clone();
        set.spawn(async move {
            let start = Instant::now();
            let halt = session.halt().clone();
            let outcome = tokio::select! {
                outcome = session.run(&case, &target, &selection) => outcome,
                _ = halt.reached(Phase::Aborting) => return Err(true),
            };
            if matches!(&outcome, Outcome::Error(e) if e == NOT_STARTED) {
                return Err(false);
            }
            Ok((case, target, outcome, start.elapsed()))
        });
    }
    let mut unfinished = Unfinished::default();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok((case, target, outcome, elapsed))) => on_done(&case, &target, &outcome, elapsed),
            Ok(Err(true)) => unfinished.aborted += 1,
            Ok(Err(false)) => unfinished.not_started += 1,
            Err(e) => eprintln!("eyetest: a case task failed: {e}"),
        }
    }
    unfinished
}

#[cfg(test)]
mod tests;
