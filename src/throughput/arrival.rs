//! Open-loop arrival schedules: when each request of a rate level is due, independent of
//! when earlier ones finish (a closed loop waits for a completion before sending, which
//! hides queueing: coordinated omission).
//!
//! Inter-arrival times follow vLLM's `bench serve`: constant `1/rate`, or gamma with shape
//! `burstiness` and scale `1/(rate * burstiness)`, so the mean interval is `1/rate` whatever
//! the burstiness and the coefficient of variation is `1/sqrt(burstiness)`. Burstiness 1 is
//! the exponential distribution, i.e. a Poisson process. Below 1 arrivals come in bursts,
//! above 1 they are more even. The generator is seeded, so a schedule is reproducible.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::level::ProfileKind;

/// How a spec's levels send their requests (the `profile` keys of a `[[throughput]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arrival {
    pub profile: ProfileKind,
    /// Asked rates in requests/s, ascending, for `constant`, `poisson` and `gamma`.
    pub rates: Vec<f64>,
    /// Gamma shape; 1 for `poisson`, unused for `constant`.
    pub burstiness: f64,
    /// Most requests in flight at once in a rate level, and the concurrency of the
    /// sweep's throughput probe. A request the cap holds back waits, and that wait is its
    /// queueing delay.
    pub max_concurrency: usize,
    /// Length of each rate level's schedule; `None`: the level's request count decides.
    #[serde(default, with = "super::sample::secs::option")]
    pub duration: Option<Duration>,
    /// Rates the sweep measures between its synchronous and throughput probes.
    pub sweep_points: usize,
    /// Seed of the arrival schedule (each level and repeat derives its own from it).
    pub seed: u64,
}

impl Default for Arrival {
    fn default() -> Self {
        Arrival {
            profile: ProfileKind::Concurrency,
            rates: Vec::new(),
            burstiness: 1.0,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            duration: None,
            sweep_points: 5,
            seed: 0,
        }
    }
}

/// The cap when a spec sets none: high enough not to throttle a single engine at the
/// rates a vision model sustains, low enough that a runaway schedule cannot open
/// thousands of sockets.
pub const DEFAULT_MAX_CONCURRENCY: usize = 256;

impl Arrival {
    /// Whether levels are arrival rates (open loop) rather than concurrencies.
    pub fn is_rate(&self) -> bool {
        self.profile != ProfileKind::Concurrency
    }

    /// Gamma shape for a rate level: `None` for evenly spaced (constant) arrivals.
    pub fn shape(&self) -> Option<f64> {
        match self.profile {
            ProfileKind::Constant => None,
            ProfileKind::Poisson => Some(1.0),
            ProfileKind::Gamma => Some(self.burstiness),
            // The sweep's rate levels are constant, as GuideLLM's are.
            ProfileKind::Sweep | ProfileKind::Concurrency => None,
        }
    }
}

/// The arrival times of one level: offsets from the level's start, strictly by schedule.
pub struct Schedule {
    interval_s: f64,
    shape: Option<f64>,
    rng: StdRng,
    next: f64,
    first: bool,
}

impl Schedule {
    /// Arrivals at `rate` requests/s; `shape` `None` for constant intervals, else the gamma
    /// shape (burstiness). The first request is due at once.
    pub fn new(rate: f64, shape: Option<f64>, seed: u64) -> Schedule {
        Schedule {
            interval_s: 1.0 / rate,
            shape,
            rng: StdRng::seed_from_u64(seed),
            next: 0.0,
            first: true,
        }
    }

    /// One inter-arrival time in seconds.
    pub fn interval(&mut self) -> f64 {
        match self.shape {
            None => self.interval_s,
            Some(k) => gamma(&mut self.rng, k) * self.interval_s / k,
        }
    }

    /// When the next request is due, from the level's start.
    pub fn next_offset(&mut self) -> Duration {
        if self.first {
            self.first = false;
        } else {
            self.next += self.interval();
        }
        Duration::from_secs_f64(self.next)
    }
}

/// A standard normal by Box-Muller (one of the pair; the generator is not the bottleneck).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Gamma(shape, 1) by Marsaglia and Tsang (2000); shapes below 1 by the boost
/// `Gamma(k) = Gamma(k + 1) * U^(1/k)`. Written here because `rand` 0.9 has no gamma and
/// `rand_distr` would be a dependency for twenty lines.
pub fn gamma(rng: &mut StdRng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = 1.0 - rng.random::<f64>();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u: f64 = 1.0 - rng.random::<f64>();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// The sweep's rates (GuideLLM's `sweep`): `points` rates evenly spaced above the
/// synchronous rate `min` up to the throughput probe's `max`, the last being `max`.
pub fn sweep_rates(min: f64, max: f64, points: usize) -> Vec<f64> {
    let (lo, hi) = (min.min(max), min.max(max));
    (1..=points)
        .map(|i| lo + (hi - lo) * i as f64 / points as f64)
        .collect()
}

/// Seed of one level of one repeat, so that levels do not share a schedule and a rerun
/// with the same spec sends the same one.
pub fn level_seed(seed: u64, level: usize, repeat: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((level as u64) << 32)
        .wrapping_add(repeat as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intervals(rate: f64, shape: Option<f64>, seed: u64, n: usize) -> Vec<f64> {
        let mut s = Schedule::new(rate, shape, seed);
        (0..n).map(|_| s.interval()).collect()
    }

    fn mean_cv(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt() / mean)
    }

    /// The gamma intervals have mean 1/rate and coefficient of variation 1/sqrt(shape).
    /// With n = 40,000 the standard error of the sample mean is cv/sqrt(n) of the mean (0.5%
    /// at cv 1, 1% at cv 2), and by the delta method that of the sample CV of a gamma is
    /// cv * sqrt((1 + cv^2) / (2n)) (its third and fourth moments, 2k and 3k^2 + 6k, put in).
    /// The tolerances are 5 standard errors: a correct generator fails with probability
    /// well under 1e-5 (and the seed is fixed anyway), a wrong shape or scale far outside.
    #[test]
    fn gamma_intervals_have_the_configured_mean_and_cv() {
        let n = 40_000;
        for (shape, seed) in [(0.25, 1), (0.5, 2), (1.0, 3), (2.0, 4), (4.0, 5)] {
            let rate = 4.0;
            let (mean, cv) = mean_cv(&intervals(rate, Some(shape), seed, n));
            let want_cv = 1.0 / f64::sqrt(shape);
            let se_mean = want_cv / (n as f64).sqrt();
            let se_cv = want_cv * ((1.0 + want_cv * want_cv) / (2.0 * n as f64)).sqrt();
            assert!(
                (mean * rate - 1.0).abs() < 5.0 * se_mean,
                "shape {shape}: mean interval {mean}, want {}",
                1.0 / rate
            );
            assert!(
                (cv - want_cv).abs() < 5.0 * se_cv,
                "shape {shape}: cv {cv}, want {want_cv} (+- {})",
                5.0 * se_cv
            );
        }
    }

    #[test]
    fn constant_is_even_and_schedules_are_reproducible() {
        let v = intervals(2.0, None, 0, 10);
        assert!(v.iter().all(|&x| x == 0.5), "{v:?}");
        let a = intervals(3.0, Some(1.0), 42, 100);
        assert_eq!(a, intervals(3.0, Some(1.0), 42, 100));
        assert_ne!(a, intervals(3.0, Some(1.0), 43, 100));
        let mut s = Schedule::new(10.0, None, 0);
        let first: Vec<Duration> = (0..3).map(|_| s.next_offset()).collect();
        assert_eq!(
            first,
            [
                Duration::ZERO,
                Duration::from_millis(100),
                Duration::from_millis(200)
            ]
        );
    }

    #[test]
    fn sweep_rates_are_evenly_spaced_up_to_the_max() {
        assert_eq!(sweep_rates(1.0, 5.0, 4), [2.0, 3.0, 4.0, 5.0]);
        assert_eq!(sweep_rates(2.0, 2.0, 2), [2.0, 2.0]);
        assert_ne!(level_seed(0, 1, 0), level_seed(0, 0, 1));
    }
}
