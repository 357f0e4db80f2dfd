//! The sampling loops: one task scrapes `/metrics`, another runs `nvidia-smi`, each on its
//! own ticker so that a slow GPU query never delays a scrape or the other way round.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::nvidia_smi::{self, SmiError};
use super::prometheus::{self, MetricKind};
use super::{
    EngineSeries, Gap, GpuPoint, GpuSeries, GpuTrack, MetricSeries, SourceStatus, TelemetryConfig,
    TelemetrySeries, KNOWN_SERIES, MAX_GAPS_KEPT,
};

/// Starts sampling; see [`SamplerHandle`].
pub struct Sampler;

impl Sampler {
    /// Starts the loops on the current tokio runtime (call from inside it). The first
    /// samples are taken at once; times in the result count from this call.
    pub fn start(config: TelemetryConfig) -> SamplerHandle {
        let origin = Instant::now();
        let (stop, stopped) = watch::channel(false);
        let interval = config.interval.max(Duration::from_millis(10));
        let timeout = config.timeout.min(interval).max(Duration::from_millis(10));
        let engine = config.metrics_url.clone().map(|url| {
            let scraper = Scraper::new(&config, url, timeout);
            tokio::spawn(scraper.run(origin, interval, stopped.clone()))
        });
        let gpu = config
            .nvidia_smi
            .clone()
            .map(|program| tokio::spawn(gpu_loop(program, timeout, origin, interval, stopped)));
        SamplerHandle {
            origin,
            interval,
            stop,
            engine,
            gpu,
        }
    }
}

/// A running sampler. Dropping it stops the loops and loses the series.
pub struct SamplerHandle {
    origin: Instant,
    interval: Duration,
    stop: watch::Sender<bool>,
    engine: Option<JoinHandle<EngineSeries>>,
    gpu: Option<JoinHandle<GpuSeries>>,
}

impl SamplerHandle {
    /// Time zero of the series, for [`super::LevelWindow::between`].
    pub fn origin(&self) -> std::time::Instant {
        self.origin.into_std()
    }

    /// Stops sampling (a scrape in flight is abandoned) and returns what was gathered.
    pub async fn stop(mut self) -> TelemetrySeries {
        self.stop.send_replace(true);
        let duration_s = self.origin.elapsed().as_secs_f64();
        let engine = match self.engine.take() {
            Some(task) => task.await.unwrap_or_else(|e| EngineSeries {
                status: SourceStatus::Unavailable(format!("the scraper task failed: {e}")),
                ..EngineSeries::default()
            }),
            None => EngineSeries::default(),
        };
        let gpu = match self.gpu.take() {
            Some(task) => task.await.unwrap_or_else(|e| GpuSeries {
                status: SourceStatus::Unavailable(format!("the nvidia-smi task failed: {e}")),
                ..GpuSeries::default()
            }),
            None => GpuSeries::default(),
        };
        TelemetrySeries {
            interval_s: self.interval.as_secs_f64(),
            duration_s,
            engine,
            gpu,
        }
    }
}

impl Drop for SamplerHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Whole microseconds: finer than any scrape's own timing, and a number with few digits
/// survives a JSON round trip bit for bit (serde_json's default float parsing is exact for
/// those), so stored series compare equal to the ones sampled.
fn secs_since(origin: Instant) -> f64 {
    origin.elapsed().as_micros() as f64 / 1e6
}

/// Waits for the next tick; `false` once stop is asked for.
async fn tick(ticker: &mut tokio::time::Interval, stopped: &mut watch::Receiver<bool>) -> bool {
    if *stopped.borrow() {
        return false;
    }
    tokio::select! {
        _ = ticker.tick() => !*stopped.borrow(),
        _ = stopped.changed() => false,
    }
}

fn ticker(interval: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval(interval);
    // A late sample is taken late, not twice in a row.
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

/// Runs `work` unless stop comes first.
async fn unless_stopped<T>(
    stopped: &mut watch::Receiver<bool>,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        out = work => Some(out),
        _ = stopped.changed() => None,
    }
}

fn push_gap(gaps: &mut Vec<Gap>, total: &mut u64, t_s: f64, error: String) {
    *total += 1;
    if gaps.len() < MAX_GAPS_KEPT {
        gaps.push(Gap { t_s, error });
    }
}

enum Scrape {
    Page(String),
    NotFound(String),
    Failed(String),
}

struct Scraper {
    client: Result<reqwest::Client, reqwest::Error>,
    url: String,
    shown: String,
    bearer: Option<String>,
    keep_all: bool,
    extra: Vec<String>,
}

impl Scraper {
    fn new(config: &TelemetryConfig, url: String, timeout: Duration) -> Scraper {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build();
        Scraper {
            client,
            shown: redact(&url),
            url,
            bearer: config.bearer.clone(),
            keep_all: config.keep_all,
            extra: config.extra_series.clone(),
        }
    }

    fn keeps(&self, name: &str, kind: MetricKind) -> bool {
        if KNOWN_SERIES.contains(&name) || self.extra.iter().any(|e| e == name) {
            return true;
        }
        self.keep_all && !(kind == MetricKind::Histogram && name.ends_with("_bucket"))
    }

    async fn fetch(&self) -> Scrape {
        let client = match &self.client {
            Ok(c) => c,
            Err(e) => return Scrape::Failed(format!("cannot build an HTTP client: {e}")),
        };
        let mut req = client.get(&self.url);
        if let Some(token) = &self.bearer {
            req = req.bearer_auth(token);
        }
        // Errors are shown without their URL, which could carry credentials.
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Scrape::Failed(format!("GET {}: {}", self.shown, e.without_url())),
        };
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Scrape::NotFound(format!(
                "GET {} answered 404 Not Found (the server publishes no Prometheus metrics; \
                 SGLang needs --enable-metrics)",
                self.shown
            ));
        }
        if !status.is_success() {
            return Scrape::Failed(format!("GET {} answered HTTP {status}", self.shown));
        }
        match resp.text().await {
            Ok(t) => Scrape::Page(t),
            Err(e) => Scrape::Failed(format!(
                "GET {}: reading the page: {}",
                self.shown,
                e.without_url()
            )),
        }
    }

    async fn run(
        self,
        origin: Instant,
        interval: Duration,
        mut stopped: watch::Receiver<bool>,
    ) -> EngineSeries {
        let mut out = EngineSeries {
            url: Some(self.shown.clone()),
            status: SourceStatus::Sampled,
            ..EngineSeries::default()
        };
        let mut index: HashMap<(String, Vec<(String, String)>), usize> = HashMap::new();
        let mut ticker = ticker(interval);
        while tick(&mut ticker, &mut stopped).await {
            let t_s = secs_since(origin);
            let Some(scrape) = unless_stopped(&mut stopped, self.fetch()).await else {
                break;
            };
            out.attempts += 1;
            let page = match scrape {
                Scrape::Page(p) => p,
                Scrape::NotFound(why) => {
                    out.status = SourceStatus::Unavailable(why);
                    break;
                }
                Scrape::Failed(e) => {
                    push_gap(&mut out.gaps, &mut out.gaps_total, t_s, e);
                    continue;
                }
            };
            let page = prometheus::parse(&page);
            if page.samples.is_empty() {
                let e = format!(
                    "GET {}: no Prometheus samples on the page ({} unreadable lines)",
                    self.shown, page.malformed
                );
                push_gap(&mut out.gaps, &mut out.gaps_total, t_s, e);
                continue;
            }
            for s in &page.samples {
                let kind = page.kind_of(&s.name);
                if !self.keeps(&s.name, kind) {
                    continue;
                }
                let key = (s.name.clone(), s.labels.clone());
                let i = *index.entry(key).or_insert_with(|| {
                    out.series.push(MetricSeries {
                        name: s.name.clone(),
                        labels: s.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
                        kind,
                        points: Vec::new(),
                    });
                    out.series.len() - 1
                });
                out.series[i].points.push([t_s, s.value]);
            }
        }
        out
    }
}

/// `scheme://host:port/path`: no user, password or query, which may hold secrets.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(unparsable metrics URL)".into(),
    }
}

async fn gpu_loop(
    program: OsString,
    timeout: Duration,
    origin: Instant,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) -> GpuSeries {
    let mut out = GpuSeries {
        program: Some(program.to_string_lossy().into_owned()),
        status: SourceStatus::Sampled,
        ..GpuSeries::default()
    };
    let mut ever_read = false;
    let mut ticker = ticker(interval);
    while tick(&mut ticker, &mut stopped).await {
        let t_s = secs_since(origin);
        let Some(result) = unless_stopped(&mut stopped, nvidia_smi::query(&program, timeout)).await
        else {
            break;
        };
        out.attempts += 1;
        match result {
            Ok(readings) => {
                ever_read = true;
                for r in readings {
                    let track = match out.gpus.iter().position(|g| g.index == r.index) {
                        Some(i) => &mut out.gpus[i],
                        None => {
                            out.gpus.push(GpuTrack {
                                index: r.index,
                                name: r.name.clone(),
                                points: Vec::new(),
                            });
                            out.gpus.last_mut().expect("just pushed")
                        }
                    };
                    track.points.push(GpuPoint {
                        t_s,
                        util_pct: r.util_pct,
                        mem_used_mib: r.mem_used_mib,
                        mem_total_mib: r.mem_total_mib,
                        power_w: r.power_w,
                    });
                }
            }
            // A machine without nvidia-smi or a driver: said once, then left alone. Once it
            // has answered, a later failure is a gap, not a verdict on the machine.
            Err(SmiError::Unavailable(why)) if !ever_read => {
                out.status = SourceStatus::Unavailable(why);
                break;
            }
            Err(SmiError::Unavailable(e) | SmiError::Failed(e)) => {
                push_gap(&mut out.gaps, &mut out.gaps_total, t_s, e);
            }
        }
    }
    out.gpus.sort_by_key(|g| g.index);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_and_queries() {
        assert_eq!(
            redact("http://user:secret@h:8000/metrics?token=abc"),
            "http://h:8000/metrics"
        );
        assert_eq!(redact("not a url"), "(unparsable metrics URL)");
    }
}
