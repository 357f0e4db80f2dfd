//! Re-grading and agreement with a judge in the rubric: offline, the stored judge verdict is
//! reused (no spurious flips, no judge call), a keyword edit still flips, and an answer the
//! judge must grade but never did re-grades as a judge error, never as a pass.

use crate::judge_support;

use judge_support::{eyetest, project, text, write};

const SPEC: &str = r#"
[[case]]
name = "good"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model"]
rubric = { judge = { target = "judge" } }

[[case]]
name = "bad"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model-wrong"]
rubric = { judge = { target = "judge" } }

[[case]]
name = "plain"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model"]
rubric = { all = ["coat"] }
"#;

#[test]
fn regrade_reuses_stored_judge_verdicts_and_never_calls_a_judge() {
    let p = project(SPEC);
    let root = p.path();
    let run = eyetest(root, &["run", "--out", "run.jsonl"]);
    assert!(!run.status.success(), "`bad` fails: {}", text(&run));

    // The judge cannot be reached any more: re-grading must not need it.
    let offline = judge_support::TARGETS.replace(
        "[target.judge]\nbackend = \"sim\"",
        "[target.judge]\nbackend = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nretries = 0",
    );
    write(root, "eyetest.toml", &offline);
    let same = eyetest(
        root,
        &["regrade", "--results", "run.jsonl", "--fail-on-flip"],
    );
    assert!(same.status.success(), "no flip: {}", text(&same));

    // Human grades agree with the stored judge verdicts.
    write(
        root,
        "grades/human.toml",
        "[[grade]]\ncase = \"judge::good\"\ntarget = \"model\"\ncorrect = true\n\n[[grade]]\ncase = \"judge::bad\"\ntarget = \"model-wrong\"\ncorrect = false\nnote = \"blue, not red\"\n",
    );
    let agree = eyetest(
        root,
        &["agreement", "--results", "run.jsonl", "--min", "100"],
    );
    let shown = text(&agree);
    assert!(agree.status.success(), "{shown}");
    assert!(
        shown.contains("agreement: 100.0% (2 of 2 answers)"),
        "{shown}"
    );

    // A keyword added beside the judge flips `good`; `plain` now has a judge it never had:
    // a judge error, so it fails now, and says why.
    let edited = SPEC
        .replace(
            "rubric = { judge = { target = \"judge\" } }\n\n[[case]]\nname = \"bad\"",
            "rubric = { none = [\"red\"], judge = { target = \"judge\" } }\n\n[[case]]\nname = \"bad\"",
        )
        .replace(
            "rubric = { all = [\"coat\"] }",
            "rubric = { all = [\"coat\"], judge = { target = \"judge\" } }",
        );
    assert_ne!(edited, SPEC);
    write(root, "specs/judge.toml", &edited);
    let flips = eyetest(
        root,
        &["regrade", "--results", "run.jsonl", "--fail-on-flip"],
    );
    let shown = text(&flips);
    assert!(!flips.status.success(), "{shown}");
    assert!(
        shown.contains("FLIP judge::good@model: passed then, fails now"),
        "{shown}"
    );
    assert!(
        shown.contains("FLIP judge::plain@model: passed then, fails now"),
        "{shown}"
    );
    assert!(
        shown.contains("no stored verdict of judge `judge`"),
        "{shown}"
    );
    assert!(!shown.contains("FLIP judge::bad"), "{shown}");
}
