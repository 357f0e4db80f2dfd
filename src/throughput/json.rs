//! One JSON document per throughput run: everything the CSV has, with full statistics, plus
//! the fingerprint and the gate's verdict, for dashboards and for diffing two runs by tool.

use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;
use super::level::{LevelKey, ProfileKind};
use super::load::Warmup;
use super::metrics::LevelMetrics;
use super::slo::SloOutcome;
use super::sweep::SweepSummary;
use super::telemetry_run::TelemetryReport;
use super::verdict::GateOutcome;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub eyetest_version: String,
    pub created_at: String,
    pub spec: String,
    pub throughput: String,
    pub target: String,
    pub fingerprint: Fingerprint,
    pub levels: Vec<ReportLevel>,
    /// `None` when the run was not gated (e.g. while recording a baseline).
    pub gate: Option<GateOutcome>,
    /// `None` when the spec sets no SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloOutcome>,
    /// Every warm-up phase, with its failures (warm-ups are not measured, but a failing
    /// warm-up says the endpoint was struggling).
    #[serde(default)]
    pub warmups: Vec<Warmup>,
    /// How requests were sent: `concurrency` (closed loop) or a rate profile.
    #[serde(default)]
    pub profile: ProfileKind,
    /// The sweep profile's probes, rates and max sustainable rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepSummary>,
    /// Engine and GPU samples taken during the run, and their per-level summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportLevel {
    /// For an open-loop level, its concurrency cap.
    pub concurrency: usize,
    /// Open-loop levels: the asked rate (requests/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// The gate's verdict on the level: `ok`, `FAIL` or `ALL FAILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// One entry per repeat, in repeat order.
    pub repeats: Vec<LevelMetrics>,
    /// Every repeat merged (the SLOs' view of the level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooled: Option<LevelMetrics>,
}

impl Report {
    /// Groups `metrics` (all repeats in run order) by concurrency, ascending.
    pub fn new(
        spec: &str,
        throughput: &str,
        target: &str,
        fingerprint: Fingerprint,
        created_at: &str,
        metrics: &[LevelMetrics],
        gate: Option<GateOutcome>,
    ) -> Report {
        let mut levels: Vec<ReportLevel> = Vec::new();
        for m in metrics {
            let key = LevelKey::of(m);
            match levels
                .iter_mut()
                .find(|l| LevelKey::new(l.concurrency, l.rate) == key)
            {
                Some(l) => l.repeats.push(m.clone()),
                None => levels.push(ReportLevel {
                    concurrency: m.concurrency,
                    rate: m.rate,
                    status: None,
                    repeats: vec![m.clone()],
                    pooled: None,
                }),
            }
        }
        levels.sort_by_key(|l| LevelKey::new(l.concurrency, l.rate));
        Report {
            eyetest_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: created_at.to_string(),
            spec: spec.to_string(),
            throughput: throughput.to_string(),
            target: target.to_string(),
            fingerprint,
            levels,
            gate,
            slo: None,
            warmups: Vec::new(),
            profile: ProfileKind::Concurrency,
            sweep: None,
            telemetry: None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut text = self.to_json();
        text.push('\n');
        crate::atomic::write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throughput::baseline::BaselineLookup;
    use crate::throughput::config::GateConfig;
    use crate::throughput::test_support::{h100, run};
    use crate::throughput::verdict::evaluate;

    #[test]
    fn report_round_trips_with_gate() {
        let metrics: Vec<LevelMetrics> = [4, 1, 4, 1]
            .iter()
            .map(|&c| LevelMetrics::from_run(&run(c, 8, 4.0, 50, 11)))
            .collect();
        let lookup = BaselineLookup::Missing {
            expected: "k.toml".into(),
            others: vec![],
        };
        let gate = evaluate(&GateConfig::default(), &h100(), &metrics, &lookup);
        let r = Report::new(
            "throughput/study",
            "caption-560",
            "llama-11b",
            h100(),
            "t0",
            &metrics,
            Some(gate),
        );
        assert_eq!(
            r.levels
                .iter()
                .map(|l| (l.concurrency, l.repeats.len()))
                .collect::<Vec<_>>(),
            [(1, 2), (4, 2)]
        );
        let json = r.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["levels"][0]["repeats"][1]["ttft_ms"]["p50"], 50.0);
        assert_eq!(v["gate"]["baseline"]["status"], "no_baseline");
        assert_eq!(v["fingerprint"]["gpu"]["count"], 1);
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r/report.json");
        r.write(&p).unwrap();
        assert!(fs::read_to_string(p).unwrap().ends_with("}\n"));
    }
}
