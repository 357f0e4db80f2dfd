//! The model judge end to end against simulated engines over loopback, through the `eyetest`
//! binary: a judge that passes, one that fails, one that answers unparseably and one that
//! cannot be reached (both errors, never passes), the two combination modes, and the verdict
//! in results, reports and snapshot metadata.

use crate::judge_support;

use eyetest::results::Status;
use eyetest::rubric::judge::JudgeStatus;
use judge_support::{eyetest, project, record_of, text, write};

/// Every case names the target that answers it; the judges are the project's other targets.
const SPEC: &str = r#"
[[case]]
name = "judge_pass"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model"]
rubric = { judge = { target = "judge" } }

[[case]]
name = "judge_fail"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model-wrong"]
rubric = { judge = { target = "judge", criteria = "Any shade of red counts." } }

[[case]]
name = "unparseable"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model"]
rubric = { judge = { target = "judge-rambling" } }

[[case]]
name = "unreachable"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model"]
rubric = { all = ["coat"], judge = { target = "judge-down" } }

[[case]]
name = "server_error"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model"]
rubric = { judge = { target = "judge-failing", when = "inconclusive" } }

[[case]]
name = "always_keywords_pass_judge_fails"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model"]
rubric = { all = ["coat"], judge = { target = "judge-wrong", image = true } }

[[case]]
name = "inconclusive_judge_decides"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model"]
rubric = { any = ["scarlet", "crimson"], judge = { target = "judge", when = "inconclusive" } }

[[case]]
name = "conclusive_fail_not_asked"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model-wrong"]
rubric = { any = ["red"], none = ["blue"], judge = { target = "judge-wrong", when = "inconclusive" } }

[[case]]
name = "conclusive_pass_not_asked"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "A red coat."
targets = ["model"]
rubric = { any = ["red"], judge = { target = "judge-wrong", when = "inconclusive" } }
"#;

#[test]
fn judge_verdicts_errors_and_combinations_against_the_sim() {
    let p = project(SPEC);
    let root = p.path();
    let out = eyetest(root, &["run", "--out", "run.jsonl"]);
    let shown = text(&out);
    assert!(!out.status.success(), "some cases fail: {shown}");
    let rec = |case: &str| record_of(root, "run.jsonl", case);

    let r = rec("judge_pass");
    assert_eq!(r.status, Status::Passed, "{shown}");
    let j = r.verdict.as_ref().unwrap().judge.clone().unwrap();
    assert_eq!((j.status, j.target.as_str()), (JudgeStatus::Pass, "judge"));
    assert!(j.reason.contains("simulated judge"), "{}", j.reason);
    assert!(
        j.decided_by.contains("no keyword check is configured"),
        "{}",
        j.decided_by
    );

    let r = rec("judge_fail");
    assert_eq!(r.status, Status::Failed);
    let j = r.verdict.as_ref().unwrap().judge.clone().unwrap();
    assert_eq!(j.status, JudgeStatus::Fail);
    assert!(j.reason.contains("\"red\""), "{}", j.reason);

    // Unparseable: an error quoting the judge's text, never a pass.
    let r = rec("unparseable");
    assert_eq!(r.status, Status::Error, "{shown}");
    let why = r.reason.clone().unwrap();
    assert!(why.contains("without a readable verdict"), "{why}");
    assert!(
        why.contains("Let me look at this answer carefully"),
        "{why}"
    );
    assert_eq!(
        r.answer.as_deref(),
        Some("A red coat."),
        "the answer is kept"
    );

    // Unreachable and failing judges: errors, though the keywords alone would pass.
    let r = rec("unreachable");
    assert_eq!(r.status, Status::Error);
    let why = r.reason.clone().unwrap();
    assert!(
        why.contains("judge `judge-down`") && why.contains("127.0.0.1"),
        "{why}"
    );
    let r = rec("server_error");
    assert_eq!(r.status, Status::Error);
    assert!(
        r.reason.as_deref().unwrap().contains("HTTP 500"),
        "{:?}",
        r.reason
    );

    // always: keywords pass, the judge fails, the case fails, and says both decided.
    let r = rec("always_keywords_pass_judge_fails");
    assert_eq!(r.status, Status::Failed);
    let v = r.verdict.clone().unwrap();
    assert!(v.checks.iter().all(|c| c.passed));
    let j = v.judge.unwrap();
    assert_eq!(j.status, JudgeStatus::Fail);
    assert!(j.decided_by.contains("both must pass"), "{}", j.decided_by);

    // inconclusive: keywords found nothing, the judge decides.
    let r = rec("inconclusive_judge_decides");
    assert_eq!(r.status, Status::Passed, "{shown}");
    let j = r.verdict.clone().unwrap().judge.unwrap();
    assert_eq!(j.status, JudgeStatus::Pass);
    assert!(
        j.decided_by
            .starts_with("judge: keyword checks inconclusive"),
        "{}",
        j.decided_by
    );

    // Conclusive keywords stand; the (deliberately wrong) judge is not asked.
    for (case, status) in [
        ("conclusive_fail_not_asked", Status::Failed),
        ("conclusive_pass_not_asked", Status::Passed),
    ] {
        let r = rec(case);
        assert_eq!(r.status, status, "{case}: {shown}");
        let j = r.verdict.clone().unwrap().judge.unwrap();
        assert_eq!(j.status, JudgeStatus::NotAsked, "{case}");
        assert!(j.decided_by.starts_with("keywords:"), "{}", j.decided_by);
    }

    // The progress lines say why.
    assert!(shown.contains("judge FAIL"), "{shown}");

    // Reports: markdown shows the judge's reason on a pass and its line among the checks;
    // JUnit marks a judge error as such, with its text.
    let md = text(&eyetest(root, &["report", "run.jsonl"]));
    assert!(md.contains("✅ pass (judge: the answer states"), "{md}");
    assert!(md.contains("judge `judge-wrong`: FAIL"), "{md}");
    let junit = text(&eyetest(
        root,
        &["report", "run.jsonl", "--format", "junit"],
    ));
    assert!(junit.contains("type=\"judge\""), "{junit}");
    assert!(junit.contains("without a readable verdict"), "{junit}");

    // Snapshot metadata carries the judge; `cargo insta review` shows it.
    let snap =
        std::fs::read_to_string(root.join("golden/snapshots/judge/judge_fail@model-wrong.snap"))
            .unwrap();
    assert!(
        snap.contains("  judge: \"FAIL by `judge`: the answer does not state"),
        "{snap}"
    );
}

#[test]
fn snapshots_without_a_judge_have_no_judge_metadata() {
    let p = project(
        r#"
[[case]]
name = "plain"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
targets = ["model"]
rubric = { all = ["red"] }
"#,
    );
    let root = p.path();
    let out = eyetest(root, &["run", "--out", "run.jsonl"]);
    assert!(out.status.success(), "{}", text(&out));
    let snap =
        std::fs::read_to_string(root.join("golden/snapshots/judge/plain@model.snap")).unwrap();
    assert!(!snap.contains("  judge:"), "{snap}");
    assert!(snap.contains("  temperature: 0\ninput_file"), "{snap}");
    let r = record_of(root, "run.jsonl", "plain");
    assert!(r.verdict.unwrap().judge.is_none());
}

#[test]
fn bad_judge_keys_are_spec_errors_with_a_line() {
    let p = project(
        r#"
[[case]]
name = "no_label"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
targets = ["model"]
rubric = { judge = { target = "judge" } }

[[case]]
name = "typo"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "Red."
targets = ["model"]
rubric = { judge = { target = "jugde" } }

[[case]]
name = "repeated"
image = "fixtures/coat.png"
prompt = "What is the skier wearing?"
label = "Red."
targets = ["model"]
repeats = 3
rubric = { judge = { target = "judge" } }
"#,
    );
    let root = p.path();
    let out = eyetest(root, &["check"]);
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    for want in [
        "judge.toml:7",
        "needs the case's `label`",
        "judge target `jugde` is not declared",
        "did you mean `judge`?",
        "cannot be combined with `repeats`",
    ] {
        assert!(shown.contains(want), "{want:?} in {shown}");
    }
    write(root, "specs/judge.toml", "[[case]]\nname = \"x\"\nimage = \"fixtures/coat.png\"\nprompt = \"p\"\nlabel = \"l\"\nrubric = { judge = { target = \"judge\", when = \"later\" } }\n");
    let shown = text(&eyetest(root, &["check"]));
    assert!(
        shown.contains("judge.toml:6") && shown.contains("unknown variant `later`"),
        "{shown}"
    );
}
