//! How the simulated engine behaves: what it answers and how long it takes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything that shapes the simulated engine. `Default` is a correct, instant, unlimited
/// engine: the cheapest double for qualitative tests.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimConfig {
    pub behaviour: Behaviour,
    pub latency: Latency,
    /// Requests served at once (an engine's batch limit); the rest wait in a FIFO queue and
    /// that wait counts in their TTFT, as it does in a real engine. 0 means unlimited.
    pub max_concurrency: usize,
    /// Seeds `flaky` failures and latency jitter, so that a run can be repeated exactly.
    pub seed: u64,
}

impl SimConfig {
    /// The latency actually applied: `slow` stretches the configured one so that client
    /// timeouts and progress reporting can be exercised without a real slow model.
    pub fn effective_latency(&self) -> Latency {
        match self.behaviour {
            Behaviour::Slow => Latency {
                ttft: (self.latency.ttft.saturating_mul(SLOW_FACTOR)).max(SLOW_MIN_TTFT),
                per_token: self.latency.per_token.saturating_mul(SLOW_FACTOR),
                prefill_per_tile: self.latency.prefill_per_tile.saturating_mul(SLOW_FACTOR),
                jitter: self.latency.jitter,
            },
            _ => self.latency.clone(),
        }
    }
}

/// `slow` multiplies every configured delay by this.
pub const SLOW_FACTOR: u32 = 10;
/// `slow` waits at least this long before the first token, so that it is slow even when the
/// configured latency is zero (the default).
pub const SLOW_MIN_TTFT: Duration = Duration::from_secs(1);

/// What the engine answers. Names are kebab-case on the command line, in TOML and in JSON.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// The fixture's short correct answer.
    #[default]
    Terse,
    /// The fixture's long correct answer, for rubrics that must dig the fact out of prose.
    Verbose,
    /// A plausible wrong answer, so that a rubric can be shown to fail.
    Wrong,
    /// HTTP 500 for every chat request: the engine is down.
    Failing,
    /// The terse answer, with every delay stretched (see [`SLOW_FACTOR`], [`SLOW_MIN_TTFT`]).
    Slow,
    /// HTTP 503 for about [`FLAKY_FAILURE_RATE`] of requests (seeded), terse otherwise.
    Flaky,
}

/// The share of requests that `flaky` fails.
pub const FLAKY_FAILURE_RATE: f64 = 0.3;

impl Behaviour {
    pub const ALL: [Behaviour; 6] = [
        Behaviour::Terse,
        Behaviour::Verbose,
        Behaviour::Wrong,
        Behaviour::Failing,
        Behaviour::Slow,
        Behaviour::Flaky,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Terse => "terse",
            Behaviour::Verbose => "verbose",
            Behaviour::Wrong => "wrong",
            Behaviour::Failing => "failing",
            Behaviour::Slow => "slow",
            Behaviour::Flaky => "flaky",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A behaviour name that is not one of [`Behaviour::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown sim behaviour {0:?}; expected one of: terse, verbose, wrong, failing, slow, flaky"
)]
pub struct UnknownBehaviour(pub String);

impl FromStr for Behaviour {
    type Err = UnknownBehaviour;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Behaviour::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownBehaviour(s.to_string()))
    }
}

/// The latency model: prefill then one decode step per output token, like a real engine,
/// so that TTFT, ITL and throughput sweeps have a known shape to check measurements against.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Latency {
    /// Time to first token (prefill), counted from when the request gets a batch slot.
    pub ttft: Duration,
    /// Decode time per output token after the first (TPOT, the expected ITL).
    pub per_token: Duration,
    /// Extra prefill per 560x560 image tile (`ceil(w/560) * ceil(h/560)`, at most 4), so that
    /// bigger images cost more, as they do for tiling vision encoders.
    pub prefill_per_tile: Duration,
    /// Relative uniform jitter applied to every delay (0.1 = +-10%), seeded; 0.0 = exact.
    /// Values outside 0..=1 are clamped.
    pub jitter: f64,
}

impl Latency {
    /// No jitter, no per-tile cost: the easiest shape to check measurements against.
    pub fn fixed(ttft: Duration, per_token: Duration) -> Self {
        Self {
            ttft,
            per_token,
            ..Self::default()
        }
    }

    pub fn is_zero(&self) -> bool {
        self.ttft.is_zero() && self.per_token.is_zero() && self.prefill_per_tile.is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviour_names_round_trip() {
        for b in Behaviour::ALL {
            assert_eq!(b.to_string().parse::<Behaviour>().unwrap(), b);
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(json, format!("\"{b}\""));
        }
        assert!("Verbose".parse::<Behaviour>().is_ok());
        let err = "sleepy".parse::<Behaviour>().unwrap_err();
        assert!(err.to_string().contains("terse, verbose"));
    }

    #[test]
    fn slow_stretches_latency_and_has_a_floor() {
        let cfg = SimConfig {
            behaviour: Behaviour::Slow,
            latency: Latency::fixed(Duration::from_millis(200), Duration::from_millis(5)),
            ..SimConfig::default()
        };
        let l = cfg.effective_latency();
        assert_eq!(l.ttft, Duration::from_secs(2));
        assert_eq!(l.per_token, Duration::from_millis(50));
        let zero = SimConfig {
            behaviour: Behaviour::Slow,
            ..SimConfig::default()
        };
        assert_eq!(zero.effective_latency().ttft, SLOW_MIN_TTFT);
    }
}
