//! Killing `eyetest run` half-way loses nothing it finished: a real child process gets a real
//! SIGINT or SIGTERM while a slow simulated target is answering, and afterwards every line
//! of the results file is a whole record, their number is the number the run reported, the
//! exit code says which signal stopped it, and no temp file is left anywhere.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use eyetest::fixture::encode_png;
use eyetest::record::Recording;
use eyetest::results::ResultRecord;

const CASES: usize = 30;

/// `CASES` cases against a sim target answering after `ttft_ms`, two at a time.
fn project(ttft_ms: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs")).unwrap();
    std::fs::create_dir_all(root.join("fixtures")).unwrap();
    let png = encode_png(8, 8, &[200; 8 * 8 * 3], None).unwrap();
    std::fs::write(root.join("fixtures/grey.png"), png).unwrap();
    std::fs::write(
        root.join("eyetest.toml"),
        format!(
            "[target.slow]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\nconcurrency = 2\n\
             latency = {{ ttft_ms = {ttft_ms} }}\n"
        ),
    )
    .unwrap();
    let mut spec = String::from("[defaults]\ntargets = [\"slow\"]\n");
    for i in 0..CASES {
        spec.push_str(&format!(
            "\n[[case]]\nname = \"c{i:02}\"\nimage = \"fixtures/grey.png\"\n\
             prompt = \"What is in image {i}?\"\nrubric = {{ max_words = 1000 }}\n"
        ));
    }
    std::fs::write(root.join("specs/many.toml"), spec).unwrap();
    dir
}

/// A running `eyetest run --record` whose output lines arrive on a channel.
struct Run {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

fn start(root: &Path, grace_s: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eyetest"))
        .arg("--root")
        .arg(root)
        .args(["run", "--record", "--out", "results.jsonl"])
        .env_remove("EYETEST_TARGETS")
        .env("EYETEST_GRACE_S", grace_s)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("eyetest starts");
    let (tx, lines) = channel();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(tx.send(l)))
    });
    std::thread::spawn(move || {
        BufReader::new(err)
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(tx2.send(l)))
    });
    Run {
        child,
        lines,
        seen: Vec::new(),
    }
}

impl Run {
    /// Waits (at most 30 s) for an output line containing `text`.
    fn wait_for_line(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.iter().any(|l| l.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no line with {text:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn signal(&self, sig: libc::c_int) {
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the child to exit within `limit`, then collects the rest of its output.
    fn wait(mut self, limit: Duration) -> (ExitStatus, Duration, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("still running after {limit:?}:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = start.elapsed();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status, took, self.seen.join("\n"))
    }
}

fn result_lines(root: &Path) -> Vec<String> {
    match std::fs::read_to_string(root.join("results.jsonl")) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

fn wait_for_results(root: &Path, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while result_lines(root).len() < at_least {
        assert!(Instant::now() < deadline, "no results written");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every line a whole record, every recording whole, no temp file anywhere; returns the
/// number of records.
fn assert_nothing_half_written(root: &Path) -> usize {
    let lines = result_lines(root);
    for line in &lines {
        serde_json::from_str::<ResultRecord>(line)
            .unwrap_or_else(|e| panic!("torn result line ({e}): {line}"));
    }
    let mut files = Vec::new();
    files_under(root, &mut files);
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(!name.ends_with(".tmp"), "left behind: {}", f.display());
        if f.starts_with(root.join("golden/recordings")) {
            assert!(Recording::load(f).unwrap().is_some(), "{}", f.display());
        }
    }
    lines.len()
}

/// "stopped by SIGINT: 7 of 30 result(s) finished" -> 7
fn finished_count(output: &str, signal: &str) -> usize {
    let prefix = format!("stopped by {signal}: ");
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no summary for {signal}:\n{output}"));
    line.split(" of ").next().unwrap().parse().unwrap()
}

fn interrupt_half_way(sig: libc::c_int, name: &str, code: i32) {
    let p = project(300);
    let root = p.path();
    let mut run = start(root, "5");
    run.wait_for_line("running 30 case x target pair(s)");
    wait_for_results(root, 3);
    run.signal(sig);
    let (status, _, output) = run.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(code), "{output}");
    let written = assert_nothing_half_written(root);
    assert_eq!(written, finished_count(&output, name), "{output}");
    assert!(
        (3..CASES).contains(&written),
        "stopped half-way, yet {written} of {CASES} written:\n{output}"
    );
    assert!(output.contains(&format!("{name} received")), "{output}");
}

#[test]
fn sigint_half_way_keeps_every_finished_result_and_exits_130() {
    interrupt_half_way(libc::SIGINT, "SIGINT", 130);
}

#[test]
fn sigterm_half_way_keeps_every_finished_result_and_exits_143() {
    interrupt_half_way(libc::SIGTERM, "SIGTERM", 143);
}

/// Answers take 20 s; the grace period would be 30 s; the second signal must not wait.
#[test]
fn a_second_signal_exits_at_once() {
    let p = project(20_000);
    let root = p.path();
    let mut run = start(root, "30");
    run.wait_for_line("running 30 case x target pair(s)");
    run.signal(libc::SIGINT);
    run.wait_for_line("SIGINT received");
    run.signal(libc::SIGINT);
    let (status, took, output) = run.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{output}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(assert_nothing_half_written(root), 0);
}

/// Answers take 20 s, the grace period 0.3 s: the cases in flight are dropped, not awaited.
#[test]
fn cases_in_flight_past_the_grace_period_are_dropped() {
    let p = project(20_000);
    let root = p.path();
    let mut run = start(root, "0.3");
    run.wait_for_line("running 30 case x target pair(s)");
    // Time for the first two requests to be sent: they are what the grace period is about.
    std::thread::sleep(Duration::from_millis(1500));
    run.signal(libc::SIGTERM);
    let (status, took, output) = run.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(143), "{output}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(assert_nothing_half_written(root), 0);
    assert_eq!(finished_count(&output, "SIGTERM"), 0);
    assert!(
        output.contains("28 not started, 2 in flight dropped"),
        "{output}"
    );
}
