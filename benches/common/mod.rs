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
