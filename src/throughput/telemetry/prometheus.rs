//! A lenient reader of the Prometheus text exposition format (what vLLM's and SGLang's
//! `/metrics` serve), kept generic: every sample becomes (name, labels, value), and the
//! `# TYPE` lines say which are counters, gauges or histograms.
//!
//! Lenient because a scrape is evidence, not input to trust: a malformed line is counted
//! and skipped instead of throwing away the rest of the page, and OpenMetrics additions
//! (exemplars after `#`, `# EOF`, `# UNIT`) are tolerated.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// What a `# TYPE` line declares; `Untyped` when no line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricKind {
    fn parse(s: &str) -> MetricKind {
        match s {
            "counter" => MetricKind::Counter,
            "gauge" => MetricKind::Gauge,
            "histogram" | "gaugehistogram" => MetricKind::Histogram,
            "summary" => MetricKind::Summary,
            _ => MetricKind::Untyped,
        }
    }
}

/// One sample line: `name{labels} value`. Labels keep the page's order.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl PromSample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed `/metrics` page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<PromSample>,
    /// Declared kind per metric family name (the name before `_bucket`, `_sum`, ...).
    pub kinds: HashMap<String, MetricKind>,
    /// Lines that were neither comments nor readable samples.
    pub malformed: usize,
}

impl Exposition {
    /// The kind of a sample's family: `vllm:e2e_request_latency_seconds_bucket` is a
    /// histogram because `vllm:e2e_request_latency_seconds` is declared one.
    pub fn kind_of(&self, sample_name: &str) -> MetricKind {
        if let Some(k) = self.kinds.get(sample_name) {
            return *k;
        }
        for suffix in [
            "_bucket", "_sum", "_count", "_total", "_created", "_gsum", "_gcount",
        ] {
            if let Some(base) = sample_name.strip_suffix(suffix) {
                if let Some(k) = self.kinds.get(base) {
                    return *k;
                }
            }
        }
        MetricKind::Untyped
    }

    /// Samples named exactly `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a PromSample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

/// Parses a page. Never fails: what cannot be read is counted in
/// [`Exposition::malformed`]; the caller decides whether an empty result is an error.
pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                    out.kinds.insert(name.to_string(), MetricKind::parse(kind));
                }
            }
            continue;
        }
        match sample(line) {
            Some(s) => out.samples.push(s),
            None => out.malformed += 1,
        }
    }
    out
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// `name [{labels}] value [timestamp] [# exemplar]`.
fn sample(line: &str) -> Option<PromSample> {
    let first = line.chars().next()?;
    if !is_name_start(first) {
        return None;
    }
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let name = &line[..name_end];
    let mut rest = line[name_end..].trim_start();
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = label_set(after)?;
        labels = parsed;
        rest = tail.trim_start();
    }
    // Value, then an optional timestamp or OpenMetrics exemplar, which we do not keep.
    let value = rest.split_whitespace().next()?;
    Some(PromSample {
        name: name.to_string(),
        labels,
        value: number(value)?,
    })
}

/// Reads `k="v",k2="v2"}` (the `{` already consumed); returns the labels and what follows.
fn label_set(s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if let Some(tail) = rest.strip_prefix('}') {
            return Some((labels, tail));
        }
        let key_end = rest.find(|c: char| !is_name_char(c))?;
        let key = &rest[..key_end];
        if key.is_empty() {
            return None;
        }
        rest = rest[key_end..].trim_start().strip_prefix('=')?;
        rest = rest.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((key.to_string(), value));
        rest = rest[end + 1..].trim_start();
        if let Some(tail) = rest.strip_prefix(',') {
            rest = tail;
        } else if !rest.starts_with('}') {
            return None;
        }
    }
}

/// Go/Python float spellings as Prometheus writes them, `+Inf`, `-Inf` and `NaN` included.
fn number(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like vLLM 0.10's page: families with HELP/TYPE, labels with a slash in the
    /// model name, a histogram, scientific notation.
    const VLLM: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.2-11B-Vision-Instruct"} 7.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.2-11B-Vision-Instruct"} 2.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.2-11B-Vision-Instruct"} 0.4375
# TYPE vllm:generation_tokens counter
vllm:generation_tokens_total{engine="0",model_name="meta-llama/Llama-3.2-11B-Vision-Instruct"} 1.2345e+06
vllm:generation_tokens_created{engine="0",model_name="meta-llama/Llama-3.2-11B-Vision-Instruct"} 1.7e+09
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="0.3",model_name="m"} 0.0
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 12.0
vllm:e2e_request_latency_seconds_sum{model_name="m"} 34.5
vllm:e2e_request_latency_seconds_count{model_name="m"} 12.0
"#;

    #[test]
    fn reads_vllm_families_labels_and_kinds() {
        let e = parse(VLLM);
        assert_eq!(e.malformed, 0);
        assert_eq!(e.samples.len(), 9);
        let running = e.named("vllm:num_requests_running").next().unwrap();
        assert_eq!(running.value, 7.0);
        assert_eq!(
            running.label("model_name"),
            Some("meta-llama/Llama-3.2-11B-Vision-Instruct")
        );
        assert_eq!(e.kind_of("vllm:num_requests_running"), MetricKind::Gauge);
        assert_eq!(
            e.kind_of("vllm:generation_tokens_total"),
            MetricKind::Counter
        );
        assert_eq!(
            e.named("vllm:generation_tokens_total")
                .next()
                .unwrap()
                .value,
            1_234_500.0
        );
        assert_eq!(
            e.kind_of("vllm:e2e_request_latency_seconds_bucket"),
            MetricKind::Histogram
        );
        let inf = e
            .named("vllm:e2e_request_latency_seconds_bucket")
            .find(|s| s.label("le") == Some("+Inf"))
            .unwrap();
        assert_eq!(inf.value, 12.0);
        assert_eq!(e.kind_of("something_else"), MetricKind::Untyped);
    }

    #[test]
    fn escapes_timestamps_exemplars_and_specials() {
        let e = parse(
            "a{path=\"C:\\\\x\",msg=\"say \\\"hi\\\"\\nbye\"} 1 1700000000000\n\
             b NaN\n\
             c{} -Inf\n\
             d{le=\"1\"} 3 # {trace_id=\"abc\"} 0.5 1.0\n\
             # EOF\n",
        );
        assert_eq!(e.malformed, 0, "{e:?}");
        let a = &e.samples[0];
        assert_eq!(a.label("path"), Some("C:\\x"));
        assert_eq!(a.label("msg"), Some("say \"hi\"\nbye"));
        assert_eq!(a.value, 1.0);
        assert!(e.samples[1].value.is_nan());
        assert_eq!(e.samples[2].value, f64::NEG_INFINITY);
        assert_eq!(e.samples[3].value, 3.0);
    }

    #[test]
    fn malformed_lines_are_counted_not_fatal() {
        let e = parse("good 1\n{bad} 2\nunterminated{a=\"x} 3\nnovalue\n9starts_with_digit 1\nx 1e\ngood2 2\n");
        assert_eq!(e.samples.len(), 2);
        assert_eq!(e.malformed, 5);
        // An HTML error page reads as nothing useful, which the scraper turns into a gap.
        let html = parse("<html><body>404 Not Found</body></html>");
        assert!(html.samples.is_empty());
        assert_eq!(html.malformed, 1);
    }
}
