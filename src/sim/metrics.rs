//! `GET /metrics`: the engine's state in Prometheus text format, under vLLM's metric names,
//! so that eyetest's telemetry scraper ([`crate::throughput::telemetry`]) can be tested
//! end to end against the sim as it runs against vLLM.
//!
//! Simulated, and every HELP line says so: "running" is requests holding a batch slot,
//! "waiting" is requests queued for one, and the KV-cache usage is running / `max_batch`
//! (0 with an unlimited batch), not memory. `eyetest_sim:*` series count the engine's own
//! work (bodies parsed, images decoded), which is how a test sees whether memoisation is on.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::server::Engine;

/// Prometheus' text format version, as vLLM's prometheus_client sends it.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) async fn page(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&engine))
}

/// A label value with Prometheus' escapes (backslash, quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) fn render(engine: &Engine) -> String {
    let s = engine.stats();
    let max_batch = engine.config.max_concurrency;
    let usage = if max_batch == 0 {
        0.0
    } else {
        s.in_flight as f64 / max_batch as f64
    };
    let mut page = Page::new(engine.model_id());
    page.family(
        "vllm:num_requests_running",
        "gauge",
        "Requests holding a batch slot",
        s.in_flight.to_string(),
    );
    page.family(
        "vllm:num_requests_waiting",
        "gauge",
        "Requests queued for a batch slot",
        s.waiting.to_string(),
    );
    page.family(
        "vllm:kv_cache_usage_perc",
        "gauge",
        "Running requests over the batch limit, 0 when unlimited; not memory",
        format!("{usage}"),
    );
    page.family(
        "vllm:prompt_tokens",
        "counter",
        "Prompt tokens of requests past prefill",
        s.prompt_tokens.to_string(),
    );
    page.family(
        "vllm:generation_tokens",
        "counter",
        "Output tokens sent",
        s.generation_tokens.to_string(),
    );
    page.family(
        "vllm:request_success",
        "counter",
        "Requests answered in full",
        s.completed.to_string(),
    );
    page.family(
        "eyetest_sim:requests_received",
        "counter",
        "Chat requests received",
        s.received.to_string(),
    );
    page.family(
        "eyetest_sim:request_bodies_parsed",
        "counter",
        "Request bodies parsed as JSON",
        s.bodies_parsed.to_string(),
    );
    page.family(
        "eyetest_sim:images_decoded",
        "counter",
        "Images decoded",
        s.images_decoded.to_string(),
    );
    page.family(
        "eyetest_sim:max_batch",
        "gauge",
        "The batch limit, 0 = unlimited",
        max_batch.to_string(),
    );
    page.family(
        "eyetest_sim:simulated",
        "gauge",
        "Always 1: this engine is a test double",
        1,
    );
    page.histogram(
        "vllm:time_to_first_token_seconds",
        "Streamed answers: parsed request to first token sent",
        s.ttft_ns_sum,
        s.ttft_count,
    );
    page.histogram(
        "vllm:inter_token_latency_seconds",
        "Streamed answers: gap between consecutive tokens sent",
        s.itl_ns_sum,
        s.itl_count,
    );
    page.out
}

/// The page being written: every family gets the same HELP suffix and model label.
struct Page {
    out: String,
    model: String,
}

impl Page {
    fn new(model_id: &str) -> Page {
        Page {
            out: String::with_capacity(2048),
            model: escape(model_id),
        }
    }

    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(
            self.out,
            "# HELP {name} {help} (SIMULATED: eyetest-sim, not a real engine)"
        );
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// A gauge or a counter (whose sample gets Prometheus' `_total`).
    fn family(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.header(name, kind, help);
        let suffix = if kind == "counter" { "_total" } else { "" };
        let _ = writeln!(
            self.out,
            "{name}{suffix}{{model_name=\"{}\"}} {value}",
            self.model
        );
    }

    /// Sum and count only (one `+Inf` bucket): a mean per scrape interval is what a benchmark
    /// needs to tell the engine's lateness from the client's, and finer buckets would be
    /// invented.
    fn histogram(&mut self, name: &str, help: &str, sum_ns: u64, count: u64) {
        self.header(name, "histogram", help);
        let m = &self.model;
        let _ = writeln!(
            self.out,
            "{name}_bucket{{model_name=\"{m}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            self.out,
            "{name}_sum{{model_name=\"{m}\"}} {}",
            sum_ns as f64 / 1e9
        );
        let _ = writeln!(self.out, "{name}_count{{model_name=\"{m}\"}} {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimConfig;
    use crate::throughput::telemetry::prometheus;

    #[test]
    fn the_page_parses_with_vllm_names_and_says_it_is_simulated() {
        let engine = Engine::new(SimConfig {
            max_concurrency: 4,
            ..SimConfig::default()
        });
        let text = render(&engine);
        let page = prometheus::parse(&text);
        assert_eq!(page.malformed, 0, "{text}");
        let value = |n: &str| page.named(n).next().map(|s| s.value);
        assert_eq!(value("vllm:num_requests_running"), Some(0.0));
        assert_eq!(value("vllm:kv_cache_usage_perc"), Some(0.0));
        assert_eq!(value("vllm:generation_tokens_total"), Some(0.0));
        assert_eq!(value("eyetest_sim:max_batch"), Some(4.0));
        assert_eq!(value("eyetest_sim:simulated"), Some(1.0));
        let model = page.samples[0].label("model_name").unwrap();
        assert!(model.contains("simulated engine"), "{model}");
        assert_eq!(
            page.kind_of("vllm:generation_tokens_total"),
            prometheus::MetricKind::Counter
        );
        assert!(text
            .lines()
            .filter(|l| l.starts_with("# HELP"))
            .all(|l| l.ends_with("(SIMULATED: eyetest-sim, not a real engine)")));
    }
}
