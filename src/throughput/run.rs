//! One throughput spec on one target, end to end: reach the endpoint, fingerprint it,
//! sweep, gate against the baseline for that fingerprint and against the spec's SLOs,
//! optionally accept a new baseline, and hand the results to the exporters. Shared by the
//! `cargo test` harness and `eyetest bench`.
//!
//! Flow: [`endpoint`] (target -> base URL and client) -> [`load::sweep`] (histograms ->
//! metrics) -> [`verdict::evaluate`] and [`slo::evaluate`] -> [`super::export`] (CSV, JSON,
//! chart, table), each step below the one before and none calling back up.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::baseline::{find_for, Baseline, BaselineError, BaselineLookup};
use super::endpoint;
use super::export::{default_exporters, Exporter};
use super::fingerprint::Fingerprint;
use super::level::ProfileKind;
use super::load::{
    self, Progress, RequestTemplate, SweepError, SweepPlan, SweepResult, Workload, WorkloadError,
};
use super::probe;
use super::slo;
use super::spec::ThroughputSpec;
use super::sweep::{self, RatePlan, SweepSummary};
use super::telemetry_run::{self, TelemetryReport};
use super::time::now_rfc3339;
use super::verdict;
use crate::target::Target;
use crate::targets::ConnectError;
use crate::warning::Warnings;

pub use super::endpoint::load_client;
pub use super::report::{Output, TrialReport};

/// Environment variable that makes `cargo test` write (or replace) the baselines of the
/// throughput trials it runs, like `INSTA_UPDATE=always`. Never set it in CI.
pub const ACCEPT_ENV: &str = "EYETEST_ACCEPT_BASELINE";
/// Environment variable naming the directory for CSV, JSON and charts
/// (default `target/eyetest/throughput` under the project root).
pub const OUT_ENV: &str = "EYETEST_THROUGHPUT_OUT";

/// Why a throughput run could not start, or stopped before it measured everything. What it
/// did measure, failed requests included, is in the [`TrialReport`] of a run that ends.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No endpoint, or no client for it.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error("building the request bodies failed: {0}")]
    Build(#[source] tokio::task::JoinError),
    #[error(transparent)]
    Sweep(#[from] SweepError),
    #[error(transparent)]
    Baseline(#[from] BaselineError),
}

/// Where a run reads baselines and writes its outputs.
#[derive(Clone)]
pub struct RunOptions {
    /// The project's golden directory (baselines live in `<golden>/baselines`).
    pub golden: PathBuf,
    pub out_dir: PathBuf,
    /// Write this run's results as the baseline for its fingerprint.
    pub accept: bool,
    pub progress: Progress,
    /// Where warnings go (an image too large), as the workload is built.
    pub warnings: Warnings,
    /// Shared by every run made with these options (clones share them), so the chart of a
    /// sweep gathers every target measured in this process.
    pub exporters: Vec<Arc<dyn Exporter>>,
}

impl RunOptions {
    /// Options writing under `out_dir` with every exporter.
    pub fn new(golden: &Path, out_dir: &Path, accept: bool) -> RunOptions {
        RunOptions {
            golden: golden.to_path_buf(),
            out_dir: out_dir.to_path_buf(),
            accept,
            progress: Progress::none(),
            warnings: Warnings::none(),
            exporters: default_exporters(),
        }
    }

    /// Defaults for the project at `root`, with [`OUT_ENV`] and [`ACCEPT_ENV`] applied.
    pub fn for_project(root: &Path, golden: &Path) -> RunOptions {
        let out_dir = match std::env::var_os(OUT_ENV) {
            Some(d) if !d.is_empty() => root.join(PathBuf::from(d)),
            _ => root.join("target/eyetest/throughput"),
        };
        RunOptions::new(&root.join(golden), &out_dir, accept_from_env())
    }
}

/// `EYETEST_ACCEPT_BASELINE` set to anything but empty, `0` or `false`.
pub fn accept_from_env() -> bool {
    std::env::var(ACCEPT_ENV)
        .map(|v| !matches!(v.trim(), "" | "0" | "false" | "no"))
        .unwrap_or(false)
}

/// What every request of `spec` on `target` asks, apart from the image.
pub fn template(spec: &ThroughputSpec, target: &Target) -> RequestTemplate {
    let mut extra = match serde_json::to_value(&target.common.extra) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    if spec.ignore_eos {
        extra.insert("ignore_eos".into(), true.into());
    }
    if let Some(m) = spec.min_tokens {
        extra.insert("min_tokens".into(), m.into());
    }
    RequestTemplate {
        model: target.common.model.clone(),
        prompt: spec.prompt.clone(),
        max_tokens: spec.max_tokens,
        temperature: spec.temperature,
        stream: spec.stream,
        extra,
    }
}

/// Runs `spec` on `target`. `Err` only when the run could not start or stopped (no
/// endpoint, bad images, a warm-up where every request failed); everything measured is in
/// the report, failures included.
pub async fn run(
    spec: &ThroughputSpec,
    target: &Target,
    opts: &RunOptions,
) -> Result<TrialReport, RunError> {
    let live = endpoint::connect(target).await?;
    let result = run_at(spec, target, live.base_url(), opts).await;
    live.shutdown().await;
    result
}

/// [`run`] against an endpoint that is already up (tests start their own engines).
pub async fn run_at(
    spec: &ThroughputSpec,
    target: &Target,
    base_url: &str,
    opts: &RunOptions,
) -> Result<TrialReport, RunError> {
    let (client, http) = load_client(target, base_url.to_string())?;
    let (images, tmpl) = (spec.images.clone(), template(spec, target));
    let mut workload = tokio::task::spawn_blocking(move || Workload::build(&images, &tmpl))
        .await
        .map_err(RunError::Build)??;
    for w in std::mem::take(&mut workload.warnings) {
        opts.warnings.emit(w);
    }
    let workload = Arc::new(workload);
    let (fingerprint, notes) = probe::fingerprint(
        spec,
        target,
        base_url,
        &client,
        &http,
        &workload.image_label,
    )
    .await;
    let telemetry = spec
        .telemetry
        .as_ref()
        .map(|t| telemetry_run::Running::start(t, base_url));
    let measured = measure(spec, &client, &workload, &opts.progress).await;
    // Stopped whatever happened, so no sampler outlives the run.
    let telemetry = match telemetry {
        Some(t) => {
            let spans = measured.as_ref().map_or(&[][..], |m| &m.0.spans[..]);
            Some(t.finish(spans).await)
        }
        None => None,
    };
    let (result, sweep) = measured?;
    let measured = Measured {
        result,
        sweep,
        telemetry,
        profile: spec.arrival.profile,
    };
    finish_with(spec, &target.name, fingerprint, measured, notes, opts)
}

/// Runs the spec's levels with its arrival profile.
async fn measure(
    spec: &ThroughputSpec,
    client: &crate::backend::openai::OpenAiClient,
    workload: &Arc<Workload>,
    progress: &Progress,
) -> Result<(SweepResult, Option<SweepSummary>), SweepError> {
    if spec.arrival.is_rate() {
        let plan = RatePlan {
            arrival: spec.arrival.clone(),
            requests: spec.requests.clone(),
            warmup: spec.warmup,
            repeats: spec.repeats,
            goodput: spec.slo.goodput.clone(),
        };
        return sweep::run(client, workload, &plan, progress).await;
    }
    let plan = SweepPlan {
        levels: spec
            .concurrency
            .iter()
            .copied()
            .zip(spec.requests.iter().copied())
            .collect(),
        warmup: spec.warmup,
        repeats: spec.repeats,
        goodput: spec.slo.goodput.clone(),
    };
    Ok((load::sweep(client, workload, &plan, progress).await?, None))
}

/// What a run measured beside the levels themselves.
#[derive(Debug, Default)]
pub struct Measured {
    pub result: SweepResult,
    pub sweep: Option<SweepSummary>,
    pub telemetry: Option<TelemetryReport>,
    pub profile: ProfileKind,
}

/// Gates, accepts and exports a measured closed-loop sweep.
pub fn finish(
    spec: &ThroughputSpec,
    target: &str,
    fingerprint: Fingerprint,
    result: SweepResult,
    notes: Vec<String>,
    opts: &RunOptions,
) -> Result<TrialReport, RunError> {
    let measured = Measured {
        result,
        ..Measured::default()
    };
    finish_with(spec, target, fingerprint, measured, notes, opts)
}

/// Gates, accepts and exports what a run measured.
pub fn finish_with(
    spec: &ThroughputSpec,
    target: &str,
    fingerprint: Fingerprint,
    measured: Measured,
    mut notes: Vec<String>,
    opts: &RunOptions,
) -> Result<TrialReport, RunError> {
    let Measured {
        result,
        mut sweep,
        telemetry,
        profile,
    } = measured;
    let SweepResult {
        runs: metrics,
        pooled,
        warmups,
        spans: _,
    } = result;
    let missing: usize = metrics.iter().map(|m| m.usage_missing).sum();
    if missing > 0 {
        notes.push(format!(
            "{missing} successful request(s) came without token usage from the server; token rates and output lengths count only the others"
        ));
    }
    let dir = Baseline::dir(&opts.golden, &spec.spec_id, &spec.name, target);
    let lookup = find_for(&dir, &fingerprint)?;
    let outcome = verdict::evaluate(&spec.gate, &fingerprint, &metrics, &lookup);
    let slo = slo::evaluate(&spec.slo, &metrics, &pooled);
    if let Some(s) = &mut sweep {
        s.max_sustainable = sweep::max_sustainable(&pooled, &outcome, slo.as_ref());
    }
    let baseline = match &lookup {
        BaselineLookup::Found { baseline, .. } => Some((**baseline).clone()),
        BaselineLookup::Missing { .. } => None,
    };
    let created_at = now_rfc3339();
    let accepted = if !opts.accept {
        None
    } else if !outcome.failures_ok() {
        notes.push(
            "not accepted as a baseline: requests failed beyond max_failure_rate, so the run measured a broken setup".into(),
        );
        None
    } else {
        let path = match &lookup {
            BaselineLookup::Found { path, .. } => path.clone(),
            BaselineLookup::Missing { expected, .. } => expected.clone(),
        };
        Baseline::from_metrics(fingerprint.clone(), created_at.clone(), &metrics)
            .save_atomic(&path)?;
        Some(path)
    };
    let mut report = TrialReport {
        name: spec.test_name(target),
        spec_id: spec.spec_id.clone(),
        throughput: spec.name.clone(),
        target: target.to_string(),
        created_at,
        fingerprint,
        metrics,
        pooled,
        warmups,
        outcome,
        slo,
        accepted,
        outputs: Vec::new(),
        notes,
        profile,
        sweep,
        telemetry,
        baseline,
    };
    // A write failure is a note, not a failed trial: the measurement stands.
    for e in &opts.exporters {
        if !e.applies(&report) {
            continue;
        }
        match e.export(&report, &opts.out_dir) {
            Ok(path) => report.outputs.push(Output {
                format: e.format(),
                path,
            }),
            Err(err) => report.notes.push(format!("{} output: {err}", e.format())),
        }
    }
    Ok(report)
}
