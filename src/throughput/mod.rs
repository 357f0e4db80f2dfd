//! Throughput specs: sweep an endpoint, turn the load generator's histograms into
//! serving-benchmark metrics, key them by a hardware [`Fingerprint`], keep per-fingerprint
//! [`Baseline`]s in `golden/`, gate regressions with a noise-aware test and absolute SLOs,
//! and export CSV, JSON, SVG chart and table.
//!
//! Data flow, each step using only the ones after it in this list's reverse:
//! [`spec`] -> [`endpoint`] (the target seam) -> [`load`] (requests -> [`recorder`]
//! histograms -> [`LevelMetrics`]) -> [`verdict`] (uses [`gate`], [`config`], [`baseline`])
//! and [`slo`] -> [`export`] ([`csv`], [`json`], [`chart`], [`table`]). [`run`] strings them
//! together for the throughput harness ([`crate::harness::throughput`]) and `eyetest bench`.

#[doc(hidden)]
pub mod arrival;
#[doc(hidden)]
pub mod baseline;
#[doc(hidden)]
pub mod chart;
#[doc(hidden)]
pub mod config;
#[doc(hidden)]
pub mod csv;
#[doc(hidden)]
pub mod endpoint;
#[doc(hidden)]
pub mod export;
#[doc(hidden)]
pub mod figures;
#[doc(hidden)]
pub mod fingerprint;
#[doc(hidden)]
pub mod gate;
#[doc(hidden)]
pub mod json;
#[doc(hidden)]
pub mod level;
#[doc(hidden)]
pub mod load;
#[doc(hidden)]
pub mod mannwhitney;
#[doc(hidden)]
pub mod metrics;
#[doc(hidden)]
pub mod openloop;
#[doc(hidden)]
pub mod probe;
#[doc(hidden)]
pub mod recorder;
#[doc(hidden)]
pub mod report;
#[doc(hidden)]
pub mod run;
#[doc(hidden)]
pub mod sample;
#[doc(hidden)]
pub mod slo;
#[doc(hidden)]
pub mod spec;
#[doc(hidden)]
pub mod stats;
#[doc(hidden)]
pub mod sweep;
#[doc(hidden)]
pub mod table;
#[doc(hidden)]
pub mod telemetry;
#[doc(hidden)]
pub mod telemetry_run;
#[doc(hidden)]
pub mod time;
#[doc(hidden)]
pub mod verdict;

#[doc(hidden)]
pub use baseline::{Baseline, BaselineError, BaselineLevel, BaselineLookup};
#[doc(hidden)]
pub use config::GateConfig;
#[doc(hidden)]
pub use fingerprint::{detect_gpus, Fingerprint, GpuInfo};
#[doc(hidden)]
pub use level::LevelKey;
#[doc(hidden)]
pub use metrics::{Direction, LevelMetrics, Metric, Stats};
#[doc(hidden)]
pub use recorder::LevelRecord;
#[doc(hidden)]
pub use recorder::Recorder;
#[doc(hidden)]
pub use sample::{LevelRun, Sample};
#[doc(hidden)]
pub use verdict::GateOutcome;

/// Numbers in prose: three significant digits ("0.391", "45.2", "812", "1235"), enough to
/// see a 1% change and short enough to read in a CI log.
pub(crate) fn sig3(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).max(0) as usize;
    format!("{x:.decimals$}")
}

/// A fraction as a percentage without needless digits: 0.05 -> "5%", 0.025 -> "2.5%".
pub(crate) fn percent(x: f64) -> String {
    let s = format!("{:.2}", x * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builders shared by the unit tests of several modules.

    use std::time::Duration;

    use super::*;

    pub fn h100() -> Fingerprint {
        Fingerprint {
            gpu: GpuInfo {
                name: "NVIDIA H100 80GB HBM3".into(),
                count: 1,
                driver: Some("580.1".into()),
            },
            model: "meta-llama/Llama-3.2-11B-Vision-Instruct".into(),
            engine: Some("vllm".into()),
            engine_version: Some("0.10.2".into()),
            image: "random 560x560".into(),
            max_tokens: 512,
            ignore_eos: true,
            prompt_sha256: Fingerprint::prompt_hash(
                "If I had to write a description for this image, it would be: ",
            ),
        }
    }

    /// Metrics of a level whose images/s is `ips`, TTFT p50 `ttft` ms, for gate tests.
    pub fn level(concurrency: usize, ips: f64, ttft: f64) -> LevelMetrics {
        let stats = |v: f64| Stats {
            mean: v,
            p50: v,
            p90: v * 1.2,
            p99: v * 1.5,
            min: v * 0.8,
            max: v * 1.6,
        };
        LevelMetrics {
            concurrency,
            completed: 64,
            failed: 0,
            wall_s: 64.0 / ips,
            requests_per_s: ips,
            images_per_s: ips,
            output_tokens_per_s: Some(ips * 512.0),
            total_tokens_per_s: Some(ips * 612.0),
            ttft_ms: Some(stats(ttft)),
            tpot_ms: Some(stats(20.0)),
            itl_ms: Some(stats(20.0)),
            e2e_ms: Some(stats(ttft + 511.0 * 20.0)),
            queued_ms: Some(stats(0.1)),
            output_len: Some(stats(512.0)),
            usage_missing: 0,
            errors: vec![],
            goodput: None,
            rate: None,
            sent_per_s: None,
        }
    }

    /// A real run: `n` requests, TTFT `ttft_ms`, `tokens` output tokens 10 ms apart.
    pub fn run(concurrency: usize, n: usize, wall_s: f64, ttft_ms: u64, tokens: u64) -> LevelRun {
        let d = Duration::from_millis;
        let sample = Sample {
            ok: true,
            queued: d(1),
            ttft: Some(d(ttft_ms)),
            e2e: d(ttft_ms + 10 * (tokens - 1)),
            itl: vec![d(10); tokens as usize - 1],
            prompt_tokens: Some(100),
            output_tokens: Some(tokens),
            ..Default::default()
        };
        LevelRun {
            concurrency,
            wall: Duration::from_secs_f64(wall_s),
            samples: vec![sample; n],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_numbers() {
        assert_eq!(sig3(0.39123), "0.391");
        assert_eq!(sig3(45.23), "45.2");
        assert_eq!(sig3(1234.6), "1235");
        assert_eq!(sig3(0.0), "0");
        assert_eq!(percent(0.05), "5%");
        assert_eq!(percent(0.025), "2.5%");
        assert_eq!(percent(0.141), "14.1%");
    }
}
