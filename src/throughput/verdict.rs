//! Applying the gate to a whole sweep: which baseline (if any) the run was compared with,
//! one verdict per concurrency level (regression, absolute limits, failed requests), and
//! the text a CI log shows. Uses [`super::gate`] (the statistics) and [`super::config`];
//! neither uses this module.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::baseline::{Baseline, BaselineLookup};
use super::config::GateConfig;
use super::fingerprint::Fingerprint;
use super::gate::{compare, Comparison};
use super::level::{keys, repeats_at, LevelKey};
use super::metrics::{median, Direction, LevelMetrics, Stats};
use super::{percent, sig3};

/// What the run was compared against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BaselineStatus {
    Compared {
        path: PathBuf,
    },
    NoBaseline {
        fingerprint: String,
        expected: PathBuf,
    },
    /// Baselines exist, but none for this fingerprint: each with what differs
    /// (`"<field>: <this run> vs <baseline>"`).
    FingerprintMismatch {
        candidates: Vec<Mismatch>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    pub path: PathBuf,
    pub differences: Vec<String>,
}

/// Verdict for one concurrency level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelVerdict {
    pub concurrency: usize,
    /// Open-loop levels: the asked rate (requests/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    pub passed: bool,
    pub comparison: Option<Comparison>,
    /// Requests sent and failed over all repeats.
    #[serde(default)]
    pub requests: usize,
    #[serde(default)]
    pub failed: usize,
    /// Whether the failed requests stayed within `max_failure_rate` (and anything at all
    /// succeeded). A run that breaks this may not become a baseline.
    #[serde(default = "yes")]
    pub failures_ok: bool,
    /// Human-readable, one check per line, each ending in its verdict.
    pub lines: Vec<String>,
}

fn yes() -> bool {
    true
}

impl LevelVerdict {
    pub fn key(&self) -> LevelKey {
        LevelKey::new(self.concurrency, self.rate)
    }

    /// Short status for tables and CSV: `ok`, `FAIL` or `ALL FAILED`.
    pub fn status(&self) -> &'static str {
        if self.requests > 0 && self.failed == self.requests {
            "ALL FAILED"
        } else if self.passed {
            "ok"
        } else {
            "FAIL"
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateOutcome {
    pub passed: bool,
    pub baseline: BaselineStatus,
    pub levels: Vec<LevelVerdict>,
}

impl GateOutcome {
    /// Whether every level's failures stayed within the limit.
    pub fn failures_ok(&self) -> bool {
        self.levels.iter().all(|l| l.failures_ok)
    }

    /// The closed-loop level at `concurrency`.
    pub fn level(&self, concurrency: usize) -> Option<&LevelVerdict> {
        self.level_at(LevelKey::closed(concurrency))
    }

    pub fn level_at(&self, key: LevelKey) -> Option<&LevelVerdict> {
        self.levels.iter().find(|l| l.key() == key)
    }

    /// The whole explanation: what was compared against, then every level's lines.
    pub fn render(&self) -> String {
        let mut out = match &self.baseline {
            BaselineStatus::Compared { path } => format!("compared with baseline {}\n", path.display()),
            BaselineStatus::NoBaseline { fingerprint, expected } => format!(
                "no baseline for {fingerprint}; record one with EYETEST_ACCEPT_BASELINE=1 cargo test \
                 or `eyetest bench --accept` (it will be written to {})\n",
                expected.display()
            ),
            BaselineStatus::FingerprintMismatch { candidates } => {
                let mut s = String::from(
                    "comparison skipped: no baseline for this fingerprint; the baselines present were \
                     recorded on a different setup (this run vs baseline):\n",
                );
                for c in candidates {
                    s.push_str(&format!("  {}:\n", c.path.display()));
                    for d in &c.differences {
                        s.push_str(&format!("    {d}\n"));
                    }
                }
                s.push_str("  record one for this setup with EYETEST_ACCEPT_BASELINE=1 cargo test or `eyetest bench --accept`\n");
                s
            }
        };
        for l in &self.levels {
            for line in &l.lines {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str(if self.passed {
            "gate: PASS\n"
        } else {
            "gate: FAIL\n"
        });
        out
    }
}

/// Gates every level of `current` (all repeats, any order) against the lookup's baseline,
/// plus the absolute limits.
pub fn evaluate(
    config: &GateConfig,
    fingerprint: &Fingerprint,
    current: &[LevelMetrics],
    lookup: &BaselineLookup,
) -> GateOutcome {
    let (status, baseline) = match lookup {
        BaselineLookup::Found { path, baseline } => (
            BaselineStatus::Compared { path: path.clone() },
            Some(&**baseline),
        ),
        BaselineLookup::Missing { expected, others } if others.is_empty() => (
            BaselineStatus::NoBaseline {
                fingerprint: fingerprint.to_string(),
                expected: expected.clone(),
            },
            None,
        ),
        BaselineLookup::Missing { others, .. } => (
            BaselineStatus::FingerprintMismatch {
                candidates: others
                    .iter()
                    .map(|(path, fp)| Mismatch {
                        path: path.clone(),
                        differences: fingerprint.differences(fp),
                    })
                    .collect(),
            },
            None,
        ),
    };

    let verdicts: Vec<LevelVerdict> = keys(current)
        .into_iter()
        .map(|c| evaluate_level(config, c, &repeats_at(current, c), baseline))
        .collect();
    let compared = matches!(status, BaselineStatus::Compared { .. });
    GateOutcome {
        passed: verdicts.iter().all(|v| v.passed) && (compared || !config.require_baseline),
        baseline: status,
        levels: verdicts,
    }
}

fn evaluate_level(
    config: &GateConfig,
    c: LevelKey,
    repeats: &[&LevelMetrics],
    baseline: Option<&Baseline>,
) -> LevelVerdict {
    let metric = config.metric;
    let values: Vec<f64> = repeats.iter().filter_map(|m| metric.value(m)).collect();
    let mut lines = Vec::new();
    let mut passed = true;
    let mut comparison = None;

    if let Some(b) = baseline {
        match b
            .level_at(c)
            .and_then(|l| l.values.get(&metric))
            .filter(|v| !v.is_empty())
        {
            None => lines.push(format!(
                "{c}: {} not in the baseline: skipped",
                metric.label()
            )),
            Some(_) if values.is_empty() => {
                passed = false;
                lines.push(format!(
                    "{c}: {} not measured in this run ({} of {} requests failed): FAIL",
                    metric.label(),
                    repeats.iter().map(|m| m.failed).sum::<usize>(),
                    repeats
                        .iter()
                        .map(|m| m.failed + m.completed)
                        .sum::<usize>()
                ));
            }
            Some(base) => {
                let mut cmp =
                    compare(config, c.concurrency, &values, base).expect("both sides non-empty");
                cmp.rate = c.rate();
                passed &= !cmp.regression;
                lines.push(cmp.line());
                comparison = Some(cmp);
            }
        }
    }

    if let Some(bound) = config.min_abs {
        let (ok, word) = match (median(&values), metric.direction()) {
            (Some(m), Direction::HigherIsBetter) => {
                (m >= bound, format!("{} (floor {})", sig3(m), sig3(bound)))
            }
            (Some(m), Direction::LowerIsBetter) => (
                m <= bound,
                format!("{} ms (ceiling {} ms)", sig3(m), sig3(bound)),
            ),
            (None, _) => (false, format!("not measured (bound {})", sig3(bound))),
        };
        passed &= ok;
        lines.push(format!(
            "{c}: {} median {word}: {}",
            metric.label(),
            if ok { "ok" } else { "FAIL" }
        ));
    }

    let at = config.latency_at;
    type Latency = fn(&LevelMetrics) -> Option<Stats>;
    let limits: [(&str, Option<f64>, Latency); 3] = [
        ("TTFT", config.max_ttft_ms, |m| m.ttft_ms),
        ("TPOT", config.max_tpot_ms, |m| m.tpot_ms),
        ("E2E", config.max_e2e_ms, |m| m.e2e_ms),
    ];
    for (name, limit, get) in limits {
        let Some(limit) = limit else { continue };
        let per_repeat: Vec<f64> = repeats
            .iter()
            .filter_map(|m| get(m).map(|s| at.pick(&s)))
            .collect();
        let (ok, what) = match median(&per_repeat) {
            Some(v) => (
                v <= limit,
                format!("median over {} repeats {} ms", per_repeat.len(), sig3(v)),
            ),
            None => (false, "not measured".to_string()),
        };
        passed &= ok;
        lines.push(format!(
            "{c}: {name} {} {what}, limit {} ms: {}",
            at.name(),
            sig3(limit),
            if ok { "ok" } else { "FAIL" }
        ));
    }

    let failed: usize = repeats.iter().map(|m| m.failed).sum();
    let total: usize = repeats.iter().map(|m| m.failed + m.completed).sum();
    let mut failures_ok = true;
    if failed > 0 {
        let example = repeats
            .iter()
            .flat_map(|m| &m.errors)
            .next()
            .map(|e| format!(" (e.g. {})", e.message))
            .unwrap_or_default();
        let rate = failed as f64 / total as f64;
        let allowed = config.max_failure_rate;
        let line = if failed == total {
            failures_ok = false;
            format!("{c}: every request failed ({failed} of {total}), nothing was measured{example}: FAIL")
        } else if rate > allowed {
            failures_ok = false;
            format!(
                "{c}: {failed} of {total} requests failed ({}), allowed {}{example}: FAIL",
                percent(rate),
                percent(allowed)
            )
        } else {
            format!(
                "{c}: {failed} of {total} requests failed ({}), within the allowed {}{example}: ok",
                percent(rate),
                percent(allowed)
            )
        };
        passed &= failures_ok;
        lines.push(line);
    }
    let missing: usize = repeats.iter().map(|m| m.usage_missing).sum();
    if missing > 0 {
        lines.push(format!(
            "{c}: note: {missing} successful requests had no usage from the server; token rates count only those that did"
        ));
    }

    LevelVerdict {
        concurrency: c.concurrency,
        rate: c.rate(),
        passed,
        comparison,
        requests: total,
        failed,
        failures_ok,
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throughput::test_support::{h100, level};

    fn cfg() -> GateConfig {
        GateConfig::default()
    }

    fn repeats(ips: &[f64]) -> Vec<LevelMetrics> {
        ips.iter()
            .flat_map(|&x| [level(1, x, 100.0), level(4, 2.5 * x, 200.0)])
            .collect()
    }

    #[test]
    fn evaluate_against_found_baseline() {
        let b = Baseline::from_metrics(h100(), "t", &repeats(&[0.79, 0.80, 0.78, 0.81, 0.79]));
        let lookup = BaselineLookup::Found {
            path: "golden/b.toml".into(),
            baseline: Box::new(b),
        };
        let ok = evaluate(
            &cfg(),
            &h100(),
            &repeats(&[0.80, 0.79, 0.80, 0.78, 0.80]),
            &lookup,
        );
        assert!(ok.passed, "{}", ok.render());
        assert_eq!(ok.levels.len(), 2);
        let bad = evaluate(
            &cfg(),
            &h100(),
            &repeats(&[0.66, 0.67, 0.68, 0.66, 0.67]),
            &lookup,
        );
        assert!(!bad.passed);
        let text = bad.render();
        assert!(
            text.contains("c=1: images/s median 0.670 vs baseline 0.790")
                && text.contains("REGRESSION"),
            "{text}"
        );
        assert!(text.ends_with("gate: FAIL\n"), "{text}");

        let limited = GateConfig {
            max_ttft_ms: Some(120.0),
            min_abs: Some(0.5),
            ..cfg()
        };
        let out = evaluate(&limited, &h100(), &repeats(&[0.80, 0.79, 0.80]), &lookup);
        let text = out.render();
        assert!(!out.passed, "{text}");
        assert!(
            text.contains("c=1: TTFT p99 median over 3 repeats 150 ms, limit 120 ms: FAIL"),
            "{text}"
        );
        assert!(
            text.contains("c=1: images/s median 0.800 (floor 0.500): ok"),
            "{text}"
        );
    }

    #[test]
    fn missing_and_mismatched_baselines_skip_with_reasons() {
        let current = repeats(&[0.80, 0.79, 0.80]);
        let none = BaselineLookup::Missing {
            expected: "golden/baselines/x/a@b/key.toml".into(),
            others: vec![],
        };
        let out = evaluate(&cfg(), &h100(), &current, &none);
        assert!(out.passed);
        let text = out.render();
        assert!(
            text.starts_with(
                "no baseline for meta-llama/Llama-3.2-11B-Vision-Instruct on 1x NVIDIA H100"
            ),
            "{text}"
        );
        assert!(
            text.contains("EYETEST_ACCEPT_BASELINE=1 cargo test"),
            "{text}"
        );
        let strict = GateConfig {
            require_baseline: true,
            ..cfg()
        };
        assert!(!evaluate(&strict, &h100(), &current, &none).passed);

        let mut other = h100();
        other.gpu = crate::throughput::GpuInfo::none();
        other.max_tokens = 256;
        let mismatch = BaselineLookup::Missing {
            expected: "k.toml".into(),
            others: vec![("golden/other.toml".into(), other)],
        };
        let out = evaluate(&cfg(), &h100(), &current, &mismatch);
        let text = out.render();
        assert!(out.passed && text.contains("comparison skipped"), "{text}");
        assert!(
            text.contains("    gpu: 1x NVIDIA H100 80GB HBM3 (driver 580.1) vs no GPU\n"),
            "{text}"
        );
        assert!(text.contains("    max_tokens: 512 vs 256\n"), "{text}");
        match out.baseline {
            BaselineStatus::FingerprintMismatch { candidates } => {
                assert_eq!(candidates[0].differences.len(), 2)
            }
            other => panic!("{other:?}"),
        }
    }
}
