//! Rate profiles end to end: `constant`, `poisson` and `gamma` levels at the spec's rates,
//! and GuideLLM's `sweep`, which first finds the range and then measures inside it:
//!
//! 1. a **throughput probe**: a closed loop at `max_concurrency`, whose completions per
//!    second are the most the endpoint sustains with that many in flight;
//! 2. a **synchronous probe**: one request at a time, the least it does;
//! 3. `sweep_points` **constant rates** evenly spaced above the synchronous rate up to the
//!    throughput rate, each an open-loop level like any other.
//!
//! The probes run once (before the first repeat); the rates then run `repeats` times, so
//! every rate has the same repeats for the gate and the SLOs. The **max sustainable rate**
//! is the highest measured rate whose completions kept up (at least [`KEPT_UP`] of the
//! asked rate, over all repeats), with failures within the limit and every SLO met at it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::arrival::{level_seed, sweep_rates, Arrival};
use super::level::{LevelKey, ProfileKind};
use super::load::{
    run_level_with, span_label, LevelSpan, Progress, ProgressEvent, SweepError, SweepResult,
    Warmup, Workload,
};
use super::metrics::LevelMetrics;
use super::openloop::{run_rate_level, RateLevel, Stop};
use super::recorder::{GoodputLimits, LevelRecord, Recorder};
use super::sig3;
use super::slo::SloOutcome;
use super::verdict::GateOutcome;
use crate::backend::openai::OpenAiClient;

/// Share of the asked rate that completions must reach for a rate to count as sustained:
/// a level's completions are counted from first send to last completion, so even a
/// server that keeps up loses the last request's latency from the rate.
pub const KEPT_UP: f64 = 0.9;

/// What a rate profile needs besides the client and the bodies.
#[derive(Debug, Clone)]
pub struct RatePlan {
    pub arrival: Arrival,
    /// Measured requests per rate (one value for every sweep level); empty with a duration.
    pub requests: Vec<usize>,
    /// Unmeasured requests before each level; `None`: about a second of arrivals.
    pub warmup: Option<usize>,
    pub repeats: usize,
    pub goodput: Option<GoodputLimits>,
}

/// What the sweep's probes found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSummary {
    /// Completions per second of the synchronous probe (c = 1).
    pub synchronous_per_s: f64,
    /// Completions per second of the throughput probe (c = `max_concurrency`).
    pub throughput_per_s: f64,
    pub max_concurrency: usize,
    /// The rates measured between them.
    pub rates: Vec<f64>,
    /// The highest measured rate that was sustained (see the module docs); `None` when
    /// none was.
    pub max_sustainable: Option<f64>,
}

impl RatePlan {
    fn stop(&self, level: usize) -> Stop {
        match self.arrival.duration {
            Some(d) => Stop::Duration(d),
            None => Stop::Requests(
                self.requests
                    .get(level)
                    .or(self.requests.first())
                    .copied()
                    .unwrap_or(1),
            ),
        }
    }
}

/// Runs a rate profile. `Err` when a warm-up failed entirely or the sweep's throughput
/// probe completed nothing (no range to sweep).
pub async fn run(
    client: &OpenAiClient,
    workload: &Arc<Workload>,
    plan: &RatePlan,
    progress: &Progress,
) -> Result<(SweepResult, Option<SweepSummary>), SweepError> {
    let mut out = SweepResult::default();
    let mut pooled: Vec<(LevelKey, Duration, Recorder, Option<f64>)> = Vec::new();
    let (rates, summary) = if plan.arrival.profile == ProfileKind::Sweep {
        let (rates, summary) =
            probes(client, workload, plan, progress, &mut out, &mut pooled).await?;
        (rates, Some(summary))
    } else {
        (plan.arrival.rates.clone(), None)
    };
    let cap = plan.arrival.max_concurrency;
    for repeat in 0..plan.repeats {
        for (li, &rate) in rates.iter().enumerate() {
            let key = LevelKey::new(cap, Some(rate));
            let w = plan
                .warmup
                .unwrap_or_else(|| (rate.ceil() as usize).clamp(1, cap));
            warm_up(
                client,
                workload,
                (w.min(cap), w),
                Some(rate),
                repeat,
                plan,
                progress,
                &mut out,
            )
            .await?;
            progress.emit(ProgressEvent::Phase {
                repeat,
                repeats: plan.repeats,
                concurrency: cap,
                requests: match plan.stop(li) {
                    Stop::Requests(n) => n,
                    _ => 0,
                },
                warmup: false,
            });
            let level = RateLevel {
                rate,
                shape: plan.arrival.shape(),
                seed: level_seed(plan.arrival.seed, li, repeat),
                stop: plan.stop(li),
                max_concurrency: cap,
            };
            let t0 = Instant::now();
            let r = run_rate_level(client, workload, level, plan.goodput.clone(), progress).await;
            let mut m = LevelMetrics::from_run(&r.record);
            m.rate = Some(rate);
            m.sent_per_s = r.sent_per_s;
            record_level(
                &mut out,
                &mut pooled,
                key,
                t0,
                repeat,
                plan.repeats,
                m,
                r.record,
                r.sent_per_s,
            );
        }
    }
    out.pooled = pooled
        .iter()
        .map(|(key, wall, r, sent)| {
            let mut m = LevelMetrics::from_recorder(key.concurrency, *wall, r);
            m.rate = key.rate();
            m.sent_per_s = *sent;
            m
        })
        .collect();
    out.pooled.sort_by_key(LevelKey::of);
    Ok((out, summary))
}

/// The sweep's two probes, measured once; returns the rates to measure.
async fn probes(
    client: &OpenAiClient,
    workload: &Arc<Workload>,
    plan: &RatePlan,
    progress: &Progress,
    out: &mut SweepResult,
    pooled: &mut Vec<(LevelKey, Duration, Recorder, Option<f64>)>,
) -> Result<(Vec<f64>, SweepSummary), SweepError> {
    let cap = plan.arrival.max_concurrency;
    let mut per_s = Vec::new();
    // Throughput first, as GuideLLM does; with a cap of 1 the two probes are one.
    let levels: Vec<usize> = if cap > 1 { vec![cap, 1] } else { vec![1] };
    for c in levels {
        let w = plan.warmup.unwrap_or(c);
        warm_up(client, workload, (c, w), None, 0, plan, progress, out).await?;
        let stop = plan.stop(0);
        progress.emit(ProgressEvent::Phase {
            repeat: 0,
            repeats: plan.repeats,
            concurrency: c,
            requests: match stop {
                Stop::Requests(n) => n,
                _ => 0,
            },
            warmup: false,
        });
        let t0 = Instant::now();
        let record = match stop {
            Stop::Requests(n) => {
                run_level_with(client, workload, c, n, plan.goodput.clone(), progress).await
            }
            // A closed loop for a duration: every request due at once, `c` in flight,
            // no new send once the duration is over.
            Stop::Duration(d) | Stop::Elapsed(d) => {
                let level = RateLevel {
                    rate: f64::INFINITY,
                    shape: None,
                    seed: 0,
                    stop: Stop::Elapsed(d),
                    max_concurrency: c,
                };
                run_rate_level(client, workload, level, plan.goodput.clone(), progress)
                    .await
                    .record
            }
        };
        let m = LevelMetrics::from_run(&record);
        per_s.push(m.images_per_s);
        record_level(out, pooled, LevelKey::closed(c), t0, 0, 1, m, record, None);
    }
    let throughput = per_s[0];
    let synchronous = *per_s.last().unwrap_or(&throughput);
    if throughput <= 0.0 {
        return Err(SweepError::ProbeCompletedNothing { concurrency: cap });
    }
    let rates = sweep_rates(synchronous, throughput, plan.arrival.sweep_points);
    Ok((
        rates.clone(),
        SweepSummary {
            synchronous_per_s: synchronous,
            throughput_per_s: throughput,
            max_concurrency: cap,
            rates,
            max_sustainable: None,
        },
    ))
}

#[allow(clippy::too_many_arguments)]
fn record_level(
    out: &mut SweepResult,
    pooled: &mut Vec<(LevelKey, Duration, Recorder, Option<f64>)>,
    key: LevelKey,
    t0: Instant,
    repeat: usize,
    repeats: usize,
    m: LevelMetrics,
    run: LevelRecord,
    sent_per_s: Option<f64>,
) {
    out.spans.push(LevelSpan {
        label: span_label(&key.to_string(), repeat, repeats),
        start: t0,
        end: Instant::now(),
        images_per_s: m.images_per_s,
    });
    out.runs.push(m);
    match pooled.iter_mut().find(|p| p.0 == key) {
        Some(p) => {
            p.1 += run.wall;
            p.2.merge(&run.recorder);
            // Pooled send rate: the mean of the repeats' (each repeat has its own clock).
            p.3 = match (p.3, sent_per_s) {
                (Some(a), Some(b)) => Some((a * repeat as f64 + b) / (repeat + 1) as f64),
                (a, b) => a.or(b),
            };
        }
        None => pooled.push((key, run.wall, run.recorder, sent_per_s)),
    }
}

/// Unmeasured requests before a level, closed loop at `(concurrency, requests)`; their
/// failures are kept, and a warm-up where all failed stops the run.
#[allow(clippy::too_many_arguments)]
async fn warm_up(
    client: &OpenAiClient,
    workload: &Arc<Workload>,
    (c, n): (usize, usize),
    rate: Option<f64>,
    repeat: usize,
    plan: &RatePlan,
    progress: &Progress,
    out: &mut SweepResult,
) -> Result<(), SweepError> {
    if n == 0 {
        return Ok(());
    }
    progress.emit(ProgressEvent::Phase {
        repeat,
        repeats: plan.repeats,
        concurrency: c,
        requests: n,
        warmup: true,
    });
    let w = run_level_with(client, workload, c.max(1), n, None, progress).await;
    let r = &w.recorder;
    let record = Warmup {
        repeat,
        concurrency: c,
        sent: (r.completed + r.failed) as usize,
        failed: r.failed as usize,
        errors: r.sorted_errors(),
        rate,
    };
    if let Some(e) = SweepError::warmup(&record, LevelKey::new(c, rate), plan.repeats) {
        return Err(e);
    }
    out.warmups.push(record);
    Ok(())
}

/// The highest rate level (pooled over repeats) whose completions reached [`KEPT_UP`] of
/// its rate, with failures within the limit and every SLO met there.
pub fn max_sustainable(
    pooled: &[LevelMetrics],
    gate: &GateOutcome,
    slo: Option<&SloOutcome>,
) -> Option<f64> {
    pooled
        .iter()
        .filter_map(|m| {
            let rate = m.rate?;
            let key = LevelKey::of(m);
            let failures_ok = gate.level_at(key).is_none_or(|l| l.failures_ok);
            let slo_ok = slo.is_none_or(|s| s.level_at(key).is_none_or(|l| l.passed));
            (m.images_per_s >= KEPT_UP * rate && failures_ok && slo_ok).then_some(rate)
        })
        .fold(None, |a: Option<f64>, r| Some(a.map_or(r, |a| a.max(r))))
}

impl SweepSummary {
    /// Lines for the report: the range the probes found and the answer.
    pub fn render(&self) -> String {
        let mut s = format!(
            "sweep: synchronous probe {} images/s, throughput probe (c={}) {} images/s; measured rates {}\n",
            sig3(self.synchronous_per_s),
            self.max_concurrency,
            sig3(self.throughput_per_s),
            self.rates
                .iter()
                .map(|r| LevelKey::new(self.max_concurrency, Some(*r)).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        s.push_str(&match self.max_sustainable {
            Some(r) => format!(
                "sweep: max sustainable {} (completions at least {}% of the rate, failures within the limit, SLOs met)\n",
                LevelKey::new(self.max_concurrency, Some(r)),
                (KEPT_UP * 100.0) as u32
            ),
            None => "sweep: no measured rate was sustained\n".to_string(),
        });
        s
    }
}
