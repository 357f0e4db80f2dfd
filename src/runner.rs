//! Runs cases against targets: one shared tokio runtime and HTTP client per process, images
//! read and encoded once, simulated engines started on first use, and a per-target bound on
//! requests in flight so a suite's wall time approaches its slowest case, not the sum.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OnceCell, Semaphore};

use crate::backend::openai::OpenAiClient;
use crate::backend::{Answer, ChatRequest, ImageData};
use crate::halt::{Halt, Phase};
use crate::rubric::Verdict;
use crate::spec::{Case, Suite};
use crate::targets::{connect, ConnectError, Connection, Decision, Target, Use};
pub use crate::verdict::{CaseError, CaseTiming, Outcome, Repeats};
use crate::warning::{Warning, Warnings};

pub use crate::targets::{Selection, TARGETS_ENV};

/// An image read and encoded at most once, shared by every request that sends it.
type ImageCell = OnceCell<Result<Arc<ImageData>, String>>;

struct TargetState {
    permits: Arc<Semaphore>,
    /// Reached once per process; a simulated engine lives as long as the session.
    connection: OnceCell<Result<Connection, ConnectError>>,
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
    /// Where warnings met while running go (an image too large, a case task that died).
    warnings: Warnings,
}

impl Session {
    /// A session for `suite`, handing its warnings to `warnings`.
    pub fn new(suite: Arc<Suite>, warnings: Warnings) -> Arc<Session> {
        let targets = suite
            .config
            .targets
            .values()
            .map(|t| {
                (
                    t.name.clone(),
                    TargetState {
                        permits: Arc::new(Semaphore::new(t.common.concurrency)),
                        connection: OnceCell::new(),
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
            warnings,
        })
    }

    /// Like [`Session::new`], storing every live answer as a recording for replay targets.
    pub fn recording(suite: Arc<Suite>, warnings: Warnings) -> Arc<Session> {
        let mut s = Arc::into_inner(Session::new(suite, warnings)).expect("fresh session");
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
    pub async fn image(&self, case: &Case) -> Result<Arc<ImageData>, CaseError> {
        let cell = self
            .images
            .lock()
            .expect("image cache lock")
            .entry(case.image_path.clone())
            .or_default()
            .clone();
        let path = case.image_path.clone();
        let shown = case.image.display().to_string();
        let warnings = self.warnings.clone();
        cell.get_or_init(|| async move {
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| format!("cannot read image `{shown}`: {e}"))?;
            // Once per image per run: the cell is initialised once.
            if let Some(w) = Warning::large_image(&shown, bytes.len()) {
                warnings.emit(w);
            }
            ImageData::from_bytes(bytes)
                .map(Arc::new)
                .map_err(|e| format!("image `{shown}`: {e}"))
        })
        .await
        .clone()
        .map_err(CaseError::Image)
    }

    /// Whether the case would run on the target here, and if not, why: `Err` when it must
    /// not be ignored (the target was asked for and cannot run), which is a failure.
    pub fn ignore_reason(
        &self,
        case: &Case,
        target: &Target,
        selection: &Selection,
    ) -> Result<Option<String>, String> {
        match selection.decide(target, Use::Cases) {
            Decision::Run => {}
            Decision::NotSelected(r) | Decision::Ignore(r) => return Ok(Some(r)),
            Decision::Fail(r) => return Err(r),
        }
        if let Some(r) = self.suite.not_fetched_reason(case) {
            return Ok(Some(r));
        }
        if case.user_image && !case.image_path.exists() {
            return Ok(Some(format!(
                "user-supplied photo `{}` is absent: put a PNG or JPEG of the subject there to run this case",
                case.image.display()
            )));
        }
        Ok(None)
    }

    /// The client for a target, reaching it (and starting its simulated engine) on first use.
    async fn client(&self, target: &Target) -> Result<OpenAiClient, ConnectError> {
        self.targets[&target.name]
            .connection
            .get_or_init(|| connect(target, Use::Cases, Some(&self.http)))
            .await
            .as_ref()
            .map(|c| c.client.clone())
            .map_err(Clone::clone)
    }

    /// The request a case sends. A replay target asks as the target it replays, so that the
    /// recorded request and this one can be compared part by part.
    fn request(&self, case: &Case, target: &Target, image: Arc<ImageData>) -> ChatRequest {
        let model_of = target
            .replay_of()
            .and_then(|s| self.suite.target(s))
            .map_or(&target.common.model, |s| &s.common.model);
        ChatRequest {
            model: model_of.clone(),
            prompt: case.prompt.clone(),
            image,
            max_tokens: case.max_tokens,
            temperature: case.temperature,
            seed: case.seed,
            stream: target.common.stream,
            extra: toml_to_json_map(&target.common.extra),
        }
    }

    /// Asks one case of one target once, waiting for a slot under the target's concurrency
    /// bound; replays from golden/recordings for a replay target, and records when asked to.
    pub async fn ask(&self, case: &Case, target: &Target) -> Result<Answer, CaseError> {
        self.ask_timed(case, target, &mut CaseTiming::default())
            .await
            .map(|(answer, _)| answer)
    }

    /// [`Session::ask`], adding to `timing` the wait for a slot and the request's own time;
    /// also returns the image's digest, for the snapshot header.
    async fn ask_timed(
        &self,
        case: &Case,
        target: &Target,
        timing: &mut CaseTiming,
    ) -> Result<(Answer, String), CaseError> {
        if self.halt.phase() >= Phase::Draining {
            return Err(CaseError::NotStarted);
        }
        let image = self.image(case).await?;
        let sha = image.sha256.clone();
        let request = self.request(case, target, image);
        if let Some(source) = target.replay_of() {
            let path = crate::record::path(&self.golden_dir(), source, &case.spec.id, &case.name);
            let start = Instant::now();
            let answer = crate::record::replay(&path, source, &case.id(), &request);
            timing.request += start.elapsed();
            return Ok((answer?, sha));
        }
        let client = self
            .client(target)
            .await
            .map_err(|e| CaseError::Setup(e.to_string()))?;
        let answer = {
            let permits = &self.targets[&target.name].permits;
            let waiting = Instant::now();
            // A case waiting for a slot has not started; a drain must not let it start.
            let _permit = tokio::select! {
                biased;
                _ = self.halt.reached(Phase::Draining) => return Err(CaseError::NotStarted),
                permit = permits.acquire() => permit.map_err(|_| CaseError::Setup("target closed".into()))?,
            };
            timing.queued += waiting.elapsed();
            let start = Instant::now();
            let answer = client.chat(&request).await;
            timing.request += start.elapsed();
            answer?
        };
        if self.record {
            let path =
                crate::record::path(&self.golden_dir(), &target.name, &case.spec.id, &case.name);
            crate::record::Recording::new(&target.name, &request, &answer)
                .save(&path)
                .map_err(|e| CaseError::Record {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok((answer, sha))
    }

    /// Runs one case on one target to an outcome (asking `repeats` times when the case says
    /// so); the snapshot check comes after, in [`crate::verdict::judge`].
    pub async fn run(&self, case: &Case, target: &Target, selection: &Selection) -> Outcome {
        self.run_timed(case, target, selection).await.0
    }

    /// [`Session::run`], with where the time went.
    pub async fn run_timed(
        &self,
        case: &Case,
        target: &Target,
        selection: &Selection,
    ) -> (Outcome, CaseTiming) {
        match self.ignore_reason(case, target, selection) {
            Ok(None) => {}
            Ok(Some(reason)) => return (Outcome::Ignored(reason), CaseTiming::default()),
            Err(failure) => {
                return (
                    Outcome::Error(CaseError::Setup(failure)),
                    CaseTiming::default(),
                )
            }
        }
        let mut timing = CaseTiming::default();
        if case.repeats <= 1 {
            let outcome = match self.ask_timed(case, target, &mut timing).await {
                Ok((answer, image_sha256)) => {
                    let keywords = case.rubric.check(&answer.text);
                    let verdict = self
                        .judged(case, target, &answer.text, keywords, &mut timing)
                        .await;
                    Outcome::Answered {
                        answer,
                        verdict,
                        repeats: None,
                        image_sha256,
                    }
                }
                Err(e) => Outcome::Error(e),
            };
            return (outcome, timing);
        }
        let asks = (0..case.repeats).map(|_| async {
            let mut t = CaseTiming::default();
            let r = self.ask_timed(case, target, &mut t).await;
            (r, t)
        });
        let mut answers = Vec::with_capacity(case.repeats as usize);
        let mut sha = String::new();
        let mut error = None;
        for (result, t) in futures_util::future::join_all(asks).await {
            timing.request += t.request;
            timing.queued += t.queued;
            match result {
                Ok((a, s)) => {
                    answers.push(a);
                    sha = s;
                }
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = error {
            return (Outcome::Error(e), timing);
        }
        (judge_repeats(case, answers, sha), timing)
    }
}

/// The verdict of a case asked several times: the pass rate decides, and the most common
/// answer stands for the case in snapshots and reports.
fn judge_repeats(case: &Case, answers: Vec<Answer>, image_sha256: String) -> Outcome {
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
        image_sha256,
    }
}

fn toml_to_json_map(t: &toml::Table) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// What became of the pairs of a run that was stopped part-way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unfinished {
    /// Had not started when the run began draining.
    pub not_started: usize,
    /// Were in flight past the grace period and were dropped.
    pub aborted: usize,
}

/// Why a pair handed nothing out.
enum Unstarted {
    NotStarted,
    Aborted,
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
    mut on_done: impl FnMut(&Arc<Case>, &Arc<Target>, Outcome, CaseTiming),
) -> Unfinished {
    let selection = Arc::new(selection);
    let mut set = tokio::task::JoinSet::new();
    for (case, target) in pairs {
        let session = session.clone();
        let selection = selection.clone();
        set.spawn(async move {
            let halt = session.halt().clone();
            let (outcome, timing) = tokio::select! {
                ran = session.run_timed(&case, &target, &selection) => ran,
                _ = halt.reached(Phase::Aborting) => return Err(Unstarted::Aborted),
            };
            if matches!(&outcome, Outcome::Error(CaseError::NotStarted)) {
                return Err(Unstarted::NotStarted);
            }
            Ok((case, target, outcome, timing))
        });
    }
    let mut unfinished = Unfinished::default();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok((case, target, outcome, timing))) => on_done(&case, &target, outcome, timing),
            Ok(Err(Unstarted::Aborted)) => unfinished.aborted += 1,
            Ok(Err(Unstarted::NotStarted)) => unfinished.not_started += 1,
            Err(e) => session.warnings.emit(Warning::CaseTask {
                message: e.to_string(),
            }),
        }
    }
    unfinished
}

mod judge;
#[cfg(test)]
mod tests;
