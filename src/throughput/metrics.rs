//! Per-level metrics with the meanings of vLLM's serving benchmark
//! (`benchmarks/benchmark_serving.py`), so numbers can be set side by side with it.
//!
//! A level's latencies come from the load generator's histograms ([`super::recorder`]):
//! memory stays flat however long a run is, and repeats merge exactly. Percentiles are
//! nearest-rank (the smallest value with at least p% of values at or below it, what people
//! expect of "p99 latency") to 3 significant digits; means, minima, maxima and counts are
//! exact. [`Stats::from_values`] computes exact nearest-rank statistics of a small set.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::recorder::{Recorded, Recorder};

pub use super::stats::{nearest_rank, ErrorCount, Stats};

/// The median as statisticians define it (mean of the two middle values for an even count).
/// Used for comparing repeats, where n is tiny and nearest-rank would throw half the
/// information away; `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Everything measured at one concurrency level of one repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelMetrics {
    pub concurrency: usize,
    pub completed: usize,
    /// Counted so a report shows them, never averaged into any latency or throughput.
    pub failed: usize,
    pub wall_s: f64,
    /// Completed requests per second of wall time.
    pub requests_per_s: f64,
    /// Same as `requests_per_s`: every request carries exactly one image. Kept as its own
    /// field because it is the study's headline number and the default gated metric.
    pub images_per_s: f64,
    /// `None` when no successful request reported usage: a token rate of 0 would be a lie.
    /// When only some did, this counts the reported tokens and `usage_missing` says how many
    /// requests are not in it.
    pub output_tokens_per_s: Option<f64>,
    pub total_tokens_per_s: Option<f64>,
    pub ttft_ms: Option<Stats>,
    pub tpot_ms: Option<Stats>,
    /// Pooled over all successful requests, as vLLM does (long answers weigh more).
    pub itl_ms: Option<Stats>,
    pub e2e_ms: Option<Stats>,
    /// Client-side wait for a concurrency slot: a slow client cannot hide behind the server.
    pub queued_ms: Option<Stats>,
    /// Output tokens per successful request with usage.
    pub output_len: Option<Stats>,
    /// Successful requests whose server sent no usage; reports flag a non-zero count.
    pub usage_missing: usize,
    /// Distinct error messages of failed requests with their counts, most frequent first,
    /// so a report says why without listing every request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorCount>,
    /// Present when the spec sets per-request goodput limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<Goodput>,
    /// Open-loop levels: the asked arrival rate in requests/s (`None`: closed loop, where
    /// `concurrency` is the level; for a rate, `concurrency` is the cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Open-loop levels: requests actually sent per second, first to last send, so a
    /// client that fell behind its schedule shows it instead of hiding in the latencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_per_s: Option<f64>,
}

/// Goodput of a level: requests that met every per-request SLO (vLLM's `--goodput`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    pub good: usize,
    /// Good requests over all requests sent (failed ones count as not good).
    pub fraction: f64,
    /// Good requests per second of wall time.
    pub per_s: f64,
}

impl LevelMetrics {
    /// Rates divide by the run's wall time (first send -> last completion). A zero wall time
    /// can only come from an empty or broken run; rates are then 0 rather than infinite.
    pub fn from_run(run: &(impl Recorded + ?Sized)) -> LevelMetrics {
        let run = run.to_record();
        Self::from_recorder(run.concurrency, run.wall, &run.recorder)
    }

    /// Metrics of `r`, measured over `wall` (for repeats merged, the sum of their walls).
    pub fn from_recorder(concurrency: usize, wall: Duration, r: &Recorder) -> LevelMetrics {
        let completed = r.completed as usize;
        let wall_s = wall.as_secs_f64();
        let rate = |n: f64| if wall_s > 0.0 { n / wall_s } else { 0.0 };
        let with_usage = r.completed - r.usage_missing;
        let (output_tokens_per_s, total_tokens_per_s) = if with_usage == 0 {
            (None, None)
        } else {
            (
                Some(rate(r.output_tokens as f64)),
                Some(rate((r.output_tokens + r.prompt_tokens) as f64)),
            )
        };
        let total = r.completed + r.failed;
        let goodput = r.goodput.as_ref().map(|_| Goodput {
            good: r.good as usize,
            fraction: if total > 0 {
                r.good as f64 / total as f64
            } else {
                0.0
            },
            per_s: rate(r.good as f64),
        });
        LevelMetrics {
            concurrency,
            completed,
            failed: r.failed as usize,
            wall_s,
            requests_per_s: rate(completed as f64),
            images_per_s: rate(completed as f64),
            output_tokens_per_s,
            total_tokens_per_s,
            ttft_ms: r.ttft.stats_ms(),
            // TPOT excludes the first token (its time is TTFT) and needs two tokens or more.
            tpot_ms: r.tpot.stats_ms(),
            itl_ms: r.itl.stats_ms(),
            e2e_ms: r.e2e.stats_ms(),
            queued_ms: r.queued.stats_ms(),
            output_len: r.output_len.stats(),
            usage_missing: r.usage_missing as usize,
            errors: r.sorted_errors(),
            goodput,
            rate: None,
            sent_per_s: None,
        }
    }
}

/// A number the gate can compare and a baseline stores, one value per repeat.
///
/// Serialized names carry their unit (`ttft_p50_ms`) because they are the keys of baseline
/// files, read by people in diffs; the unit-less spelling (`ttft_p50`) is accepted in specs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    #[default]
    ImagesPerS,
    RequestsPerS,
    OutputTokensPerS,
    TotalTokensPerS,
    #[serde(rename = "ttft_p50_ms", alias = "ttft_p50")]
    TtftP50,
    #[serde(rename = "ttft_p90_ms", alias = "ttft_p90")]
    TtftP90,
    #[serde(rename = "ttft_p99_ms", alias = "ttft_p99")]
    TtftP99,
    #[serde(rename = "tpot_p50_ms", alias = "tpot_p50")]
    TpotP50,
    #[serde(rename = "tpot_p99_ms", alias = "tpot_p99")]
    TpotP99,
    #[serde(rename = "itl_p50_ms", alias = "itl_p50")]
    ItlP50,
    #[serde(rename = "itl_p99_ms", alias = "itl_p99")]
    ItlP99,
    #[serde(rename = "e2e_p50_ms", alias = "e2e_p50")]
    E2eP50,
    #[serde(rename = "e2e_p90_ms", alias = "e2e_p90")]
    E2eP90,
    #[serde(rename = "e2e_p99_ms", alias = "e2e_p99")]
    E2eP99,
}

/// Which way is better, so "drop" means the same thing for a rate and a latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

impl Metric {
    pub const ALL: [Metric; 14] = [
        Metric::ImagesPerS,
        Metric::RequestsPerS,
        Metric::OutputTokensPerS,
        Metric::TotalTokensPerS,
        Metric::TtftP50,
        Metric::TtftP90,
        Metric::TtftP99,
        Metric::TpotP50,
        Metric::TpotP99,
        Metric::ItlP50,
        Metric::ItlP99,
        Metric::E2eP50,
        Metric::E2eP90,
        Metric::E2eP99,
    ];

    pub fn direction(self) -> Direction {
        match self {
            Metric::ImagesPerS
            | Metric::RequestsPerS
            | Metric::OutputTokensPerS
            | Metric::TotalTokensPerS => Direction::HigherIsBetter,
            _ => Direction::LowerIsBetter,
        }
    }

    /// The value at one level of one repeat; `None` when it was not measured (no successful
    /// request, no usage, no streaming).
    pub fn value(self, m: &LevelMetrics) -> Option<f64> {
        let p = |s: &Option<Stats>, f: fn(&Stats) -> f64| s.as_ref().map(f);
        let v = match self {
            Metric::ImagesPerS => Some(m.images_per_s),
            Metric::RequestsPerS => Some(m.requests_per_s),
            Metric::OutputTokensPerS => m.output_tokens_per_s,
            Metric::TotalTokensPerS => m.total_tokens_per_s,
            Metric::TtftP50 => p(&m.ttft_ms, |s| s.p50),
            Metric::TtftP90 => p(&m.ttft_ms, |s| s.p90),
            Metric::TtftP99 => p(&m.ttft_ms, |s| s.p99),
            Metric::TpotP50 => p(&m.tpot_ms, |s| s.p50),
            Metric::TpotP99 => p(&m.tpot_ms, |s| s.p99),
            Metric::ItlP50 => p(&m.itl_ms, |s| s.p50),
            Metric::ItlP99 => p(&m.itl_ms, |s| s.p99),
            Metric::E2eP50 => p(&m.e2e_ms, |s| s.p50),
            Metric::E2eP90 => p(&m.e2e_ms, |s| s.p90),
            Metric::E2eP99 => p(&m.e2e_ms, |s| s.p99),
        };
        v.filter(|x| x.is_finite())
    }

    /// How the metric reads in a sentence: "images/s", "TTFT p50".
    pub fn label(self) -> &'static str {
        match self {
            Metric::ImagesPerS => "images/s",
            Metric::RequestsPerS => "requests/s",
            Metric::OutputTokensPerS => "output tokens/s",
            Metric::TotalTokensPerS => "total tokens/s",
            Metric::TtftP50 => "TTFT p50",
            Metric::TtftP90 => "TTFT p90",
            Metric::TtftP99 => "TTFT p99",
            Metric::TpotP50 => "TPOT p50",
            Metric::TpotP99 => "TPOT p99",
            Metric::ItlP50 => "ITL p50",
            Metric::ItlP99 => "ITL p99",
            Metric::E2eP50 => "E2E p50",
            Metric::E2eP90 => "E2E p90",
            Metric::E2eP99 => "E2E p99",
        }
    }

    /// Unit suffix for a value: "" for rates (the label says it), " ms" for latencies.
    pub fn unit(self) -> &'static str {
        match self.direction() {
            Direction::HigherIsBetter => "",
            Direction::LowerIsBetter => " ms",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throughput::sample::{LevelRun, Sample};

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// A streamed answer: TTFT `ttft` ms, then `tokens - 1` gaps of `gap` ms.
    fn ok(ttft: u64, gap: u64, tokens: u64) -> Sample {
        Sample {
            ok: true,
            ttft: Some(d(ttft)),
            e2e: d(ttft + gap * (tokens - 1)),
            itl: vec![d(gap); tokens as usize - 1],
            prompt_tokens: Some(100),
            output_tokens: Some(tokens),
            ..Default::default()
        }
    }

    fn failed(msg: &str) -> Sample {
        Sample {
            ok: false,
            error: Some(msg.into()),
            e2e: d(99_999),
            ttft: Some(d(99_999)),
            itl: vec![d(99_999)],
            output_tokens: Some(1_000_000),
            ..Default::default()
        }
    }

    #[test]
    fn known_answers_and_failures_excluded() {
        let run = LevelRun {
            concurrency: 4,
            wall: Duration::from_secs(2),
            samples: vec![
                ok(50, 10, 11),
                ok(50, 10, 11),
                ok(50, 10, 11),
                ok(50, 10, 11),
                failed("HTTP 500"),
                failed("timeout"),
                failed("HTTP 500"),
            ],
        };
        let m = LevelMetrics::from_run(&run);
        assert_eq!((m.completed, m.failed, m.usage_missing), (4, 3, 0));
        assert_eq!(m.images_per_s, 2.0);
        assert_eq!(m.requests_per_s, 2.0);
        assert_eq!(m.output_tokens_per_s, Some(22.0));
        assert_eq!(m.total_tokens_per_s, Some(222.0));
        let ttft = m.ttft_ms.unwrap();
        assert!((ttft.mean - 50.0).abs() < 1e-9 && ttft.p99 == 50.0 && ttft.max == 50.0);
        let itl = m.itl_ms.unwrap();
        assert!((itl.p50 - 10.0).abs() < 1e-9 && (itl.max - 10.0).abs() < 1e-9);
        // (150 - 50) / (11 - 1) = 10 ms per output token.
        assert!((m.tpot_ms.unwrap().p50 - 10.0).abs() < 1e-9);
        assert!((m.e2e_ms.unwrap().max - 150.0).abs() < 1e-9);
        assert_eq!(m.output_len.unwrap().mean, 11.0);
        let errors: Vec<_> = m
            .errors
            .iter()
            .map(|e| (e.message.as_str(), e.count))
            .collect();
        assert_eq!(errors, vec![("HTTP 500", 2), ("timeout", 1)]);
    }

    #[test]
    fn tpot_formula_and_single_token_answers() {
        let mut a = ok(100, 0, 1); // one token: no TPOT
        a.e2e = d(100);
        let mut b = ok(100, 0, 5);
        b.e2e = d(500); // (500 - 100) / 4 = 100 ms
        let m = LevelMetrics::from_run(&LevelRun {
            concurrency: 1,
            wall: d(600),
            samples: vec![a, b],
        });
        let tpot = m.tpot_ms.unwrap();
        assert!((tpot.min - 100.0).abs() < 1e-9 && (tpot.max - 100.0).abs() < 1e-9);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = Stats::from_values((1..=100).map(f64::from)).unwrap();
        assert_eq!(
            (s.p50, s.p90, s.p99, s.min, s.max),
            (50.0, 90.0, 99.0, 1.0, 100.0)
        );
        assert_eq!(s.mean, 50.5);
        let s = Stats::from_values([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.p50, s.p90, s.p99), (2.0, 3.0, 3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn empty_and_usage_missing_give_none_not_nan() {
        let m = LevelMetrics::from_run(&LevelRun::default());
        assert_eq!((m.completed, m.failed), (0, 0));
        assert_eq!(m.images_per_s, 0.0);
        assert!(m.ttft_ms.is_none() && m.itl_ms.is_none() && m.e2e_ms.is_none());
        assert!(m.output_tokens_per_s.is_none());

        let mut s = ok(50, 10, 3);
        s.output_tokens = None;
        s.prompt_tokens = None;
        let m = LevelMetrics::from_run(&LevelRun {
            concurrency: 1,
            wall: d(1000),
            samples: vec![s, ok(50, 10, 3)],
        });
        assert_eq!(m.usage_missing, 1);
        assert_eq!(m.output_tokens_per_s, Some(3.0));
        assert_eq!(m.tpot_ms.map(|_| ()), Some(()));
        assert!(Stats::from_values([f64::NAN]).is_none());
    }

    #[test]
    fn metric_names_carry_units_and_accept_short_forms() {
        #[derive(Deserialize)]
        struct M {
            m: Metric,
        }
        let parse = |s: &str| toml::from_str::<M>(&format!("m = \"{s}\"")).map(|m| m.m);
        assert_eq!(parse("images_per_s").unwrap(), Metric::ImagesPerS);
        assert_eq!(parse("ttft_p50").unwrap(), Metric::TtftP50);
        assert_eq!(parse("ttft_p50_ms").unwrap(), Metric::TtftP50);
        assert!(parse("img_per_s").is_err());
        assert_eq!(
            serde_json::to_string(&Metric::E2eP99).unwrap(),
            "\"e2e_p99_ms\""
        );
        assert_eq!(Metric::TpotP50.direction(), Direction::LowerIsBetter);
    }
}
