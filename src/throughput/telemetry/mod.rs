//! Engine and GPU telemetry beside a throughput sweep: what the server says about itself
//! (running and waiting requests, KV-cache usage, token counters from its Prometheus
//! `/metrics`) and what the GPU does (`nvidia-smi`: utilisation, memory, power), sampled at
//! an interval, so that a level's images/s can be read next to the queue and the watts that
//! produced it.
//!
//! Telemetry never fails a sweep: a scrape that fails is a [`Gap`] with its error, counted
//! and reported; a server without `/metrics` (404) or a machine without `nvidia-smi` is
//! reported once as [`SourceStatus::Unavailable`] and not asked again.
//!
//! Use: [`Sampler::start`] before the sweep, [`SamplerHandle::stop`] after it, then
//! [`summarise`] with one [`LevelWindow`] per level and [`chart::write_svg`]. See
//! `docs/telemetry.md`.

pub mod chart;
pub mod nvidia_smi;
pub mod prometheus;
mod sampler;
pub mod summary;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use prometheus::MetricKind;
pub use sampler::{Sampler, SamplerHandle};
pub use summary::{render_summary, summarise, LevelTelemetry, LevelWindow, MeanMax};

/// The engine series worth keeping by default, in the names vLLM (V0 and V1) and SGLang
/// publish (checked against their metrics documentation), plus the simulated engine's own
/// work counters. Everything else on the page is parsed and dropped unless
/// [`TelemetryConfig::keep_all`] or [`TelemetryConfig::extra_series`] asks for it.
pub const KNOWN_SERIES: [&str; 17] = [
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:num_preemptions_total",
    "sglang:num_running_reqs",
    "sglang:num_queue_reqs",
    "sglang:token_usage",
    "sglang:gen_throughput",
    "sglang:prompt_tokens_total",
    "sglang:generation_tokens_total",
    "eyetest_sim:request_bodies_parsed_total",
    "eyetest_sim:images_decoded_total",
    "eyetest_sim:simulated",
    "eyetest_sim:max_batch",
];

/// Same-meaning series across engines, in order of preference: the summary reads the
/// first name a server published (vLLM V1 renamed `gpu_cache_usage_perc`, and some
/// versions publish both).
pub const RUNNING: [&str; 2] = ["vllm:num_requests_running", "sglang:num_running_reqs"];
pub const WAITING: [&str; 2] = ["vllm:num_requests_waiting", "sglang:num_queue_reqs"];
/// A fraction 0..1 in all three.
pub const KV_CACHE_USAGE: [&str; 3] = [
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "sglang:token_usage",
];
pub const PROMPT_TOKENS: [&str; 2] = ["vllm:prompt_tokens_total", "sglang:prompt_tokens_total"];
pub const GENERATION_TOKENS: [&str; 2] = [
    "vllm:generation_tokens_total",
    "sglang:generation_tokens_total",
];

/// Where and how often to sample.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// The server's Prometheus page, e.g. `http://host:8000/metrics`; `None`: no engine
    /// telemetry. [`metrics_url_for`] derives it from an OpenAI base URL.
    pub metrics_url: Option<String>,
    /// Sent as `Authorization: Bearer` when set (a proxy in front of the engine may want
    /// it; vLLM's own `/metrics` does not). Never stored or printed.
    pub bearer: Option<String>,
    /// `nvidia-smi` to run (a path or a name looked up on `PATH`); `None`: no GPU
    /// telemetry. Tests point it at a fake script.
    pub nvidia_smi: Option<OsString>,
    pub interval: Duration,
    /// Per scrape and per `nvidia-smi` run; capped at the interval so that samples do not
    /// pile up behind a slow one.
    pub timeout: Duration,
    /// Keep every series on the page except histogram buckets, not only [`KNOWN_SERIES`]:
    /// for a look at an unfamiliar engine (a vLLM page has hundreds of series).
    pub keep_all: bool,
    /// Further exact series names to keep.
    pub extra_series: Vec<String>,
}

impl TelemetryConfig {
    /// Engine `/metrics` next to `base_url` and the local `nvidia-smi`, once a second.
    pub fn for_base_url(base_url: &str) -> TelemetryConfig {
        TelemetryConfig {
            metrics_url: Some(metrics_url_for(base_url)),
            nvidia_smi: Some("nvidia-smi".into()),
            ..TelemetryConfig::default()
        }
    }
}

impl Default for TelemetryConfig {
    /// Samples nothing until a source is set.
    fn default() -> Self {
        TelemetryConfig {
            metrics_url: None,
            bearer: None,
            nvidia_smi: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            keep_all: false,
            extra_series: Vec::new(),
        }
    }
}

/// `http://h:8000/v1` -> `http://h:8000/metrics`: vLLM and SGLang serve the page at the
/// root of the same port as the OpenAI API.
pub fn metrics_url_for(base_url: &str) -> String {
    let trimmed = base_url.trim_end_matches('/');
    let root = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
    format!("{root}/metrics")
}

/// Everything sampled during one sweep; times are seconds since [`Sampler::start`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySeries {
    pub interval_s: f64,
    /// From start to stop.
    pub duration_s: f64,
    pub engine: EngineSeries,
    pub gpu: GpuSeries,
}

/// Whether a source gave data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum SourceStatus {
    /// Not asked for.
    #[default]
    Off,
    /// Sampled (individual samples may still have failed: see the gaps).
    Sampled,
    /// Asked for and not there: no `/metrics` (404) or no `nvidia-smi`. Said once.
    Unavailable(String),
}

/// A sample that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub t_s: f64,
    pub error: String,
}

/// At most this many gaps are kept with their errors (all are counted): an engine that is
/// down for an hour should not write an hour of identical messages.
pub const MAX_GAPS_KEPT: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineSeries {
    /// The page scraped, without credentials or query.
    pub url: Option<String>,
    pub status: SourceStatus,
    pub attempts: u64,
    pub gaps_total: u64,
    pub gaps: Vec<Gap>,
    pub series: Vec<MetricSeries>,
}

/// One series: a metric name and label set, and its values over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub kind: MetricKind,
    /// `[t_s, value]` pairs, in time order.
    pub points: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSeries {
    pub program: Option<String>,
    pub status: SourceStatus,
    pub attempts: u64,
    pub gaps_total: u64,
    pub gaps: Vec<Gap>,
    /// One per GPU index.
    pub gpus: Vec<GpuTrack>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuTrack {
    pub index: u32,
    pub name: String,
    pub points: Vec<GpuPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuPoint {
    pub t_s: f64,
    pub util_pct: Option<f64>,
    pub mem_used_mib: Option<f64>,
    pub mem_total_mib: Option<f64>,
    pub power_w: Option<f64>,
}

impl TelemetrySeries {
    /// The lines a report prints: each unavailable source once, and failed samples with a
    /// count and the first error.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let source = |what: &str, status: &SourceStatus, attempts, total, gaps: &[Gap]| {
            let mut out = Vec::new();
            if let SourceStatus::Unavailable(why) = status {
                out.push(format!("no {what}: {why}"));
            }
            if total > 0 {
                let first = gaps.first().map(|g| g.error.as_str()).unwrap_or("");
                out.push(format!(
                    "{what}: {total} of {attempts} samples failed (first: {first})"
                ));
            }
            out
        };
        let e = &self.engine;
        notes.extend(source(
            "engine metrics",
            &e.status,
            e.attempts,
            e.gaps_total,
            &e.gaps,
        ));
        let g = &self.gpu;
        notes.extend(source(
            "GPU telemetry",
            &g.status,
            g.attempts,
            g.gaps_total,
            &g.gaps,
        ));
        notes
    }

    /// Series of one name, every label set.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a MetricSeries> + 'a {
        self.engine.series.iter().filter(move |s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_url_sits_at_the_root_of_the_api_port() {
        assert_eq!(metrics_url_for("http://h:8000/v1"), "http://h:8000/metrics");
        assert_eq!(
            metrics_url_for("http://h:8000/v1/"),
            "http://h:8000/metrics"
        );
        assert_eq!(
            metrics_url_for("https://proxy/llm"),
            "https://proxy/llm/metrics"
        );
    }

    #[test]
    fn notes_say_unavailable_once_and_count_gaps() {
        let mut s = TelemetrySeries::default();
        assert!(s.notes().is_empty());
        s.engine.status = SourceStatus::Unavailable("GET http://x/metrics answered 404".into());
        s.gpu.status = SourceStatus::Sampled;
        s.gpu.attempts = 10;
        s.gpu.gaps_total = 2;
        s.gpu.gaps = vec![Gap {
            t_s: 1.0,
            error: "timeout".into(),
        }];
        assert_eq!(
            s.notes(),
            vec![
                "no engine metrics: GET http://x/metrics answered 404".to_string(),
                "GPU telemetry: 2 of 10 samples failed (first: timeout)".to_string(),
            ]
        );
        let json = serde_json::to_string(&s).unwrap();
        let back: TelemetrySeries = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
