//! The noise-aware regression gate.
//!
//! Throughput on real hardware jitters by a few percent run to run, so a gate that compares
//! one number with one number either cries wolf or needs a tolerance so wide it misses real
//! regressions. The gate therefore compares the **medians** of several repeats and fails a
//! level only when the median is worse than the baseline's by more than `max_drop` **and**
//! the difference is statistically significant: a one-sided Mann-Whitney U test (rank based,
//! so one outlier repeat cannot swing it, and exact for small n) at `alpha` (0.05). With
//! too few repeats for the test to ever reach `alpha` (fewer than 3 + 3: the smallest
//! possible one-sided p at 3 + 3 is 1/20 = 0.05, at 2 + 2 it is 1/6), the gate falls back to
//! requiring the median drop to exceed `max_drop` plus the larger relative spread
//! (max - min) / median of the two samples; with a single repeat per side that is just
//! `max_drop`, and the explanation says so.
//!
//! This module is the statistics of one comparison; [`super::verdict`] applies it to a
//! whole sweep (and imports this module, never the other way round), and
//! [`super::config`] holds the `gate` table.

use serde::{Deserialize, Serialize};

use super::mannwhitney::{mann_whitney_u, min_achievable_p, Alternative};
use super::metrics::{median, Direction, Metric};
use super::{percent, sig3};

pub use super::config::{parse_fraction, GateConfig, LatencyAt};

/// How the gate decided whether a worse median is a real regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Evidence {
    /// One-sided Mann-Whitney U test of current vs baseline repeats, in the bad direction.
    MannWhitney { u: f64, p: f64, alpha: f64 },
    /// Too few repeats for the test: the drop must also exceed this relative spread.
    Spread { spread: f64 },
}

/// Comparison of one metric at one level with the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub concurrency: usize,
    /// Open-loop levels: the asked rate (requests/s); set by the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    pub metric: Metric,
    pub current_median: f64,
    pub baseline_median: f64,
    /// Signed relative change of the median, (current - baseline) / baseline.
    pub change: f64,
    /// Relative worsening in the metric's bad direction (negative: it got better).
    pub worse_by: f64,
    pub tolerance: f64,
    pub n_current: usize,
    pub n_baseline: usize,
    pub evidence: Evidence,
    pub regression: bool,
    /// Better than the baseline by more than the tolerance, with the same evidence rule:
    /// worth recording a new baseline so the next regression is measured from there.
    pub improved: bool,
}

impl Comparison {
    /// e.g. `c=4: images/s median 0.391 vs baseline 0.455 (-14.1%, tolerance 5%,
    /// Mann-Whitney U p=0.004, n=5/5): REGRESSION`.
    pub fn line(&self) -> String {
        let unit = self.metric.unit();
        let evidence = match &self.evidence {
            Evidence::MannWhitney { p, .. } => format!(
                "tolerance {}, Mann-Whitney U p={p:.3}, n={}/{}",
                percent(self.tolerance),
                self.n_current,
                self.n_baseline
            ),
            Evidence::Spread { spread } => format!(
                "tolerance {} + spread {}, n={}/{}: too few repeats for a significance test, \
                 use >= 3 each",
                percent(self.tolerance),
                percent(*spread),
                self.n_current,
                self.n_baseline
            ),
        };
        let verdict = if self.regression {
            "REGRESSION"
        } else if self.improved {
            "ok (improved: consider recording a new baseline)"
        } else if self.worse_by > self.tolerance {
            "ok (within noise)"
        } else {
            "ok"
        };
        format!(
            "{}: {} median {}{unit} vs baseline {}{unit} ({:+.1}%, {evidence}): {verdict}",
            super::level::LevelKey::new(self.concurrency, self.rate),
            self.metric.label(),
            sig3(self.current_median),
            sig3(self.baseline_median),
            self.change * 100.0
        )
    }
}

/// Compares one level's repeats with the baseline's. `None` when either side has no
/// values (the caller says why). Non-finite values are ignored.
pub fn compare(
    config: &GateConfig,
    concurrency: usize,
    current: &[f64],
    baseline: &[f64],
) -> Option<Comparison> {
    let cur: Vec<f64> = current.iter().copied().filter(|x| x.is_finite()).collect();
    let base: Vec<f64> = baseline.iter().copied().filter(|x| x.is_finite()).collect();
    let (mc, mb) = (median(&cur)?, median(&base)?);
    let direction = config.metric.direction();
    let change = if mb != 0.0 { (mc - mb) / mb.abs() } else { 0.0 };
    let worse_by = match (direction, mb == 0.0) {
        (Direction::HigherIsBetter, false) => -change,
        (Direction::LowerIsBetter, false) => change,
        // A zero baseline rate cannot get worse; a zero baseline latency can only do so.
        (Direction::HigherIsBetter, true) => 0.0,
        (Direction::LowerIsBetter, true) if mc > 0.0 => f64::INFINITY,
        (Direction::LowerIsBetter, true) => 0.0,
    };
    let (worse, better) = match direction {
        Direction::HigherIsBetter => (Alternative::Less, Alternative::Greater),
        Direction::LowerIsBetter => (Alternative::Greater, Alternative::Less),
    };
    let tol = config.max_drop;
    let (evidence, regression, improved) =
        if min_achievable_p(cur.len(), base.len()) <= config.alpha {
            let w = mann_whitney_u(&cur, &base, worse)?;
            let b = mann_whitney_u(&cur, &base, better)?;
            (
                Evidence::MannWhitney {
                    u: w.u,
                    p: w.p,
                    alpha: config.alpha,
                },
                worse_by > tol && w.p <= config.alpha,
                -worse_by > tol && b.p <= config.alpha,
            )
        } else {
            let spread = rel_spread(&cur).max(rel_spread(&base));
            (
                Evidence::Spread { spread },
                worse_by > tol + spread,
                -worse_by > tol + spread,
            )
        };
    Some(Comparison {
        concurrency,
        rate: None,
        metric: config.metric,
        current_median: mc,
        baseline_median: mb,
        change,
        worse_by,
        tolerance: tol,
        n_current: cur.len(),
        n_baseline: base.len(),
        evidence,
        regression,
        improved,
    })
}

/// (max - min) / |median|: the sample's own noise, relative like the tolerance.
fn rel_spread(v: &[f64]) -> f64 {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    match median(v) {
        Some(m) if m != 0.0 && v.len() > 1 => (hi - lo) / m.abs(),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GateConfig {
        GateConfig::default()
    }

    /// Deterministic uniform noise in [-amp, amp] (a tiny LCG: no rand seeding questions).
    fn jitter(seed: &mut u64, base: f64, amp: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (*seed >> 11) as f64 / (1u64 << 53) as f64;
                base * (1.0 + amp * (2.0 * u - 1.0))
            })
            .collect()
    }

    #[test]
    fn identical_distributions_pass() {
        let v = [0.79, 0.80, 0.78, 0.81, 0.79];
        let c = compare(&cfg(), 1, &v, &v).unwrap();
        assert!(!c.regression && !c.improved, "{}", c.line());
        assert_eq!(c.change, 0.0);
    }

    #[test]
    fn fifteen_percent_slower_fails_with_a_readable_line() {
        let cur = [0.389, 0.391, 0.392, 0.390, 0.393];
        let base = [0.455, 0.454, 0.456, 0.457, 0.453];
        let c = compare(&cfg(), 4, &cur, &base).unwrap();
        assert!(c.regression);
        assert_eq!(
            c.line(),
            "c=4: images/s median 0.391 vs baseline 0.455 (-14.1%, tolerance 5%, \
             Mann-Whitney U p=0.004, n=5/5): REGRESSION"
        );
        let mut seed = 7;
        for _ in 0..50 {
            let base = jitter(&mut seed, 1.0, 0.01, 5);
            let cur = jitter(&mut seed, 0.85, 0.01, 5);
            assert!(compare(&cfg(), 1, &cur, &base).unwrap().regression);
        }
    }

    #[test]
    fn pure_jitter_never_fails() {
        let mut seed = 42;
        for _ in 0..500 {
            let base = jitter(&mut seed, 1.0, 0.03, 5);
            let cur = jitter(&mut seed, 1.0, 0.03, 5);
            let c = compare(&cfg(), 1, &cur, &base).unwrap();
            assert!(!c.regression, "{}", c.line());
        }
    }

    #[test]
    fn false_alarms_on_wide_noise_stay_below_alpha() {
        // +-10% noise, wider than the tolerance: medians often differ by more than 5%, so a
        // gate on medians alone would cry wolf; the test keeps false alarms under alpha.
        let (mut seed, trials) = (1234, 2000);
        let (mut alarms, mut naive) = (0, 0);
        for _ in 0..trials {
            let base = jitter(&mut seed, 1.0, 0.10, 5);
            let cur = jitter(&mut seed, 1.0, 0.10, 5);
            let c = compare(&cfg(), 1, &cur, &base).unwrap();
            alarms += c.regression as usize;
            naive += (c.worse_by > c.tolerance) as usize;
        }
        assert!(
            naive > trials / 10,
            "noise too small to test anything: {naive}"
        );
        assert!(
            alarms * 20 <= trials,
            "{alarms} false alarms in {trials} trials"
        );
    }

    #[test]
    fn a_drop_beyond_tolerance_but_within_noise_passes() {
        // 8% lower median but the repeats overlap heavily: not significant.
        let base = [1.00, 0.80, 1.20, 0.90, 1.10];
        let cur = [0.92, 0.75, 1.15, 0.85, 1.05];
        let c = compare(&cfg(), 1, &cur, &base).unwrap();
        assert!(c.worse_by > 0.05 && !c.regression, "{}", c.line());
        assert!(c.line().ends_with("ok (within noise)"), "{}", c.line());
    }

    #[test]
    fn few_repeats_fall_back_to_spread() {
        let c = compare(&cfg(), 2, &[0.85, 0.86], &[1.0, 1.01]).unwrap();
        assert!(
            matches!(c.evidence, Evidence::Spread { .. }) && c.regression,
            "{}",
            c.line()
        );
        assert!(c.line().contains("too few repeats"), "{}", c.line());
        // 7% drop, but each side spreads by 4%: 7% < 5% + 4%.
        let c = compare(&cfg(), 2, &[0.91, 0.95], &[0.98, 1.02]).unwrap();
        assert!(!c.regression, "{}", c.line());
        // One repeat each: no noise estimate, the tolerance alone decides.
        assert!(compare(&cfg(), 1, &[0.94], &[1.0]).unwrap().regression);
        assert!(!compare(&cfg(), 1, &[0.96], &[1.0]).unwrap().regression);
        // 3 + 3 reaches p = 0.05 exactly, so the test is used.
        let c = compare(&cfg(), 1, &[0.8, 0.81, 0.82], &[1.0, 1.01, 1.02]).unwrap();
        assert!(matches!(c.evidence, Evidence::MannWhitney { .. }) && c.regression);
    }

    #[test]
    fn latency_metrics_gate_upwards() {
        let config = GateConfig {
            metric: Metric::TtftP50,
            ..cfg()
        };
        let base = [100.0, 101.0, 99.0, 100.5, 100.2];
        let slower: Vec<f64> = base.iter().map(|x| x * 1.2).collect();
        let faster: Vec<f64> = base.iter().map(|x| x * 0.8).collect();
        let c = compare(&config, 1, &slower, &base).unwrap();
        assert!(
            c.regression && c.line().contains("TTFT p50 median 120 ms"),
            "{}",
            c.line()
        );
        let c = compare(&config, 1, &faster, &base).unwrap();
        assert!(!c.regression && c.improved, "{}", c.line());
    }
}
