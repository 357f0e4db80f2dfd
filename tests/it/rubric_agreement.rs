//! Grades tests/data/answers.toml (realistic answers to the study's 28 questions, each with a
//! careful human's grade) with the rubrics of tests/data/study-rubrics.toml, and asserts that
//! rubric and human agree on at least 98% of answers. Every disagreement is printed with the
//! answer and the rubric's checks, so a failing run says which rubric or matcher to fix.

use std::collections::BTreeMap;

use eyetest::grading::agreement::Confusion;
use eyetest::rubric::{explain, Rubric};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Task {
    question: String,
    label: String,
    rubric: Rubric,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    task: String,
    model: String,
    correct: bool,
    #[serde(default)]
    note: Option<String>,
    text: String,
}

#[derive(Deserialize)]
struct Answers {
    answer: Vec<Answer>,
}

const STUDY_ORDER: [&str; 28] = [
    "elephant",
    "fridge",
    "tennis",
    "pizza",
    "motorcycle",
    "dog",
    "skiing",
    "couch",
    "phone-number",
    "coffee-shop",
    "godfather",
    "twilight",
    "hepburn",
    "carrey",
    "moat",
    "kitchen",
    "beijing",
    "church",
    "still-life",
    "louve",
    "stoplight",
    "cat",
    "add",
    "solve",
    "chinese",
    "japanese",
    "code1",
    "code2",
];

fn load() -> (BTreeMap<String, Task>, Vec<Answer>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let tasks: BTreeMap<String, Task> =
        toml::from_str(&std::fs::read_to_string(format!("{dir}/study-rubrics.toml")).unwrap())
            .unwrap_or_else(|e| panic!("study-rubrics.toml: {e}"));
    let answers: Answers =
        toml::from_str(&std::fs::read_to_string(format!("{dir}/answers.toml")).unwrap())
            .unwrap_or_else(|e| panic!("answers.toml: {e}"));
    (tasks, answers.answer)
}

#[test]
fn study_rubrics_are_valid_and_cover_all_28_tasks() {
    let (tasks, answers) = load();
    let mut names: Vec<&str> = tasks.keys().map(String::as_str).collect();
    names.sort();
    let mut want = STUDY_ORDER.to_vec();
    want.sort();
    assert_eq!(names, want);
    for (name, t) in &tasks {
        t.rubric
            .validate()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!t.question.is_empty() && !t.label.is_empty(), "{name}");
    }
    for task in STUDY_ORDER {
        let graded: Vec<&Answer> = answers.iter().filter(|a| a.task == task).collect();
        assert!(
            graded.iter().any(|a| a.correct),
            "{task}: no correct answer in the dataset"
        );
        assert!(
            graded.iter().any(|a| !a.correct),
            "{task}: no wrong answer in the dataset"
        );
    }
    for a in &answers {
        assert!(
            tasks.contains_key(&a.task),
            "answer for unknown task {}",
            a.task
        );
    }
}

#[test]
fn rubrics_agree_with_human_grades_on_at_least_98_percent() {
    let (tasks, answers) = load();
    let mut total = Confusion::default();
    let mut report = String::new();
    for a in &answers {
        let task = &tasks[&a.task];
        let verdict = task.rubric.check(&a.text);
        total.add(a.correct, verdict.passed);
        if verdict.passed != a.correct {
            report.push_str(&format!(
                "\nDISAGREE {} ({}): human says {}, rubric {}{}\n  question: {}\n  label: {}\n{}\n",
                a.task,
                a.model,
                if a.correct { "correct" } else { "wrong" },
                if verdict.passed { "passes" } else { "fails" },
                a.note
                    .as_deref()
                    .map(|n| format!(" — {n}"))
                    .unwrap_or_default(),
                task.question,
                task.label,
                explain(&a.text, &verdict)
            ));
        }
    }
    println!("{}{report}", total.render());
    assert!(
        total.total() >= 150,
        "the dataset shrank to {} answers",
        total.total()
    );
    assert!(
        total.percent() >= 98.0,
        "agreement {:.1}% is below 98%:\n{}{report}",
        total.percent(),
        total.render()
    );
}

/// The keyword rubrics the study shipped before claim checks, on the same answers: the
/// baseline the new checks are measured against (printed, not asserted beyond "lower").
#[test]
fn claim_checks_beat_plain_keywords_on_the_claim_tasks() {
    let (tasks, answers) = load();
    let plain: BTreeMap<&str, Rubric> = [
        ("tennis", "number = 2\nnone = [\"three\", \"four\"]"),
        ("motorcycle", "any = [\"right\"]\nnone = [\"left\"]"),
        ("dog", "any = [\"right\"]\nnone = [\"left\"]"),
        ("skiing", "all = [\"red\"]\nnone = [\"blue\", \"green\"]"),
        ("couch", "all = [\"red\"]\nnone = [\"blue\", \"green\"]"),
        ("cat", "number = 1\nnone = [\"two\", \"three\"]"),
    ]
    .into_iter()
    .map(|(k, v)| (k, toml::from_str(v).unwrap()))
    .collect();
    let (mut old, mut new) = (Confusion::default(), Confusion::default());
    for a in answers
        .iter()
        .filter(|a| plain.contains_key(a.task.as_str()))
    {
        old.add(a.correct, plain[a.task.as_str()].check(&a.text).passed);
        new.add(a.correct, tasks[&a.task].rubric.check(&a.text).passed);
    }
    println!(
        "plain keywords: {}claim checks: {}",
        old.render(),
        new.render()
    );
    assert!(
        new.percent() > old.percent(),
        "claim checks do not beat plain keywords"
    );
}
