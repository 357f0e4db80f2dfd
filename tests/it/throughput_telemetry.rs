//! Telemetry wired into sweeps: `eyetest bench` and the `cargo test` harness sample the
//! simulated engine's own `/metrics` and a fake `nvidia-smi` while a spec's levels run, and
//! store, summarise and plot the series. The fake is a shell script in a temp dir; the
//! bench test puts it first on `PATH` of the child `eyetest` process only (the test
//! process's environment is never changed), the harness test names it by path.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Mutex, MutexGuard};

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fake `nvidia-smi` answering only the sampler's query: one GPU drawing 500 W.
fn fake_nvidia_smi(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("nvidia-smi");
    std::fs::write(
        &path,
        r#"#!/bin/sh
case "$1" in
  --query-gpu=index,name,utilization.gpu,memory.used,memory.total,power.draw) ;;
  *) echo "unexpected arguments: $*" >&2; exit 2 ;;
esac
echo "0, NVIDIA H200, 87, 120000, 143771, 500"
"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn project(nvidia_smi: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs")).unwrap();
    std::fs::write(
        root.join("eyetest.toml"),
        "[target.fast-sim]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\nlatency = { ttft_ms = 20, tpot_ms = 2 }\nmax_batch = 2\n",
    )
    .unwrap();
    std::fs::write(
        root.join("specs/tp.toml"),
        format!(
            r#"[[throughput]]
name = "watch"
targets = ["fast-sim"]
images = {{ random = {{ width = 64, height = 64, count = 2 }} }}
prompt = "Describe."
max_tokens = 8
ignore_eos = true
profile = "constant"
rates = [10.0, 40.0]
requests = 30
repeats = 1
telemetry = {{ metrics_url = "auto", nvidia_smi = {nvidia_smi}, interval_ms = 50 }}
"#
        ),
    )
    .unwrap();
    dir
}

fn report_json(root: &Path) -> serde_json::Value {
    let p = root.join("target/eyetest/throughput/tp/watch@fast-sim.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// What every wired run must have stored: both sources sampled, one summary per level
/// with the engine's queue and images/s per watt from the fake's 500 W.
fn check_stored(root: &Path) {
    let json = report_json(root);
    let t = &json["telemetry"];
    assert_eq!(t["series"]["engine"]["status"]["state"], "sampled", "{t:#}");
    assert_eq!(t["series"]["gpu"]["status"]["state"], "sampled", "{t:#}");
    let names: Vec<&str> = t["series"]["engine"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"vllm:num_requests_running"), "{names:?}");
    let levels = t["levels"].as_array().unwrap();
    let labels: Vec<&str> = levels.iter().filter_map(|l| l["label"].as_str()).collect();
    assert_eq!(labels, ["rate=10/s", "rate=40/s"], "{t:#}");
    for l in levels {
        assert!(l["engine_samples"].as_u64().unwrap() >= 2, "{l:#}");
        let ips = l["images_per_s"].as_f64().unwrap();
        let per_watt = l["images_per_s_per_watt"].as_f64().unwrap();
        assert!((per_watt - ips / 500.0).abs() < 1e-9, "{l:#}");
        assert_eq!(l["power_w"]["mean"], 500.0, "{l:#}");
    }
    // At 40/s against a batch of 2 answering in ~36 ms the engine is kept busy.
    assert!(
        levels[1]["running"]["max"].as_f64().unwrap() >= 1.0,
        "{:#}",
        levels[1]
    );
    let svg = root.join("target/eyetest/throughput/tp/watch@fast-sim-telemetry.svg");
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.contains("rate=40/s"), "windows labelled");
}

#[test]
fn bench_samples_the_sim_metrics_and_a_fake_nvidia_smi_on_path() {
    let _g = serial();
    let bin = tempfile::tempdir().unwrap();
    fake_nvidia_smi(bin.path());
    let dir = project("true");
    let root = dir.path();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_eyetest"))
        .arg("--root")
        .arg(root)
        .args(["bench", "watch"])
        .env("PATH", path)
        .env_remove("EYETEST_TARGETS")
        .env_remove("EYETEST_THROUGHPUT_OUT")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for needle in ["telemetry:", "img/s/W", "rate=10/s", "rate=40/s"] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    assert!(!text.contains("no GPU telemetry"), "{text}");
    check_stored(root);
}

#[test]
fn the_cargo_test_harness_samples_too() {
    let _g = serial();
    let bin = tempfile::tempdir().unwrap();
    let smi = fake_nvidia_smi(bin.path());
    let dir = project(&format!("\"{}\"", smi.display()));
    let root = dir.path();
    let args = libtest_mimic::Arguments::from_iter(["throughput", "--exact", "tp::watch@fast-sim"]);
    let code = eyetest::harness::throughput::run_tests(root, args);
    assert_eq!(code, ExitCode::SUCCESS);
    check_stored(root);
}
