//! Summary statistics shared by the recorder and the metrics: a set of values reduced to
//! mean, nearest-rank percentiles and extremes, and error counts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Summary of a set of values (milliseconds for latencies, tokens for lengths).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// `None` for an empty set, so an absent measurement never shows up as NaN or 0 in a
    /// report or a baseline. Non-finite values are dropped: they can only come from a bug
    /// upstream, and one NaN would poison the sort and every percentile.
    pub fn from_values(values: impl IntoIterator<Item = f64>) -> Option<Stats> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        Some(Stats {
            mean,
            p50: nearest_rank(&v, 50.0),
            p90: nearest_rank(&v, 90.0),
            p99: nearest_rank(&v, 99.0),
            min: v[0],
            max: v[v.len() - 1],
        })
    }

    /// Durations in milliseconds: the unit serving benchmarks report latencies in.
    pub fn from_durations<'a>(values: impl IntoIterator<Item = &'a Duration>) -> Option<Stats> {
        Self::from_values(values.into_iter().map(ms))
    }
}

/// Nearest-rank percentile of sorted, non-empty `v`.
pub fn nearest_rank(v: &[f64], p: f64) -> f64 {
    debug_assert!(!v.is_empty());
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One distinct error message and how many failed requests gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    pub message: String,
    pub count: usize,
}
