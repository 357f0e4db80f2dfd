//! `eyetest report` end to end, from hand-made results files: the markdown side-by-side
//! report, JUnit XML, merged JSON lines, and `--compare`.

use std::path::Path;
use std::process::{Command, Output};

use eyetest::results::{ResultRecord, Status};
use eyetest::rubric::Rubric;

const SIM_MODEL: &str = "eyetest-sim/terse (simulated engine, not a real model)";

struct Case {
    spec: &'static str,
    case: &'static str,
    category: &'static str,
    subcategory: &'static str,
    image: &'static str,
    prompt: &'static str,
    label: &'static str,
    rubric: Rubric,
    /// Line of the case in its spec file.
    line: usize,
}

fn count_people() -> Case {
    Case {
        spec: "study/count",
        case: "people",
        line: 6,
        category: "Perception",
        subcategory: "Count",
        image: "fixtures/count/people-2.png",
        prompt: "How many people are there in this image?",
        label: "Two people",
        rubric: Rubric {
            number: vec![2.0],
            none: vec!["three".into()],
            ..Default::default()
        },
    }
}

fn count_pizza() -> Case {
    Case {
        spec: "study/count",
        case: "pizza-slices",
        line: 14,
        category: "Perception",
        subcategory: "Count",
        image: "fixtures/count/pizza-slices-2.png",
        prompt: "How many slices of pizza are visible in this image?",
        label: "Two slices",
        rubric: Rubric {
            number: vec![2.0],
            ..Default::default()
        },
    }
}

fn ocr_phone() -> Case {
    Case {
        spec: "study/ocr",
        case: "phone",
        line: 6,
        category: "Perception",
        subcategory: "OCR",
        image: "fixtures/ocr/phone number.png",
        prompt: "What is the phone number in this image?",
        label: "0131 555 6363",
        rubric: Rubric {
            digits_in_order: Some("01315556363".into()),
            ..Default::default()
        },
    }
}

fn code_hello() -> Case {
    Case {
        spec: "study/code",
        case: "hello",
        line: 6,
        category: "Cognition",
        subcategory: "Code",
        image: "fixtures/code/hello.png",
        prompt: "What is the output of the Python code shown in the image?",
        label: "Hello",
        rubric: Rubric {
            all: vec!["hello".into()],
            ..Default::default()
        },
    }
}

struct Target {
    name: &'static str,
    model: &'static str,
    gpu: Option<&'static str>,
    served: Option<&'static str>,
}

const SIM: Target = Target {
    name: "sim",
    model: "eyetest-sim",
    gpu: None,
    served: Some(SIM_MODEL),
};
const L11: Target = Target {
    name: "llama-11b",
    model: "meta-llama/Llama-3.2-11B-Vision-Instruct",
    gpu: Some("1x H100 SXM"),
    served: Some("meta-llama/Llama-3.2-11B-Vision-Instruct"),
};
const L90: Target = Target {
    name: "llama-90b",
    model: "meta-llama/Llama-3.2-90B-Vision-Instruct",
    gpu: Some("4x H100 SXM"),
    served: Some("meta-llama/Llama-3.2-90B-Vision-Instruct"),
};
const GPT: Target = Target {
    name: "gpt-4o",
    model: "gpt-4o",
    gpu: None,
    served: None,
};

fn base(c: &Case, t: &Target) -> ResultRecord {
    ResultRecord {
        test: format!("{}::{}@{}", c.spec, c.case, t.name),
        run: None,
        spec: c.spec.into(),
        case: c.case.into(),
        line: c.line,
        target: t.name.into(),
        model: t.model.into(),
        served_model: None,
        gpu: t.gpu.map(Into::into),
        category: Some(c.category.into()),
        subcategory: Some(c.subcategory.into()),
        image: c.image.into(),
        prompt: c.prompt.into(),
        label: Some(c.label.into()),
        status: Status::Ignored,
        snapshot: None,
        answer: None,
        verdict: None,
        reason: None,
        usage: None,
        ttft_ms: None,
        e2e_ms: None,
        attempts: 0,
        elapsed_ms: 250.0,
        queued_ms: 0.0,
        repeats: None,
    }
}

/// A record for an answer, judged by the case's real rubric.
fn answered(c: &Case, t: &Target, answer: &str) -> ResultRecord {
    let verdict = c.rubric.check(answer);
    let mut r = base(c, t);
    r.status = if verdict.passed {
        Status::Passed
    } else {
        Status::Failed
    };
    r.served_model = t.served.map(Into::into);
    r.answer = Some(answer.into());
    r.verdict = Some(verdict);
    r.attempts = 1;
    r
}

fn errored(c: &Case, t: &Target, reason: &str) -> ResultRecord {
    let mut r = base(c, t);
    r.status = Status::Error;
    r.reason = Some(reason.into());
    r
}

fn ignored(c: &Case, t: &Target, reason: &str) -> ResultRecord {
    let mut r = base(c, t);
    r.reason = Some(reason.into());
    r
}

fn write_jsonl(path: &Path, records: &[ResultRecord]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).unwrap());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// The first run: the simulated engine and the 11B, one 11B answer wrong.
fn run1() -> Vec<ResultRecord> {
    vec![
        answered(&count_people(), &SIM, "2"),
        answered(
            &count_people(),
            &L11,
            "There are three people in this image.",
        ),
        answered(&count_pizza(), &SIM, "2"),
        answered(&count_pizza(), &L11, "Two slices."),
        answered(&ocr_phone(), &SIM, "0131 555 6363"),
        answered(
            &ocr_phone(),
            &L11,
            "The phone number is 0131 | 555 6363.\nCall now <today> & save!",
        ),
        answered(&code_hello(), &SIM, "Hello"),
        answered(&code_hello(), &L11, "The code prints Hello."),
    ]
}

/// A second file: the 90B (one server error), the hosted model not configured, and a re-run
/// of the 11B's wrong answer that now passes and must supersede it.
fn run2() -> Vec<ResultRecord> {
    vec![
        answered(
            &count_people(),
            &L90,
            "The image shows two people standing next to each other in front of a wall.",
        ),
        errored(
            &count_pizza(),
            &L90,
            "cannot connect to http://gpu-4:8000/v1: connection refused (is the server running?)",
        ),
        answered(&ocr_phone(), &L90, "0131 555 6363"),
        answered(&code_hello(), &L90, "It prints `Hello`."),
        ignored(
            &count_people(),
            &GPT,
            "API key not configured: set OPENAI_API_KEY",
        ),
        ignored(
            &count_pizza(),
            &GPT,
            "API key not configured: set OPENAI_API_KEY",
        ),
        answered(&count_people(), &L11, "Two people."),
    ]
}

fn eyetest(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eyetest"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("eyetest runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(&dir.path().join("runs/run1.jsonl"), &run1());
    write_jsonl(&dir.path().join("runs/run2.jsonl"), &run2());
    dir
}

#[test]
fn markdown_report_lays_answers_side_by_side() {
    let p = project();
    let o = eyetest(
        p.path(),
        &[
            "report",
            "runs/run1.jsonl",
            "runs/run2.jsonl",
            "--out",
            "target/reports/report.md",
        ],
    );
    assert!(o.status.success(), "{}", all_output(&o));
    let md = std::fs::read_to_string(p.path().join("target/reports/report.md")).unwrap();

    // The simulated target is called out before anything else.
    let banner = md.find("SIMULATED ANSWERS").expect("simulated banner");
    assert!(banner < md.find("## Targets").unwrap(), "{md}");
    assert!(
        md.contains("Target `sim` is eyetest's simulated engine"),
        "{md}"
    );
    assert!(md.contains("| `gpt-4o` | gpt-4o | — | unknown (no answer recorded) |"));
    assert!(md.contains("| `llama-90b` | meta-llama/Llama-3.2-90B-Vision-Instruct | 4x H100 SXM |"));
    // Pass rate: the 11B's re-run superseded its wrong answer; the error counts as run;
    // the ignored hosted model shows a dash.
    assert!(
        md.contains("| Perception / Count | — | 2/2 | 1/2 | 2/2 |"),
        "{md}"
    );
    assert!(
        md.contains("| **total** | **—** | **4/4** | **3/4** | **4/4** |"),
        "{md}"
    );
    assert!(!md.contains("There are three people"), "superseded: {md}");
    // Images are linked relative to the report's own directory; spaces are escaped.
    assert!(
        md.contains("![image](../../fixtures/count/people-2.png)"),
        "{md}"
    );
    assert!(md.contains("![image](../../fixtures/ocr/phone%20number.png)"));
    // Table cells (HTML, as the study's report) survive pipes, newlines and HTML in answers.
    assert!(md.contains(
        "<td>The phone number is 0131 | 555 6363.<br>Call now &lt;today&gt; &amp; save!</td><td>✅ pass</td>"
    ), "{md}");
    assert!(md.contains("⚠️ error: cannot connect to http://gpu-4:8000/v1"));
    assert!(md.contains("⏭ ignored: API key not configured: set OPENAI_API_KEY"));
    // Sections follow the specs (by spec file, then line), not the order results arrived in.
    let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s} missing:\n{md}"));
    assert!(at("### Cognition / Code") < at("### Perception / Count"));
    assert!(at("### Perception / Count") < at("### Perception / OCR"));
    insta::assert_snapshot!("markdown_report", md);
}

#[test]
fn failures_show_the_rubric_summary() {
    let p = project();
    let o = eyetest(p.path(), &["report", "runs/run1.jsonl"]);
    assert!(
        o.status.success(),
        "reporting never gates: {}",
        all_output(&o)
    );
    let md = stdout(&o);
    assert!(
        md.contains(
            "<tr><td><code>llama-11b</code><br><sub>meta-llama/Llama-3.2-11B-Vision-Instruct</sub></td>\
             <td>There are three people in this image.</td>\
             <td>❌ fail: found forbidden: \"three\"; missing number: 2</td>"
        ),
        "{md}"
    );
    // Without --out, links are relative to the project root.
    assert!(md.contains("![image](fixtures/count/people-2.png)"), "{md}");
    assert!(
        md.contains("<tr><td><code>sim</code><br><sub>eyetest-sim (simulated)</sub></td><td>2</td><td>✅ pass</td>"),
        "{md}"
    );
}

fn with_run(records: Vec<ResultRecord>, run: &str) -> Vec<ResultRecord> {
    records
        .into_iter()
        .map(|mut r| {
            r.run = Some(run.into());
            r
        })
        .collect()
}

#[test]
fn default_input_is_the_latest_run() {
    let p = tempfile::tempdir().unwrap();
    write_jsonl(
        &p.path()
            .join("target/eyetest/runs/20260101T000000Z-aaaaaa.jsonl"),
        &with_run(run1(), "20260101T000000Z-aaaaaa"),
    );
    write_jsonl(
        &p.path()
            .join("target/eyetest/runs/20260102T000000Z-bbbbbb.jsonl"),
        &with_run(run2(), "20260102T000000Z-bbbbbb"),
    );
    std::fs::write(
        p.path().join("target/eyetest/latest"),
        "runs/20260101T000000Z-aaaaaa.jsonl\n",
    )
    .unwrap();
    let o = eyetest(p.path(), &["report", "--format", "text"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let out = stdout(&o);
    assert!(out.contains("study/count::people"), "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(!out.contains("llama-90b"), "only the latest run: {out}");

    let empty = tempfile::tempdir().unwrap();
    let o = eyetest(empty.path(), &["report"]);
    assert!(!o.status.success());
    let err = all_output(&o);
    assert!(err.contains("target/eyetest/latest"), "{err}");
    assert!(err.contains("eyetest run"), "{err}");
}

/// A file several runs appended to (the harness's EYETEST_RESULTS) reports its latest run
/// only, never a mix with columns of dashes from an earlier one, unless asked to merge.
#[test]
fn a_file_of_several_runs_reports_the_latest_only() {
    let p = tempfile::tempdir().unwrap();
    let mut both = with_run(run1(), "r1");
    both.extend(with_run(run2(), "r2"));
    write_jsonl(&p.path().join("all.jsonl"), &both);
    let o = eyetest(p.path(), &["report", "all.jsonl", "--format", "json"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "all.jsonl holds 2 runs; reporting the latest (r2) and leaving out 8 result(s)"
        ),
        "{err}"
    );
    let runs: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            serde_json::from_str::<ResultRecord>(l)
                .unwrap()
                .run
                .unwrap()
        })
        .collect();
    assert_eq!(runs.len(), 7);
    assert!(runs.iter().all(|r| r == "r2"), "{runs:?}");

    let o = eyetest(
        p.path(),
        &["report", "all.jsonl", "--format", "json", "--all-runs"],
    );
    assert!(o.status.success(), "{}", all_output(&o));
    assert_eq!(stdout(&o).lines().count(), 14);
}

/// `report -f text` shows every distinct error whole, with the tests it hit.
#[test]
fn text_report_shows_each_error_whole() {
    let p = tempfile::tempdir().unwrap();
    let long = "cannot connect to http://127.0.0.1:9199/v1/chat/completions: error sending \
                request for url (http://127.0.0.1:9199/v1/chat/completions): client error \
                (Connect): tcp connect error: Connection refused (os error 111) (is the server \
                running?)";
    write_jsonl(
        &p.path().join("r.jsonl"),
        &[
            errored(&count_people(), &L11, long),
            errored(&count_pizza(), &L11, long),
            answered(&code_hello(), &L11, "Hello"),
        ],
    );
    let o = eyetest(p.path(), &["report", "r.jsonl", "--format", "text"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let out = stdout(&o);
    assert_eq!(out.matches(long).count(), 1, "the error once, whole: {out}");
    assert!(
        out.contains(
            "hit 2 test(s): study/count::people@llama-11b, study/count::pizza-slices@llama-11b"
        ),
        "{out}"
    );
}

#[test]
fn junit_has_a_suite_per_target_and_parses() {
    let p = project();
    let o = eyetest(
        p.path(),
        &[
            "report",
            "runs/run1.jsonl",
            "runs/run2.jsonl",
            "--format",
            "junit",
        ],
    );
    assert!(o.status.success(), "{}", all_output(&o));
    let xml = stdout(&o);
    assert_eq!(xml.matches("<testcase ").count(), 14, "{xml}");
    let report = quick_junit::Report::deserialize_from_str(&xml).expect("well-formed JUnit XML");
    let names: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["gpt-4o", "llama-11b", "llama-90b", "sim"]);
    let counts: Vec<(usize, usize, usize, usize)> = report
        .test_suites
        .iter()
        .map(|s| (s.tests, s.failures, s.errors, s.disabled))
        .collect();
    assert_eq!(
        counts,
        [(2, 0, 0, 2), (4, 0, 0, 0), (4, 0, 1, 0), (4, 0, 0, 0)]
    );
    let sim = &report.test_suites[3];
    assert!(sim
        .properties
        .iter()
        .any(|p| p.name.as_str() == "simulated" && p.value.as_str() == "true"));
    let case = &sim.test_cases[1];
    assert_eq!(case.name.as_str(), "study/count::people");
    assert_eq!(
        case.classname.as_ref().map(|c| c.as_str()),
        Some("study/count")
    );
    let gpt = &report.test_suites[0];
    match &gpt.test_cases[0].status {
        quick_junit::TestCaseStatus::Skipped { message, .. } => assert_eq!(
            message.as_ref().map(|m| m.as_str()),
            Some("API key not configured: set OPENAI_API_KEY")
        ),
        other => panic!("expected skipped, got {other:?}"),
    }

    // A failure: message is the rubric summary, body the answer and every check.
    let o = eyetest(
        p.path(),
        &["report", "runs/run1.jsonl", "--format", "junit"],
    );
    let report = quick_junit::Report::deserialize_from_str(&stdout(&o)).unwrap();
    let l11 = report
        .test_suites
        .iter()
        .find(|s| s.name.as_str() == "llama-11b")
        .expect("a llama-11b suite");
    assert_eq!(l11.failures, 1);
    let people = l11
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "study/count::people")
        .expect("the people case");
    match &people.status {
        quick_junit::TestCaseStatus::NonSuccess {
            kind: quick_junit::NonSuccessKind::Failure,
            message,
            description,
            ..
        } => {
            assert_eq!(
                message.as_ref().unwrap().as_str(),
                "found forbidden: \"three\"; missing number: 2"
            );
            let body = description.as_ref().unwrap().as_str();
            assert!(
                body.contains("There are three people in this image."),
                "{body}"
            );
            assert!(
                body.contains("✗ none \"three\": found as \"three\""),
                "{body}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    // Answers with markup and control characters still make valid XML.
    let phone = l11
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "study/ocr::phone")
        .expect("the phone case");
    assert!(phone
        .system_out
        .as_ref()
        .unwrap()
        .as_str()
        .contains("<today> & save!"));
}

#[test]
fn json_is_the_merged_records() {
    let p = project();
    let o = eyetest(
        p.path(),
        &[
            "report",
            "runs/run1.jsonl",
            "runs/run2.jsonl",
            "--format",
            "json",
            "--out",
            "merged.jsonl",
        ],
    );
    assert!(o.status.success(), "{}", all_output(&o));
    let merged = eyetest::results::read_results(&p.path().join("merged.jsonl")).unwrap();
    assert_eq!(merged.len(), 14);
    let people_11b: Vec<&ResultRecord> = merged
        .iter()
        .filter(|r| r.test == "study/count::people@llama-11b")
        .collect();
    assert_eq!(people_11b.len(), 1);
    assert_eq!(people_11b[0].answer.as_deref(), Some("Two people."));
    // Reports read in spec order (spec, line, target), whatever order results arrived in.
    let order: Vec<&str> = merged.iter().map(|r| r.test.as_str()).collect();
    let mut sorted = merged.clone();
    sorted.sort_by(|a, b| (&a.spec, a.line, &a.target).cmp(&(&b.spec, b.line, &b.target)));
    assert_eq!(
        order,
        sorted.iter().map(|r| r.test.as_str()).collect::<Vec<_>>()
    );
}

/// A later run after an "upgrade": one regression, one fix, one rephrasing, one new target
/// and one target gone.
fn before_after(p: &Path) {
    let before = vec![
        answered(&count_people(), &L11, "There are two people in this image."),
        answered(&count_pizza(), &L11, "Three slices."),
        answered(&ocr_phone(), &L11, "0131 555 6363"),
        answered(&code_hello(), &L11, "Hello"),
        answered(&code_hello(), &SIM, "Hello"),
    ];
    let after = vec![
        answered(
            &count_people(),
            &L11,
            "There are three people in this image.",
        ),
        answered(&count_pizza(), &L11, "Two slices."),
        answered(&ocr_phone(), &L11, "The number is 0131 555 6363."),
        answered(&code_hello(), &L11, "Hello"),
        answered(&code_hello(), &L90, "It prints Hello."),
    ];
    write_jsonl(&p.join("before.jsonl"), &before);
    write_jsonl(&p.join("after.jsonl"), &after);
}

#[test]
fn compare_shows_flipped_verdicts_and_word_diffs() {
    let p = tempfile::tempdir().unwrap();
    before_after(p.path());
    let o = eyetest(
        p.path(),
        &["report", "after.jsonl", "--compare", "before.jsonl"],
    );
    assert!(
        o.status.success(),
        "a regression is reported, not gated: {}",
        all_output(&o)
    );
    let md = stdout(&o);
    assert!(
        md.contains("There are ~~two~~ **three** people in this image."),
        "{md}"
    );
    assert!(md.contains(
        "| `study/count::people@llama-11b` 🔻 | ✅ pass | ❌ fail: found forbidden: \"three\"; missing number: 2 |"
    ), "{md}");
    assert!(
        md.contains("| `study/count::pizza-slices@llama-11b` 🔺 |"),
        "{md}"
    );
    assert!(
        md.contains("**Answer:** **The number is** 0131 555 ~~6363~~ **6363.**"),
        "{md}"
    );
    // Tests of one run only are left out of the comparison, counted and named.
    assert!(!md.contains("## Only in the earlier run"), "{md}");
    assert!(md.contains("Left out of the comparison, as a run filtered by name or target has fewer tests: 1 only in the earlier run (`study/code::hello@sim`); 1 only in the later run (`study/code::hello@llama-90b`)."), "{md}");
    assert!(
        !md.contains("### `study/code::hello@llama-11b`"),
        "unchanged tests are not listed: {md}"
    );
    assert!(md.contains("4 test(s) in both runs: 2 verdict change(s) (1 regression(s), 1 fix(es)), 3 changed answer(s); 1 only before, 1 only after."), "{md}");
    insta::assert_snapshot!("compare_markdown", md);

    let o = eyetest(
        p.path(),
        &[
            "report",
            "after.jsonl",
            "--compare",
            "before.jsonl",
            "--format",
            "text",
        ],
    );
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains("study/count::people@llama-11b  [pass -> fail]"),
        "{text}"
    );
    assert!(
        text.contains("  | There are [-two-]{+three+} people in this image."),
        "{text}"
    );

    let o = eyetest(
        p.path(),
        &[
            "report",
            "after.jsonl",
            "--compare",
            "before.jsonl",
            "--format",
            "junit",
        ],
    );
    assert!(!o.status.success());
    assert!(all_output(&o).contains("--compare renders markdown or text"));
}

/// After a run filtered to one case, the comparison is of that case alone: the tests the
/// filtered run skipped are counted, not listed one by one as "only in the earlier run".
#[test]
fn compare_after_a_filtered_run_compares_like_with_like() {
    let p = tempfile::tempdir().unwrap();
    let mut before = run1();
    for i in 0..40 {
        let mut r = answered(&count_people(), &SIM, "2");
        r.test = format!("study/extra::case-{i}@sim");
        r.case = format!("case-{i}");
        before.push(r);
    }
    write_jsonl(&p.path().join("before.jsonl"), &before);
    write_jsonl(
        &p.path().join("after.jsonl"),
        &[answered(&count_people(), &L11, "Two people.")],
    );
    let o = eyetest(
        p.path(),
        &[
            "report",
            "after.jsonl",
            "--compare",
            "before.jsonl",
            "--format",
            "text",
        ],
    );
    assert!(o.status.success(), "{}", all_output(&o));
    let text = stdout(&o);
    assert!(
        text.contains("1 test(s) in both runs: 1 verdict change(s) (0 regression(s), 1 fix(es))"),
        "{text}"
    );
    assert!(text.contains("47 only in the earlier run ("), "{text}");
    assert!(text.contains("and 42 more)"), "{text}");
    assert!(!text.contains("case-39"), "not listed one by one: {text}");
}
