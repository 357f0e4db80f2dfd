//! Absolute service-level objectives and goodput: "p99 TTFT under 500 ms at every level",
//! which hold without any baseline, beside the relative gate.
//!
//! ```toml
//! slo = { ttft_p99_ms = 500, tpot_p50_ms = 50, e2e_p99_ms = 10000,
//!         images_per_s_min = 0.5, failure_rate_max = "1%",
//!         goodput_ttft_ms = 500, goodput_e2e_ms = 10000, goodput_min = "95%" }
//! ```
//!
//! - `<ttft|tpot|itl|e2e>_<mean|p50|p90|p99>_ms`: a ceiling on the level's distribution
//!   with every repeat pooled (histograms merge exactly, so the pooled p99 is the p99 of
//!   all requests, not a median of per-repeat p99s).
//! - `<images|requests|output_tokens>_per_s_min`: a floor on the median over repeats.
//! - `failure_rate_max`: the share of requests allowed to fail (the gate's
//!   `max_failure_rate`, which is 0 unless set; set one or the other).
//! - `goodput_<ttft|tpot|e2e>_ms`: per-request limits, as vLLM's `--goodput`: a request is
//!   good when it succeeded and met every one of them. Goodput is reported per level as the
//!   share of requests that were good and as good requests per second;
//!   `goodput_min` sets a floor on the share.

use serde::{Deserialize, Serialize};

use super::level::{repeats_at, LevelKey};
use super::metrics::{median, LevelMetrics, Stats};

pub use super::recorder::GoodputLimits;
use super::{percent, sig3};

/// Which latency a ceiling applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantity {
    Ttft,
    Tpot,
    Itl,
    E2e,
}

/// Which statistic of the pooled distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum At {
    Mean,
    P50,
    P90,
    P99,
}

/// Rates with a floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    ImagesPerS,
    RequestsPerS,
    OutputTokensPerS,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyLimit {
    pub quantity: Quantity,
    pub at: At,
    pub max_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateFloor {
    pub rate: Rate,
    pub min: f64,
}

/// A validated `slo` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub latency: Vec<LatencyLimit>,
    pub rates: Vec<RateFloor>,
    pub failure_rate_max: Option<f64>,
    pub goodput: Option<GoodputLimits>,
    pub goodput_min: Option<f64>,
}

/// Every key an `slo` table accepts, for "did you mean" and the help text.
pub fn known_keys() -> Vec<String> {
    let mut keys = Vec::new();
    for q in ["ttft", "tpot", "itl", "e2e"] {
        for at in ["mean", "p50", "p90", "p99"] {
            keys.push(format!("{q}_{at}_ms"));
        }
    }
    for r in ["images", "requests", "output_tokens"] {
        keys.push(format!("{r}_per_s_min"));
    }
    keys.extend(
        [
            "failure_rate_max",
            "goodput_ttft_ms",
            "goodput_tpot_ms",
            "goodput_e2e_ms",
            "goodput_min",
        ]
        .map(String::from),
    );
    keys
}

/// What a key means, or `None` for an unknown key.
enum Key {
    Latency(Quantity, At),
    Rate(Rate),
    FailureRate,
    Goodput(Quantity),
    GoodputMin,
}

fn key(k: &str) -> Option<Key> {
    Some(match k {
        "failure_rate_max" => Key::FailureRate,
        "goodput_min" => Key::GoodputMin,
        "goodput_ttft_ms" => Key::Goodput(Quantity::Ttft),
        "goodput_tpot_ms" => Key::Goodput(Quantity::Tpot),
        "goodput_e2e_ms" => Key::Goodput(Quantity::E2e),
        "images_per_s_min" => Key::Rate(Rate::ImagesPerS),
        "requests_per_s_min" => Key::Rate(Rate::RequestsPerS),
        "output_tokens_per_s_min" => Key::Rate(Rate::OutputTokensPerS),
        _ => {
            let rest = k.strip_suffix("_ms")?;
            let (q, at) = rest.split_once('_')?;
            let q = match q {
                "ttft" => Quantity::Ttft,
                "tpot" => Quantity::Tpot,
                "itl" => Quantity::Itl,
                "e2e" => Quantity::E2e,
                _ => return None,
            };
            let at = match at {
                "mean" => At::Mean,
                "p50" => At::P50,
                "p90" => At::P90,
                "p99" => At::P99,
                _ => return None,
            };
            Key::Latency(q, at)
        }
    })
}

/// A value as written: a number, or a string for fractions (`"1%"`).
pub enum Value<'a> {
    Num(f64),
    Str(&'a str),
}

/// Adds one `key = value` to `slo`; `Err((message, help))` for the caller to place at the
/// value's span.
pub fn set(slo: &mut Slo, k: &str, v: Value<'_>) -> Result<(), (String, String)> {
    let Some(kind) = key(k) else {
        let known = known_keys();
        let refs: Vec<&str> = known.iter().map(String::as_str).collect();
        let help = match crate::diagnostic::closest(k, refs.iter().copied()) {
            Some(c) => format!("did you mean `{c}`? keys: {}", known.join(", ")),
            None => format!("keys: {}", known.join(", ")),
        };
        return Err((format!("unknown slo key `{k}`"), help));
    };
    let fraction = matches!(kind, Key::FailureRate | Key::GoodputMin);
    let x = match v {
        Value::Num(x) if fraction && x > 1.0 => {
            return Err((
                format!("{k} = {x} is more than 1"),
                format!("write a fraction like 0.01 or a percentage like \"{x}%\""),
            ))
        }
        Value::Num(x) => x,
        Value::Str(s) if fraction => super::config::parse_fraction(s).map_err(|e| {
            (
                format!("{k}: {e}"),
                "write a fraction like 0.01 or \"1%\"".to_string(),
            )
        })?,
        Value::Str(s) => {
            return Err((
                format!("{k} must be a number, got the string {s:?}"),
                "write the limit without quotes, e.g. `ttft_p99_ms = 500`".into(),
            ))
        }
    };
    if !x.is_finite() || x < 0.0 || (!fraction && x == 0.0) {
        return Err((
            format!("{k} must be a positive number, got {x}"),
            "latency limits are in milliseconds, rate floors in per second".into(),
        ));
    }
    if fraction && x > 1.0 {
        return Err((
            format!("{k} = {} is more than 100%", percent(x)),
            "a share of requests is at most 100%".into(),
        ));
    }
    match kind {
        Key::Latency(quantity, at) => slo.latency.push(LatencyLimit {
            quantity,
            at,
            max_ms: x,
        }),
        Key::Rate(rate) => slo.rates.push(RateFloor { rate, min: x }),
        Key::FailureRate => slo.failure_rate_max = Some(x),
        Key::GoodputMin => slo.goodput_min = Some(x),
        Key::Goodput(q) => {
            let g = slo.goodput.get_or_insert_with(GoodputLimits::default);
            match q {
                Quantity::Ttft => g.ttft_ms = Some(x),
                Quantity::Tpot => g.tpot_ms = Some(x),
                _ => g.e2e_ms = Some(x),
            }
        }
    }
    Ok(())
}

/// SLO verdict of one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloLevel {
    pub concurrency: usize,
    /// Open-loop levels: the asked rate (requests/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    pub passed: bool,
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloOutcome {
    pub passed: bool,
    pub levels: Vec<SloLevel>,
}

impl SloOutcome {
    pub fn level_at(&self, key: LevelKey) -> Option<&SloLevel> {
        self.levels
            .iter()
            .find(|l| LevelKey::new(l.concurrency, l.rate) == key)
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for l in &self.levels {
            for line in &l.lines {
                s.push_str(line);
                s.push('\n');
            }
        }
        s.push_str(if self.passed {
            "slo: PASS\n"
        } else {
            "slo: FAIL\n"
        });
        s
    }
}

fn label(q: Quantity, at: At) -> String {
    let q = match q {
        Quantity::Ttft => "TTFT",
        Quantity::Tpot => "TPOT",
        Quantity::Itl => "ITL",
        Quantity::E2e => "E2E",
    };
    let at = match at {
        At::Mean => "mean",
        At::P50 => "p50",
        At::P90 => "p90",
        At::P99 => "p99",
    };
    format!("{q} {at}")
}

/// Checks every level: latencies on `pooled` (one entry per level, repeats merged), rate
/// floors on the median over `repeats`. `None` when the spec sets no SLO.
pub fn evaluate(
    slo: &Slo,
    repeats: &[LevelMetrics],
    pooled: &[LevelMetrics],
) -> Option<SloOutcome> {
    if slo.latency.is_empty() && slo.rates.is_empty() && slo.goodput_min.is_none() {
        return None;
    }
    let levels: Vec<SloLevel> = pooled
        .iter()
        .map(|p| {
            let c = LevelKey::of(p);
            let mut lines = Vec::new();
            let mut passed = true;
            let mut check = |what: String,
                             v: Option<f64>,
                             ok: &dyn Fn(f64) -> bool,
                             bound: String,
                             unit: &str| {
                let (good, shown) = match v {
                    Some(v) => (ok(v), format!("{}{unit}", sig3(v))),
                    None => (false, "not measured".into()),
                };
                passed &= good;
                lines.push(format!(
                    "{c}: SLO {what} {shown}, {bound}: {}",
                    if good { "ok" } else { "FAIL" }
                ));
            };
            for l in &slo.latency {
                let stats: Option<Stats> = match l.quantity {
                    Quantity::Ttft => p.ttft_ms,
                    Quantity::Tpot => p.tpot_ms,
                    Quantity::Itl => p.itl_ms,
                    Quantity::E2e => p.e2e_ms,
                };
                let v = stats.map(|s| match l.at {
                    At::Mean => s.mean,
                    At::P50 => s.p50,
                    At::P90 => s.p90,
                    At::P99 => s.p99,
                });
                let max = l.max_ms;
                check(
                    format!("{} (all repeats)", label(l.quantity, l.at)),
                    v,
                    &|v| v <= max,
                    format!("limit {} ms", sig3(max)),
                    " ms",
                );
            }
            let reps = repeats_at(repeats, c);
            for f in &slo.rates {
                let (name, get): (&str, fn(&LevelMetrics) -> Option<f64>) = match f.rate {
                    Rate::ImagesPerS => ("images/s", |m| Some(m.images_per_s)),
                    Rate::RequestsPerS => ("requests/s", |m| Some(m.requests_per_s)),
                    Rate::OutputTokensPerS => ("output tokens/s", |m| m.output_tokens_per_s),
                };
                let v: Vec<f64> = reps.iter().filter_map(|m| get(m)).collect();
                let min = f.min;
                check(
                    format!("{name} median"),
                    median(&v).filter(|_| p.completed > 0),
                    &|v| v >= min,
                    format!("floor {}", sig3(min)),
                    "",
                );
            }
            if let Some(min) = slo.goodput_min {
                check(
                    "goodput share".into(),
                    p.goodput.as_ref().map(|g| g.fraction * 100.0),
                    &|v| v >= min * 100.0,
                    format!("floor {}", percent(min)),
                    "%",
                );
            }
            SloLevel {
                concurrency: c.concurrency,
                rate: c.rate(),
                passed,
                lines,
            }
        })
        .collect();
    Some(SloOutcome {
        passed: levels.iter().all(|l| l.passed),
        levels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throughput::test_support::level;

    fn parse(pairs: &[(&str, Value<'_>)]) -> Result<Slo, String> {
        let mut slo = Slo::default();
        for (k, v) in pairs {
            let v = match v {
                Value::Num(x) => Value::Num(*x),
                Value::Str(s) => Value::Str(s),
            };
            set(&mut slo, k, v).map_err(|(m, h)| format!("{m} | {h}"))?;
        }
        Ok(slo)
    }

    #[test]
    fn keys_parse_and_bad_ones_say_why() {
        let slo = parse(&[
            ("ttft_p99_ms", Value::Num(500.0)),
            ("images_per_s_min", Value::Num(0.5)),
            ("failure_rate_max", Value::Str("1%")),
            ("goodput_e2e_ms", Value::Num(10_000.0)),
            ("goodput_min", Value::Num(0.9)),
        ])
        .unwrap();
        assert_eq!(
            slo.latency,
            [LatencyLimit {
                quantity: Quantity::Ttft,
                at: At::P99,
                max_ms: 500.0
            }]
        );
        assert_eq!(slo.failure_rate_max, Some(0.01));
        assert_eq!(slo.goodput.unwrap().e2e_ms, Some(10_000.0));
        let e = parse(&[("ttft_p99", Value::Num(1.0))]).unwrap_err();
        assert!(
            e.contains("unknown slo key `ttft_p99`") && e.contains("did you mean `ttft_p99_ms`"),
            "{e}"
        );
        let e = parse(&[("failure_rate_max", Value::Num(5.0))]).unwrap_err();
        assert!(e.contains("\"5%\""), "{e}");
        let e = parse(&[("tpot_p50_ms", Value::Num(-1.0))]).unwrap_err();
        assert!(e.contains("positive"), "{e}");
        let e = parse(&[("e2e_p99_ms", Value::Str("10s"))]).unwrap_err();
        assert!(e.contains("must be a number"), "{e}");
    }

    #[test]
    fn limits_fail_with_the_numbers() {
        let slo = parse(&[
            ("ttft_p99_ms", Value::Num(140.0)),
            ("images_per_s_min", Value::Num(1.0)),
        ])
        .unwrap();
        // level(): TTFT p99 = 1.5 x p50.
        let reps = vec![level(1, 0.8, 100.0), level(4, 2.0, 80.0)];
        let out = evaluate(&slo, &reps, &reps).unwrap();
        let text = out.render();
        assert!(!out.passed, "{text}");
        assert!(
            text.contains("c=1: SLO TTFT p99 (all repeats) 150 ms, limit 140 ms: FAIL"),
            "{text}"
        );
        assert!(
            text.contains("c=1: SLO images/s median 0.800, floor 1.00: FAIL"),
            "{text}"
        );
        assert!(
            text.contains("c=4: SLO TTFT p99 (all repeats) 120 ms, limit 140 ms: ok"),
            "{text}"
        );
        assert!(text.ends_with("slo: FAIL\n"), "{text}");
        assert!(evaluate(&Slo::default(), &reps, &reps).is_none());
    }
}
