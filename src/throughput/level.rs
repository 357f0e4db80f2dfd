//! What names a level of a sweep: a concurrency (closed loop) or an arrival rate (open
//! loop, with its concurrency cap). Everything that groups repeats, gates a level, looks
//! up its baseline or labels it in a report goes through [`LevelKey`], so a rate level is
//! never pooled with a concurrency level that happens to share its cap.

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::metrics::LevelMetrics;
use super::sig3;

/// A level's identity. Rates are kept in thousandths of a request per second so that the
/// key is exact (hashable, ordered) while the spec's rates are floats; closed-loop levels
/// sort first, then rates ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LevelKey {
    rate_milli: Option<u64>,
    pub concurrency: usize,
}

impl LevelKey {
    /// A closed-loop level at `concurrency`.
    pub fn closed(concurrency: usize) -> LevelKey {
        LevelKey {
            rate_milli: None,
            concurrency,
        }
    }

    /// An open-loop level at `rate` requests/s, or closed loop when `rate` is `None`.
    pub fn new(concurrency: usize, rate: Option<f64>) -> LevelKey {
        LevelKey {
            rate_milli: rate.map(|r| (r * 1000.0).round().max(0.0) as u64),
            concurrency,
        }
    }

    pub fn of(m: &LevelMetrics) -> LevelKey {
        LevelKey::new(m.concurrency, m.rate)
    }

    /// The asked rate in requests/s, `None` for a closed-loop level.
    pub fn rate(&self) -> Option<f64> {
        self.rate_milli.map(|r| r as f64 / 1000.0)
    }
}

/// `c=4` for a closed-loop level (as every report always said), `rate=2.5/s` for an
/// open-loop one.
impl fmt::Display for LevelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rate() {
            None => write!(f, "c={}", self.concurrency),
            Some(r) => write!(f, "rate={}/s", rate_text(r)),
        }
    }
}

/// A rate without needless digits: 2 -> "2", 0.5 -> "0.5", 1.3333 -> "1.33".
pub fn rate_text(r: f64) -> String {
    let s = sig3(r);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The distinct keys of `metrics`, sorted.
pub fn keys(metrics: &[LevelMetrics]) -> Vec<LevelKey> {
    let mut k: Vec<LevelKey> = metrics.iter().map(LevelKey::of).collect();
    k.sort_unstable();
    k.dedup();
    k
}

/// The repeats of `metrics` at `key`.
pub fn repeats_at(metrics: &[LevelMetrics], key: LevelKey) -> Vec<&LevelMetrics> {
    metrics.iter().filter(|m| LevelKey::of(m) == key).collect()
}

/// The arrival profile a level was measured with, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    /// Closed loop: exactly `concurrency` requests in flight.
    #[default]
    Concurrency,
    Constant,
    Poisson,
    Gamma,
    Sweep,
}

impl ProfileKind {
    pub fn name(self) -> &'static str {
        match self {
            ProfileKind::Concurrency => "concurrency",
            ProfileKind::Constant => "constant",
            ProfileKind::Poisson => "poisson",
            ProfileKind::Gamma => "gamma",
            ProfileKind::Sweep => "sweep",
        }
    }

    pub const ALL: [ProfileKind; 5] = [
        ProfileKind::Concurrency,
        ProfileKind::Constant,
        ProfileKind::Poisson,
        ProfileKind::Gamma,
        ProfileKind::Sweep,
    ];
}

/// When a measured level ran, for telemetry windows.
#[derive(Debug, Clone)]
pub struct LevelSpan {
    /// `c=4`, `rate=2/s` ([`LevelKey`]'s text), with the repeat.
    pub label: String,
    pub start: Instant,
    pub end: Instant,
    pub images_per_s: f64,
}

/// `c=4`, or `c=4 #2` for the second of several repeats.
pub fn span_label(level: &str, repeat: usize, repeats: usize) -> String {
    if repeats > 1 {
        format!("{level} #{}", repeat + 1)
    } else {
        level.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_and_print() {
        let a = LevelKey::closed(4);
        let b = LevelKey::new(64, Some(2.0));
        let c = LevelKey::new(64, Some(0.5));
        let mut v = vec![b, a, c];
        v.sort();
        assert_eq!(v, [a, c, b]);
        assert_eq!(a.to_string(), "c=4");
        assert_eq!(b.to_string(), "rate=2/s");
        assert_eq!(LevelKey::new(8, Some(4.0 / 3.0)).to_string(), "rate=1.33/s");
        assert_eq!(c.rate(), Some(0.5));
        assert_ne!(LevelKey::new(64, Some(2.0)), LevelKey::closed(64));
    }
}
