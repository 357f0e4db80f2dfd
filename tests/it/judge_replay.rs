//! Judge calls are recorded with the answers and replayed offline: a replayed run re-checks
//! with the recorded verdict without reaching the judge, and a judge request that changed
//! (criteria, label, answer) or was never recorded is an error, as for answers.

use crate::judge_support;

use eyetest::results::Status;
use eyetest::rubric::judge::JudgeStatus;
use judge_support::{eyetest, project, record_of, text, write, TARGETS};

const SPEC: &str = r#"
[[case]]
name = "coat"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model", "replayed"]
rubric = { all = ["coat"], judge = { target = "judge", criteria = "Any shade of red counts." } }
"#;

#[test]
fn recorded_judge_verdicts_replay_offline_and_changes_are_caught() {
    let p = project(SPEC);
    let root = p.path();
    let live = eyetest(
        root,
        &[
            "run",
            "--target",
            "model",
            "--record",
            "--out",
            "live.jsonl",
        ],
    );
    assert!(live.status.success(), "{}", text(&live));
    let rec = root.join("golden/judge-recordings/judge/model/judge/coat.toml");
    let stored = std::fs::read_to_string(&rec).expect("judge recording written");
    assert!(stored.contains("PASS"), "{stored}");
    assert!(stored.contains("Any shade of red counts."), "{stored}");
    assert!(stored.contains("A red coat."), "{stored}");
    let live_judge = record_of(root, "live.jsonl", "coat")
        .verdict
        .unwrap()
        .judge
        .unwrap();
    assert!(!live_judge.replayed);

    // The judge can no longer be reached: a replayed run must not need it.
    let offline = TARGETS.replace(
        "[target.judge]\nbackend = \"sim\"",
        "[target.judge]\nbackend = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nretries = 0",
    );
    assert_ne!(offline, TARGETS);
    write(root, "eyetest.toml", &offline);
    let replay = eyetest(
        root,
        &["run", "--target", "replayed", "--out", "replay.jsonl"],
    );
    assert!(replay.status.success(), "{}", text(&replay));
    let r = record_of(root, "replay.jsonl", "coat");
    assert_eq!(r.status, Status::Passed);
    let j = r.verdict.unwrap().judge.unwrap();
    assert_eq!(j.status, JudgeStatus::Pass);
    assert!(j.replayed);
    assert_eq!(j.reason, live_judge.reason);

    // A changed criterion changes the judge's request: an error naming the change.
    write(
        root,
        "specs/judge.toml",
        &SPEC.replace("Any shade of red counts.", "Only scarlet counts."),
    );
    let changed = eyetest(
        root,
        &["run", "--target", "replayed", "--out", "changed.jsonl"],
    );
    assert!(!changed.status.success());
    let r = record_of(root, "changed.jsonl", "coat");
    assert_eq!(r.status, Status::Error);
    let why = r.reason.unwrap();
    assert!(why.contains("judge request differs"), "{why}");
    assert!(why.contains("prompt changed"), "{why}");
    assert!(why.contains("eyetest run --record --target model"), "{why}");

    // No recording at all: an error, never a pass.
    std::fs::remove_file(&rec).unwrap();
    write(root, "specs/judge.toml", SPEC);
    let missing = eyetest(
        root,
        &["run", "--target", "replayed", "--out", "missing.jsonl"],
    );
    assert!(!missing.status.success());
    let r = record_of(root, "missing.jsonl", "coat");
    assert_eq!(r.status, Status::Error);
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("no recording of judge `judge`"),
        "{:?}",
        r.reason
    );
}

#[test]
fn a_judge_shown_the_image_records_the_image_digest() {
    let p = project(&SPEC.replace("criteria = \"Any shade of red counts.\"", "image = true"));
    let root = p.path();
    let live = eyetest(
        root,
        &[
            "run",
            "--target",
            "model",
            "--record",
            "--out",
            "live.jsonl",
        ],
    );
    assert!(live.status.success(), "{}", text(&live));
    let stored =
        std::fs::read_to_string(root.join("golden/judge-recordings/judge/model/judge/coat.toml"))
            .unwrap();
    let answer_rec =
        std::fs::read_to_string(root.join("golden/recordings/model/judge/coat.toml")).unwrap();
    let sha = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("image_sha256"))
            .map(str::to_string)
            .unwrap()
    };
    assert_eq!(sha(&stored), sha(&answer_rec));
    assert!(stored.contains("The image is attached."), "{stored}");
}
