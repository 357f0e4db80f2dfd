use std::collections::BTreeMap;

use super::*;
use crate::rubric::Rubric;

fn spec(when: When) -> JudgeSpec {
    JudgeSpec {
        target: "judge".into(),
        criteria: None,
        image: false,
        when,
        max_tokens: None,
    }
}

fn rubric_about_red_coat() -> Rubric {
    Rubric {
        about: BTreeMap::from([("coat".to_string(), vec!["red".to_string()])]),
        none: vec!["blue".into()],
        ..Default::default()
    }
}

#[test]
fn keys_parse_with_defaults_and_reject_unknown_ones() {
    let r: Rubric = toml::from_str(r#"judge = { target = "gpt-4o" }"#).unwrap();
    assert_eq!(r.judge, Some(spec_named("gpt-4o")));
    let r: Rubric = toml::from_str(
        r#"any = ["red"]
judge = { target = "j", criteria = "any red", image = true, when = "inconclusive", max_tokens = 64 }"#,
    )
    .unwrap();
    let j = r.judge.unwrap();
    assert_eq!(
        (j.image, j.when, j.max_tokens, j.criteria.as_deref()),
        (true, When::Inconclusive, Some(64), Some("any red"))
    );
    let e = toml::from_str::<Rubric>(r#"judge = { target = "j", mode = "all" }"#).unwrap_err();
    assert!(e.to_string().contains("unknown field `mode`"), "{e}");
    let e =
        toml::from_str::<Rubric>(r#"judge = { target = "j", when = "sometimes" }"#).unwrap_err();
    assert!(e.to_string().contains("unknown variant"), "{e}");
}

fn spec_named(t: &str) -> JudgeSpec {
    JudgeSpec {
        target: t.into(),
        ..spec(When::Always)
    }
}

#[test]
fn a_judge_alone_is_a_rubric_and_its_keys_are_validated() {
    let r = Rubric {
        judge: Some(spec(When::Always)),
        ..Default::default()
    };
    assert!(!r.is_empty());
    assert!(r.validate().is_ok());
    let bad = Rubric {
        judge: Some(JudgeSpec {
            target: " ".into(),
            criteria: Some("".into()),
            max_tokens: Some(0),
            ..spec(When::Always)
        }),
        ..Default::default()
    };
    let e = bad.validate().unwrap_err();
    for want in [
        "judge.target is empty",
        "judge.criteria is empty",
        "judge.max_tokens = 0",
    ] {
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn inconclusive_means_nothing_configured_or_nothing_found() {
    let r = rubric_about_red_coat();
    // Passed: conclusive.
    assert_eq!(inconclusive(&r.check("A red coat.")), None);
    // A forbidden word found: conclusive.
    assert_eq!(inconclusive(&r.check("A blue coat.")), None);
    // Red said about the hat, nothing found about the coat... but the coat is mentioned, and
    // the about check found no property of it: inconclusive ("crimson" is red).
    let why = inconclusive(&r.check("The coat is crimson.")).expect("inconclusive");
    assert!(why.contains("found nothing"), "{why}");
    // No keyword check at all.
    assert_eq!(
        inconclusive(&Rubric::default().check("anything")).as_deref(),
        Some("no keyword check is configured")
    );
    // The opposite relation stated is conclusive; none stated is not.
    let rel: Rubric =
        toml::from_str(r#"relation = { subject = "baby", is = "right of", object = "dog" }"#)
            .unwrap();
    assert_eq!(
        inconclusive(&rel.check("The baby is to the left of the dog.")),
        None
    );
    assert!(inconclusive(&rel.check("The baby sleeps beside the dog.")).is_some());
    // Too long is conclusive.
    let short = Rubric {
        max_words: Some(2),
        ..Default::default()
    };
    assert_eq!(inconclusive(&short.check("far too many words here")), None);
}

#[test]
fn always_needs_keywords_and_judge() {
    let r = rubric_about_red_coat();
    let s = spec(When::Always);
    let both = combine(
        &s,
        r.check("A red coat."),
        Some(Ruling::Pass("red".into())),
        false,
    );
    assert!(both.passed);
    assert!(both
        .judge
        .as_ref()
        .unwrap()
        .decided_by
        .contains("both must pass"));
    let judge_says_no = combine(
        &s,
        r.check("A red coat."),
        Some(Ruling::Fail("no".into())),
        false,
    );
    assert!(!judge_says_no.passed);
    assert_eq!(judge_says_no.summary(), "keywords ok; judge FAIL: \"no\"");
    let keywords_say_no = combine(
        &s,
        r.check("A blue coat."),
        Some(Ruling::Pass("ok".into())),
        false,
    );
    assert!(!keywords_say_no.passed);
}

#[test]
fn inconclusive_mode_asks_only_when_keywords_cannot_decide() {
    let r = rubric_about_red_coat();
    let s = spec(When::Inconclusive);
    assert!(!must_ask(&s, &r.check("A red coat.")));
    assert!(!must_ask(&s, &r.check("A blue coat.")));
    assert!(must_ask(&s, &r.check("The coat is crimson.")));
    assert!(must_ask(&spec(When::Always), &r.check("A red coat.")));

    let kept = combine(&s, r.check("A blue coat."), None, false);
    assert!(!kept.passed);
    let j = kept.judge.as_ref().unwrap();
    assert_eq!(j.status, JudgeStatus::NotAsked);
    assert!(
        j.decided_by
            .starts_with("keywords: they failed conclusively"),
        "{}",
        j.decided_by
    );

    let rescued = combine(
        &s,
        r.check("The coat is crimson."),
        Some(Ruling::Pass("crimson is red".into())),
        false,
    );
    assert!(rescued.passed, "{rescued}");
    assert!(rescued
        .judge
        .as_ref()
        .unwrap()
        .decided_by
        .starts_with("judge: keyword checks inconclusive"));
    let shown = rescued.to_string();
    assert!(
        shown.starts_with("verdict: passed\njudge `judge`: PASS: crimson is red"),
        "{shown}"
    );
    assert!(
        shown.contains("rubric: FAILED (1 of 2 checks failed)"),
        "{shown}"
    );
}

#[test]
fn a_judge_error_never_passes() {
    for when in [When::Always, When::Inconclusive] {
        let v = combine(
            &spec(when),
            Rubric::default().check("A red coat."),
            Some(Ruling::Error("judge `judge` failed: HTTP 500".into())),
            false,
        );
        assert!(!v.passed);
        assert!(v.judge.as_ref().unwrap().is_error());
        assert_eq!(
            v.summary(),
            "judge ERROR: \"judge `judge` failed: HTTP 500\""
        );
    }
}

#[test]
fn verdicts_without_a_judge_serialize_as_before() {
    let v = Rubric {
        all: vec!["red".into()],
        ..Default::default()
    }
    .check("red");
    let json = serde_json::to_string(&v).unwrap();
    assert!(!json.contains("judge"), "{json}");
    let judged = combine(
        &spec(When::Always),
        v,
        Some(Ruling::Pass("ok".into())),
        true,
    );
    let back: crate::rubric::Verdict =
        serde_json::from_str(&serde_json::to_string(&judged).unwrap()).unwrap();
    assert_eq!(back, judged);
    assert!(back.judge.unwrap().replayed);
}
