//! How the simulated engine behaves: what it answers and how long it takes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::answer;

/// Everything that shapes the simulated engine. `Default` is a correct, instant, unlimited
/// engine: the cheapest double for qualitative tests.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimConfig {
    pub behaviour: Behaviour,
    pub latency: Latency,
    /// Requests served at once (an engine's batch limit); the rest wait in a FIFO queue and
    /// that wait counts in their TTFT, as it does in a real engine. 0 means unlimited.
    pub max_concurrency: usize,
    /// Seeds `flaky` failures, `fault_rate` draws and latency jitter, so that a run can be
    /// repeated exactly.
    pub seed: u64,
    /// The behaviour's own fault hits only the first N chat requests (0 = every request), so
    /// that a test can show a bounded retry recovering: `rate-limited` with `fail_first = 1`
    /// refuses attempt 1 and answers attempt 2.
    pub fail_first: u64,
    /// Share of requests, drawn per request number from the seed, that get one of `faults`
    /// instead of the behaviour's answer: a load test's realistic trickle of failures.
    pub fault_rate: f64,
    /// The faults `fault_rate` picks from, uniformly; empty means [`DEFAULT_FAULT_MIX`].
    pub faults: Vec<Behaviour>,
    /// Parse each distinct request body and decode each distinct image once, and reuse the
    /// result for identical requests. Off by default, so that the engine does per request
    /// the work a real server does and a benchmark against it loads the server side as much
    /// as the client; on, a zero-latency capacity run measures the HTTP path alone.
    pub memoize: bool,
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

    /// The fault that request number `index` (0-based, in order of arrival) gets, if any.
    ///
    /// A pure function of the config and the index, so that a load test can predict exactly
    /// how many requests of each kind fail, whatever the concurrency or arrival order.
    pub fn fault_for(&self, index: u64) -> Option<Behaviour> {
        let own = match self.behaviour {
            Behaviour::Flaky => (answer::unit(self.seed, index, DRAW_FLAKY) < FLAKY_FAILURE_RATE)
                .then_some(Behaviour::Flaky),
            b if b.is_fault() => Some(b),
            _ => None,
        };
        if own.is_some() && (self.fail_first == 0 || index < self.fail_first) {
            return own;
        }
        if self.fault_rate > 0.0 && answer::unit(self.seed, index, DRAW_FAULT) < self.fault_rate {
            let mix: &[Behaviour] = if self.faults.is_empty() {
                &DEFAULT_FAULT_MIX
            } else {
                &self.faults
            };
            let k = answer::unit(self.seed, index, DRAW_FAULT_KIND) * mix.len() as f64;
            return mix.get(k as usize).or(mix.last()).copied();
        }
        None
    }

    /// Why the fault settings make no sense, if they do not; the engine refuses to start
    /// rather than inject something other than what was asked for.
    pub fn check(&self) -> Result<(), FaultError> {
        if !(0.0..=1.0).contains(&self.fault_rate) {
            return Err(FaultError::Rate(self.fault_rate));
        }
        if let Some(b) = self.faults.iter().find(|b| !b.is_injectable()) {
            return Err(FaultError::NotInjectable(*b));
        }
        if self.fail_first > 0 && !self.behaviour.is_fault() {
            return Err(FaultError::FailFirst(self.behaviour));
        }
        Ok(())
    }
}

/// Fault settings of a [`SimConfig`] that make no sense.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum FaultError {
    #[error("fault_rate must be between 0 and 1, got {0}")]
    Rate(f64),
    #[error(
        "`{0}` cannot be injected at a fault rate; expected some of: {injectable}",
        injectable = names(&Behaviour::INJECTABLE)
    )]
    NotInjectable(Behaviour),
    /// `fail_first` with a behaviour that is not a fault.
    #[error(
        "fail_first only applies to a fault behaviour, and `{0}` is not one; expected one of: {injectable}, flaky",
        injectable = names(&Behaviour::INJECTABLE)
    )]
    FailFirst(Behaviour),
}

/// Draw numbers for [`answer::unit`], apart from the latency draws (small numbers, see
/// `server.rs`) so that no two decisions share a random number.
pub(crate) const DRAW_FLAKY: u64 = 0;
const DRAW_FAULT: u64 = u64::MAX;
const DRAW_FAULT_KIND: u64 = u64::MAX - 1;

/// What `fault_rate` injects when `faults` is empty: the failures a loaded engine really
/// gives (an internal error, overload, a dropped connection, a truncated stream).
pub const DEFAULT_FAULT_MIX: [Behaviour; 4] = [
    Behaviour::Failing,
    Behaviour::Unavailable,
    Behaviour::Reset,
    Behaviour::CutStream,
];

/// Mid-stream faults (`reset`, `stall`, `cut-stream`, `error-event`, `bad-json`) strike after
/// this many content tokens, or before the last token of a shorter answer, so that the
/// client has seen content but never a finish_reason.
pub const FAULT_AFTER_TOKENS: usize = 2;

/// `huge-body` sends this much: far past any real chat answer and past the client's cap.
pub const HUGE_BODY_BYTES: usize = 50 << 20;

fn names(list: &[Behaviour]) -> String {
    list.iter()
        .map(|b| b.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `slow` multiplies every configured delay by this.
pub const SLOW_FACTOR: u32 = 10;
/// `slow` waits at least this long before the first token, so that it is slow even when the
/// configured latency is zero (the default).
pub const SLOW_MIN_TTFT: Duration = Duration::from_secs(1);

/// What the engine answers. Names are kebab-case on the command line, in TOML and in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
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
    // The faults below answer every request (or the first `fail_first`) wrongly in one
    // precise way, so that each of the client's failure paths can be driven on purpose.
    /// HTTP 503: the engine is overloaded or restarting.
    Unavailable,
    /// HTTP 429 with `Retry-After: 1`: the client should wait one second, not its backoff.
    RateLimited,
    /// HTTP 429 without `Retry-After`: the client falls back on its own backoff.
    RateLimitedBare,
    /// Accepts the request and never answers (until the engine shuts down): only the
    /// client's timeout ends it.
    Hang,
    /// Sends the headers and the first tokens, then nothing more, holding the connection:
    /// a timeout after content has arrived.
    Stall,
    /// Sends the first tokens, then drops the connection without ending the body (a chunked
    /// body with no last chunk), as a crashed engine or a proxy timeout does.
    Reset,
    /// Ends the body cleanly after the first tokens, with no finish_reason and no
    /// `data: [DONE]`; a non-streaming body is cut in half.
    CutStream,
    /// Sends the first tokens, then `event: error` with a message, then ends (a non-streaming
    /// answer is a 200 whose body is an `{"error": ..}` object).
    ErrorEvent,
    /// Sends the first tokens, then a data line that is not JSON (a non-streaming body is
    /// not JSON either).
    BadJson,
    /// A 200 whose `choices` are empty, in every chunk when streaming.
    EmptyChoices,
    /// The right answer without `usage`, even when `stream_options.include_usage` asked.
    NoUsage,
    /// A 200 with `Content-Type: text/html` and an HTML page, as a proxy or a login wall
    /// in front of the engine answers.
    WrongContentType,
    /// A 200 whose body is [`HUGE_BODY_BYTES`] long: valid JSON (or valid SSE) that never
    /// seems to end.
    HugeBody,
}

/// The share of requests that `flaky` fails.
pub const FLAKY_FAILURE_RATE: f64 = 0.3;

impl Behaviour {
    pub const ALL: [Behaviour; 19] = [
        Behaviour::Terse,
        Behaviour::Verbose,
        Behaviour::Wrong,
        Behaviour::Failing,
        Behaviour::Slow,
        Behaviour::Flaky,
        Behaviour::Unavailable,
        Behaviour::RateLimited,
        Behaviour::RateLimitedBare,
        Behaviour::Hang,
        Behaviour::Stall,
        Behaviour::Reset,
        Behaviour::CutStream,
        Behaviour::ErrorEvent,
        Behaviour::BadJson,
        Behaviour::EmptyChoices,
        Behaviour::NoUsage,
        Behaviour::WrongContentType,
        Behaviour::HugeBody,
    ];

    /// The faults that hit every request they apply to, and so can be mixed in at a
    /// `fault_rate` (`flaky` is not one: it is itself a rate).
    pub const INJECTABLE: [Behaviour; 14] = [
        Behaviour::Failing,
        Behaviour::Unavailable,
        Behaviour::RateLimited,
        Behaviour::RateLimitedBare,
        Behaviour::Hang,
        Behaviour::Stall,
        Behaviour::Reset,
        Behaviour::CutStream,
        Behaviour::ErrorEvent,
        Behaviour::BadJson,
        Behaviour::EmptyChoices,
        Behaviour::NoUsage,
        Behaviour::WrongContentType,
        Behaviour::HugeBody,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Terse => "terse",
            Behaviour::Verbose => "verbose",
            Behaviour::Wrong => "wrong",
            Behaviour::Failing => "failing",
            Behaviour::Slow => "slow",
            Behaviour::Flaky => "flaky",
            Behaviour::Unavailable => "unavailable",
            Behaviour::RateLimited => "rate-limited",
            Behaviour::RateLimitedBare => "rate-limited-bare",
            Behaviour::Hang => "hang",
            Behaviour::Stall => "stall",
            Behaviour::Reset => "reset",
            Behaviour::CutStream => "cut-stream",
            Behaviour::ErrorEvent => "error-event",
            Behaviour::BadJson => "bad-json",
            Behaviour::EmptyChoices => "empty-choices",
            Behaviour::NoUsage => "no-usage",
            Behaviour::WrongContentType => "wrong-content-type",
            Behaviour::HugeBody => "huge-body",
        }
    }

    /// Whether the behaviour is a fault (some requests get no proper answer) rather than a
    /// way of answering.
    pub fn is_fault(self) -> bool {
        self == Behaviour::Flaky || self.is_injectable()
    }

    pub fn is_injectable(self) -> bool {
        Behaviour::INJECTABLE.contains(&self)
    }

    /// Every behaviour name, comma-separated, for error messages.
    pub fn names() -> String {
        names(&Behaviour::ALL)
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A behaviour name that is not one of [`Behaviour::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sim behaviour {0:?}; expected one of: {names}", names = Behaviour::names())]
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

    #[test]
    fn a_fault_behaviour_hits_every_request_or_the_first_n() {
        let every = SimConfig {
            behaviour: Behaviour::Reset,
            ..SimConfig::default()
        };
        assert!((0..100).all(|i| every.fault_for(i) == Some(Behaviour::Reset)));
        let first_two = SimConfig {
            fail_first: 2,
            ..every
        };
        let got: Vec<_> = (0..4).map(|i| first_two.fault_for(i)).collect();
        let reset = Some(Behaviour::Reset);
        assert_eq!(got, [reset, reset, None, None]);
        assert_eq!(SimConfig::default().fault_for(0), None);
    }

    #[test]
    fn fault_rate_is_seeded_per_request_and_draws_from_the_mix() {
        let config = SimConfig {
            fault_rate: 0.02,
            seed: 3,
            ..SimConfig::default()
        };
        let faults: Vec<_> = (0..20_000).filter_map(|i| config.fault_for(i)).collect();
        assert!((340..460).contains(&faults.len()), "{}", faults.len());
        for kind in DEFAULT_FAULT_MIX {
            let n = faults.iter().filter(|&&f| f == kind).count();
            assert!((60..140).contains(&n), "{kind}: {n}");
        }
        let again: Vec<_> = (0..20_000).filter_map(|i| config.fault_for(i)).collect();
        assert_eq!(faults, again);
        let other_seed = SimConfig {
            seed: 4,
            ..config.clone()
        };
        assert_ne!(
            (0..2000).map(|i| config.fault_for(i)).collect::<Vec<_>>(),
            (0..2000)
                .map(|i| other_seed.fault_for(i))
                .collect::<Vec<_>>()
        );
        let only_hang = SimConfig {
            fault_rate: 1.0,
            faults: vec![Behaviour::Hang],
            ..SimConfig::default()
        };
        assert!((0..50).all(|i| only_hang.fault_for(i) == Some(Behaviour::Hang)));
    }

    #[test]
    fn nonsense_fault_settings_are_refused() {
        let check = |c: SimConfig| c.check().unwrap_err();
        let e = check(SimConfig {
            fault_rate: 1.5,
            ..SimConfig::default()
        });
        assert_eq!(e, FaultError::Rate(1.5));
        assert_eq!(e.to_string(), "fault_rate must be between 0 and 1, got 1.5");
        assert!(check(SimConfig {
            fault_rate: f64::NAN,
            ..SimConfig::default()
        })
        .to_string()
        .starts_with("fault_rate must be between 0 and 1"));
        let e = check(SimConfig {
            fault_rate: 0.1,
            faults: vec![Behaviour::Terse],
            ..SimConfig::default()
        });
        assert!(e.to_string().starts_with("`terse` cannot be injected at a fault rate; expected some of: failing, unavailable,"), "{e}");
        let e = check(SimConfig {
            fail_first: 1,
            ..SimConfig::default()
        });
        assert!(
            e.to_string().starts_with(
                "fail_first only applies to a fault behaviour, and `terse` is not one"
            ),
            "{e}"
        );
        assert_eq!(SimConfig::default().check(), Ok(()));
    }
}
