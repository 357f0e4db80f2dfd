//! The load generator: keeps exactly `concurrency` requests in flight against an
//! OpenAI-compatible endpoint and times each one.
//!
//! Built so that the client is never what is measured:
//! - Every image is encoded once and every distinct request body serialized once, before
//!   the clock starts; a request sends a refcounted [`Bytes`] of its body, so 10,000 requests
//!   of a 1.3 MB image cost the memory of the distinct bodies only.
//! - `concurrency` worker tasks (not one task per request) pull request numbers from an
//!   atomic counter: the closed loop of vLLM's `--max-concurrency` with no semaphore hand-off
//!   and nothing allocated per request beyond the HTTP exchange itself. Workers are spawned
//!   on the multi-thread runtime so that a thousand streams spread over every core.
//! - Streaming timings come from the client ([`crate::backend::Timing`]): a monotonic clock
//!   taken just before the request is sent, and each SSE event stamped when its network
//!   chunk arrived.
//! - Every finished request goes straight into the level's histograms
//!   ([`super::recorder`]) and is dropped: memory does not grow with the number of requests.
//! - Retries are off: a retried request would hide a failure and stretch its latency; a
//!   failure is counted, with its error, and never averaged in.
//!
//! `queued` is the time from the start of the level (when, in a closed loop, every request is
//! ready) to the moment the request got a slot and was sent; `queued + e2e` accounts for a
//! request's whole life, so time lost in the client shows up instead of hiding.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use serde::{Deserialize, Serialize};

use super::level::LevelKey;
pub use super::level::{span_label, LevelSpan};
use super::metrics::{ErrorCount, LevelMetrics};
use super::recorder::Recorder;
use super::recorder::{GoodputLimits, LevelRecord};
use super::sample::Sample;
use super::spec::ImageSource;
use crate::backend::openai::{request_body, OpenAiClient};
use crate::backend::{ChatRequest, ImageData};
use crate::warning::Warning;

/// What every request of a sweep asks, apart from the image.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    pub model: String,
    pub prompt: String,
    pub max_tokens: u32,
    pub temperature: f64,
    pub stream: bool,
    /// Extra top-level fields (`ignore_eos`, `min_tokens`, the target's `extra`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Why the request bodies of a sweep could not be built. Each names the image.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("cannot generate random image {index}: {source}")]
    Generate {
        index: usize,
        source: crate::fixture::FixtureError,
    },
    #[error("cannot read image `{}`: {source}", shown.display())]
    Read {
        /// The path as the spec wrote it.
        shown: PathBuf,
        source: std::io::Error,
    },
    #[error("image {index}: {source}")]
    Format {
        index: usize,
        source: std::io::Error,
    },
    #[error("image {index}: cannot read the image size: {source}")]
    Size {
        index: usize,
        source: image::ImageError,
    },
    #[error("image {index}: {source}")]
    Image {
        index: usize,
        source: crate::backend::ImageError,
    },
    #[error(transparent)]
    Body(#[from] crate::backend::BackendError),
    #[error("a workload needs at least one image")]
    Empty,
    #[error("an image worker thread panicked")]
    WorkerPanicked,
}

/// Why a sweep stopped before measuring all its levels.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SweepError {
    /// Measuring would only record failures: the endpoint is not answering.
    #[error(
        "every warm-up request before {level} (repeat {} of {repeats}) failed ({failed} of {sent}), e.g. {example}; the sweep stopped, since measuring would only record failures: check that the endpoint answers",
        repeat + 1
    )]
    WarmupFailed {
        level: LevelKey,
        /// 0-based.
        repeat: usize,
        repeats: usize,
        failed: usize,
        sent: usize,
        /// The most frequent error.
        example: String,
    },
    /// The rate sweep's throughput probe completed nothing, so there is no range of rates.
    #[error("the sweep's throughput probe (c={concurrency}) completed no request, so there is no range of rates to sweep; check that the endpoint answers")]
    ProbeCompletedNothing { concurrency: usize },
}

impl SweepError {
    /// The error for a warm-up `record` where every request failed, if it is one.
    pub(super) fn warmup(record: &Warmup, level: LevelKey, repeats: usize) -> Option<Self> {
        (record.sent > 0 && record.failed == record.sent).then(|| SweepError::WarmupFailed {
            level,
            repeat: record.repeat,
            repeats,
            failed: record.failed,
            sent: record.sent,
            example: record
                .errors
                .first()
                .map_or("unknown error", |e| e.message.as_str())
                .to_string(),
        })
    }
}

/// The request bodies of a sweep, serialized once; request `i` sends body `i % len`.
#[derive(Debug)]
pub struct Workload {
    bodies: Vec<Bytes>,
    pub stream: bool,
    /// What the fingerprint records about the images, e.g. "random 560x560".
    pub image_label: String,
    /// Found while building (an image too large), for the caller to show.
    pub warnings: Vec<Warning>,
}

impl Workload {
    /// Encodes every image and serializes its body, on all cores (a 560x560 noise PNG takes
    /// milliseconds to encode, and the study's sweep has 256 of them). Each image's PNG and
    /// data URL are dropped as soon as its body exists, so peak memory is the bodies.
    pub fn build(
        images: &ImageSource,
        template: &RequestTemplate,
    ) -> Result<Workload, WorkloadError> {
        let n = images.count();
        type Built = (Bytes, (u32, u32), String, Option<Warning>);
        let one = |index: usize| -> Result<Built, WorkloadError> {
            let (png, warning) = match images {
                ImageSource::Random {
                    width,
                    height,
                    seed,
                    ..
                } => (
                    crate::fixture::random_noise_png(
                        *width,
                        *height,
                        seed.wrapping_add(index as u64),
                    )
                    .map_err(|source| WorkloadError::Generate { index, source })?,
                    None,
                ),
                ImageSource::Files { paths, written } => {
                    let bytes =
                        std::fs::read(&paths[index]).map_err(|source| WorkloadError::Read {
                            shown: written[index].clone(),
                            source,
                        })?;
                    let shown = written[index].display().to_string();
                    let warning = Warning::large_image(&shown, bytes.len());
                    (bytes, warning)
                }
            };
            let dims = dimensions(&png).map_err(|e| e.at(index))?;
            let image = ImageData::from_bytes(png)
                .map_err(|source| WorkloadError::Image { index, source })?;
            let sha = image.sha256.clone();
            let body = Self::body(Arc::new(image), template)?;
            Ok((body, dims, sha, warning))
        };
        let mut built = parallel_map(n, one, || WorkloadError::WorkerPanicked)?;
        let warnings = built.iter_mut().filter_map(|b| b.3.take()).collect();
        let label = match images {
            ImageSource::Random { width, height, .. } => format!("random {width}x{height}"),
            ImageSource::Files { .. } => {
                let (w, h) = built[0].1;
                let size = if built.iter().all(|b| b.1 == (w, h)) {
                    format!("{w}x{h}")
                } else {
                    "mixed sizes".into()
                };
                let mut hash = Sha256::new();
                for b in &built {
                    hash.update(b.2.as_bytes());
                }
                let hash = hex::encode(hash.finalize());
                format!("files {size} x{n} (sha256 {})", &hash[..12])
            }
        };
        Ok(Workload {
            bodies: built.into_iter().map(|b| b.0).collect(),
            stream: template.stream,
            image_label: label,
            warnings,
        })
    }

    /// A workload of ready-made images, for benchmarks and tests that bring their own.
    pub fn from_images(
        images: &[Arc<ImageData>],
        template: &RequestTemplate,
        image_label: impl Into<String>,
    ) -> Result<Workload, WorkloadError> {
        if images.is_empty() {
            return Err(WorkloadError::Empty);
        }
        Ok(Workload {
            bodies: images
                .iter()
                .map(|i| Self::body(i.clone(), template))
                .collect::<Result<_, _>>()?,
            stream: template.stream,
            image_label: image_label.into(),
            warnings: Vec::new(),
        })
    }

    fn body(image: Arc<ImageData>, t: &RequestTemplate) -> Result<Bytes, WorkloadError> {
        request_body(&ChatRequest {
            model: t.model.clone(),
            prompt: t.prompt.clone(),
            image,
            max_tokens: t.max_tokens,
            temperature: t.temperature,
            seed: None,
            stream: t.stream,
            extra: t.extra.clone(),
        })
        .map_err(WorkloadError::Body)
    }

    /// The body of request `i`.
    pub fn body_for(&self, i: usize) -> Bytes {
        self.bodies[i % self.bodies.len()].clone()
    }

    pub fn distinct_bodies(&self) -> usize {
        self.bodies.len()
    }

    /// Bytes held by the distinct bodies: the workload's whole memory.
    pub fn body_bytes(&self) -> usize {
        self.bodies.iter().map(Bytes::len).sum()
    }
}

/// Why an image's size could not be read from its header.
enum DimensionError {
    Format(std::io::Error),
    Size(image::ImageError),
}

impl DimensionError {
    fn at(self, index: usize) -> WorkloadError {
        match self {
            DimensionError::Format(source) => WorkloadError::Format { index, source },
            DimensionError::Size(source) => WorkloadError::Size { index, source },
        }
    }
}

/// Width and height from the image header, without decoding the pixels.
fn dimensions(bytes: &[u8]) -> Result<(u32, u32), DimensionError> {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(DimensionError::Format)?
        .into_dimensions()
        .map_err(DimensionError::Size)
}

/// `f(0..n)` on every core, in order; the first error wins, and a worker that panicked
/// loses its items to `lost()`.
fn parallel_map<T: Send, E: Send>(
    n: usize,
    f: impl Fn(usize) -> Result<T, E> + Sync,
    lost: impl Fn() -> E,
) -> Result<Vec<T>, E> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Result<T, E>>> = (0..n).map(|_| None).collect();
    let results = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break out;
                        }
                        out.push((i, f(i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect::<Vec<_>>()
    });
    for (i, r) in results {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .map(|s| s.unwrap_or_else(|| Err(lost())))
        .collect()
}

/// What a sweep reports while it runs (the CLI draws a progress bar from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A phase starts: `warmup` requests, or the measured ones, of one level of one repeat.
    Phase {
        repeat: usize,
        repeats: usize,
        concurrency: usize,
        requests: usize,
        warmup: bool,
    },
    /// One request finished.
    Request { ok: bool },
}

/// A progress callback; [`Progress::none`] costs one branch per request.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn Fn(ProgressEvent) + Send + Sync>>);

impl Progress {
    pub fn none() -> Progress {
        Progress(None)
    }

    pub fn new(f: impl Fn(ProgressEvent) + Send + Sync + 'static) -> Progress {
        Progress(Some(Arc::new(f)))
    }

    pub(crate) fn emit(&self, e: ProgressEvent) {
        if let Some(f) = &self.0 {
            f(e)
        }
    }
}

/// Levels, requests per level, warm-up and repeats of one sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPlan {
    /// (concurrency, measured requests) per level, in run order.
    pub levels: Vec<(usize, usize)>,
    /// Unmeasured requests before each level; `None`: one per slot, so every connection is
    /// open and the engine has warmed up before the clock starts.
    pub warmup: Option<usize>,
    pub repeats: usize,
    /// Per-request goodput limits, checked as each request ends.
    pub goodput: Option<GoodputLimits>,
}

/// The warm-up before one level of one repeat: unmeasured, but its failures are reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    pub repeat: usize,
    pub concurrency: usize,
    pub sent: usize,
    pub failed: usize,
    /// Distinct errors, most frequent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorCount>,
    /// The rate of the open-loop level this warm-up preceded (`concurrency` is then the
    /// warm-up's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

/// What a sweep measured.
#[derive(Debug, Clone, Default)]
pub struct SweepResult {
    /// One entry per level and repeat, in run order.
    pub runs: Vec<LevelMetrics>,
    /// One entry per level, every repeat merged (histograms add exactly): what absolute
    /// SLOs are checked on.
    pub pooled: Vec<LevelMetrics>,
    pub warmups: Vec<Warmup>,
    /// When each measured level ran, in run order.
    pub spans: Vec<LevelSpan>,
}

/// Runs every level of every repeat, repeats outermost: a slow drift of the machine then
/// spreads over all levels instead of landing on one, which keeps repeats independent.
/// Each level's histograms become metrics as soon as it ends, so memory does not grow with
/// the requests. `Err` when a warm-up failed entirely: the endpoint is not answering, and
/// measuring it would only record failures.
pub async fn sweep(
    client: &OpenAiClient,
    workload: &Arc<Workload>,
    plan: &SweepPlan,
    progress: &Progress,
) -> Result<SweepResult, SweepError> {
    let mut out = SweepResult::default();
    let mut pooled: Vec<(usize, Duration, Recorder)> = Vec::new();
    for repeat in 0..plan.repeats {
        for &(c, requests) in &plan.levels {
            let warmup = plan.warmup.unwrap_or(c);
            if warmup > 0 {
                progress.emit(ProgressEvent::Phase {
                    repeat,
                    repeats: plan.repeats,
                    concurrency: c,
                    requests: warmup,
                    warmup: true,
                });
                let w = run_level_with(client, workload, c, warmup, None, progress).await;
                let r = &w.recorder;
                let record = Warmup {
                    repeat,
                    concurrency: c,
                    sent: (r.completed + r.failed) as usize,
                    failed: r.failed as usize,
                    errors: r.sorted_errors(),
                    rate: None,
                };
                if let Some(e) = SweepError::warmup(&record, LevelKey::closed(c), plan.repeats) {
                    return Err(e);
                }
                out.warmups.push(record);
            }
            progress.emit(ProgressEvent::Phase {
                repeat,
                repeats: plan.repeats,
                concurrency: c,
                requests,
                warmup: false,
            });
            let t0 = Instant::now();
            let run = run_level_with(
                client,
                workload,
                c,
                requests,
                plan.goodput.clone(),
                progress,
            )
            .await;
            let m = LevelMetrics::from_run(&run);
            out.spans.push(LevelSpan {
                label: span_label(&format!("c={c}"), repeat, plan.repeats),
                start: t0,
                end: Instant::now(),
                images_per_s: m.images_per_s,
            });
            out.runs.push(m);
            match pooled.iter_mut().find(|p| p.0 == c) {
                Some(p) => {
                    p.1 += run.wall;
                    p.2.merge(&run.recorder);
                }
                None => pooled.push((c, run.wall, run.recorder)),
            }
        }
    }
    pooled.sort_by_key(|p| p.0);
    out.pooled = pooled
        .iter()
        .map(|(c, wall, r)| LevelMetrics::from_recorder(*c, *wall, r))
        .collect();
    Ok(out)
}

/// Sends `requests` requests with `concurrency` in flight and times each.
pub async fn run_level(
    client: &OpenAiClient,
    workload: &Arc<Workload>,
    concurrency: usize,
    requests: usize,
    progress: &Progress,
) -> LevelRecord {
    run_level_with(client, workload, concurrency, requests, None, progress).await
}

/// [`run_level`], counting goodput against `goodput`'s per-request limits.
pub async fn run_level_with(
    client: &OpenAiClient,
    workload: &Arc<Workload>,
    concurrency: usize,
    requests: usize,
    goodput: Option<GoodputLimits>,
    progress: &Progress,
) -> LevelRecord {
    let next = Arc::new(AtomicUsize::new(0));
    // One recorder for all workers: a lock per finished request is nothing next to an HTTP
    // exchange, and per-worker histograms would cost a thousand times the memory at c=1000.
    let recorder = Arc::new(Mutex::new(Recorder::new(goodput)));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency.clamp(1, requests.max(1)))
        .map(|_| {
            tokio::spawn(worker(
                client.clone(),
                workload.clone(),
                next.clone(),
                requests,
                start,
                recorder.clone(),
                progress.clone(),
            ))
        })
        .collect();
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    let mut lost = Vec::new();
    for w in workers {
        match w.await {
            Ok(out) => {
                first = min_opt(first, out.first_send);
                last = max_opt(last, out.last_done);
            }
            // A worker can only die by a panic in the client: the request it was sending is
            // counted as failed, so the counts still add up.
            Err(e) => lost.push(Sample {
                ok: false,
                error: Some(format!("load generator worker failed: {e}")),
                ..Default::default()
            }),
        }
    }
    let mut recorder = match Arc::try_unwrap(recorder) {
        Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
        Err(shared) => shared.lock().unwrap_or_else(|p| p.into_inner()).clone(),
    };
    lost.iter().for_each(|s| recorder.record(s));
    let wall = match (first, last) {
        (Some(f), Some(l)) => l.saturating_duration_since(f),
        _ => Duration::ZERO,
    };
    LevelRecord {
        concurrency,
        wall,
        recorder,
    }
}

struct WorkerOut {
    first_send: Option<Instant>,
    last_done: Option<Instant>,
}

async fn worker(
    client: OpenAiClient,
    workload: Arc<Workload>,
    next: Arc<AtomicUsize>,
    total: usize,
    level_start: Instant,
    recorder: Arc<Mutex<Recorder>>,
    progress: Progress,
) -> WorkerOut {
    let mut out = WorkerOut {
        first_send: None,
        last_done: None,
    };
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return out;
        }
        let (sent, done) = send_one(&client, &workload, i, level_start, &recorder, &progress).await;
        out.first_send.get_or_insert(sent);
        out.last_done = Some(done);
    }
}

/// Sends request `i` of `workload`, records it, and returns when it was sent and when it
/// ended. `due` is when it should have gone out (the level's start for a closed loop, its
/// scheduled arrival for an open one): the wait from then to the send is its queueing delay.
/// The one measurement both load loops share, so they cannot time requests differently.
pub(super) async fn send_one(
    client: &OpenAiClient,
    workload: &Workload,
    i: usize,
    due: Instant,
    recorder: &Mutex<Recorder>,
    progress: &Progress,
) -> (Instant, Instant) {
    let body = workload.body_for(i);
    let sent = Instant::now();
    let result = client.chat_with_body(body, workload.stream).await;
    let done = Instant::now();
    let queued = sent.saturating_duration_since(due);
    let sample = match result {
        Ok(a) => Sample {
            ok: true,
            error: None,
            queued,
            ttft: a.timing.ttft,
            e2e: a.timing.e2e,
            itl: a.timing.itl,
            prompt_tokens: a.usage.map(|u| u.prompt_tokens),
            output_tokens: a.usage.map(|u| u.completion_tokens),
        },
        Err(e) => Sample {
            ok: false,
            error: Some(e.to_string()),
            queued,
            e2e: done.saturating_duration_since(sent),
            ..Default::default()
        },
    };
    progress.emit(ProgressEvent::Request { ok: sample.ok });
    recorder
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(&sample);
    (sent, done)
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> RequestTemplate {
        RequestTemplate {
            model: "m".into(),
            prompt: "p".into(),
            max_tokens: 4,
            temperature: 0.0,
            stream: true,
            extra: serde_json::Map::new(),
        }
    }

    #[test]
    fn parallel_map_keeps_order_and_reports_errors() {
        let lost = || "lost".to_string();
        let v = parallel_map(50, |i| Ok::<_, String>(i * 2), lost).unwrap();
        assert_eq!(v, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        let e = parallel_map(
            5,
            |i| if i == 3 { Err("bad 3".into()) } else { Ok(i) },
            lost,
        );
        assert_eq!(e.unwrap_err(), "bad 3");
        assert!(parallel_map(0, Ok::<_, String>, lost).unwrap().is_empty());
    }

    #[test]
    fn random_images_are_distinct_bodies_cycled_by_request() {
        let src = ImageSource::Random {
            width: 64,
            height: 64,
            count: 3,
            seed: 9,
        };
        let w = Workload::build(&src, &template()).unwrap();
        assert_eq!(w.image_label, "random 64x64");
        assert_eq!(w.distinct_bodies(), 3);
        assert_ne!(w.body_for(0), w.body_for(1));
        assert_eq!(w.body_for(4), w.body_for(1));
        // Shared, not copied: the same allocation every time.
        assert_eq!(w.body_for(0).as_ptr(), w.body_for(3).as_ptr());
        let body: serde_json::Value = serde_json::from_slice(&w.body_for(0)).unwrap();
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["max_tokens"], 4);
    }

    #[test]
    fn file_images_are_labelled_by_size_and_content() {
        let dir = tempfile::tempdir().unwrap();
        for (name, side, seed) in [("a.png", 64, 1), ("b.png", 64, 2), ("c.png", 80, 3)] {
            let png = crate::fixture::random_noise_png(side, side, seed).unwrap();
            std::fs::write(dir.path().join(name), png).unwrap();
        }
        let same = Workload::build(
            &ImageSource::files(dir.path(), &["a.png", "b.png"]),
            &template(),
        )
        .unwrap();
        assert!(
            same.image_label.starts_with("files 64x64 x2 (sha256 "),
            "{}",
            same.image_label
        );
        let other = Workload::build(
            &ImageSource::files(dir.path(), &["a.png", "c.png"]),
            &template(),
        )
        .unwrap();
        assert!(
            other.image_label.starts_with("files mixed sizes x2"),
            "{}",
            other.image_label
        );
        let err = Workload::build(&ImageSource::files(dir.path(), &["nope.png"]), &template());
        let err = err.unwrap_err();
        assert!(matches!(err, WorkloadError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("nope.png"), "{err}");
    }
}
