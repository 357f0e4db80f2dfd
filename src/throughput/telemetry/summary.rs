//! Per-level summaries of the sampled series: what the engine and the GPU did while one
//! concurrency level (or arrival rate) ran, next to the images/s it achieved.
//!
//! Engines split a quantity over label sets (SGLang publishes one series per TP/DP rank):
//! request counts and token counters are summed across label sets at each scrape, usage
//! fractions take the largest (the fullest rank is the one that queues). GPU numbers are
//! summed over GPUs for memory and power, averaged for utilisation.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{TelemetrySeries, GENERATION_TOKENS, KV_CACHE_USAGE, PROMPT_TOKENS, RUNNING, WAITING};
use crate::throughput::sig3;

/// The stretch of the sweep one level ran in, in seconds since the sampler started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelWindow {
    /// "c=8", "rate=4/s", "c=8 repeat 2": whatever the caller's levels are called.
    pub label: String,
    pub start_s: f64,
    pub end_s: f64,
    /// The level's measured images/s, for images/s per watt.
    pub images_per_s: Option<f64>,
}

impl LevelWindow {
    /// From the level's own clock readings and the sampler's origin
    /// ([`super::SamplerHandle::origin`]).
    pub fn between(
        label: impl Into<String>,
        origin: Instant,
        start: Instant,
        end: Instant,
    ) -> Self {
        let s = |t: Instant| t.saturating_duration_since(origin).as_secs_f64();
        LevelWindow {
            label: label.into(),
            start_s: s(start),
            end_s: s(end),
            images_per_s: None,
        }
    }

    pub fn with_images_per_s(mut self, images_per_s: f64) -> Self {
        self.images_per_s = Some(images_per_s);
        self
    }

    fn contains(&self, t: f64) -> bool {
        t >= self.start_s && t <= self.end_s
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanMax {
    pub mean: f64,
    pub max: f64,
}

impl MeanMax {
    fn of(values: &[f64]) -> Option<MeanMax> {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        Some(MeanMax {
            mean: v.iter().sum::<f64>() / v.len() as f64,
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// What the engine and GPUs did during one level. `None` where nothing was sampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelTelemetry {
    pub label: String,
    pub start_s: f64,
    pub end_s: f64,
    /// Successful scrapes inside the window, and failed ones.
    pub engine_samples: usize,
    pub engine_gaps: usize,
    pub running: Option<MeanMax>,
    pub waiting: Option<MeanMax>,
    /// KV-cache (SGLang: token pool) usage, a fraction 0..1.
    pub kv_cache_usage: Option<MeanMax>,
    /// Counter increase over the window's first to last scrape, per second.
    pub prompt_tokens_per_s: Option<f64>,
    pub generation_tokens_per_s: Option<f64>,
    pub gpu_samples: usize,
    pub gpu_gaps: usize,
    /// Mean over GPUs at each sample.
    pub gpu_util_pct: Option<MeanMax>,
    /// Summed over GPUs at each sample.
    pub gpu_mem_used_mib: Option<MeanMax>,
    pub gpu_mem_total_mib: Option<f64>,
    /// Summed over GPUs, from samples where every GPU reported its power.
    pub power_w: Option<MeanMax>,
    pub images_per_s: Option<f64>,
    /// images/s over mean watts, where both are known.
    pub images_per_s_per_watt: Option<f64>,
}

/// One summary per window, in the windows' order.
pub fn summarise(series: &TelemetrySeries, windows: &[LevelWindow]) -> Vec<LevelTelemetry> {
    let running = scrape_values(series, &RUNNING, Combine::Sum);
    let waiting = scrape_values(series, &WAITING, Combine::Sum);
    let kv = scrape_values(series, &KV_CACHE_USAGE, Combine::Max);
    let prompt = scrape_values(series, &PROMPT_TOKENS, Combine::Sum);
    let generation = scrape_values(series, &GENERATION_TOKENS, Combine::Sum);
    let gpu = gpu_samples(series);
    windows
        .iter()
        .map(|w| {
            let within = |points: &[(f64, f64)]| -> Vec<f64> {
                points
                    .iter()
                    .filter(|(t, _)| w.contains(*t))
                    .map(|&(_, v)| v)
                    .collect()
            };
            let scrape_times: std::collections::BTreeSet<u64> = series
                .engine
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p[0]))
                .filter(|&t| w.contains(t))
                .map(f64::to_bits)
                .collect();
            let gpu_in: Vec<&GpuSample> = gpu.iter().filter(|g| w.contains(g.t_s)).collect();
            let power: Vec<f64> = gpu_in.iter().filter_map(|g| g.power_w).collect();
            let power_w = MeanMax::of(&power);
            let per_watt = match (w.images_per_s, power_w) {
                (Some(ips), Some(p)) if p.mean > 0.0 => Some(ips / p.mean),
                _ => None,
            };
            let gaps_in = |gaps: &[super::Gap]| gaps.iter().filter(|g| w.contains(g.t_s)).count();
            LevelTelemetry {
                label: w.label.clone(),
                start_s: w.start_s,
                end_s: w.end_s,
                engine_samples: scrape_times.len(),
                engine_gaps: gaps_in(&series.engine.gaps),
                running: MeanMax::of(&within(&running)),
                waiting: MeanMax::of(&within(&waiting)),
                kv_cache_usage: MeanMax::of(&within(&kv)),
                prompt_tokens_per_s: rate(&prompt, w),
                generation_tokens_per_s: rate(&generation, w),
                gpu_samples: gpu_in.len(),
                gpu_gaps: gaps_in(&series.gpu.gaps),
                gpu_util_pct: MeanMax::of(
                    &gpu_in.iter().filter_map(|g| g.util_pct).collect::<Vec<_>>(),
                ),
                gpu_mem_used_mib: MeanMax::of(
                    &gpu_in
                        .iter()
                        .filter_map(|g| g.mem_used_mib)
                        .collect::<Vec<_>>(),
                ),
                gpu_mem_total_mib: gpu_in.iter().rev().find_map(|g| g.mem_total_mib),
                power_w,
                images_per_s: w.images_per_s,
                images_per_s_per_watt: per_watt,
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
pub(super) enum Combine {
    Sum,
    Max,
}

/// `(t, value)` per scrape for the first of `names` the server published, its label sets
/// combined.
pub(super) fn scrape_values(
    series: &TelemetrySeries,
    names: &[&str],
    how: Combine,
) -> Vec<(f64, f64)> {
    let Some(name) = names
        .iter()
        .find(|n| series.named(n).any(|s| !s.points.is_empty()))
    else {
        return Vec::new();
    };
    let mut by_t: BTreeMap<u64, f64> = BTreeMap::new();
    for s in series.named(name) {
        for p in &s.points {
            let e = by_t.entry(p[0].to_bits()).or_insert(match how {
                Combine::Sum => 0.0,
                Combine::Max => f64::NEG_INFINITY,
            });
            *e = match how {
                Combine::Sum => *e + p[1],
                Combine::Max => e.max(p[1]),
            };
        }
    }
    // Times are non-negative, so their bit patterns sort as the numbers do.
    by_t.into_iter()
        .map(|(t, v)| (f64::from_bits(t), v))
        .collect()
}

/// Increase per second of a counter over the window's scrapes; a drop (a restarted
/// engine) counts from zero rather than as negative work.
fn rate(points: &[(f64, f64)], w: &LevelWindow) -> Option<f64> {
    let inside: Vec<&(f64, f64)> = points.iter().filter(|(t, _)| w.contains(*t)).collect();
    let (first, last) = (inside.first()?, inside.last()?);
    let span = last.0 - first.0;
    if inside.len() < 2 || span <= 0.0 {
        return None;
    }
    let increase: f64 = inside
        .windows(2)
        .map(|p| {
            let d = p[1].1 - p[0].1;
            if d >= 0.0 {
                d
            } else {
                p[1].1
            }
        })
        .sum();
    Some(increase / span)
}

/// All GPUs at one `nvidia-smi` run.
pub(super) struct GpuSample {
    pub(super) t_s: f64,
    pub(super) util_pct: Option<f64>,
    pub(super) mem_used_mib: Option<f64>,
    pub(super) mem_total_mib: Option<f64>,
    pub(super) power_w: Option<f64>,
}

pub(super) fn gpu_samples(series: &TelemetrySeries) -> Vec<GpuSample> {
    let mut by_t: BTreeMap<u64, Vec<&super::GpuPoint>> = BTreeMap::new();
    for g in &series.gpu.gpus {
        for p in &g.points {
            by_t.entry(p.t_s.to_bits()).or_default().push(p);
        }
    }
    let all = |ps: &[&super::GpuPoint], f: fn(&super::GpuPoint) -> Option<f64>| {
        ps.iter().map(|p| f(p)).collect::<Option<Vec<f64>>>()
    };
    by_t.into_iter()
        .map(|(t, ps)| {
            let util = all(&ps, |p| p.util_pct);
            GpuSample {
                t_s: f64::from_bits(t),
                util_pct: util.map(|u| u.iter().sum::<f64>() / u.len().max(1) as f64),
                mem_used_mib: all(&ps, |p| p.mem_used_mib).map(|v| v.iter().sum()),
                mem_total_mib: all(&ps, |p| p.mem_total_mib).map(|v| v.iter().sum()),
                power_w: all(&ps, |p| p.power_w).map(|v| v.iter().sum()),
            }
        })
        .collect()
}

/// A plain-text table, one line per level, for reports and CI logs.
pub fn render_summary(levels: &[LevelTelemetry]) -> String {
    let mm = |m: Option<MeanMax>, scale: f64| {
        m.map_or("-".to_string(), |m| {
            format!("{}/{}", sig3(m.mean * scale), sig3(m.max * scale))
        })
    };
    let one = |v: Option<f64>| v.map_or("-".to_string(), sig3);
    let mut out = String::from(
        "level         running    waiting    kv-cache%   gen tok/s  gpu util%  gpu MiB      watts      img/s/W\n",
    );
    for l in levels {
        out.push_str(&format!(
            "{:<13} {:<10} {:<10} {:<11} {:<10} {:<10} {:<12} {:<10} {}\n",
            l.label,
            mm(l.running, 1.0),
            mm(l.waiting, 1.0),
            mm(l.kv_cache_usage, 100.0),
            one(l.generation_tokens_per_s),
            mm(l.gpu_util_pct, 1.0),
            mm(l.gpu_mem_used_mib, 1.0),
            mm(l.power_w, 1.0),
            one(l.images_per_s_per_watt),
        ));
    }
    out.push_str("(mean/max over the level's samples; - = not sampled)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::{GpuPoint, GpuTrack, MetricKind, MetricSeries, SourceStatus};
    use super::*;

    fn series(name: &str, rank: &str, points: &[(f64, f64)]) -> MetricSeries {
        MetricSeries {
            name: name.into(),
            labels: [("tp_rank".to_string(), rank.to_string())].into(),
            kind: MetricKind::Gauge,
            points: points.iter().map(|&(t, v)| [t, v]).collect(),
        }
    }

    fn gpu(index: u32, points: &[(f64, f64, Option<f64>)]) -> GpuTrack {
        GpuTrack {
            index,
            name: "H100".into(),
            points: points
                .iter()
                .map(|&(t, util, power)| GpuPoint {
                    t_s: t,
                    util_pct: Some(util),
                    mem_used_mib: Some(1000.0),
                    mem_total_mib: Some(80000.0),
                    power_w: power,
                })
                .collect(),
        }
    }

    #[test]
    fn sums_ranks_takes_the_fullest_cache_and_rates_counters() {
        let mut s = TelemetrySeries::default();
        s.engine.status = SourceStatus::Sampled;
        s.engine.series = vec![
            series(
                "sglang:num_running_reqs",
                "0",
                &[(0.0, 1.0), (1.0, 3.0), (2.0, 4.0), (3.0, 9.0)],
            ),
            series(
                "sglang:num_running_reqs",
                "1",
                &[(0.0, 1.0), (1.0, 1.0), (2.0, 2.0), (3.0, 9.0)],
            ),
            series("sglang:token_usage", "0", &[(1.0, 0.2), (2.0, 0.5)]),
            series("sglang:token_usage", "1", &[(1.0, 0.4), (2.0, 0.1)]),
            series(
                "sglang:generation_tokens_total",
                "0",
                &[(1.0, 100.0), (2.0, 300.0), (3.0, 50.0)],
            ),
        ];
        let w = LevelWindow {
            label: "c=4".into(),
            start_s: 0.5,
            end_s: 2.5,
            images_per_s: Some(2.0),
        };
        let l = &summarise(&s, &[w])[0];
        assert_eq!(l.engine_samples, 2);
        assert_eq!(
            l.running,
            Some(MeanMax {
                mean: 5.0,
                max: 6.0
            })
        );
        assert_eq!(l.waiting, None);
        let kv = l.kv_cache_usage.unwrap();
        assert!((kv.mean - 0.45).abs() < 1e-12 && kv.max == 0.5, "{kv:?}");
        assert_eq!(l.generation_tokens_per_s, Some(200.0));
        assert_eq!(l.power_w, None);
        assert_eq!(l.images_per_s_per_watt, None);
        // A restarted engine's counter drop is not negative work.
        let all = LevelWindow {
            label: "all".into(),
            start_s: 0.0,
            end_s: 3.0,
            images_per_s: None,
        };
        assert_eq!(
            summarise(&s, &[all])[0].generation_tokens_per_s,
            Some(125.0)
        );
    }

    #[test]
    fn power_needs_every_gpu_and_gives_images_per_watt() {
        let mut s = TelemetrySeries::default();
        s.gpu.gpus = vec![
            gpu(
                0,
                &[
                    (0.0, 50.0, Some(100.0)),
                    (1.0, 70.0, Some(200.0)),
                    (2.0, 90.0, Some(300.0)),
                ],
            ),
            gpu(
                1,
                &[
                    (0.0, 30.0, Some(100.0)),
                    (1.0, 10.0, None),
                    (2.0, 10.0, Some(100.0)),
                ],
            ),
        ];
        let w = LevelWindow {
            label: "c=1".into(),
            start_s: 0.0,
            end_s: 2.0,
            images_per_s: Some(3.0),
        };
        let l = &summarise(&s, &[w])[0];
        assert_eq!(l.gpu_samples, 3);
        // Per sample the mean over GPUs (40, 40, 50), then mean and max over samples.
        let util = l.gpu_util_pct.unwrap();
        assert!(
            (util.mean - 130.0 / 3.0).abs() < 1e-9 && util.max == 50.0,
            "{util:?}"
        );
        assert_eq!(
            l.gpu_mem_used_mib,
            Some(MeanMax {
                mean: 2000.0,
                max: 2000.0
            })
        );
        assert_eq!(l.gpu_mem_total_mib, Some(160000.0));
        // t=1 is left out: GPU 1 did not say its power.
        assert_eq!(
            l.power_w,
            Some(MeanMax {
                mean: 300.0,
                max: 400.0
            })
        );
        assert_eq!(l.images_per_s_per_watt, Some(0.01));
        let table = render_summary(std::slice::from_ref(l));
        assert!(table.contains("c=1"), "{table}");
        assert!(table.contains("300/400"), "{table}");
        assert!(table.contains("0.0100"), "{table}");
    }

    #[test]
    fn windows_from_instants() {
        let origin = Instant::now();
        let w = LevelWindow::between(
            "c=2",
            origin,
            origin + std::time::Duration::from_millis(1500),
            origin + std::time::Duration::from_secs(3),
        )
        .with_images_per_s(4.0);
        assert_eq!((w.start_s, w.end_s, w.images_per_s), (1.5, 3.0, Some(4.0)));
    }
}
