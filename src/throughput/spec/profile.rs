//! Checks of the arrival-profile and telemetry keys of a `[[throughput]]` table, each
//! problem reported at its span with what to write instead.

use std::time::Duration;

use toml::Spanned;

use super::validate::Validator;
use super::{
    MetricsUrl, RawTelemetry, RawThroughput, TelemetrySpec, MAX_CONCURRENCY, MAX_REQUESTS,
};
use crate::throughput::arrival::{Arrival, DEFAULT_MAX_CONCURRENCY};
use crate::throughput::level::ProfileKind;

/// Highest rate a spec may ask: far beyond any single vision endpoint, low enough that a
/// typo (`rates = [10000000]`) is caught before it floods anything.
pub const MAX_RATE: f64 = 100_000.0;
/// Longest level: a day.
pub const MAX_DURATION_S: f64 = 86_400.0;
pub const MAX_SWEEP_POINTS: i64 = 100;

const PROFILES: &str =
    "`concurrency` (closed loop, the default), `constant`, `poisson`, `gamma` or `sweep`";

impl Validator<'_> {
    /// The profile keys; a bad value is reported and replaced by its default, so the other
    /// checks still run.
    pub(super) fn arrival(&mut self, r: &RawThroughput) -> Arrival {
        let mut a = Arrival::default();
        if let Some(p) = &r.profile {
            let name = p.get_ref().trim();
            match ProfileKind::ALL.iter().find(|k| k.name() == name) {
                Some(k) => a.profile = *k,
                None => {
                    let names = ProfileKind::ALL.map(|k| k.name());
                    let help = match crate::diagnostic::closest(name, names.iter().copied()) {
                        Some(c) => format!("did you mean `{c}`? profiles: {PROFILES}"),
                        None => format!("use one of {PROFILES}"),
                    };
                    self.err(p.span(), format!("unknown profile `{name}`"), help);
                }
            }
        }
        let rate_profile = a.is_rate();
        let only_rate = |key: &str| {
            format!("`{key}` applies to rate profiles only; remove it, or set `profile = \"poisson\"` (or constant, gamma, sweep)")
        };
        if let Some(list) = &r.rates {
            if !matches!(
                a.profile,
                ProfileKind::Constant | ProfileKind::Poisson | ProfileKind::Gamma
            ) {
                let why = if a.profile == ProfileKind::Sweep {
                    "the sweep finds its own rates between its synchronous and throughput probes; remove `rates` and set `sweep_points` instead"
                } else {
                    "`rates` needs `profile = \"constant\"`, `\"poisson\"` or `\"gamma\"`"
                };
                self.err(
                    list.span(),
                    format!("`rates` with profile `{}`", a.profile.name()),
                    why,
                );
            } else {
                a.rates = self.rates(list);
            }
        } else if matches!(
            a.profile,
            ProfileKind::Constant | ProfileKind::Poisson | ProfileKind::Gamma
        ) {
            let span = r.profile.as_ref().map_or(r.name.span(), |p| p.span());
            self.err(
                span,
                format!("profile `{}` needs `rates`", a.profile.name()),
                "list the arrival rates in requests per second, e.g. `rates = [1.0, 2.0, 4.0]`",
            );
        }
        if let Some(b) = &r.burstiness {
            let v = *b.get_ref();
            if a.profile != ProfileKind::Gamma {
                self.err(
                    b.span(),
                    format!("`burstiness` with profile `{}`", a.profile.name()),
                    "burstiness is the gamma shape: use `profile = \"gamma\"` (poisson is gamma with burstiness 1)",
                );
            } else if !(v.is_finite() && v > 0.0 && v <= 1000.0) {
                self.err(
                    b.span(),
                    format!("burstiness must be a positive number up to 1000, got {v}"),
                    "1 is a Poisson process, below 1 burstier, above 1 more even (vLLM's --burstiness)",
                );
            } else {
                a.burstiness = v;
            }
        }
        if let Some(m) = &r.max_concurrency {
            if rate_profile {
                if let Some(v) = self.int(m, "max_concurrency", 1, MAX_CONCURRENCY, "the most requests in flight at once; a request held back by it waits, and the wait is reported as queueing delay") {
                    a.max_concurrency = v as usize;
                }
            } else {
                self.err(
                    m.span(),
                    "`max_concurrency` with the concurrency profile".into(),
                    only_rate("max_concurrency")
                        + "; a closed loop's levels are its `concurrency` list",
                );
            }
        } else {
            a.max_concurrency = DEFAULT_MAX_CONCURRENCY;
        }
        if let Some(d) = &r.duration_s {
            let v = *d.get_ref();
            if !rate_profile {
                self.err(
                    d.span(),
                    "`duration_s` with the concurrency profile".into(),
                    only_rate("duration_s") + "; a closed loop sends `requests` per level",
                );
            } else if !(v.is_finite() && v > 0.0 && v <= MAX_DURATION_S) {
                self.err(
                    d.span(),
                    format!("duration_s must be a positive number of seconds up to {MAX_DURATION_S}, got {v}"),
                    "each level's schedule runs this long, e.g. `duration_s = 30`",
                );
            } else {
                a.duration = Some(Duration::from_secs_f64(v));
            }
        }
        if let Some(p) = &r.sweep_points {
            if a.profile != ProfileKind::Sweep {
                self.err(p.span(), format!("`sweep_points` with profile `{}`", a.profile.name()), "sweep_points is the number of rates `profile = \"sweep\"` measures between its probes");
            } else if let Some(v) = self.int(
                p,
                "sweep_points",
                1,
                MAX_SWEEP_POINTS,
                "GuideLLM's default sweep measures 10 benchmarks; 5 rates is a quick one",
            ) {
                a.sweep_points = v as usize;
            }
        }
        if let Some(s) = &r.arrival_seed {
            if !rate_profile {
                self.err(
                    s.span(),
                    "`arrival_seed` with the concurrency profile".into(),
                    only_rate("arrival_seed"),
                );
            } else if let Some(v) = self.int(
                s,
                "arrival_seed",
                0,
                i64::MAX,
                "any non-negative integer; the same seed sends the same schedule",
            ) {
                a.seed = v as u64;
            }
        }
        if rate_profile {
            if let Some(c) = &r.concurrency {
                self.err(
                    c.span(),
                    format!("`concurrency` with profile `{}`", a.profile.name()),
                    "a rate profile's levels are its rates; cap the requests in flight with `max_concurrency` instead",
                );
            }
        }
        a
    }

    fn rates(&mut self, list: &Spanned<Vec<Spanned<f64>>>) -> Vec<f64> {
        if list.get_ref().is_empty() {
            self.err(
                list.span(),
                "`rates` is empty: there is nothing to measure".into(),
                "list the arrival rates in requests per second, e.g. `rates = [1.0, 2.0, 4.0]`",
            );
        }
        let mut out: Vec<f64> = Vec::new();
        for r in list.get_ref() {
            let v = *r.get_ref();
            if !(v.is_finite() && v > 0.0 && v <= MAX_RATE) {
                self.err(
                    r.span(),
                    format!("a rate must be a positive number of requests per second up to {MAX_RATE}, got {v}"),
                    "e.g. `rates = [0.5, 1.0, 2.0]`",
                );
            } else if out
                .iter()
                .any(|&o| (o * 1000.0).round() == (v * 1000.0).round())
            {
                self.err(
                    r.span(),
                    format!("rate {v} is listed twice"),
                    "remove the repetition (rates are compared to a thousandth of a request per second)",
                );
            } else {
                out.push(v);
            }
        }
        out
    }

    /// Requests per rate level (aligned with the sorted rates; one value for the sweep),
    /// or empty when `duration_s` sets each level's length.
    pub(super) fn rate_requests(
        &mut self,
        r: &RawThroughput,
        arrival: &Arrival,
        count: Option<usize>,
    ) -> Option<Vec<usize>> {
        let levels = if arrival.profile == ProfileKind::Sweep {
            1
        } else {
            arrival.rates.len()
        };
        let help = "requests is the number of measured requests per rate level: an integer, or a list with one value per rate";
        let Some(raw) = &r.requests else {
            return match (arrival.duration, count) {
                (Some(_), _) => Some(Vec::new()),
                (None, Some(n)) => Some(vec![n; levels]),
                (None, None) => None,
            };
        };
        if let Some(d) = &r.duration_s {
            self.err(
                d.span(),
                "both `requests` and `duration_s` are set".into(),
                "a rate level ends after its requests or after its duration: keep one of them",
            );
            return None;
        }
        let one = |s: &mut Self, x: &toml::Value| match x.as_integer() {
            Some(i) if (1..=MAX_REQUESTS).contains(&i) => Some(i as usize),
            _ => {
                s.err(
                    raw.span(),
                    format!("requests must be an integer between 1 and {MAX_REQUESTS}, got {x}"),
                    help,
                );
                None
            }
        };
        let values: Vec<usize> = match raw.get_ref() {
            toml::Value::Array(list) if arrival.profile == ProfileKind::Sweep => {
                self.err(
                    raw.span(),
                    format!(
                        "requests lists {} values, but the sweep's rates are found at run time",
                        list.len()
                    ),
                    "give one integer: every level of the sweep (probes included) sends that many",
                );
                return None;
            }
            toml::Value::Array(list) => {
                if list.len() != arrival.rates.len() {
                    self.err(
                        raw.span(),
                        format!(
                            "requests lists {} values but rates has {}",
                            list.len(),
                            arrival.rates.len()
                        ),
                        "give one value per rate, in the same order, or a single integer for all",
                    );
                    return None;
                }
                let v: Vec<usize> = list.iter().filter_map(|x| one(self, x)).collect();
                if v.len() != list.len() {
                    return None;
                }
                v
            }
            x => vec![one(self, x)?; levels],
        };
        Some(values)
    }

    pub(super) fn telemetry(
        &mut self,
        raw: Option<&Spanned<RawTelemetry>>,
    ) -> Option<TelemetrySpec> {
        let t = raw?.get_ref();
        let metrics_url = match t.metrics_url.as_ref().map(|v| (v.get_ref(), v.span())) {
            None => Some(MetricsUrl::Auto),
            Some((toml::Value::Boolean(false), _)) => None,
            Some((toml::Value::Boolean(true), _)) => Some(MetricsUrl::Auto),
            Some((toml::Value::String(s), _)) if s.trim() == "auto" => Some(MetricsUrl::Auto),
            Some((toml::Value::String(s), span)) => {
                let s = s.trim();
                if !(s.starts_with("http://") || s.starts_with("https://")) {
                    self.err(
                        span,
                        format!("telemetry metrics_url `{s}` is not an http(s) URL"),
                        "write `metrics_url = \"auto\"` (the target's own /metrics), a URL such as \"http://gpu-host:8000/metrics\", or false",
                    );
                }
                Some(MetricsUrl::Url(s.to_string()))
            }
            Some((other, span)) => {
                self.err(
                    span,
                    format!(
                        "telemetry metrics_url must be \"auto\", a URL or false, got a {}",
                        other.type_str()
                    ),
                    "e.g. `metrics_url = \"auto\"`",
                );
                None
            }
        };
        let nvidia_smi = match t.nvidia_smi.as_ref().map(|v| (v.get_ref(), v.span())) {
            None | Some((toml::Value::Boolean(false), _)) => None,
            Some((toml::Value::Boolean(true), _)) => Some("nvidia-smi".to_string()),
            Some((toml::Value::String(s), _)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some((other, span)) => {
                self.err(
                    span,
                    format!("telemetry nvidia_smi must be true, false or a program path, got {other}"),
                    "`nvidia_smi = true` runs `nvidia-smi` from PATH; it only says something when eyetest runs on the GPU host",
                );
                None
            }
        };
        let interval = match &t.interval_ms {
            Some(ms) => self
                .int(
                    ms,
                    "telemetry interval_ms",
                    10,
                    3_600_000,
                    "sample about ten times per level or more, e.g. `interval_ms = 500`",
                )
                .map_or(Duration::from_secs(1), |v| Duration::from_millis(v as u64)),
            None => Duration::from_secs(1),
        };
        Some(TelemetrySpec {
            metrics_url,
            nvidia_smi,
            interval,
            keep_all: t.keep_all.unwrap_or(false),
        })
    }
}

/// Sorts `rates` ascending, keeping each rate's request count (`requests` is aligned with
/// `rates` as written, or holds a single value or nothing, left alone).
pub(super) fn sort_rates(rates: &mut [f64], requests: Vec<usize>) -> Vec<usize> {
    if requests.len() != rates.len() {
        rates.sort_by(f64::total_cmp);
        return requests;
    }
    let mut pairs: Vec<(f64, usize)> = rates.iter().copied().zip(requests).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (r, p) in rates.iter_mut().zip(&pairs) {
        *r = p.0;
    }
    pairs.into_iter().map(|p| p.1).collect()
}
