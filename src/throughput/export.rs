//! Every output of a throughput run behind one interface, one exporter per format (as
//! hyperfine does): each takes the in-memory [`TrialReport`] and writes its file, and none
//! reads back what another wrote.
//!
//! - [`CsvExporter`]: rows appended to `<out>/throughput.csv` in the study's format.
//! - [`JsonExporter`]: `<out>/<spec id>/<name>@<target>.json`, everything measured.
//! - [`ChartExporter`]: `<out>/<spec id>/<name>.svg` (`-simulated.svg` for simulated
//!   engines), one series per target this process has measured for the sweep, so
//!   `eyetest bench` over several targets sets them side by side.
//! - [`TableExporter`]: `<out>/<spec id>/<name>@<target>.txt`, the table the terminal shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::chart::{self, ChartError, ChartSeries};
use super::csv::{self, CsvRow};
use super::figures;
use super::fingerprint::slug;
use super::json::Report;
use super::level::LevelKey;
use super::probe;
use super::report::TrialReport;
use super::table::level_table;

/// Why an exporter wrote nothing. Each names the file; a run reports it as a note, since
/// the measurement stands without the file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot create {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// The report has no baseline (the exporter does not apply, and was asked anyway).
    #[error("no baseline to compare with")]
    NoBaseline,
    /// The report has no telemetry (the exporter does not apply, and was asked anyway).
    #[error("no telemetry was sampled")]
    NoTelemetry,
}

/// One output format.
pub trait Exporter: Send + Sync {
    /// Short name for messages: `csv`, `json`, `chart`, `table`.
    fn format(&self) -> &'static str;
    /// Writes `report` under `out`, returning the file written.
    fn export(&self, report: &TrialReport, out: &Path) -> Result<PathBuf, ExportError>;
    /// Whether this report has anything for this exporter (a chart of telemetry needs
    /// telemetry); exporters that do not apply are skipped silently.
    fn applies(&self, _report: &TrialReport) -> bool {
        true
    }
}

/// The exporters a run uses unless told otherwise: all of them (the figures of
/// [`super::figures`] only where the run has what they draw).
pub fn default_exporters() -> Vec<Arc<dyn Exporter>> {
    vec![
        Arc::new(CsvExporter),
        Arc::new(JsonExporter),
        Arc::new(ChartExporter::default()),
        Arc::new(TableExporter),
        Arc::new(figures::BaselineChartExporter),
        Arc::new(figures::LatencyCurveExporter),
        Arc::new(figures::TelemetryChartExporter),
    ]
}

/// `<out>/<spec id segments>`, each slugged.
pub fn spec_dir(out: &Path, spec_id: &str) -> PathBuf {
    let mut dir = out.to_path_buf();
    for seg in spec_id.split(['/', '\\']).filter(|s| !s.is_empty()) {
        dir.push(slug(seg));
    }
    dir
}

fn per_target_file(r: &TrialReport, out: &Path, ext: &str) -> PathBuf {
    spec_dir(out, &r.spec_id).join(format!("{}@{}.{ext}", slug(&r.throughput), slug(&r.target)))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ExportError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    crate::atomic::write_atomic(path, bytes).map_err(|source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

pub struct CsvExporter;

impl Exporter for CsvExporter {
    fn format(&self) -> &'static str {
        "csv"
    }

    fn export(&self, r: &TrialReport, out: &Path) -> Result<PathBuf, ExportError> {
        let path = out.join("throughput.csv");
        let mut repeat_of = std::collections::HashMap::new();
        let rows: Vec<CsvRow> = r
            .metrics
            .iter()
            .map(|m| {
                let rep = repeat_of.entry(LevelKey::of(m)).or_insert(0usize);
                *rep += 1;
                let status = r
                    .outcome
                    .level_at(LevelKey::of(m))
                    .map_or("", |l| l.status());
                CsvRow::new(&r.target, &r.fingerprint, *rep, m, &r.created_at, status)
                    .with_profile(r.profile, m)
            })
            .collect();
        csv::append(&path, &rows).map_err(|source| ExportError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

pub struct JsonExporter;

impl JsonExporter {
    pub fn report(r: &TrialReport) -> Report {
        let mut report = Report::new(
            &r.spec_id,
            &r.throughput,
            &r.target,
            r.fingerprint.clone(),
            &r.created_at,
            &r.metrics,
            Some(r.outcome.clone()),
        );
        for level in &mut report.levels {
            let key = LevelKey::new(level.concurrency, level.rate);
            level.status = r.outcome.level_at(key).map(|v| v.status().to_string());
            level.pooled = r.pooled.iter().find(|p| LevelKey::of(p) == key).cloned();
        }
        report.slo = r.slo.clone();
        report.warmups = r.warmups.clone();
        report.profile = r.profile;
        report.sweep = r.sweep.clone();
        report.telemetry = r.telemetry.clone();
        report
    }
}

impl Exporter for JsonExporter {
    fn format(&self) -> &'static str {
        "json"
    }

    fn export(&self, r: &TrialReport, out: &Path) -> Result<PathBuf, ExportError> {
        let path = per_target_file(r, out, "json");
        let mut text = Self::report(r).to_json();
        text.push('\n');
        write(&path, text.as_bytes())?;
        Ok(path)
    }
}

/// Keeps the series of every target it has drawn, per chart file, for the life of the
/// process: the chart of a sweep shows every target measured in this run, from memory.
#[derive(Default)]
pub struct ChartExporter {
    series: Mutex<BTreeMap<PathBuf, Vec<ChartSeries>>>,
}

impl Exporter for ChartExporter {
    fn format(&self) -> &'static str {
        "chart"
    }

    fn export(&self, r: &TrialReport, out: &Path) -> Result<PathBuf, ExportError> {
        // Simulated engines and real hardware differ by orders of magnitude (hundreds of
        // images/s against the study's 0.79): on one axis the real bars would vanish, so
        // each kind gets its own chart.
        let simulated = r.fingerprint.engine.as_deref() == Some(probe::SIM_ENGINE);
        let (file, kind) = if simulated {
            (
                format!("{}-simulated.svg", slug(&r.throughput)),
                " (simulated)",
            )
        } else {
            (format!("{}.svg", slug(&r.throughput)), "")
        };
        let path = spec_dir(out, &r.spec_id).join(file);
        let mine = ChartSeries::from_metrics(
            chart::series_name(&r.target, &r.fingerprint.gpu),
            &r.metrics,
        );
        let all = {
            let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
            let list = map.entry(path.clone()).or_default();
            list.retain(|s| s.name != mine.name);
            list.push(mine);
            list.sort_by(|a, b| a.name.cmp(&b.name));
            list.clone()
        };
        // Short enough for the chart's width; the image and generation settings are in the
        // JSON and CSV next to it.
        let by = if r.metrics.iter().any(|m| m.rate.is_some()) {
            "arrival rate"
        } else {
            "concurrency"
        };
        let title = format!("{}: images/s by {by}{kind}", r.throughput);
        chart::write_svg(&path, &title, &all)?;
        Ok(path)
    }
}

pub struct TableExporter;

impl TableExporter {
    pub fn render(r: &TrialReport) -> String {
        level_table(&r.metrics, Some(&r.outcome))
    }
}

impl Exporter for TableExporter {
    fn format(&self) -> &'static str {
        "table"
    }

    fn export(&self, r: &TrialReport, out: &Path) -> Result<PathBuf, ExportError> {
        let path = per_target_file(r, out, "txt");
        let text = format!(
            "{}\nfingerprint: {}\n{}",
            r.name,
            r.fingerprint,
            Self::render(r)
        );
        write(&path, text.as_bytes())?;
        Ok(path)
    }
}
