//! One open-loop level: requests leave at their scheduled arrival times
//! ([`super::arrival::Schedule`]) whether or not earlier ones have finished, at most
//! `max_concurrency` in flight.
//!
//! `max_concurrency` workers take request numbers in order; a worker sleeps until its
//! request is due and sends it. When every worker is busy, a due request waits for one to
//! come free: that wait, measured from the **scheduled** arrival (not from when a worker
//! got to it), is the request's `queued` time. Latencies (TTFT, E2E) count from the send,
//! as vLLM's do; `queued + e2e` is what a user arriving on schedule would have seen. A
//! cap that never binds gives queue delays of a scheduler tick (well under a millisecond
//! to a millisecond); a binding one shows up as growing delays, so an overloaded client
//! cannot pass for a fast server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::arrival::Schedule;
use super::load::{send_one, Progress, Workload};
use super::recorder::{GoodputLimits, LevelRecord, Recorder};
use super::sample::Sample;
use crate::backend::openai::OpenAiClient;

/// When a rate level stops scheduling requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    Requests(usize),
    /// No arrival scheduled at or after this offset.
    Duration(Duration),
    /// No send once this long has passed since the level started: for a closed loop
    /// (every request due at once), where the schedule cannot end it.
    Elapsed(Duration),
}

/// A rate level's schedule and cap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLevel {
    pub rate: f64,
    /// Gamma shape, `None` for constant intervals.
    pub shape: Option<f64>,
    pub seed: u64,
    pub stop: Stop,
    pub max_concurrency: usize,
}

/// What one rate level measured.
#[derive(Debug, Clone)]
pub struct RateRecord {
    /// `concurrency` is the cap; `wall` first send to last completion.
    pub record: LevelRecord,
    pub sent: usize,
    /// Requests sent per second, first to last send (`None` with fewer than two).
    pub sent_per_s: Option<f64>,
}

struct Due {
    schedule: Schedule,
    index: usize,
}

impl Due {
    /// The next request number and its due offset, or `None` when the level is over.
    fn take(&mut self, stop: Stop, start: Instant) -> Option<(usize, Duration)> {
        let offset = self.schedule.next_offset();
        let i = self.index;
        let over = match stop {
            Stop::Requests(n) => i >= n,
            Stop::Duration(d) => offset >= d,
            Stop::Elapsed(d) => start.elapsed() >= d,
        };
        if over {
            return None;
        }
        self.index += 1;
        Some((i, offset))
    }
}

/// Sends one level's requests on schedule, at most `level.max_concurrency` in flight.
pub async fn run_rate_level(
    client: &OpenAiClient,
    workload: &Arc<Workload>,
    level: RateLevel,
    goodput: Option<GoodputLimits>,
    progress: &Progress,
) -> RateRecord {
    let due = Arc::new(Mutex::new(Due {
        schedule: Schedule::new(level.rate, level.shape, level.seed),
        index: 0,
    }));
    let recorder = Arc::new(Mutex::new(Recorder::new(goodput)));
    let start = Instant::now();
    let workers: Vec<_> = (0..level.max_concurrency.max(1))
        .map(|_| {
            tokio::spawn(worker(
                client.clone(),
                workload.clone(),
                due.clone(),
                level.stop,
                start,
                recorder.clone(),
                progress.clone(),
            ))
        })
        .collect();
    let mut sends: Vec<Instant> = Vec::new();
    let mut last_done: Option<Instant> = None;
    let mut lost = Vec::new();
    for w in workers {
        match w.await {
            Ok(out) => {
                sends.extend(out.first_send);
                sends.extend(out.last_send);
                last_done = last_done.max(out.last_done);
            }
            Err(e) => lost.push(Sample {
                ok: false,
                error: Some(format!("load generator worker failed: {e}")),
                ..Default::default()
            }),
        }
    }
    let mut recorder = match Arc::try_unwrap(recorder) {
        Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
        Err(shared) => shared.lock().unwrap_or_else(|p| p.into_inner()).clone(),
    };
    lost.iter().for_each(|s| recorder.record(s));
    let sent = due.lock().unwrap_or_else(|p| p.into_inner()).index;
    let first = sends.iter().min().copied();
    let last = sends.iter().max().copied();
    let wall = match (first, last_done) {
        (Some(f), Some(l)) => l.saturating_duration_since(f),
        _ => Duration::ZERO,
    };
    // n sends span n - 1 intervals.
    let sent_per_s = match (first, last) {
        (Some(f), Some(l)) if sent > 1 && l > f => {
            Some((sent - 1) as f64 / l.duration_since(f).as_secs_f64())
        }
        _ => None,
    };
    RateRecord {
        record: LevelRecord {
            concurrency: level.max_concurrency,
            wall,
            recorder,
        },
        sent,
        sent_per_s,
    }
}

#[derive(Default)]
struct WorkerOut {
    first_send: Option<Instant>,
    last_send: Option<Instant>,
    last_done: Option<Instant>,
}

async fn worker(
    client: OpenAiClient,
    workload: Arc<Workload>,
    due: Arc<Mutex<Due>>,
    stop: Stop,
    start: Instant,
    recorder: Arc<Mutex<Recorder>>,
    progress: Progress,
) -> WorkerOut {
    let mut out = WorkerOut::default();
    loop {
        let next = due
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(stop, start);
        let Some((i, offset)) = next else {
            return out;
        };
        let scheduled = start + offset;
        tokio::time::sleep_until(scheduled.into()).await;
        let (sent, done) = send_one(&client, &workload, i, scheduled, &recorder, &progress).await;
        out.first_send.get_or_insert(sent);
        out.last_send = Some(sent);
        out.last_done = Some(done);
    }
}
