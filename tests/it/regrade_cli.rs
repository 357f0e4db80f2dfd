//! `eyetest regrade` and `eyetest agreement` on the results of a real run: the real binary
//! runs a throwaway project against the simulated engine over loopback, then re-grades the
//! stored answers after a rubric edit and compares them with human grades, without asking the
//! model again.

use std::path::Path;
use std::process::Output;

use crate::support::{self, people_png, text, write, write_people};

const SPEC: &str = r#"
[[case]]
name = "people"
image = "fixtures/people.png"
prompt = "How many people are there in this image?"
label = "Two people"
rubric = RUBRIC
"#;

fn spec(root: &Path, rubric: &str) {
    write(
        root,
        "specs/study/count.toml",
        &SPEC.replace("RUBRIC", rubric),
    );
}

/// Three simulated targets answering one image of two people: tersely, verbosely with a
/// distracting count, and wrongly.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_people(
        root,
        people_png(
            32,
            250,
            "There are two people in this image, one of them holding 3 tennis balls.",
            "There are three people: two players and one umpire.",
        ),
    );
    let mut config = String::new();
    for b in ["terse", "verbose", "wrong"] {
        config.push_str(&format!(
            "[target.sim-{b}]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\nbehaviour = \"{b}\"\n\n"
        ));
    }
    write(root, "eyetest.toml", &config);
    // The rubric a hurried author writes: "two" anywhere, and no "three".
    spec(root, r#"{ any = ["two", "2"] }"#);
    dir
}

fn eyetest(root: &Path, args: &[&str]) -> Output {
    support::eyetest(root, args, "no")
        .output()
        .expect("eyetest runs")
}

const GRADES: &str = r#"
[[grade]]
case = "study/count::people"
target = "sim-terse"
correct = true

[[grade]]
case = "study/count::people"
target = "sim-verbose"
correct = true

[[grade]]
case = "study/count::people"
target = "sim-wrong"
correct = false
note = "counts the umpire: three people"
"#;

#[test]
fn regrade_and_agreement_on_a_real_run() {
    let dir = project();
    let root = dir.path();
    let run = eyetest(
        root,
        &[
            "run",
            "--target",
            "sim-terse,sim-verbose,sim-wrong",
            "--out",
            "results.jsonl",
        ],
    );
    let records = std::fs::read_to_string(root.join("results.jsonl")).unwrap();
    assert_eq!(records.lines().count(), 3, "{}", text(&run));
    // The hurried rubric passes the wrong answer ("two players"). (The status fails: the
    // project has no snapshots yet, and a new snapshot fails a run as it fails cargo test.)
    assert!(
        records
            .lines()
            .all(|l| l.contains("\"verdict\":{\"passed\":true")),
        "{records}"
    );

    // Nothing changed: nothing flips.
    let same = eyetest(
        root,
        &["regrade", "--results", "results.jsonl", "--fail-on-flip"],
    );
    assert!(same.status.success(), "{}", text(&same));
    assert!(
        text(&same).contains("regraded 3 answer(s) offline: 3 pass now, 0 verdict(s) flipped"),
        "{}",
        text(&same)
    );

    // The human grades disagree with the hurried rubric on the wrong answer.
    write(root, "grades/study.toml", GRADES);
    let agree = eyetest(
        root,
        &["agreement", "--results", "results.jsonl", "--min", "90"],
    );
    let out = text(&agree);
    assert!(!agree.status.success(), "below --min must exit 1: {out}");
    assert!(out.contains("agreement: 66.7% (2 of 3 answers)"), "{out}");
    assert!(
        out.contains("  human wrong              1            0"),
        "{out}"
    );
    assert!(
        out.contains("DISAGREE study/count::people@sim-wrong"),
        "{out}"
    );
    assert!(out.contains("human says wrong, rubric passes"), "{out}");
    assert!(
        out.contains("note: counts the umpire: three people"),
        "{out}"
    );
    assert!(
        out.contains("specs/study/count.toml:2"),
        "the rubric's place: {out}"
    );
    assert!(
        out.contains("There are three people: two players and one umpire."),
        "{out}"
    );
    assert!(
        out.contains("grades/study.toml:12"),
        "the grade's place: {out}"
    );

    // The author switches to the stated count: the wrong answer's verdict flips, offline.
    spec(root, r#"{ count = { people = 2 } }"#);
    let flipped = eyetest(
        root,
        &["regrade", "--results", "results.jsonl", "--fail-on-flip"],
    );
    let out = text(&flipped);
    assert!(!flipped.status.success(), "{out}");
    assert!(
        out.contains("FLIP study/count::people@sim-wrong: passed then, fails now"),
        "{out}"
    );
    assert!(
        out.contains("✗ count 2 \"people\": states 3 as \"three people\" at char 11"),
        "{out}"
    );
    assert!(
        !out.contains("@sim-verbose: passed then"),
        "3 balls is not a count of people: {out}"
    );
    assert!(
        out.contains("regraded 3 answer(s) offline: 2 pass now, 1 verdict(s) flipped"),
        "{out}"
    );

    let agree = eyetest(
        root,
        &["agreement", "--results", "results.jsonl", "--min", "90"],
    );
    assert!(agree.status.success(), "{}", text(&agree));
    assert!(
        text(&agree).contains("agreement: 100.0% (3 of 3 answers)"),
        "{}",
        text(&agree)
    );
}

#[test]
fn bad_grades_and_missing_answers_say_what_to_do() {
    let dir = project();
    let root = dir.path();
    write(
        root,
        "grades/bad.toml",
        "[[grade]]\ncase = \"study/count::people\"\ntarget = \"sim-terse\"\ncorect = true\n",
    );
    let out = eyetest(root, &["agreement"]);
    let msg = text(&out);
    assert!(!out.status.success());
    assert!(
        msg.contains("grades/bad.toml:4: unknown field `corect`"),
        "{msg}"
    );

    write(root, "grades/bad.toml", "[[grade]]\ncase = \"study/count::nope\"\ntarget = \"sim-terse\"\ncorrect = true\n\n[[grade]]\ncase = \"study/count::people\"\ntarget = \"sim-terse\"\ncorrect = true\n");
    let out = eyetest(root, &["agreement"]);
    let msg = text(&out);
    assert!(
        msg.contains("grades/bad.toml:1: no case study/count::nope in the specs"),
        "{msg}"
    );
    assert!(
        msg.contains("grades/bad.toml:6: no stored answer for study/count::people@sim-terse"),
        "{msg}"
    );

    let out = eyetest(root, &["regrade", "--results", "missing.jsonl"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot read results"), "{}", text(&out));
}
