//! A project on disk with simulated answering targets and simulated judges, and the
//! `eyetest` binary run against it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

use eyetest::fixture::{encode_png, Truth};
use eyetest::results::{read_results, ResultRecord};

pub use crate::support::{text, write};

/// `model` answers "A red coat.", `model-wrong` "A blue coat."; `judge` grades by the
/// label's words, `judge-wrong` inverts its verdicts, `judge-rambling` never states one,
/// `judge-failing` answers HTTP 500 and `judge-down` listens nowhere.
pub const TARGETS: &str = r#"
[target.model]
backend = "sim"
model = "eyetest-sim"

[target.model-wrong]
backend = "sim"
model = "eyetest-sim"
behaviour = "wrong"

[target.judge]
backend = "sim"
model = "sim-judge"
default = false

[target.judge-wrong]
backend = "sim"
model = "sim-judge"
behaviour = "wrong"
default = false

[target.judge-rambling]
backend = "sim"
model = "sim-judge"
behaviour = "verbose"
default = false

[target.judge-failing]
backend = "sim"
model = "sim-judge"
behaviour = "failing"
retries = 0
default = false

[target.judge-down]
backend = "openai"
model = "judge-model"
base_url = "http://127.0.0.1:1/v1"
retries = 0
timeout_s = 5
default = false

[target.replayed]
backend = "replay"
replay_of = "model"
default = false
"#;

pub fn project(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let truth = Truth {
        kind: "attribute".into(),
        terse: "A red coat.".into(),
        verbose: "The skier is wearing a bright red coat.".into(),
        wrong: "A blue coat.".into(),
    };
    std::fs::create_dir_all(root.join("fixtures")).unwrap();
    std::fs::write(
        root.join("fixtures/coat.png"),
        encode_png(16, 16, &[120; 16 * 16 * 3], Some(&truth)).unwrap(),
    )
    .unwrap();
    write(root, "eyetest.toml", TARGETS);
    write(root, "specs/judge.toml", spec);
    dir
}

/// First answers are accepted as they come, so that a verdict is the rubric's.
pub fn eyetest(root: &Path, args: &[&str]) -> Output {
    crate::support::eyetest(root, args, "always")
        .output()
        .unwrap()
}

/// The record of `case` in the results file `file` (relative to `root`).
pub fn record_of(root: &Path, file: &str, case: &str) -> ResultRecord {
    let records = read_results(&root.join(file)).unwrap();
    records
        .into_iter()
        .rev()
        .find(|r| r.case == case)
        .unwrap_or_else(|| panic!("no record of {case} in {file}"))
}
