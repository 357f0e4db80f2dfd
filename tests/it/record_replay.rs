//! Record a live run, replay it offline with identical verdicts, and see a replay refuse a
//! request that changed, naming the part that did.

use std::path::Path;
use std::process::Output;

use crate::support::{self, people_png, text, write, write_people};
use eyetest::results::{read_results, ResultRecord};

const SPEC: &str = r#"
[[case]]
name = "people"
image = "fixtures/people.png"
prompt = "How many people are there in this image?"
rubric = { number = 2 }

[[case]]
name = "colour"
image = "fixtures/people.png"
prompt = "What colour are they?"
rubric = { all = ["red"] }
"#;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_people(
        root,
        people_png(16, 90, "There are two people.", "Three people."),
    );
    write(
        root,
        "eyetest.toml",
        r#"
[target.live]
backend = "sim"
model = "eyetest-sim"
behaviour = "verbose"

[target.replayed]
backend = "replay"
replay_of = "live"
"#,
    );
    write(root, "specs/count.toml", SPEC);
    dir
}

/// First answers are accepted as they come (as after `cargo insta review`), so that a
/// verdict is the rubric's: a new snapshot would fail every case, live and replayed.
fn eyetest(root: &Path, args: &[&str]) -> Output {
    support::eyetest(root, args, "always").output().unwrap()
}

fn by_case(records: &[ResultRecord]) -> Vec<(String, eyetest::results::Status, Option<String>)> {
    let mut v: Vec<_> = records
        .iter()
        .map(|r| (r.case.clone(), r.status, r.answer.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn a_recorded_run_replays_with_identical_verdicts() {
    let p = project();
    let root = p.path();
    // One case passes and one fails: both verdicts must survive the round trip.
    let live = eyetest(
        root,
        &["run", "--target", "live", "--record", "--out", "live.jsonl"],
    );
    assert!(
        !live.status.success(),
        "the colour case fails: {}",
        text(&live)
    );
    let rec = root.join("golden/recordings/live/count/people.toml");
    let stored = std::fs::read_to_string(&rec).expect("recording written");
    assert!(stored.contains("There are two people."), "{stored}");
    assert!(
        stored.contains("How many people are there in this image?"),
        "{stored}"
    );

    let replay = eyetest(
        root,
        &["run", "--target", "replayed", "--out", "replay.jsonl"],
    );
    let out = text(&replay);
    assert!(!replay.status.success(), "{out}");
    let live = by_case(&read_results(&root.join("live.jsonl")).unwrap());
    let replayed = by_case(&read_results(&root.join("replay.jsonl")).unwrap());
    assert_eq!(live.len(), 2);
    assert!(
        live.iter()
            .any(|(_, s, _)| *s == eyetest::results::Status::Passed),
        "one case passes: {live:?}"
    );
    assert_eq!(
        live, replayed,
        "replay must reproduce every verdict and answer"
    );
}

#[test]
fn a_changed_prompt_makes_replay_fail_naming_the_prompt() {
    let p = project();
    let root = p.path();
    eyetest(
        root,
        &["run", "--target", "live", "--record", "--out", "live.jsonl"],
    );
    write(
        root,
        "specs/count.toml",
        &SPEC.replace("How many people are there", "How many persons are there"),
    );
    let o = eyetest(
        root,
        &["run", "--target", "replayed", "people", "--out", "r.jsonl"],
    );
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    let r = &read_results(&root.join("r.jsonl")).unwrap()[0];
    let reason = r.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("prompt changed: recorded \"How many people are there in this image?\", now \"How many persons are there in this image?\""),
        "{reason}"
    );
    assert!(
        !reason.contains("image changed"),
        "only the prompt changed: {reason}"
    );
}

#[test]
fn replay_without_a_recording_says_how_to_make_one() {
    let p = project();
    let o = eyetest(
        p.path(),
        &["run", "--target", "replayed", "--out", "r.jsonl"],
    );
    assert!(!o.status.success());
    let r = &read_results(&p.path().join("r.jsonl")).unwrap()[0];
    let reason = r.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("no recording of `count::"), "{reason}");
    assert!(
        reason.contains("eyetest run --record --target live"),
        "{reason}"
    );
}
