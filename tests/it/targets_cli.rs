//! Target selection as a user meets it, through the real binary: a target that was asked
//! for and cannot run fails in every command (`eyetest test`, `run`, `bench`); one that was
//! not asked for is ignored with the reason in plain output; a configured endpoint runs
//! without ceremony; only declared targets exist; and every message names real things.

use std::path::Path;
use std::process::Output;

use crate::support::{self, people_png, text, write, write_people};
use eyetest::fixture::encode_png;

const UNSET: &str = "EYETEST_TEST_TARGETS_UNSET_URL";

/// A project with a `sim` target, an `openai` target whose URL variable is unset, two
/// cases on an image of two people, and a throughput sweep on both targets. `extra` is
/// appended to eyetest.toml.
fn project(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_people(
        root,
        people_png(
            32,
            250,
            "There are two people in this image.",
            "Three people.",
        ),
    );
    write(
        root,
        "eyetest.toml",
        &format!(
            "[target.sim]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\n\n\
             [target.remote]\nbackend = \"openai\"\nmodel = \"some/model\"\nbase_url_env = \"{UNSET}\"\n\n{extra}"
        ),
    );
    write(
        root,
        "specs/count.toml",
        r#"
[defaults]
targets = ["sim", "remote"]

[[case]]
name = "people"
image = "fixtures/people.png"
prompt = "How many people are there in this image?"
rubric = { number = 2 }

[[case]]
name = "people-word"
image = "fixtures/people.png"
prompt = "Count the people."
rubric = { any = ["two", "2"] }

[[throughput]]
name = "tiny"
targets = ["sim", "remote"]
images = { random = { width = 64, height = 64, count = 2, seed = 0 } }
prompt = "Describe."
max_tokens = 4
concurrency = [1]
requests = [2]
repeats = 1
"#,
    );
    dir
}

fn eyetest(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = support::eyetest(root, args, "always");
    cmd.env_remove(UNSET);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("eyetest runs")
}

/// Issue 10 item 1: `EYETEST_TARGETS=llama-11b cargo test` with its URL unset was all
/// ignored and exit 0. A selected target that cannot run fails, in every command.
#[test]
fn a_selected_target_that_cannot_run_fails_in_every_command() {
    let p = project("");
    let root = p.path();
    let want = format!("set {UNSET}");

    let o = eyetest(root, &["test"], &[("EYETEST_TARGETS", "remote")]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("0 passed; 2 failed; 2 ignored"), "{out}");
    assert!(
        out.contains("target `remote` was selected (EYETEST_TARGETS=remote) but cannot run"),
        "{out}"
    );
    assert!(out.contains(&want), "{out}");

    let o = eyetest(root, &["run", "--target", "remote"], &[]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains(&want), "{out}");

    let o = eyetest(root, &["run"], &[("EYETEST_TARGETS", "remote")]);
    assert!(!o.status.success(), "{}", text(&o));

    let o = eyetest(root, &["bench", "--target", "remote"], &[]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains(&want), "{out}");

    // `all` asks for every declared target: the same failure.
    let o = eyetest(root, &["test"], &[("EYETEST_TARGETS", "all")]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("2 passed; 2 failed; 0 ignored"), "{out}");
}

/// Targets not asked for are ignored with the reason visible in plain output (no
/// `--include-ignored`), and the default runs what is configured, ignoring the rest with
/// the variable to set.
#[test]
fn ignored_targets_say_why_in_plain_output() {
    let p = project("");
    let root = p.path();

    let o = eyetest(root, &["test"], &[("EYETEST_TARGETS", "sim")]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("2 passed; 0 failed; 2 ignored"), "{out}");
    assert!(
        out.contains(
            "target `remote` not selected (EYETEST_TARGETS=sim); run it with EYETEST_TARGETS=remote"
        ),
        "{out}"
    );

    let o = eyetest(root, &["test"], &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("2 passed; 0 failed; 2 ignored"), "{out}");
    assert!(
        out.contains(&format!("endpoint not configured: set {UNSET}")),
        "{out}"
    );
}

/// Issue 10 item 2: a target with a literal `base_url` runs without being selected.
#[test]
fn a_configured_endpoint_runs_by_default() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(eyetest::sim::SimServer::start(
            ([127, 0, 0, 1], 0).into(),
            eyetest::sim::SimConfig::default(),
        ))
        .unwrap();
    let p = project(&format!(
        "[target.local]\nbackend = \"openai\"\nmodel = \"m\"\nbase_url = \"{}\"\n",
        server.base_url()
    ));
    let root = p.path();
    write(
        root,
        "specs/count.toml",
        &std::fs::read_to_string(root.join("specs/count.toml"))
            .unwrap()
            .replace(
                "targets = [\"sim\", \"remote\"]\n\n[[case]]",
                "targets = [\"sim\", \"remote\", \"local\"]\n\n[[case]]",
            ),
    );
    let o = eyetest(root, &["run", "--out", "results.jsonl"], &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let records = eyetest::results::read_results(&root.join("results.jsonl")).unwrap();
    let on_local = records.iter().filter(|r| r.target == "local").count();
    assert_eq!(on_local, 2, "{out}");
    assert!(records.iter().all(|r| r.target != "remote"), "{out}");
    assert!(
        out.contains(&format!(
            "not running target `remote`: endpoint not configured: set {UNSET}"
        )),
        "{out}"
    );
    rt.block_on(server.shutdown());
}

/// Issue 10 item 2: messages name the project's own targets and filters, never Rust
/// debug text or a target the project does not have.
#[test]
fn messages_name_real_things() {
    let p = project("");
    let root = p.path();

    let o = eyetest(root, &["run", "real"], &[]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(!out.contains("Some("), "{out}");
    assert!(out.contains("no test name contains `real`"), "{out}");
    assert!(out.contains("count::people@sim"), "an example name: {out}");

    // Nothing can run: the message names the targets and why, and suggests a real one.
    let o = eyetest(root, &["run", "people@remote"], &[]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(!out.contains("Some("), "{out}");
    assert!(out.contains("remote: endpoint not configured"), "{out}");

    let o = eyetest(root, &["bench", "tiny"], &[("EYETEST_TARGETS", "sim")]);
    assert!(o.status.success(), "{}", text(&o));
    let toml = std::fs::read_to_string(root.join("eyetest.toml")).unwrap();
    write(
        root,
        "eyetest.toml",
        &toml.replace(
            "[target.sim]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\n",
            "",
        ),
    );
    write(
        root,
        "specs/count.toml",
        &std::fs::read_to_string(root.join("specs/count.toml"))
            .unwrap()
            .replace("[\"sim\", \"remote\"]", "[\"remote\"]"),
    );
    let o = eyetest(root, &["bench", "tiny"], &[]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(!out.contains("sim-h100"), "{out}");
    assert!(
        out.contains("count::tiny@remote: endpoint not configured"),
        "{out}"
    );
}

/// Issue 10 item 3: a missing root or eyetest.toml is an error that says what is missing
/// and how to make a project, not `ok: 0 case(s)`.
#[test]
fn a_missing_project_is_an_error() {
    let o = eyetest(Path::new("/nonexistent/eyetest-project"), &["check"], &[]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("project root does not exist"), "{out}");
    assert!(out.contains("eyetest init"), "{out}");
    assert!(!out.contains("ok:"), "{out}");

    let empty = tempfile::tempdir().unwrap();
    for args in [&["check"][..], &["run"], &["list"], &["bench"]] {
        let o = eyetest(empty.path(), args, &[]);
        let out = text(&o);
        assert!(!o.status.success(), "{args:?}: {out}");
        assert!(
            out.contains("eyetest.toml: not found in"),
            "{args:?}: {out}"
        );
        assert!(out.contains("run `eyetest init`"), "{args:?}: {out}");
        assert!(!out.contains("filter None"), "{args:?}: {out}");
    }
}

/// Issue 10 item 7: only declared targets exist; there is no hidden built-in `sim`.
#[test]
fn only_declared_targets_exist() {
    let p = project("");
    let root = p.path();
    let toml = std::fs::read_to_string(root.join("eyetest.toml")).unwrap();
    write(
        root,
        "eyetest.toml",
        &toml.replace(
            "[target.sim]\nbackend = \"sim\"",
            "[target.mysim]\nbackend = \"sim\"",
        ),
    );
    write(
        root,
        "specs/count.toml",
        &std::fs::read_to_string(root.join("specs/count.toml"))
            .unwrap()
            .replace("\"sim\"", "\"mysim\""),
    );
    let o = eyetest(root, &["check"], &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("2 target(s)"), "{out}");

    let o = eyetest(root, &["run", "--target", "all"], &[]);
    let out = text(&o);
    assert!(!out.contains("@sim "), "{out}");

    let o = eyetest(root, &["run", "--target", "sim"], &[]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("unknown target `sim`"), "{out}");

    let o = eyetest(root, &["list"], &[]);
    let out = text(&o);
    assert!(!out.contains("@sim"), "{out}");
}

/// Issue 10 item 14: `list` takes the filter `run` takes.
#[test]
fn list_takes_a_filter() {
    let p = project("");
    let o = eyetest(p.path(), &["list", "word"], &[]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["count::people-word@sim", "count::people-word@remote"]
    );
    let o = eyetest(p.path(), &["list", "nothing-like-this"], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no test name contains `nothing-like-this`"));
}

/// Issue 10 item 14: `eyetest sim` does not take the interop script's port.
#[test]
fn sim_defaults_to_its_own_port() {
    let o = eyetest(Path::new("."), &["sim", "--help"], &[]);
    let out = text(&o);
    assert!(out.contains("[default: 8090]"), "{out}");
}

/// Issue 10 item 14: an image too large to mean is sent with a warning naming it.
#[test]
fn a_huge_image_is_sent_with_a_warning() {
    let p = project("[target.nowhere]\nbackend = \"openai\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:9/v1\"\nretries = 0\n");
    let root = p.path();
    let mut big = encode_png(2, 2, &[0; 12], None).unwrap();
    big.resize(21 * 1024 * 1024, 0);
    std::fs::write(root.join("fixtures/big.png"), big).unwrap();
    write(
        root,
        "specs/big.toml",
        "[[case]]\nname = \"big\"\nimage = \"fixtures/big.png\"\nprompt = \"?\"\ntargets = [\"nowhere\"]\nrubric = { any = [\"x\"] }\n",
    );
    let o = eyetest(root, &["run", "big", "--target", "nowhere"], &[]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        err.matches("warning: image `fixtures/big.png` is 22.0 MB")
            .count(),
        1,
        "{}",
        text(&o)
    );
}

/// Issue 10 item 12: `check` reports every problem at once, eyetest.toml and specs
/// together (before: it stopped at eyetest.toml's first unknown key, and a type error hid a
/// spec file's other problems), and says where they are.
#[test]
fn check_reports_every_problem_at_once() {
    let p = project("");
    let root = p.path();
    let toml = std::fs::read_to_string(root.join("eyetest.toml")).unwrap();
    write(
        root,
        "eyetest.toml",
        &toml.replace(
            "model = \"eyetest-sim\"\n",
            "model = \"eyetest-sim\"\nbehavior = \"terse\"\ntimeout = 5\n",
        ),
    );
    write(
        root,
        "specs/bad.toml",
        "[[case]]\nname = \"a\"\nimage = \"fixtures/people.png\"\nprompt = \"?\"\nmax_tokens = \"ten\"\nrubric = { any = [\"x\"] }\n\n\
         [[case]]\nname = \"b\"\nimage = \"fixtures/people.png\"\nprompt = \"?\"\nrubirc = { any = [\"x\"] }\nrubric = { any = [\"x\"] }\n\n\
         [[case]]\nname = \"c\"\nimage = \"fixtures/missing.png\"\nprompt = \"?\"\nrubric = { any = [\"x\"] }\n",
    );
    let o = eyetest(root, &["check"], &[]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    for want in [
        "eyetest.toml:4:1: unknown field `behavior`",
        "eyetest.toml:5:1: unknown field `timeout`",
        "specs/bad.toml:5:14: invalid type",
        "specs/bad.toml:12:1: unknown field `rubirc`",
        "image `fixtures/missing.png` does not exist",
        "5 problem(s) in eyetest.toml and the specs; nothing was run",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

/// Issue 11 step 3: one truthiness rule, and a value it does not know is an error naming
/// the variable, not a silent "off".
#[test]
fn a_bad_switch_value_is_refused_by_name() {
    let p = project("");
    for args in [&["run"][..], &["test"], &["bench"]] {
        let o = eyetest(p.path(), args, &[("EYETEST_RECORD", "on")]);
        let out = text(&o);
        assert!(!o.status.success(), "{args:?}: {out}");
        assert!(
            out.contains("EYETEST_RECORD=\"on\" is not a switch: use 1, true or yes"),
            "{args:?}: {out}"
        );
    }
    let o = eyetest(p.path(), &["test"], &[("EYETEST_RECORD", "no")]);
    assert!(o.status.success(), "{}", text(&o));
}
