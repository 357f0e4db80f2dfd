//! The `gate = { ... }` table of a throughput spec: what the gate compares, how much
//! worse counts as a regression, and the absolute limits checked without a baseline.
//!
//! Absolute limits (`min_abs`, `max_ttft_ms`, `max_tpot_ms`, `max_e2e_ms`) need no
//! baseline and are checked even when the comparison is skipped. Latency limits are
//! checked on a per-repeat percentile (`latency_at`, p99 by default, the tail users feel),
//! taking the median over repeats so one bad repeat does not fail a run. Failed requests
//! fail a level beyond `max_failure_rate` (0 unless set: a benchmark that drops requests is
//! not measuring the server it claims to), and a level where every request failed always
//! fails.

use serde::{Deserialize, Deserializer, Serialize};

use super::metrics::{Metric, Stats};
use super::percent;

/// The `gate = { ... }` table of a throughput spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    pub metric: Metric,
    /// Largest tolerated relative worsening of the median: `"5%"` or `0.05`.
    #[serde(deserialize_with = "deserialize_fraction")]
    pub max_drop: f64,
    /// Absolute bound on the metric's median in its good direction: a floor for rates
    /// (images/s >= min_abs), a ceiling for latencies.
    pub min_abs: Option<f64>,
    pub max_ttft_ms: Option<f64>,
    pub max_tpot_ms: Option<f64>,
    pub max_e2e_ms: Option<f64>,
    /// Which per-repeat percentile the latency limits apply to.
    pub latency_at: LatencyAt,
    /// Significance level of the one-sided test.
    pub alpha: f64,
    /// Share of failed requests a level may have before it fails (`"1%"` or 0.01).
    #[serde(deserialize_with = "deserialize_failure_rate")]
    pub max_failure_rate: f64,
    /// Fail when there is no baseline for this fingerprint (for CI, where a missing
    /// baseline means the gate silently stopped gating). Off by default so a laptop with a
    /// different GPU can still run `cargo test`.
    pub require_baseline: bool,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            metric: Metric::ImagesPerS,
            max_drop: 0.05,
            min_abs: None,
            max_ttft_ms: None,
            max_tpot_ms: None,
            max_e2e_ms: None,
            latency_at: LatencyAt::P99,
            alpha: 0.05,
            require_baseline: false,
            max_failure_rate: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyAt {
    P50,
    P90,
    #[default]
    P99,
}

impl LatencyAt {
    pub(crate) fn pick(self, s: &Stats) -> f64 {
        match self {
            LatencyAt::P50 => s.p50,
            LatencyAt::P90 => s.p90,
            LatencyAt::P99 => s.p99,
        }
    }
    pub(crate) fn name(self) -> &'static str {
        match self {
            LatencyAt::P50 => "p50",
            LatencyAt::P90 => "p90",
            LatencyAt::P99 => "p99",
        }
    }
}

/// Why a value is not a fraction the gate can use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FractionError {
    #[error("expected a fraction like \"5%\" or 0.05, got {given:?}")]
    NotANumber { given: String },
    #[error("{what} must be a non-negative fraction, got {value}")]
    Negative { what: &'static str, value: f64 },
    /// A bare number of 1 or more: almost always a percentage without its `%`.
    #[error(
        "{what} = {value} reads as {}; write \"{value}%\" for {value} percent, or a fraction like 0.05",
        percent(*value)
    )]
    Bare { what: &'static str, value: f64 },
}

/// `"5%"`, `"0.05"` or `0.05`. A bare number of 1 or more is refused: `5` almost always
/// means 5%, and reading it as 500% would switch the gate off.
pub fn parse_fraction(s: &str) -> Result<f64, FractionError> {
    parse_named(s, "the value")
}

fn parse_named(s: &str, what: &'static str) -> Result<f64, FractionError> {
    let t = s.trim();
    let v = if let Some(p) = t.strip_suffix('%') {
        p.trim().parse::<f64>().map(|v| v / 100.0)
    } else {
        t.parse::<f64>()
    }
    .map_err(|_| FractionError::NotANumber { given: s.into() })?;
    check_fraction(v, !t.ends_with('%'), what)
}

fn check_fraction(value: f64, bare: bool, what: &'static str) -> Result<f64, FractionError> {
    if !value.is_finite() || value < 0.0 {
        return Err(FractionError::Negative { what, value });
    }
    if bare && value >= 1.0 {
        return Err(FractionError::Bare { what, value });
    }
    Ok(value)
}

fn deserialize_named<'de, D: Deserializer<'de>>(d: D, what: &'static str) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(f64),
        Str(String),
    }
    match Raw::deserialize(d)? {
        Raw::Num(v) => check_fraction(v, true, what),
        Raw::Str(s) => parse_named(&s, what),
    }
    .map_err(serde::de::Error::custom)
}

fn deserialize_fraction<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    deserialize_named(d, "max_drop")
}

fn deserialize_failure_rate<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    deserialize_named(d, "max_failure_rate")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GateConfig {
        GateConfig::default()
    }

    #[test]
    fn fractions_parse_both_ways() {
        assert_eq!(parse_fraction("5%").unwrap(), 0.05);
        assert_eq!(parse_fraction(" 2.5 % ").unwrap(), 0.025);
        assert_eq!(parse_fraction("0.05").unwrap(), 0.05);
        assert!(parse_fraction("5")
            .unwrap_err()
            .to_string()
            .contains("\"5%\""));
        assert!(parse_fraction("-1%").is_err());
        assert!(parse_fraction("five").is_err());
        #[derive(Deserialize)]
        struct Spec {
            gate: GateConfig,
        }
        let g: Spec =
            toml::from_str(r#"gate = { metric = "images_per_s", max_drop = "5%" }"#).unwrap();
        assert_eq!(g.gate, cfg());
        let g: Spec =
            toml::from_str("gate = { metric = \"ttft_p99\", max_drop = 0.1, max_ttft_ms = 500 }")
                .unwrap();
        assert_eq!(
            (g.gate.metric, g.gate.max_drop, g.gate.max_ttft_ms),
            (Metric::TtftP99, 0.1, Some(500.0))
        );
        assert!(toml::from_str::<Spec>("gate = { max_drop = 5 }").is_err());
        assert!(toml::from_str::<Spec>("gate = { max_dorp = 0.1 }").is_err());
    }

    #[test]
    fn failure_rate_defaults_to_none_allowed() {
        #[derive(Deserialize)]
        struct Spec {
            gate: GateConfig,
        }
        assert_eq!(cfg().max_failure_rate, 0.0);
        let g: Spec = toml::from_str(r#"gate = { max_failure_rate = "2%" }"#).unwrap();
        assert_eq!(g.gate.max_failure_rate, 0.02);
        assert!(toml::from_str::<Spec>("gate = { max_failure_rate = 2 }").is_err());
    }
}
