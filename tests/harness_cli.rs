//! The harness end to end, as a user drives it: `eyetest test` (the same code as a project's
//! `cargo test` target) in a child process, on a throwaway project, against the simulated
//! engine over real loopback HTTP.

use std::path::Path;
use std::process::{Command, Output};

use eyetest::fixture::{encode_png, Truth};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A project with two cases on one image of two people, a `sim` target of the given
/// behaviour, and an `openai` target whose endpoint comes from an unset variable.
fn project(behaviour: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let truth = Truth {
        kind: "count".into(),
        terse: "Two people.".into(),
        verbose: "There are two people standing side by side in this image.".into(),
        wrong: "Three people.".into(),
    };
    let png = encode_png(32, 32, &[250; 32 * 32 * 3], Some(&truth)).unwrap();
    std::fs::create_dir_all(root.join("fixtures")).unwrap();
    std::fs::write(root.join("fixtures/people.png"), png).unwrap();
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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eyetest"));
    cmd.arg("--root").arg(root).args(args);
    for var in [
        "CI",
        "INSTA_UPDATE",
        "EYETEST_TARGETS",
        "EYETEST_TEST_UNSET_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("INSTA_UPDATE", "no");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("eyetest runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
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
