//! When a request's tokens are due.
//!
//! The clock starts when the request arrives (once its body has been read), or, if it had
//! to wait for a batch slot, when it got one: parsing the body and decoding the image are
//! part of prefill, as in a real server, so the configured TTFT is what a client measures
//! rather than TTFT plus the engine's own preprocessing.
//!
//! The first token is due `prefill` after that start. Each later token is due `gap` after
//! the previous one was actually handed to the connection, never on a precomputed
//! schedule: when the engine wakes up late (a loaded machine), the rest of the answer is
//! late too, as a real engine's would be, instead of the overdue tokens going out back to
//! back to catch up (which showed up as a TPOT of 0.01 ms with tpot_ms = 2).

use std::time::Duration;

use tokio::time::Instant;

use super::answer;
use super::config::Latency;

/// Draw numbers for [`answer::unit`]: one per decision, so they never share a random number
/// (0 and the largest numbers are the fault draws of [`super::SimConfig::fault_for`]).
const DRAW_PREFILL: u64 = 1;
const DRAW_FIRST_GAP: u64 = 2;

/// One request's delays, reproducible from (seed, request number).
pub(super) struct Clock {
    seed: u64,
    request: u64,
    jitter: f64,
    per_token: Duration,
}

impl Clock {
    pub(super) fn new(seed: u64, request: u64, latency: &Latency) -> Clock {
        Clock {
            seed,
            request,
            jitter: latency.jitter,
            per_token: latency.per_token,
        }
    }

    pub(super) fn prefill(&self, latency: &Latency, tiles: u32) -> Duration {
        let base = latency
            .ttft
            .saturating_add(latency.prefill_per_tile.saturating_mul(tiles));
        let u = answer::unit(self.seed, self.request, DRAW_PREFILL);
        answer::jittered(base, self.jitter, u)
    }

    /// The gap before token `k` (k >= 1).
    pub(super) fn gap(&self, k: usize) -> Duration {
        let u = answer::unit(self.seed, self.request, DRAW_FIRST_GAP + k as u64);
        answer::jittered(self.per_token, self.jitter, u)
    }

    /// From the first token to the last of `n`.
    pub(super) fn decode_time(&self, n: usize) -> Duration {
        if n <= 1 || self.per_token.is_zero() {
            return Duration::ZERO;
        }
        if self.jitter > 0.0 {
            (1..n).fold(Duration::ZERO, |t, k| t.saturating_add(self.gap(k)))
        } else {
            self.per_token.saturating_mul(n as u32 - 1)
        }
    }
}

/// `t + d` that cannot panic, whatever latency was configured: delays are capped at 30 years.
pub(super) fn after(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    t.checked_add(d.min(FAR)).unwrap_or(t)
}

/// Skips the timer entirely when the deadline has passed: at zero latency that is every
/// token, and the capacity benchmark should not pay for timers it does not need.
pub(super) async fn sleep_until(deadline: Instant) {
    if deadline > Instant::now() {
        tokio::time::sleep_until(deadline).await;
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn clock(seed: u64, jitter: f64) -> Clock {
        Clock {
            seed,
            request: 3,
            jitter,
            per_token: Duration::from_millis(10),
        }
    }

    #[test]
    fn jittered_delays_are_seeded_and_bounded() {
        let latency = Latency {
            ttft: Duration::from_millis(100),
            prefill_per_tile: Duration::from_millis(50),
            jitter: 0.2,
            ..Latency::default()
        };
        let (a, b) = (clock(1, 0.2), clock(1, 0.2));
        assert_eq!(a.prefill(&latency, 2), b.prefill(&latency, 2));
        assert_eq!(a.decode_time(100), b.decode_time(100));
        assert_ne!(a.decode_time(100), clock(2, 0.2).decode_time(100));
        let p = a.prefill(&latency, 2).as_secs_f64();
        assert!((0.16..=0.24).contains(&p), "{p}");
        for k in 1..200 {
            let g = a.gap(k).as_secs_f64();
            assert!((0.008..=0.012).contains(&g), "{g}");
        }
        assert_eq!(clock(1, 0.0).decode_time(5), Duration::from_millis(40));
        assert_eq!(clock(1, 0.0).decode_time(1), Duration::ZERO);
    }

    #[test]
    fn absurd_latencies_do_not_panic() {
        let huge = Clock {
            per_token: Duration::MAX,
            ..clock(1, 0.5)
        };
        assert_eq!(huge.decode_time(1000), Duration::MAX);
        let latency = Latency {
            ttft: Duration::MAX,
            prefill_per_tile: Duration::MAX,
            ..Latency::default()
        };
        assert_eq!(huge.prefill(&latency, 4), Duration::MAX);
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > now);
    }
}
