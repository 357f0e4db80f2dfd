//! The harness end to end, as a user drives it: `eyetest test` (the same code as a project's
//! `cargo test` target) in a child process, on a throwaway project, against the simulated
//! engine over real loopback HTTP.

use std::path::Path;
use std::process::Output;

use crate::support::{self, people_png, text, write, write_people};
use eyetest::results::{read_results, ResultRecord, Status};
use eyetest::snapshot::SnapshotStatus;

/// A project with two cases on one image of two people, a `sim` target of the given
/// behaviour, and an `openai` target whose endpoint comes from an unset variable.
fn project(behaviour: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_people(
        root,
        people_png(
            32,
            250,
            "There are two people standing side by side in this image.",
            "Three people.",
        ),
    );
    write(
        root,
        "eyetest.toml",
        &format!(
            r#"
[target.sim]
backend = "sim"
model = "eyetest-sim"
behaviour = "{behaviour}"
retries = 1
retry_backoff_ms = 1

[target.remote]
backend = "openai"
model = "some/model"
base_url_env = "EYETEST_TEST_UNSET_URL"
retries = 0
"#
        ),
    );
    write(
        root,
        "specs/study/count.toml",
        r#"
[defaults]
targets = ["sim", "remote"]

[[case]]
name = "people"
image = "fixtures/people.png"
prompt = "How many people are there in this image?"
label = "Two people"
rubric = { number = 2, none = ["three"] }

[[case]]
name = "people-word"
image = "fixtures/people.png"
prompt = "Count the people."
rubric = { any = ["two", "2"] }
"#,
    );
    dir
}

fn eyetest(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = support::eyetest(root, args, "no");
    cmd.env_remove("EYETEST_TEST_UNSET_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("eyetest runs")
}

/// Runs the tests once accepting new snapshots, as a user does on a new project.
fn accept_snapshots(root: &Path) {
    let o = eyetest(root, &["test"], &[("INSTA_UPDATE", "always")]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn list_shows_one_test_per_case_and_target_without_network() {
    let p = project("terse");
    let o = eyetest(p.path(), &["test", "--list"], &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let tests: Vec<&str> = out.lines().filter(|l| l.ends_with(": test")).collect();
    assert_eq!(
        tests,
        [
            "study/count::people@sim: test",
            "study/count::people@remote: test",
            "study/count::people-word@sim: test",
            "study/count::people-word@remote: test",
        ]
    );
}

#[test]
fn passing_run_ignores_unconfigured_target_with_reason() {
    let p = project("terse");
    accept_snapshots(p.path());
    let snap = p
        .path()
        .join("golden/snapshots/study/count/people@sim.snap");
    let stored = std::fs::read_to_string(&snap).expect("snapshot written");
    assert!(stored.contains("Two people."), "{stored}");
    assert!(stored.contains("image_sha256"), "{stored}");
    assert!(
        stored.contains("How many people are there in this image?"),
        "{stored}"
    );

    let o = eyetest(p.path(), &["test", "--include-ignored"], &[("CI", "true")]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("2 passed; 0 failed; 2 ignored"), "{out}");
    // Nothing selected: the target without an endpoint is ignored, saying what to set.
    assert!(
        out.contains("ignored (endpoint not configured: set EYETEST_TEST_UNSET_URL"),
        "ignored reason should be shown: {out}"
    );

    // Selected but without an endpoint: a failure (never an ignore), with the variable to set.
    let o = eyetest(
        p.path(),
        &["test"],
        &[("CI", "true"), ("EYETEST_TARGETS", "remote")],
    );
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("0 passed; 2 failed; 2 ignored"), "{out}");
    assert!(out.contains("set EYETEST_TEST_UNSET_URL"), "{out}");
}

#[test]
fn filter_and_exact_select_like_cargo_test() {
    let p = project("terse");
    accept_snapshots(p.path());
    let o = eyetest(p.path(), &["test", "word"], &[("CI", "true")]);
    let out = text(&o);
    assert!(
        out.contains("1 passed; 0 failed; 1 ignored; 0 measured; 2 filtered out"),
        "{out}"
    );
    let o = eyetest(
        p.path(),
        &["test", "--exact", "study/count::people@sim"],
        &[("CI", "true")],
    );
    let out = text(&o);
    assert!(
        out.contains("1 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out"),
        "{out}"
    );
}

#[test]
fn wrong_answers_fail_with_the_rubric_explanation() {
    let p = project("terse");
    accept_snapshots(p.path());
    let toml = std::fs::read_to_string(p.path().join("eyetest.toml")).unwrap();
    std::fs::write(
        p.path().join("eyetest.toml"),
        toml.replace("\"terse\"", "\"wrong\""),
    )
    .unwrap();
    let o = eyetest(p.path(), &["test"], &[("CI", "true")]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("0 passed; 2 failed"), "{out}");
    assert!(out.contains("Three people."), "the answer is shown: {out}");
    assert!(out.contains("rubric failed for target `sim`"), "{out}");
    assert!(
        out.to_lowercase().contains("three"),
        "forbidden word named: {out}"
    );
}

#[test]
fn failing_engine_fails_with_the_http_error() {
    let p = project("failing");
    let o = eyetest(p.path(), &["test"], &[("CI", "true")]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("0 passed; 2 failed"), "{out}");
    assert!(out.contains("HTTP 500"), "{out}");
    assert!(out.contains("gave up after 2 attempts"), "{out}");
}

#[test]
fn changed_answer_leaves_a_pending_snapshot_for_review() {
    let p = project("terse");
    accept_snapshots(p.path());
    let toml = std::fs::read_to_string(p.path().join("eyetest.toml")).unwrap();
    std::fs::write(
        p.path().join("eyetest.toml"),
        toml.replace("\"terse\"", "\"verbose\""),
    )
    .unwrap();
    let o = eyetest(p.path(), &["test"], &[("INSTA_UPDATE", "new")]);
    let out = text(&o);
    assert!(!o.status.success(), "a changed answer must fail: {out}");
    assert!(out.contains("cargo insta review"), "{out}");
    let pending = p
        .path()
        .join("golden/snapshots/study/count/people@sim.snap.new");
    let new = std::fs::read_to_string(&pending).expect("pending snapshot written");
    assert!(new.contains("standing side by side"), "{new}");
    // In CI nothing is written.
    std::fs::remove_file(&pending).unwrap();
    let o = eyetest(p.path(), &["test"], &[("CI", "true")]);
    assert!(!o.status.success());
    assert!(!pending.exists(), "CI must not write snapshots");
}

#[test]
fn bad_spec_stops_before_any_request_naming_file_line_and_fix() {
    let p = project("terse");
    write(
        p.path(),
        "specs/bad.toml",
        "[[case]]\nname = \"x\"\nimage = \"fixtures/people.png\"\npromt = \"typo\"\nrubric = { any = [\"a\"] }\n",
    );
    let o = eyetest(p.path(), &["test"], &[]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("specs/bad.toml:4:1"), "{out}");
    assert!(out.contains("did you mean `prompt`?"), "{out}");
    assert!(!out.contains("passed"), "nothing may run: {out}");
}

/// The records of the latest `eyetest run` in `root`.
fn latest_records(root: &Path) -> Vec<ResultRecord> {
    let file = eyetest::results::latest(root).expect("a latest run");
    read_results(&file).unwrap()
}

/// Every file under `dir`, relative, sorted (empty when `dir` does not exist).
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `eyetest run` gives the verdict `cargo test` gives: rubric *and* snapshot. A new snapshot
/// fails (writing nothing in CI, a pending `.snap.new` elsewhere), an accepted one passes,
/// and a changed answer fails although its rubric passes; each line and record says which.
#[test]
fn run_judges_snapshots_as_cargo_test_does() {
    let p = project("terse");
    let root = p.path();
    let o = eyetest(root, &["run"], &[("CI", "true")]);
    let out = text(&o);
    assert!(!o.status.success(), "a new snapshot fails in CI: {out}");
    assert!(
        out.contains("snapshot new") && out.contains("FAIL    study/count::people@sim"),
        "{out}"
    );
    assert!(out.contains("cargo insta review"), "{out}");
    assert!(
        files_under(&root.join("golden")).is_empty(),
        "CI writes nothing into golden/"
    );
    let records = latest_records(root);
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r.status, Status::Failed, "{r:?}");
        assert_eq!(r.snapshot, Some(SnapshotStatus::New), "{r:?}");
        assert!(
            r.verdict.as_ref().unwrap().passed,
            "the rubric alone passes: {r:?}"
        );
    }

    // Outside CI, insta's pending files only, never an accepted snapshot.
    let o = eyetest(root, &["run"], &[("INSTA_UPDATE", "auto")]);
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(
        files_under(&root.join("golden")),
        [
            "snapshots/study/count/people-word@sim.snap.new",
            "snapshots/study/count/people@sim.snap.new"
        ]
    );
    let pending =
        std::fs::read_to_string(root.join("golden/snapshots/study/count/people@sim.snap.new"))
            .unwrap();
    // What `cargo insta review` shows: the spec, and the line of the case's `[[case]]`.
    assert!(
        pending.contains("source: specs/study/count.toml\nassertion_line: 5\n"),
        "{pending}"
    );

    accept_snapshots(root);
    let o = eyetest(root, &["run"], &[("CI", "true")]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("snapshot unchanged"), "{out}");
    assert!(latest_records(root)
        .iter()
        .all(|r| r.status == Status::Passed && r.snapshot == Some(SnapshotStatus::Unchanged)));

    // A different answer that the rubric accepts still fails, in both commands.
    let toml = std::fs::read_to_string(root.join("eyetest.toml")).unwrap();
    std::fs::write(
        root.join("eyetest.toml"),
        toml.replace("\"terse\"", "\"verbose\""),
    )
    .unwrap();
    let o = eyetest(root, &["run"], &[("CI", "true")]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("snapshot changed"), "{out}");
    let records = latest_records(root);
    assert!(records.iter().all(|r| r.status == Status::Failed
        && r.snapshot == Some(SnapshotStatus::Changed)
        && r.verdict.as_ref().unwrap().passed));
    let o = eyetest(root, &["test"], &[("CI", "true")]);
    assert!(text(&o).contains("0 passed; 2 failed"), "{}", text(&o));
}

/// Errors: every attempt counted in the record, and the whole message (cause included) at
/// the end of the run, once, with the tests it hit.
#[test]
fn run_shows_each_error_whole_and_counts_attempts() {
    let p = project("failing");
    let o = eyetest(p.path(), &["run"], &[("CI", "true")]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    let records = latest_records(p.path());
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r.status, Status::Error);
        assert!(
            r.reason
                .as_deref()
                .unwrap()
                .starts_with("gave up after 2 attempts"),
            "{r:?}"
        );
        assert_eq!(r.attempts, 2, "{r:?}");
    }
    assert!(out.contains("1 distinct error(s):"), "{out}");
    assert_eq!(
        out.matches(records[0].reason.as_deref().unwrap()).count(),
        1,
        "{out}"
    );
    assert!(
        out.contains("hit 2 test(s): study/count::people@sim, study/count::people-word@sim")
            || out.contains("hit 2 test(s): study/count::people-word@sim, study/count::people@sim"),
        "{out}"
    );

    // Nothing listens on the port: the cause comes last in the message, and is shown.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let o = eyetest(
        p.path(),
        &["run", "--target", "remote"],
        &[("CI", "true"), ("EYETEST_TEST_UNSET_URL", &url)],
    );
    let out = text(&o);
    let reason = latest_records(p.path())[0].reason.clone().unwrap();
    assert!(
        reason.to_lowercase().contains("connection refused"),
        "{reason}"
    );
    assert!(out.contains(&reason), "the whole error is shown: {out}");
}

/// A result's time is its request's own; the wait for a concurrency slot is recorded (and
/// shown) apart.
#[test]
fn run_times_the_request_apart_from_the_wait_for_a_slot() {
    let p = project("terse");
    let toml = std::fs::read_to_string(p.path().join("eyetest.toml")).unwrap();
    std::fs::write(
        p.path().join("eyetest.toml"),
        toml.replace(
            "retries = 1\n",
            "retries = 1\nconcurrency = 1\nlatency = { ttft_ms = 600 }\n",
        ),
    )
    .unwrap();
    let o = eyetest(p.path(), &["run"], &[("CI", "true")]);
    let out = text(&o);
    let records = latest_records(p.path());
    assert_eq!(records.len(), 2, "{out}");
    let waited = records
        .iter()
        .max_by(|a, b| a.queued_ms.total_cmp(&b.queued_ms))
        .unwrap();
    assert!(waited.queued_ms >= 400.0, "{records:?}");
    for r in &records {
        assert!(r.elapsed_ms >= 550.0, "{r:?}");
        assert!(
            r.elapsed_ms < 1000.0,
            "the wait is not in the request time: {r:?}"
        );
    }
    assert!(out.contains("s queued)"), "{out}");
}

/// Each run has a file of its own and an id in every record; reports read the latest run,
/// and comparing a filtered run with a whole one compares the tests both have.
#[test]
fn runs_are_kept_apart() {
    let p = project("terse");
    let root = p.path();
    accept_snapshots(root);
    let o = eyetest(root, &["run"], &[("CI", "true")]);
    assert!(o.status.success(), "{}", text(&o));
    let first = eyetest::results::latest(root).unwrap();
    let o = eyetest(root, &["run", "word"], &[("CI", "true")]);
    assert!(o.status.success(), "{}", text(&o));
    let second = eyetest::results::latest(root).unwrap();
    assert_ne!(first, second);
    assert_eq!(files_under(&root.join("target/eyetest/runs")).len(), 2);
    let records = latest_records(root);
    assert_eq!(records.len(), 1);
    let id = second.file_stem().unwrap().to_str().unwrap();
    assert_eq!(records[0].run.as_deref(), Some(id));

    let o = eyetest(root, &["report", "--format", "text"], &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("study/count::people-word@sim"), "{out}");
    assert!(
        !out.contains("study/count::people@sim"),
        "only the latest run: {out}"
    );

    let first = first.to_str().unwrap();
    let o = eyetest(
        root,
        &["report", "--compare", first, "--format", "text"],
        &[],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("1 test(s) in both runs"), "{out}");
    assert!(
        out.contains("1 only in the earlier run (study/count::people@sim)"),
        "{out}"
    );
}

/// Snapshots do not depend on where the project is: two clones at different depths write
/// byte-identical files, whose header names the spec and the case's line.
#[test]
fn snapshots_are_byte_identical_across_checkouts() {
    let p = project("terse");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let clones = [a.path().join("clone"), b.path().join("deeper/still/clone")];
    for clone in &clones {
        for f in files_under(p.path()) {
            let to = clone.join(&f);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(p.path().join(&f), to).unwrap();
        }
        accept_snapshots(clone);
    }
    let snaps = files_under(&clones[0].join("golden"));
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    assert_eq!(snaps, files_under(&clones[1].join("golden")));
    for f in &snaps {
        let one = std::fs::read(clones[0].join("golden").join(f)).unwrap();
        let two = std::fs::read(clones[1].join("golden").join(f)).unwrap();
        assert!(one == two, "{f} differs between checkouts");
    }
    let people =
        std::fs::read_to_string(clones[0].join("golden/snapshots/study/count/people@sim.snap"))
            .unwrap();
    // insta keeps the assertion line in pending files only (see the test above).
    assert!(
        people.starts_with("---\nsource: specs/study/count.toml\ndescription: "),
        "{people}"
    );
    assert!(!people.contains(".rs"), "{people}");
}
