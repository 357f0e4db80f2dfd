//! The bundled study suite against the simulated engine: every drawable case passes on the
//! correct behaviours and fails on the wrong one; the photo-only cases are ignored with the
//! reason. This is what keeps the rubrics honest: a rubric that also accepts the wrong
//! answer fails here.

use std::sync::Arc;

use eyetest::runner::{run_all, runtime, Outcome, Selection, Session};
use eyetest::spec::Suite;
use eyetest::target::Target;

/// Runs every case of the suite on a `sim` target with the given behaviour.
fn run_with(behaviour: &str) -> Vec<(String, Outcome)> {
    let mut suite = Suite::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut sim = suite.target("sim").unwrap().as_ref().clone();
    sim.config.behaviour = Some(behaviour.into());
    let sim: Arc<Target> = Arc::new(sim);
    suite.config.targets.insert("sim".into(), sim.clone());
    let suite = Arc::new(suite);
    let pairs = suite
        .cases
        .iter()
        .map(|c| (c.clone(), sim.clone()))
        .collect();
    let mut out = Vec::new();
    runtime().block_on(run_all(
        Session::new(suite.clone()),
        pairs,
        Selection::all(),
        |case, _, outcome, _| out.push((case.id(), outcome)),
    ));
    assert_eq!(out.len(), 28, "the study has 28 tasks");
    out
}

const PHOTO_SUBCATEGORIES: [&str; 4] = ["celebrity", "scene", "landmark", "artwork"];

#[test]
fn all_fourteen_subcategories_are_covered() {
    let suite = Suite::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut subs: Vec<&str> = suite
        .cases
        .iter()
        .filter(|c| c.spec.id.starts_with("study/"))
        .filter_map(|c| c.subcategory.as_deref())
        .collect();
    subs.sort_unstable();
    subs.dedup();
    assert_eq!(subs.len(), 14, "{subs:?}");
}

#[test]
fn correct_behaviours_pass_and_photo_cases_are_ignored_with_the_reason() {
    for behaviour in ["terse", "verbose"] {
        for (id, outcome) in run_with(behaviour) {
            let photo = PHOTO_SUBCATEGORIES
                .iter()
                .any(|s| id.starts_with(&format!("study/{s}::")))
                || id == "study/translation::chinese-sign";
            match outcome {
                Outcome::Ignored(r) if photo => {
                    assert!(r.contains("user-supplied photo"), "{id}: {r}")
                }
                o if photo => panic!("{id} needs a photo but was not ignored: {o:?}"),
                o => assert!(o.passed(), "{id} should pass on `{behaviour}`: {o:?}"),
            }
        }
    }
}

#[test]
fn the_wrong_behaviour_fails_every_drawable_case() {
    for (id, outcome) in run_with("wrong") {
        match outcome {
            Outcome::Ignored(_) => {}
            Outcome::Answered { ref answer, .. } => {
                assert!(
                    !outcome.passed(),
                    "{id}: rubric accepted the wrong answer {:?}",
                    answer.text
                )
            }
            Outcome::Error(e) => panic!("{id}: {e}"),
        }
    }
}
