//! `eyetest init` end to end: the scaffold's files, that it loads as a project, that its
//! snapshots hold what the simulated engine answers, and that it never overwrites anything.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use crate::support::text;
use eyetest::backend::{Answer, ImageData, Timing};
use eyetest::fixture::read_truth;
use eyetest::spec::Suite;

fn eyetest(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eyetest"));
    cmd.current_dir(cwd).args(args);
    for var in ["INSTA_UPDATE", "INSTA_WORKSPACE_ROOT", "EYETEST_TARGETS"] {
        cmd.env_remove(var);
    }
    cmd.output().expect("eyetest runs")
}

const FILES: &[&str] = &[
    "Cargo.toml",
    "tests/eyetest.rs",
    "src/lib.rs",
    "eyetest.toml",
    "specs/example.toml",
    "fixtures/catalogue.toml",
    "fixtures/example/stars-3.png",
    "fixtures/example/red-star.png",
    "golden/.gitkeep",
    "golden/snapshots/example/stars@sim.snap",
    "golden/snapshots/example/star-colour@sim.snap",
    ".gitignore",
];

/// Runs `eyetest init NAME` in a fresh temporary directory; returns it and the project dir.
fn scaffold(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    scaffold_with(name, &[])
}

fn scaffold_with(name: &str, extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["init", name];
    args.extend_from_slice(extra);
    let o = eyetest(tmp.path(), &args);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("cargo test"),
        "init says what to run next: {out}"
    );
    assert!(out.contains("SIMULATED"), "{out}");
    let dir = tmp.path().join(name);
    (tmp, dir)
}

#[test]
fn init_writes_a_project_that_loads() {
    let (_tmp, dir) = scaffold("My Vision Specs");
    for f in FILES {
        assert!(dir.join(f).is_file(), "{f} missing");
    }

    let cargo: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
    assert_eq!(cargo["package"]["name"].as_str(), Some("my-vision-specs"));
    let test = &cargo["test"][0];
    assert_eq!(test["name"].as_str(), Some("eyetest"));
    assert_eq!(test["harness"].as_bool(), Some(false));
    // A version requirement, not the folder this binary was compiled in.
    let dep = &cargo["dev-dependencies"]["eyetest"];
    assert_eq!(dep["version"].as_str(), Some("0.1"), "{cargo:?}");
    // The harness's lean build: the simulated engine, no command line.
    assert_eq!(dep["default-features"].as_bool(), Some(false), "{cargo:?}");
    assert_eq!(dep["features"].as_array().unwrap().len(), 1, "{cargo:?}");
    assert_eq!(dep["features"][0].as_str(), Some("sim"), "{cargo:?}");
    // A lighter first build: dependencies without debug info.
    let deps = &cargo["profile"]["dev"]["package"]["*"];
    assert_eq!(deps["debug"].as_bool(), Some(false), "{cargo:?}");
    let harness = std::fs::read_to_string(dir.join("tests/eyetest.rs")).unwrap();
    assert!(
        harness.contains(
            "fn main() -> std::process::ExitCode {\n    eyetest::harness::main(env!(\"CARGO_MANIFEST_DIR\"))\n}"
        ),
        "{harness}"
    );
    let gitignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
    assert_eq!(
        gitignore.lines().collect::<Vec<_>>(),
        ["/target", "*.snap.new", "*.pending-snap"]
    );
    let config = std::fs::read_to_string(dir.join("eyetest.toml")).unwrap();
    assert!(config.contains("# base_url = \"http://localhost:8000/v1\""));

    let root = dir.to_str().unwrap();
    let o = eyetest(&dir, &["--root", root, "check"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("ok: 2 case(s), 0 throughput sweep(s), 1 target(s)"),
        "{}",
        text(&o)
    );
    let o = eyetest(&dir, &["--root", root, "test", "--list"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        text(&o)
            .lines()
            .filter(|l| l.ends_with(": test"))
            .collect::<Vec<_>>(),
        ["example::stars@sim: test", "example::star-colour@sim: test"]
    );
    let o = eyetest(&dir, &["--root", root, "fixtures", "--check"]);
    assert!(
        o.status.success(),
        "fixtures match their catalogue: {}",
        text(&o)
    );
}

/// The shipped snapshots must pass the harness's own check with the answer the simulated
/// engine gives (`behaviour = "terse"`: the fixture's terse truth), and only with that.
#[test]
fn snapshots_hold_the_simulated_engines_answers() {
    let (_tmp, dir) = scaffold("specs");
    let stars =
        std::fs::read_to_string(dir.join("golden/snapshots/example/stars@sim.snap")).unwrap();
    assert!(stars.ends_with("\n---\n3\n"), "{stars}");
    assert!(stars.contains("description: How many stars are there in this image?"));
    assert!(stars.contains("image_sha256: "));

    let suite = Arc::new(Suite::load(&dir).expect("scaffold loads"));
    assert_eq!(suite.cases.len(), 2);
    for case in &suite.cases {
        let bytes = std::fs::read(&case.image_path).unwrap();
        let truth = read_truth(&bytes).expect("fixtures carry their ground truth");
        let sha = ImageData::from_bytes(bytes).unwrap().sha256;
        let target = suite.target("sim").unwrap();
        let answer = |text: &str| Answer {
            text: text.into(),
            model: "eyetest-sim/terse (simulated engine, not a real model)".into(),
            finish_reason: Some("stop".into()),
            usage: None,
            timing: Timing::default(),
        };
        let golden = &suite.config.settings.golden;
        assert!(
            case.rubric.check(&truth.terse).passed,
            "{}: the example must pass on the simulated engine",
            case.name
        );
        let check = |text: &str| {
            eyetest::snapshot::check(&suite.root, golden, case, target, &answer(text), &sha)
        };
        let right = check(&truth.terse);
        assert!(right.passed, "{}: {right:?}", case.name);
        assert_eq!(right.status, eyetest::snapshot::SnapshotStatus::Unchanged);
        // With INSTA_UPDATE=always a mismatch is written instead of reported.
        if !matches!(
            std::env::var("INSTA_UPDATE").as_deref(),
            Ok("always" | "force")
        ) {
            let wrong = check(&truth.wrong);
            assert!(!wrong.passed, "{}", case.name);
            assert_eq!(wrong.status, eyetest::snapshot::SnapshotStatus::Changed);
        }
    }
}

/// Every file is the same whatever the folder: headers name the spec file and case line (not
/// eyetest's own source, relative to wherever it was built), and Cargo.toml a version.
#[test]
fn scaffolds_are_byte_identical_wherever_they_are_made() {
    let (_a, one) = scaffold("same-name");
    let deeper = tempfile::tempdir().unwrap();
    let nested = deeper.path().join("x/y/z");
    std::fs::create_dir_all(&nested).unwrap();
    let o = eyetest(&nested, &["init", "same-name"]);
    assert!(o.status.success(), "{}", text(&o));
    let two = nested.join("same-name");
    for f in FILES {
        let (a, b) = (
            std::fs::read(one.join(f)).unwrap(),
            std::fs::read(two.join(f)).unwrap(),
        );
        assert!(
            a == b,
            "{f} differs:\n{}\n---\n{}",
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b)
        );
    }
    let stars =
        std::fs::read_to_string(one.join("golden/snapshots/example/stars@sim.snap")).unwrap();
    // Accepted snapshots keep no assertion line (insta writes it to pending files only).
    assert!(
        stars.starts_with("---\nsource: specs/example.toml\ndescription: "),
        "{stars}"
    );
    assert!(!stars.contains("snapshot.rs"), "{stars}");
}

#[test]
fn init_can_point_at_a_checkout_or_a_repository() {
    let (_tmp, dir) = scaffold_with("p", &["--path", env!("CARGO_MANIFEST_DIR")]);
    let cargo: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
    assert_eq!(
        cargo["dev-dependencies"]["eyetest"]["path"].as_str(),
        Some(env!("CARGO_MANIFEST_DIR"))
    );
    let (_tmp, dir) = scaffold_with("g", &["--git", "https://example.invalid/eyetest"]);
    let cargo: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
    assert_eq!(
        cargo["dev-dependencies"]["eyetest"]["git"].as_str(),
        Some("https://example.invalid/eyetest")
    );
}

#[test]
fn init_defaults_to_the_current_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vlm-exam");
    std::fs::create_dir(&dir).unwrap();
    let o = eyetest(&dir, &["init"]);
    assert!(o.status.success(), "{}", text(&o));
    let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"vlm-exam\""), "{cargo}");
    assert!(dir
        .join("golden/snapshots/example/stars@sim.snap")
        .is_file());
}

#[test]
fn init_refuses_to_overwrite_and_lists_what_is_in_the_way() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"mine\"\n").unwrap();
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::write(dir.join("specs/example.toml"), "# mine\n").unwrap();
    let o = eyetest(dir, &["init", "."]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("refusing to overwrite"), "{out}");
    assert!(out.contains("  Cargo.toml\n"), "{out}");
    assert!(out.contains("  specs/example.toml\n"), "{out}");
    assert!(
        !out.contains("eyetest.toml"),
        "only what exists is listed: {out}"
    );
    assert!(!dir.join("eyetest.toml").exists(), "nothing is written");
    assert!(!dir.join("fixtures").exists(), "nothing is written");
    assert_eq!(
        std::fs::read_to_string(dir.join("Cargo.toml")).unwrap(),
        "[package]\nname = \"mine\"\n"
    );
}

/// The promise itself: `cargo test` passes in a fresh scaffold. Builds eyetest and its
/// dependencies into a target dir of its own (minutes the first time), offline, with this
/// checkout's Cargo.lock so that no version has to be resolved.
#[test]
#[ignore = "builds a whole project; run with --ignored"]
fn scaffold_passes_cargo_test_on_first_run() {
    // No eyetest is published to resolve a version from offline: point at this checkout.
    let (_tmp, dir) = scaffold_with("first-run", &["--path", env!("CARGO_MANIFEST_DIR")]);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("init-scaffold-target");
    let o = Command::new(env!("CARGO"))
        .current_dir(&dir)
        .args(["test", "--offline"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("INSTA_UPDATE")
        .env_remove("INSTA_WORKSPACE_ROOT")
        .env_remove("EYETEST_TARGETS")
        .env_remove("CI")
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("2 passed; 0 failed"), "{out}");
    assert!(
        !dir.join("golden/snapshots/example/stars@sim.snap.new")
            .exists(),
        "no pending snapshot: {out}"
    );
}
