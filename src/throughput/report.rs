//! What one trial found, in memory: the input of every exporter and of the text a test log
//! or the terminal shows.

use std::path::{Path, PathBuf};

use super::baseline::Baseline;
use super::fingerprint::Fingerprint;
use super::level::{LevelKey, ProfileKind};
use super::load::Warmup;
use super::metrics::LevelMetrics;
use super::slo::SloOutcome;
use super::sweep::SweepSummary;
use super::table::level_table;
use super::telemetry_run::TelemetryReport;
use super::verdict::GateOutcome;

/// A file an exporter wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub format: &'static str,
    pub path: PathBuf,
}

/// Everything one trial found.
#[derive(Debug, Clone)]
pub struct TrialReport {
    /// `spec::name@target`, the trial's name.
    pub name: String,
    pub spec_id: String,
    /// The sweep's name in its spec.
    pub throughput: String,
    pub target: String,
    pub created_at: String,
    pub fingerprint: Fingerprint,
    /// Every level of every repeat, in run order.
    pub metrics: Vec<LevelMetrics>,
    /// One per level, repeats merged.
    pub pooled: Vec<LevelMetrics>,
    pub warmups: Vec<Warmup>,
    pub outcome: GateOutcome,
    /// `None` when the spec sets no SLO.
    pub slo: Option<SloOutcome>,
    /// The baseline written by an accepting run.
    pub accepted: Option<PathBuf>,
    pub outputs: Vec<Output>,
    /// Assumptions and problems worth a reader's attention (missing usage, write errors).
    pub notes: Vec<String>,
    /// How requests were sent.
    pub profile: ProfileKind,
    /// The sweep profile's probes and max sustainable rate.
    pub sweep: Option<SweepSummary>,
    /// Engine and GPU samples, when the spec asks for them.
    pub telemetry: Option<TelemetryReport>,
    /// The baseline this run was compared with, for the current-vs-baseline chart.
    pub baseline: Option<Baseline>,
}

impl TrialReport {
    /// Failed requests beyond the allowed rate and missed SLOs always fail; otherwise an
    /// accepting run passes (it records; the next run gates) and the gate decides.
    pub fn passed(&self) -> bool {
        self.outcome.failures_ok()
            && self.slo.as_ref().is_none_or(|s| s.passed)
            && (self.accepted.is_some() || self.outcome.passed)
    }

    /// The file `format` wrote, if it did.
    pub fn output(&self, format: &str) -> Option<&Path> {
        self.outputs
            .iter()
            .find(|o| o.format == format)
            .map(|o| o.path.as_path())
    }

    /// The whole story, for a test log or the terminal.
    pub fn render(&self) -> String {
        let mut s = format!("{}\nfingerprint: {}\n", self.name, self.fingerprint);
        s.push_str(&level_table(&self.metrics, Some(&self.outcome)));
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
        for w in self.warmups.iter().filter(|w| w.failed > 0) {
            s.push_str(&format!(
                "warm-up before {} (repeat {}): {} of {} requests failed{}\n",
                LevelKey::new(w.concurrency, w.rate),
                w.repeat + 1,
                w.failed,
                w.sent,
                w.errors
                    .first()
                    .map(|e| format!(" (e.g. {})", e.message))
                    .unwrap_or_default()
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        if let Some(sweep) = &self.sweep {
            s.push_str(&sweep.render());
        }
        if let Some(t) = &self.telemetry {
            s.push_str(&t.render());
        }
        s.push_str(&self.outcome.render());
        if let Some(slo) = &self.slo {
            s.push_str(&slo.render());
        }
        if let Some(p) = &self.accepted {
            s.push_str(&format!(
                "accepted: wrote baseline {} (review and commit it)\n",
                p.display()
            ));
        }
        let written: Vec<String> = self
            .outputs
            .iter()
            .map(|o| o.path.display().to_string())
            .collect();
        if !written.is_empty() {
            s.push_str(&format!("wrote {}\n", written.join(", ")));
        }
        s
    }
}
