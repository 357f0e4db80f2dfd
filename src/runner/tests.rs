use super::*;
use crate::backend::Timing;

fn case(repeats: u32, pass_rate: f64, temperature: f64) -> Case {
    let rubric: crate::rubric::Rubric = toml::from_str("number = 2").unwrap();
    Case {
        spec: Arc::new(crate::spec::SpecFile {
            path: "specs/x.toml".into(),
            id: "x".into(),
            source: "".into(),
        }),
        name: "c".into(),
        category: None,
        subcategory: None,
        image: "i.png".into(),
        image_path: "i.png".into(),
        user_image: false,
        photo: None,
        prompt: "How many?".into(),
        label: None,
        rubric,
        targets: vec!["sim".into()],
        max_tokens: 10,
        temperature,
        seed: None,
        repeats,
        pass_rate,
        line: 1,
    }
}

fn answers(texts: &[&str]) -> Vec<Answer> {
    texts
        .iter()
        .map(|t| Answer {
            text: t.to_string(),
            model: "m".into(),
            finish_reason: None,
            usage: None,
            timing: Timing::default(),
        })
        .collect()
}

fn repeats_of(o: &Outcome) -> (&str, Repeats) {
    match o {
        Outcome::Answered {
            answer,
            repeats: Some(r),
            ..
        } => (answer.text.as_str(), r.clone()),
        other => panic!("expected repeats, got {other:?}"),
    }
}

#[test]
fn four_of_five_meets_a_pass_rate_of_080_and_is_unstable_at_temperature_0() {
    let o = judge_repeats(
        &case(5, 0.8, 0.0),
        answers(&["2", "two", "2", "3", "2"]),
        String::new(),
    );
    let (text, r) = repeats_of(&o);
    assert_eq!(text, "2", "the most common answer stands for the case");
    assert_eq!((r.total, r.passed, r.distinct), (5, 4, 3));
    assert!(r.unstable);
    assert!(o.passed());
}

#[test]
fn three_of_five_misses_a_pass_rate_of_080() {
    let o = judge_repeats(
        &case(5, 0.8, 0.0),
        answers(&["2", "3", "2", "3", "2"]),
        String::new(),
    );
    let (_, r) = repeats_of(&o);
    assert_eq!(r.passed, 3);
    assert!(!o.passed());
}

#[test]
fn identical_answers_are_stable_and_variation_above_temperature_0_is_expected() {
    let o = judge_repeats(&case(3, 1.0, 0.0), answers(&["2", "2", "2"]), String::new());
    let (_, r) = repeats_of(&o);
    assert!(!r.unstable && r.distinct == 1 && o.passed());
    let o = judge_repeats(
        &case(3, 1.0, 0.7),
        answers(&["2", "two", "2"]),
        String::new(),
    );
    let (_, r) = repeats_of(&o);
    assert!(!r.unstable && r.distinct == 2 && o.passed());
}

#[test]
fn ties_go_to_the_first_answer_seen() {
    let o = judge_repeats(&case(2, 0.5, 0.0), answers(&["3", "2"]), String::new());
    let (text, r) = repeats_of(&o);
    assert_eq!(text, "3");
    assert!(o.passed(), "1 of 2 meets 0.5: {r:?}");
}
