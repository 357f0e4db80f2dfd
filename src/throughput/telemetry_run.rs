//! The `telemetry` table of a throughput spec, wired into a run: a [`Sampler`] started
//! before the first level and stopped after the last, one [`LevelWindow`] per measured
//! level (warm-ups left out), and the per-level summary stored with the results.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::load::LevelSpan;
use super::spec::{MetricsUrl, TelemetrySpec};
use super::telemetry::{
    metrics_url_for, render_summary, summarise, LevelTelemetry, LevelWindow, Sampler,
    SamplerHandle, TelemetryConfig, TelemetrySeries,
};

/// Everything sampled during one trial, as the JSON report stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryReport {
    pub series: TelemetrySeries,
    /// When each measured level ran, in the series' seconds.
    pub windows: Vec<LevelWindow>,
    /// One summary per window: queue, KV cache, tokens/s, GPU, images/s per watt.
    pub levels: Vec<LevelTelemetry>,
}

/// The sampler's settings for `spec` against the endpoint at `base_url`.
pub fn config(spec: &TelemetrySpec, base_url: &str) -> TelemetryConfig {
    TelemetryConfig {
        metrics_url: spec.metrics_url.as_ref().map(|m| match m {
            MetricsUrl::Auto => metrics_url_for(base_url),
            MetricsUrl::Url(u) => u.clone(),
        }),
        nvidia_smi: spec.nvidia_smi.clone().map(Into::into),
        interval: spec.interval,
        keep_all: spec.keep_all,
        ..TelemetryConfig::default()
    }
}

/// A sampler running beside a sweep.
pub struct Running {
    handle: SamplerHandle,
}

impl Running {
    /// Starts sampling (inside the tokio runtime).
    pub fn start(spec: &TelemetrySpec, base_url: &str) -> Running {
        Running {
            handle: Sampler::start(config(spec, base_url)),
        }
    }

    /// Stops sampling and summarises each measured level.
    pub async fn finish(self, spans: &[LevelSpan]) -> TelemetryReport {
        let origin = self.handle.origin();
        let series = self.handle.stop().await;
        let windows = windows(spans, origin);
        let levels = summarise(&series, &windows);
        TelemetryReport {
            series,
            windows,
            levels,
        }
    }
}

/// One window per measured level, in the sampler's seconds.
pub fn windows(spans: &[LevelSpan], origin: Instant) -> Vec<LevelWindow> {
    spans
        .iter()
        .map(|s| {
            LevelWindow::between(s.label.clone(), origin, s.start, s.end)
                .with_images_per_s(s.images_per_s)
        })
        .collect()
}

impl TelemetryReport {
    /// The per-level table and what was missing, for the terminal and test logs.
    pub fn render(&self) -> String {
        let mut s = String::from("telemetry:\n");
        s.push_str(&render_summary(&self.levels));
        for n in self.series.notes() {
            s.push_str(&format!("note: telemetry: {n}\n"));
        }
        s
    }
}
