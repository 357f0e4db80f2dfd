//! Constant-memory accumulation of one level's requests: latencies go into HdrHistograms
//! instead of a list of samples, so a run of a million requests holds the same few
//! histograms as a run of ten, and shards (workers, repeats, machines) merge exactly.
//!
//! Precision: 3 significant digits ([`SIGFIG`]). A percentile is the nearest-rank value's
//! histogram bucket, reported as the bucket's highest equivalent value and clamped to the
//! observed minimum and maximum, so it is within 0.1% of the exact nearest-rank value
//! (and exact when every value is the same). Means, minima, maxima and counts are kept
//! exactly beside the histograms. Durations are recorded in nanoseconds, so sub-millisecond
//! gaps keep their three digits too.

use std::time::Duration;

use hdrhistogram::Histogram;

use serde::{Deserialize, Serialize};

use super::sample::{LevelRun, Sample};
use super::stats::{ErrorCount, Stats};

/// Significant decimal digits every histogram keeps.
pub const SIGFIG: u8 = 3;
/// Distinct error messages kept per level; later ones are counted under one line, so a
/// server that puts a request id in every error cannot make memory grow per request.
pub const MAX_DISTINCT_ERRORS: usize = 20;
const OTHER_ERRORS: &str = "(other errors, not listed one by one)";

/// One quantity's distribution: a histogram for percentiles plus exact count, sum, min
/// and max (integers, so merging in any order gives the same bits).
#[derive(Debug, Clone)]
pub struct Hist {
    h: Histogram<u64>,
    n: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            h: Histogram::new(SIGFIG).expect("3 significant digits is a valid histogram"),
            n: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl PartialEq for Hist {
    fn eq(&self, o: &Self) -> bool {
        (self.n, self.sum, self.min, self.max) == (o.n, o.sum, o.min, o.max) && self.h == o.h
    }
}

impl Hist {
    pub fn record(&mut self, v: u64) {
        // `record` grows the histogram to fit; `saturating_record` would clamp to the current
        // range instead. It can only fail beyond what a u64 histogram can ever track.
        if self.h.record(v).is_err() {
            self.h.saturating_record(v);
        }
        self.n += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn record_duration(&mut self, d: Duration) {
        self.record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn merge(&mut self, o: &Hist) {
        if o.n == 0 {
            return;
        }
        // Both auto-resize, so adding cannot run out of range.
        let _ = self.h.add(&o.h);
        self.n += o.n;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// Nearest-rank percentile `p` (0..=100) in recorded units, within [`SIGFIG`] digits.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        (self.n > 0).then(|| {
            self.h
                .value_at_quantile(p / 100.0)
                .clamp(self.min, self.max)
        })
    }

    /// Summary in the recorded unit (tokens).
    pub fn stats(&self) -> Option<Stats> {
        self.summary(|v| v as f64)
    }

    /// Summary of nanoseconds in milliseconds, converted as [`Duration::as_secs_f64`] does
    /// so that a minimum or maximum equals the sample's own `as_secs_f64() * 1e3` bit for bit.
    pub fn stats_ms(&self) -> Option<Stats> {
        self.summary(|v| Duration::from_nanos(v).as_secs_f64() * 1e3)
    }

    fn summary(&self, unit: impl Fn(u64) -> f64) -> Option<Stats> {
        if self.n == 0 {
            return None;
        }
        let at = |p: f64| unit(self.percentile(p).unwrap_or(0));
        Some(Stats {
            mean: unit(1) * (self.sum as f64 / self.n as f64),
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            min: unit(self.min),
            max: unit(self.max),
        })
    }
}

/// Everything one level (or several merged) measured, in memory that does not grow with
/// the number of requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorder {
    pub completed: u64,
    pub failed: u64,
    pub usage_missing: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    /// Successful requests within every per-request goodput limit.
    pub good: u64,
    pub goodput: Option<GoodputLimits>,
    pub ttft: Hist,
    pub tpot: Hist,
    pub itl: Hist,
    pub e2e: Hist,
    pub queued: Hist,
    /// Output tokens per successful request with usage (unit: tokens).
    pub output_len: Hist,
    pub errors: Vec<ErrorCount>,
}

impl Recorder {
    pub fn new(goodput: Option<GoodputLimits>) -> Recorder {
        Recorder {
            goodput,
            ..Recorder::default()
        }
    }

    /// Adds one request. Failed requests are counted with their error and never enter a
    /// latency.
    pub fn record(&mut self, s: &Sample) {
        if !s.ok {
            self.failed += 1;
            let message = s.error.as_deref().unwrap_or("unknown error");
            self.count_error(message, 1);
            return;
        }
        self.completed += 1;
        self.queued.record_duration(s.queued);
        self.e2e.record_duration(s.e2e);
        if let Some(t) = s.ttft {
            self.ttft.record_duration(t);
        }
        for gap in &s.itl {
            self.itl.record_duration(*gap);
        }
        let tpot = tpot(s);
        if let Some(t) = tpot {
            self.tpot.record_duration(t);
        }
        match s.output_tokens {
            Some(n) => {
                self.output_tokens += n;
                self.prompt_tokens += s.prompt_tokens.unwrap_or(0);
                self.output_len.record(n);
            }
            None => self.usage_missing += 1,
        }
        if self.goodput.as_ref().is_none_or(|g| g.good(s, tpot)) {
            self.good += 1;
        }
    }

    fn count_error(&mut self, message: &str, count: u64) {
        let count = count as usize;
        if let Some(e) = self.errors.iter_mut().find(|e| e.message == message) {
            e.count += count;
            return;
        }
        let message = if self.errors.len() < MAX_DISTINCT_ERRORS {
            message
        } else {
            OTHER_ERRORS
        };
        match self.errors.iter_mut().find(|e| e.message == message) {
            Some(e) => e.count += count,
            None => self.errors.push(ErrorCount {
                message: message.to_string(),
                count,
            }),
        }
    }

    /// Adds another shard's requests: the result is the recorder one run of all of them
    /// would have produced (error lists aside, when both hit [`MAX_DISTINCT_ERRORS`]).
    pub fn merge(&mut self, o: &Recorder) {
        self.completed += o.completed;
        self.failed += o.failed;
        self.usage_missing += o.usage_missing;
        self.prompt_tokens += o.prompt_tokens;
        self.output_tokens += o.output_tokens;
        self.good += o.good;
        for (a, b) in [
            (&mut self.ttft, &o.ttft),
            (&mut self.tpot, &o.tpot),
            (&mut self.itl, &o.itl),
            (&mut self.e2e, &o.e2e),
            (&mut self.queued, &o.queued),
            (&mut self.output_len, &o.output_len),
        ] {
            a.merge(b);
        }
        for e in &o.errors {
            self.count_error(&e.message, e.count as u64);
        }
    }

    /// Errors most frequent first (ties by message), as reports list them.
    pub fn sorted_errors(&self) -> Vec<ErrorCount> {
        let mut v = self.errors.clone();
        v.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.message.cmp(&b.message))
        });
        v
    }
}

/// TPOT of one request: (E2E - TTFT) / (output tokens - 1), for two tokens or more.
pub fn tpot(s: &Sample) -> Option<Duration> {
    let (ttft, n) = (s.ttft?, s.output_tokens?);
    (n > 1).then(|| s.e2e.saturating_sub(ttft) / (n - 1) as u32)
}

/// Per-request limits that make a request count towards goodput; `None`: no limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GoodputLimits {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
}

impl GoodputLimits {
    /// Whether a successful request met every limit. A request with one output token has no
    /// TPOT and passes that limit, as in vLLM (which counts its TPOT as 0); a TTFT limit
    /// needs a measured TTFT (streaming).
    pub fn good(&self, s: &Sample, tpot: Option<std::time::Duration>) -> bool {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        let within = |limit: Option<f64>, v: Option<f64>| match limit {
            None => true,
            Some(l) => v.is_some_and(|v| v <= l),
        };
        s.ok && within(self.ttft_ms, s.ttft.map(ms))
            && within(self.tpot_ms, Some(tpot.map_or(0.0, ms)))
            && within(self.e2e_ms, Some(ms(s.e2e)))
    }
}

impl LevelRun {
    /// Every sample recorded into histograms, as the load generator would have.
    pub fn record(&self) -> LevelRecord {
        let mut recorder = Recorder::default();
        self.samples.iter().for_each(|s| recorder.record(s));
        LevelRecord {
            concurrency: self.concurrency,
            wall: self.wall,
            recorder,
        }
    }
}

/// One level of one repeat as the load generator measures it: histograms and counts whose
/// size does not depend on the number of requests (see [`super::recorder`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LevelRecord {
    pub concurrency: usize,
    /// First send -> last completion.
    pub wall: Duration,
    pub recorder: Recorder,
}

/// Either kind of level, so [`super::LevelMetrics::from_run`] takes both.
pub trait Recorded {
    fn to_record(&self) -> std::borrow::Cow<'_, LevelRecord>;
}

impl Recorded for LevelRecord {
    fn to_record(&self) -> std::borrow::Cow<'_, LevelRecord> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl Recorded for LevelRun {
    fn to_record(&self) -> std::borrow::Cow<'_, LevelRecord> {
        std::borrow::Cow::Owned(self.record())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throughput::stats::nearest_rank;

    /// Deterministic values spread over four decades, like real latencies.
    fn values(seed: &mut u64, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (*seed >> 11) as f64 / (1u64 << 53) as f64;
                (10f64.powf(5.0 + 4.0 * u)) as u64 // 0.1 ms .. 1 s in ns
            })
            .collect()
    }

    #[test]
    fn percentiles_match_exact_nearest_rank_within_three_digits() {
        let mut seed = 11;
        for n in [1, 2, 7, 100, 1000, 12_345] {
            let v = values(&mut seed, n);
            let mut h = Hist::default();
            v.iter().for_each(|&x| h.record(x));
            let mut sorted: Vec<f64> = v.iter().map(|&x| x as f64).collect();
            sorted.sort_by(f64::total_cmp);
            for p in [50.0, 90.0, 99.0] {
                let exact = nearest_rank(&sorted, p);
                let got = h.percentile(p).unwrap() as f64;
                assert!(
                    (got - exact).abs() <= exact * 1e-3,
                    "n={n} p{p}: {got} vs exact {exact}"
                );
            }
            let s = h.stats().unwrap();
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
            assert!(
                (s.mean - mean).abs() <= mean * 1e-12,
                "mean {} vs {mean}",
                s.mean
            );
            assert_eq!((s.min, s.max), (sorted[0], sorted[n - 1]));
        }
        // All equal: exact, not a bucket edge.
        let mut h = Hist::default();
        (0..10).for_each(|_| h.record(50_000_000));
        assert_eq!(h.stats_ms().unwrap().p99, 50.0);
    }

    fn sample(seed: &mut u64, ok: bool) -> Sample {
        let v = values(seed, 4);
        let d = Duration::from_nanos;
        if !ok {
            return Sample {
                ok: false,
                error: Some(format!("HTTP {}", 500 + v[0] % 3)),
                ..Default::default()
            };
        }
        Sample {
            ok: true,
            queued: d(v[0] / 100),
            ttft: Some(d(v[1])),
            e2e: d(v[1] + v[2]),
            itl: vec![d(v[3]), d(v[2] / 3)],
            prompt_tokens: Some(100),
            output_tokens: Some(3 + v[0] % 50),
            error: None,
        }
    }

    #[test]
    fn merging_two_shards_equals_one_run() {
        let mut seed = 5;
        let samples: Vec<Sample> = (0..5000).map(|i| sample(&mut seed, i % 17 != 0)).collect();
        let limits = GoodputLimits {
            ttft_ms: Some(50.0),
            tpot_ms: None,
            e2e_ms: Some(400.0),
        };
        let mut whole = Recorder::new(Some(limits.clone()));
        let (mut a, mut b) = (
            Recorder::new(Some(limits.clone())),
            Recorder::new(Some(limits)),
        );
        for (i, s) in samples.iter().enumerate() {
            whole.record(s);
            if i % 3 == 0 { &mut a } else { &mut b }.record(s);
        }
        a.merge(&b);
        // Error lists keep first-seen order; reports sort them.
        a.errors = a.sorted_errors();
        whole.errors = whole.sorted_errors();
        assert_eq!(a, whole);
        assert!(whole.good > 0 && whole.good < whole.completed);
        assert_eq!(whole.failed, 5000 / 17 + 1);
    }

    #[test]
    fn distinct_errors_are_capped() {
        let mut r = Recorder::default();
        for i in 0..1000 {
            r.record(&Sample {
                ok: false,
                error: Some(format!("request {i} failed")),
                ..Default::default()
            });
        }
        assert_eq!(r.errors.len(), MAX_DISTINCT_ERRORS + 1);
        assert_eq!(r.errors.iter().map(|e| e.count).sum::<usize>(), 1000);
        assert_eq!(r.sorted_errors()[0].message, OTHER_ERRORS);
    }
}
