//! One throughput spec on one target, end to end: reach the endpoint (starting a simulated
//! engine if the target is one), fingerprint it, sweep, compute metrics, gate against the
//! baseline for that fingerprint, optionally accept a new baseline, and write the CSV, JSON
//! and chart. Shared by the `cargo test` harness and `eyetest bench`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::baseline::{find_for, Baseline, BaselineLookup};
use super::chart::{self, ChartSeries};
use super::csv::{self, CsvRow};
use super::fingerprint::{slug, Fingerprint};
use super::gate::{evaluate, GateOutcome};
use super::json::Report;
use super::load::{sweep, Progress, RequestTemplate, SweepPlan, Workload};
use super::metrics::LevelMetrics;
use super::probe;
use super::spec::ThroughputSpec;
use super::table::level_table;
use crate::backend::openai::OpenAiClient;
use crate::targets::{Target, Use};

/// Environment variable that makes `cargo test` write (or replace) the baselines of the
/// throughput trials it runs, like `INSTA_UPDATE=always`. Never set it in CI.
pub const ACCEPT_ENV: &str = crate::env::ACCEPT_BASELINE;
/// Environment variable naming the directory for CSV, JSON and charts
/// (default `target/eyetest/throughput` under the project root).
pub const OUT_ENV: &str = crate::env::THROUGHPUT_OUT;

/// Where a run reads baselines and writes its outputs.
#[derive(Clone)]
pub struct RunOptions {
    /// The project's golden directory (baselines live in `<golden>/baselines`).
    pub golden: PathBuf,
    pub out_dir: PathBuf,
    /// Write this run's results as the baseline for its fingerprint.
    pub accept: bool,
    pub progress: Progress,
}

impl RunOptions {
    /// Defaults for the project at `root`, with [`OUT_ENV`] and [`ACCEPT_ENV`] applied.
    pub fn for_project(root: &Path, golden: &Path) -> RunOptions {
        let out_dir = match crate::env::throughput_out() {
            Some(d) => root.join(d),
            None => root.join("target/eyetest/throughput"),
        };
        RunOptions {
            golden: root.join(golden),
            out_dir,
            accept: accept_from_env(),
            progress: Progress::none(),
        }
    }
}

/// `EYETEST_ACCEPT_BASELINE`, by the one truthiness rule of [`crate::env`].
pub fn accept_from_env() -> bool {
    // A bad value is refused when the harness or command starts (`crate::env::check`).
    crate::env::accept_baseline().unwrap_or(false)
}

/// Files a run wrote.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub csv: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub chart: Option<PathBuf>,
}

/// Everything one trial found.
#[derive(Debug, Clone)]
pub struct TrialReport {
    pub name: String,
    pub fingerprint: Fingerprint,
    /// Every level of every repeat, in run order.
    pub metrics: Vec<LevelMetrics>,
    pub outcome: GateOutcome,
    /// The baseline written by an accepting run.
    pub accepted: Option<PathBuf>,
    pub outputs: Outputs,
    /// Assumptions and problems worth a reader's attention (missing usage, write errors).
    pub notes: Vec<String>,
    /// Levels where no request succeeded: the run measured nothing there.
    pub dead_levels: Vec<usize>,
}

impl TrialReport {
    /// An accepting run passes (it records; the next run gates); otherwise the gate decides,
    /// and a level where every request failed always fails.
    pub fn passed(&self) -> bool {
        self.dead_levels.is_empty() && (self.accepted.is_some() || self.outcome.passed)
    }

    /// The whole story, for a test log or the terminal.
    pub fn render(&self) -> String {
        let mut s = format!("{}\nfingerprint: {}\n", self.name, self.fingerprint);
        s.push_str(&level_table(&self.metrics));
        let mut errors: Vec<(String, usize)> = Vec::new();
        for e in self.metrics.iter().flat_map(|m| &m.errors) {
            match errors.iter_mut().find(|(m, _)| *m == e.message) {
                Some(x) => x.1 += e.count,
                None => errors.push((e.message.clone(), e.count)),
            }
        }
        for (message, count) in errors.iter().take(5) {
            s.push_str(&format!("failed x{count}: {message}\n"));
        }
        for c in &self.dead_levels {
            s.push_str(&format!(
                "c={c}: every request failed, so nothing was measured: FAIL\n"
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        s.push_str(&self.outcome.render());
        if let Some(p) = &self.accepted {
            s.push_str(&format!(
                "accepted: wrote baseline {} (review and commit it)\n",
                p.display()
            ));
        }
        let written: Vec<String> = [&self.outputs.csv, &self.outputs.json, &self.outputs.chart]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect();
        if !written.is_empty() {
            s.push_str(&format!("wrote {}\n", written.join(", ")));
        }
        s
    }
}

/// What every request of `spec` on `target` asks, apart from the image.
pub fn template(spec: &ThroughputSpec, target: &Target) -> RequestTemplate {
    let mut extra = match serde_json::to_value(&target.config.extra) {
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
        model: target.config.model.clone(),
        prompt: spec.prompt.clone(),
        max_tokens: spec.max_tokens,
        temperature: spec.temperature,
        stream: spec.stream,
        extra,
    }
}

/// A client for load: the target's endpoint, timeout and CA, its own connection pool, and
/// no retries (see [`super::load`]); built by [`crate::targets::client_for`], like the
/// client that asks cases.
pub fn load_client(
    target: &Target,
    base_url: String,
) -> Result<(OpenAiClient, reqwest::Client), String> {
    crate::targets::client_for(target, &base_url, Use::Load, None).map_err(|e| e.to_string())
}

/// Runs `spec` on `target`. `Err` only when the run could not start (no endpoint, bad
/// images); everything measured is in the report, failures included.
pub async fn run(
    spec: &ThroughputSpec,
    target: &Target,
    opts: &RunOptions,
) -> Result<TrialReport, String> {
    let live = crate::targets::reach(target)
        .await
        .map_err(|e| e.to_string())?;
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
) -> Result<TrialReport, String> {
    let (client, http) = load_client(target, base_url.to_string())?;
    let (images, tmpl) = (spec.images.clone(), template(spec, target));
    let workload = tokio::task::spawn_blocking(move || Workload::build(&images, &tmpl))
        .await
        .map_err(|e| format!("building the request bodies failed: {e}"))??;
    let workload = Arc::new(workload);
    let (fingerprint, mut notes) = probe::fingerprint(
        spec,
        target,
        base_url,
        &client,
        &http,
        &workload.image_label,
    )
    .await;
    let plan = SweepPlan {
        levels: spec
            .concurrency
            .iter()
            .copied()
            .zip(spec.requests.iter().copied())
            .collect(),
        warmup: spec.warmup,
        repeats: spec.repeats,
    };
    let runs = sweep(&client, &workload, &plan, &opts.progress).await;
    let metrics: Vec<LevelMetrics> = runs.iter().map(LevelMetrics::from_run).collect();
    drop(runs);
    finish(spec, &target.name, fingerprint, metrics, &mut notes, opts).map(|mut r| {
        r.notes = notes;
        r
    })
}

/// Gates, accepts and writes the outputs of measured `metrics`.
pub fn finish(
    spec: &ThroughputSpec,
    target: &str,
    fingerprint: Fingerprint,
    metrics: Vec<LevelMetrics>,
    notes: &mut Vec<String>,
    opts: &RunOptions,
) -> Result<TrialReport, String> {
    let missing: usize = metrics.iter().map(|m| m.usage_missing).sum();
    if missing > 0 {
        notes.push(format!(
            "{missing} successful request(s) came without token usage from the server; token rates and output lengths count only the others"
        ));
    }
    let mut dead_levels: Vec<usize> = spec
        .concurrency
        .iter()
        .copied()
        .filter(|&c| {
            let reps: Vec<_> = metrics.iter().filter(|m| m.concurrency == c).collect();
            !reps.is_empty() && reps.iter().all(|m| m.completed == 0)
        })
        .collect();
    dead_levels.dedup();

    let dir = Baseline::dir(&opts.golden, &spec.spec_id, &spec.name, target);
    let lookup = find_for(&dir, &fingerprint).map_err(|e| e.to_string())?;
    let outcome = evaluate(&spec.gate, &fingerprint, &metrics, &lookup);
    let now = now_rfc3339();
    let accepted = if opts.accept && dead_levels.is_empty() {
        let path = match &lookup {
            BaselineLookup::Found { path, .. } => path.clone(),
            BaselineLookup::Missing { expected, .. } => expected.clone(),
        };
        Baseline::from_metrics(fingerprint.clone(), now.clone(), &metrics)
            .save_atomic(&path)
            .map_err(|e| e.to_string())?;
        Some(path)
    } else {
        None
    };
    let mut report = TrialReport {
        name: spec.test_name(target),
        fingerprint,
        metrics,
        outcome,
        accepted,
        outputs: Outputs::default(),
        notes: Vec::new(),
        dead_levels,
    };
    report.outputs = write_outputs(spec, target, &report, &now, &opts.out_dir, notes);
    Ok(report)
}

/// CSV rows appended to `<out>/throughput.csv`, the JSON report at
/// `<out>/<spec id>/<name>@<target>.json`, and the chart `<out>/<spec id>/<name>.svg`
/// (`<name>-simulated.svg` for simulated engines) drawn from every target's latest JSON
/// there, so one chart sets all targets side by side as the study's did. A write failure is a note, not a failed trial: the measurement stands.
fn write_outputs(
    spec: &ThroughputSpec,
    target: &str,
    r: &TrialReport,
    now: &str,
    out: &Path,
    notes: &mut Vec<String>,
) -> Outputs {
    let mut outputs = Outputs::default();
    let csv_path = out.join("throughput.csv");
    let mut repeat_of = std::collections::HashMap::new();
    let rows: Vec<CsvRow> = r
        .metrics
        .iter()
        .map(|m| {
            let rep = repeat_of.entry(m.concurrency).or_insert(0usize);
            *rep += 1;
            CsvRow::new(target, &r.fingerprint, *rep, m, now)
        })
        .collect();
    match std::fs::create_dir_all(out).and_then(|_| csv::append(&csv_path, &rows)) {
        Ok(()) => outputs.csv = Some(csv_path),
        Err(e) => notes.push(format!("cannot write {}: {e}", csv_path.display())),
    }
    let dir = spec_dir(out, &spec.spec_id);
    let json_path = dir.join(format!("{}@{}.json", slug(&spec.name), slug(target)));
    let json = Report::new(
        &spec.spec_id,
        &spec.name,
        target,
        r.fingerprint.clone(),
        now,
        &r.metrics,
        Some(r.outcome.clone()),
    );
    match json.write(&json_path) {
        Ok(()) => outputs.json = Some(json_path),
        Err(e) => notes.push(format!("cannot write {}: {e}", json_path.display())),
    }
    // Simulated engines and real hardware differ by orders of magnitude (hundreds of
    // images/s against the study's 0.79): on one axis the real bars would vanish, so each
    // kind gets its own chart.
    let simulated = is_simulated(&r.fingerprint);
    let (file, kind) = if simulated {
        (
            format!("{}-simulated.svg", slug(&spec.name)),
            " (simulated)",
        )
    } else {
        (format!("{}.svg", slug(&spec.name)), "")
    };
    let chart_path = dir.join(file);
    let series = chart_series(&dir, &spec.name, simulated);
    // Short enough for the chart's width; the image and generation settings are in the
    // JSON and CSV next to it.
    let title = format!("{}: images/s by concurrency{kind}", spec.name);
    match chart::write_svg(&chart_path, &title, &series) {
        Ok(()) => outputs.chart = Some(chart_path),
        Err(e) => notes.push(e.to_string()),
    }
    outputs
}

fn spec_dir(out: &Path, spec_id: &str) -> PathBuf {
    let mut dir = out.to_path_buf();
    for seg in spec_id.split(['/', '\\']).filter(|s| !s.is_empty()) {
        dir.push(slug(seg));
    }
    dir
}

/// Whether a run was against the simulated engine.
pub fn is_simulated(fp: &Fingerprint) -> bool {
    fp.engine.as_deref() == Some(probe::SIM_ENGINE)
}

/// One series per `<name>@<target>.json` in `dir` of the given kind (simulated or not),
/// named by target and GPU configuration.
pub fn chart_series(dir: &Path, name: &str, simulated: bool) -> Vec<ChartSeries> {
    let prefix = format!("{}@", slug(name));
    let mut series: Vec<ChartSeries> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let f = e.file_name().to_string_lossy().into_owned();
            f.starts_with(&prefix) && f.ends_with(".json")
        })
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            let report: Report = serde_json::from_str(&text).ok()?;
            if is_simulated(&report.fingerprint) != simulated {
                return None;
            }
            let metrics: Vec<LevelMetrics> =
                report.levels.into_iter().flat_map(|l| l.repeats).collect();
            Some(ChartSeries::from_metrics(
                chart::series_name(&report.target, &report.fingerprint.gpu),
                &metrics,
            ))
        })
        .collect();
    series.sort_by(|a, b| a.name.cmp(&b.name));
    series
}

/// The current UTC time as RFC 3339 (`2026-11-27T10:00:00Z`), without a date crate.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_looks_right() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{t}"
        );
    }
}
