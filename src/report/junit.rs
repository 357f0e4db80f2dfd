//! JUnit XML, the one test-report format every CI system reads (GitLab, Jenkins, GitHub
//! test-reporter actions, Buildkite, Azure Pipelines).
//!
//! One `<testsuite>` per target, not per spec file: CI systems group and track history by
//! suite, and the question a reader asks of a CI run is "how did this model do", so each
//! model gets its own group with the same case names in it. Within a suite a test case is
//! named by its case id (`study/count::people`) with the spec id as `classname`, so that
//! classname + name are unique, as the format expects, and the target never repeats in names.
//!
//! A rubric failure is a `<failure>` (the model answered, wrongly); no answer at all is an
//! `<error>` (server down, protocol error); an ignored case is `<skipped>` with its reason.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::runs::{case_id, targets};
use crate::results::{ResultRecord, Status};

/// Builds the report; `records` should already be merged (one per test).
pub fn report(records: &[ResultRecord]) -> Report {
    let mut report = Report::new("eyetest");
    let mut total = Duration::ZERO;
    for info in targets(records) {
        let mut suite = TestSuite::new(info.name.as_str());
        suite.add_property(("model", info.model.as_str()));
        if let Some(gpu) = &info.gpu {
            suite.add_property(("gpu", gpu.as_str()));
        }
        for m in &info.served_models {
            suite.add_property(("served_model", m.as_str()));
        }
        suite.add_property(("simulated", if info.simulated { "true" } else { "false" }));
        if info.simulated {
            suite.set_system_out(format!(
                "target `{}` is eyetest's SIMULATED engine, a test double that answers from the \
                 fixtures' ground truth: its results say nothing about any model\n",
                info.name
            ));
        }
        let mut time = Duration::ZERO;
        for r in records.iter().filter(|r| r.target == info.name) {
            let case = test_case(r);
            time += case.time.unwrap_or_default();
            suite.add_test_case(case);
        }
        // quick-junit counts skipped cases as `disabled`; Surefire-style readers look for
        // `skipped`, so say it both ways.
        suite
            .extra
            .insert("skipped".into(), info.ignored.to_string().into());
        suite.set_time(time);
        total += time;
        report.add_test_suite(suite);
    }
    report.set_time(total);
    report
}

/// Serializes [`report`] to an XML string.
pub fn render(records: &[ResultRecord]) -> Result<String, quick_junit::SerializeError> {
    report(records).to_string()
}

fn test_case(r: &ResultRecord) -> TestCase {
    let status = match r.status {
        Status::Passed => TestCaseStatus::success(),
        Status::Failed => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type("rubric");
            match &r.verdict {
                Some(v) => {
                    s.set_message(v.summary());
                    s.set_description(crate::rubric::explain(r.answer.as_deref().unwrap_or(""), v));
                }
                None => {
                    s.set_message("failed");
                    if let Some(a) = &r.answer {
                        s.set_description(format!("answer:\n{a}"));
                    }
                }
            }
            s
        }
        Status::Error => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(r.reason.as_deref().unwrap_or("no answer"));
            match r.verdict.as_ref().filter(|v| v.judge.is_some()) {
                // The model answered; its judge gave no verdict.
                Some(v) => {
                    s.set_type("judge");
                    s.set_description(crate::rubric::explain(r.answer.as_deref().unwrap_or(""), v));
                }
                None => {
                    s.set_type("no answer");
                }
            }
            s
        }
        Status::Ignored => {
            let mut s = TestCaseStatus::skipped();
            if let Some(why) = &r.reason {
                s.set_message(why.as_str());
            }
            s
        }
    };
    let mut case = TestCase::new(case_id(r), status);
    case.set_classname(r.spec.as_str());
    if r.elapsed_ms.is_finite() && r.elapsed_ms >= 0.0 {
        case.set_time(Duration::from_secs_f64(r.elapsed_ms / 1000.0));
    }
    case.add_property(("image", r.image.as_str()));
    case.add_property(("prompt", r.prompt.as_str()));
    if let Some(label) = &r.label {
        case.add_property(("label", label.as_str()));
    }
    if let Some(a) = &r.answer {
        // Passing answers too: the CI page is often the only place a reviewer sees them.
        case.set_system_out(a.as_str());
    }
    case
}
