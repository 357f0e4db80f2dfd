//! Shared by the throughput benchmarks: the simulated engine as a separate process (so the
//! engine and the load generator do not share a runtime, as they would not in real use) and
//! a target pointing at it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use eyetest::target::Target;

/// `eyetest sim` running as a child process; killed when dropped.
pub struct SimProcess {
    child: Child,
    pub base_url: String,
}

impl SimProcess {
    /// Starts the release `eyetest sim` on a free port with extra `args`, and waits for its
    /// banner, which names the URL.
    pub fn start(args: &[&str]) -> SimProcess {
        let exe = env!("CARGO_BIN_EXE_eyetest");
        let mut child = Command::new(exe)
            .args(["sim", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe} sim: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("sim prints a banner");
        let base_url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in the sim's banner: {line:?}"))
            .to_string();
        SimProcess { child, base_url }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `openai` target at `base_url` with a generous timeout (a c=1000 level is slow to drain).
pub fn target(base_url: &str) -> Target {
    let config = toml::from_str(&format!(
        "backend = \"openai\"\nmodel = \"eyetest-sim\"\nbase_url = \"{base_url}\"\ntimeout_s = 600\n"
    ))
    .expect("bench target parses");
    Target::from_config("bench", &config).expect("bench target is valid")
}

/// Peak resident set size of this process in KiB (Linux `VmHWM`).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `nproc` and the CPU model, for the numbers' context.
pub fn machine() -> String {
    eyetest::throughput::probe::cpu_description()
}

/// CPU time (user + system) used so far by this process, or by its waited-for children.
/// The engine runs as a child too, but it is only waited for when it is dropped, so during
/// a bench the children's figure grows only by the short-lived tools it ran (oha).
pub fn cpu_s(who: Who) -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let which = match who {
        Who::Me => libc::RUSAGE_SELF,
        Who::Children => libc::RUSAGE_CHILDREN,
    };
    // SAFETY: `u` is a valid, writable rusage; getrusage only writes into it.
    if unsafe { libc::getrusage(which, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Whose CPU time [`cpu_s`] reads.
#[derive(Clone, Copy)]
pub enum Who {
    Me,
    Children,
}

/// CPU seconds (user + system) a running process has used, from `/proc/<pid>/stat`: how the
/// engine's share is told apart from the client's.
pub fn process_cpu_s(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|s| s.parse().ok())
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    f.iter().sum::<f64>() / hz
}

/// The 1-minute load average, for the context every figure needs on a shared machine.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Median, minimum and maximum of `v` (the median of an even count is the mean of the middle
/// two): what every bench reports, never the best run alone.
pub fn spread(v: &[f64]) -> (f64, f64, f64) {
    let min = v.iter().copied().fold(f64::NAN, f64::min);
    let max = v.iter().copied().fold(f64::NAN, f64::max);
    let median = eyetest::throughput::metrics::median(v).unwrap_or(f64::NAN);
    (median, min, max)
}
