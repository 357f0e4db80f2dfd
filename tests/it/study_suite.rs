//! The bundled suites against the simulated engine.
//!
//! The smoke suite (specs/smoke, drawn fixtures with embedded ground truth) runs offline:
//! every case passes on the correct behaviours and fails on the wrong one, which keeps its
//! rubrics honest. The study suite (specs/study, the study's own photos) needs `eyetest fetch`:
//! until then each task is ignored with that command as the reason; once fetched (in a
//! checkout that ran it) each task must pass like the smoke cases.

use std::path::Path;
use std::sync::Arc;

use eyetest::fetch::{cache_state, CacheState};
use eyetest::runner::{run_all, Outcome, Selection, Session};
use eyetest::runtime::runtime;
use eyetest::spec::Suite;
use eyetest::targets::{Kind, Target};
use eyetest::warning::Warnings;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs every case of the suite on a `sim` target with the given behaviour.
fn run_with(behaviour: &str) -> Vec<(String, Outcome)> {
    let mut suite = Suite::load(root()).unwrap();
    let mut sim = suite.target("sim").unwrap().as_ref().clone();
    let Kind::Sim(engine) = &mut sim.kind else {
        panic!("the study's `sim` target is not simulated");
    };
    engine.behaviour = behaviour.parse().unwrap();
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
        Session::new(suite.clone(), Warnings::none()),
        pairs,
        Selection::all(),
        |case, _, outcome, _| out.push((case.id(), outcome)),
    ));
    assert_eq!(
        out.len(),
        20 + 28,
        "20 smoke cases and the study's 28 tasks"
    );
    out
}

/// Whether this checkout has fetched the study's photos (`eyetest fetch`).
fn study_fetched() -> bool {
    let suite = Suite::load(root()).unwrap();
    let photos = suite.photos();
    assert_eq!(photos.len(), 28);
    photos
        .iter()
        .all(|p| cache_state(root(), p) == CacheState::Verified)
}

fn subcategories(prefix: &str) -> Vec<String> {
    let suite = Suite::load(root()).unwrap();
    let mut subs: Vec<String> = suite
        .cases
        .iter()
        .filter(|c| c.spec.id.starts_with(prefix))
        .filter_map(|c| c.subcategory.clone())
        .collect();
    subs.sort_unstable();
    subs.dedup();
    subs
}

#[test]
fn the_study_covers_its_fourteen_subcategories_and_the_smoke_suite_ten() {
    assert_eq!(
        subcategories("study/").len(),
        14,
        "{:?}",
        subcategories("study/")
    );
    assert_eq!(
        subcategories("smoke/").len(),
        10,
        "{:?}",
        subcategories("smoke/")
    );
}

#[test]
fn correct_behaviours_pass_and_unfetched_study_tasks_are_ignored_with_the_command() {
    let fetched = study_fetched();
    for behaviour in ["terse", "verbose"] {
        for (id, outcome) in run_with(behaviour) {
            let study = id.starts_with("study/");
            match outcome {
                Outcome::Ignored(r) if study && !fetched => assert!(
                    r.starts_with("photo not fetched: run `eyetest fetch` (28 photos, 2.6 MB)")
                        || r.contains("run `eyetest fetch` to fetch it again"),
                    "{id}: {r}"
                ),
                o => assert!(o.passed(), "{id} should pass on `{behaviour}`: {o:?}"),
            }
        }
    }
}

#[test]
fn the_wrong_behaviour_fails_every_case_that_runs() {
    for (id, outcome) in run_with("wrong") {
        match outcome {
            Outcome::Ignored(_) => assert!(id.starts_with("study/"), "{id} ignored"),
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
