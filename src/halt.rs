//! Stopping a run part-way without losing what it finished.
//!
//! The first SIGINT or SIGTERM *drains*: no new case starts, the ones in flight get a short
//! grace period to finish and be written, then whatever is still running is *aborted*. A
//! second signal exits at once. Results are already on disk line by line, so a drained run
//! loses only the cases it never started.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// How far a run has got towards stopping; each phase includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Running,
    /// Start nothing new; let what is in flight finish.
    Draining,
    /// Drop what is still in flight.
    Aborting,
}

/// A shared switch that moves a run from [`Phase::Running`] towards [`Phase::Aborting`],
/// never back.
#[derive(Debug, Clone)]
pub struct Halt {
    phase: Arc<watch::Sender<Phase>>,
}

impl Default for Halt {
    fn default() -> Self {
        Self {
            phase: Arc::new(watch::Sender::new(Phase::Running)),
        }
    }
}

impl Halt {
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    pub fn drain(&self) {
        self.advance(Phase::Draining);
    }

    pub fn abort(&self) {
        self.advance(Phase::Aborting);
    }

    fn advance(&self, to: Phase) {
        self.phase.send_if_modified(|p| {
            let later = to > *p;
            if later {
                *p = to;
            }
            later
        });
    }

    /// Resolves once the run has reached `phase` (at once if it already has).
    pub async fn reached(&self, phase: Phase) {
        let mut rx = self.phase.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|p| *p >= phase).await;
    }
}

/// Why a run stopped early: the signal, for the exit code shells expect (128 + signal number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Interrupt,
    Terminate,
}

impl Stop {
    pub fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
        }
    }
}

/// How long cases in flight may take to finish after the first signal; `EYETEST_GRACE_S`
/// overrides it (0 aborts them at once).
pub fn grace() -> Duration {
    // A bad value is refused when the command starts (`crate::env::check`).
    crate::env::grace_s()
        .ok()
        .flatten()
        .map_or(Duration::from_secs(5), Duration::from_secs_f64)
}

/// What the signal watcher has to say, as it acts: the caller decides how to show it (the
/// command line prints it to stderr). `Display` is the whole line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HaltNotice {
    /// The first signal: draining, with this much grace for the cases in flight.
    Draining { stop: Stop, grace: Duration },
    /// The second signal: the process exits right after this notice.
    Exiting { stop: Stop },
}

impl std::fmt::Display for HaltNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HaltNotice::Draining { stop, grace } => write!(
                f,
                "\neyetest: {} received: starting no new case; cases in flight get {:.1} s to \
                 finish (send it again to stop at once)",
                stop.name(),
                grace.as_secs_f64()
            ),
            HaltNotice::Exiting { stop } => {
                write!(f, "eyetest: {} again: stopping now", stop.name())
            }
        }
    }
}

/// Listens for SIGINT and SIGTERM on behalf of `halt`. Call it inside the runtime before
/// anything starts, so that a signal can never meet the default handler and kill the process
/// mid-write. The returned receiver says which signal stopped the run, if any did.
///
/// `notify` hears each step as it is taken. It is called from the watcher task, and for a
/// second signal just before the process exits (nobody returns to print after that), so it
/// should print at once and not block.
pub fn on_signals(
    halt: Halt,
    grace: Duration,
    notify: impl Fn(HaltNotice) + Send + 'static,
) -> std::io::Result<watch::Receiver<Option<Stop>>> {
    let (tx, rx) = watch::channel(None);
    let mut signals = Signals::install()?;
    tokio::spawn(async move {
        let first = signals.next().await;
        tx.send_replace(Some(first));
        notify(HaltNotice::Draining { stop: first, grace });
        halt.drain();
        tokio::select! {
            _ = tokio::time::sleep(grace) => halt.abort(),
            second = signals.next() => exit_now(second, &notify),
        }
        let second = signals.next().await;
        exit_now(second, &notify);
    });
    Ok(rx)
}

/// The second signal: no more waiting. Every finished result is already written; a
/// recording being written has its temp file removed so nothing half-written stays behind.
fn exit_now(stop: Stop, notify: &impl Fn(HaltNotice)) -> ! {
    crate::atomic::remove_pending_temp_files();
    notify(HaltNotice::Exiting { stop });
    std::process::exit(stop.exit_code().into())
}

#[cfg(unix)]
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) -> Stop {
        tokio::select! {
            _ = self.int.recv() => Stop::Interrupt,
            _ = self.term.recv() => Stop::Terminate,
        }
    }
}

/// Elsewhere only Ctrl-C exists.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn next(&mut self) -> Stop {
        let _ = tokio::signal::ctrl_c().await;
        Stop::Interrupt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_only_move_forward() {
        let halt = Halt::default();
        assert_eq!(halt.phase(), Phase::Running);
        halt.abort();
        halt.drain();
        assert_eq!(halt.phase(), Phase::Aborting);
        halt.reached(Phase::Draining).await;
    }

    #[tokio::test]
    async fn waiting_for_a_phase_wakes_when_it_comes() {
        let halt = Halt::default();
        let waiter = tokio::spawn({
            let halt = halt.clone();
            async move { halt.reached(Phase::Draining).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        halt.drain();
        waiter.await.unwrap();
    }
}
