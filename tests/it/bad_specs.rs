//! The bad-spec corpus: each file in tests/it/bad_specs/ is loaded as the only spec of a small
//! project, and the exact messages (file:line:col, what is wrong, how to fix it) are
//! snapshot-checked, so a change to any message shows up in review. A case about the project
//! file brings its own eyetest.toml as tests/it/bad_specs/eyetest/NAME.toml.
//!
//! Inputs that cannot be committed (a 5 MiB file, symbolic links, permissions) are made by
//! `generated_bad_inputs` below.

use std::path::Path;

use eyetest::fixture::encode_png;
use eyetest::spec::Suite;

const PROJECT: &str = "[target.sim]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\n\n[target.llama-11b]\nbackend = \"openai\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:9/v1\"\n";

const GOOD_CASE: &str = "[[case]]\nname = \"x\"\nimage = \"fixtures/ok.png\"\nprompt = \"How many?\"\nrubric = { any = [\"2\"] }\n";

fn project_with(spec: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs")).unwrap();
    std::fs::create_dir_all(root.join("fixtures")).unwrap();
    std::fs::write(
        root.join("fixtures/ok.png"),
        encode_png(2, 2, &[0; 12], None).unwrap(),
    )
    .unwrap();
    std::fs::write(root.join("fixtures/not-image.png"), "GIF89a, not really").unwrap();
    let own_project = spec
        .parent()
        .unwrap()
        .join("eyetest")
        .join(spec.file_name().unwrap());
    match std::fs::read_to_string(own_project) {
        Ok(text) => std::fs::write(root.join("eyetest.toml"), text).unwrap(),
        Err(_) => std::fs::write(root.join("eyetest.toml"), PROJECT).unwrap(),
    }
    std::fs::copy(spec, root.join("specs/case.toml")).unwrap();
    dir
}

/// Whole-file problems have no line to point at; every other message must have one.
fn assert_placed(errors: &eyetest::diagnostic::InputErrors) {
    const WHOLE_FILE: [&str; 5] = [
        "letter case",
        "no `[[case]]`",
        "byte limit",
        "cannot read spec file",
        "symbolic link",
    ];
    for e in &errors.errors {
        assert!(
            e.line > 0 || WHOLE_FILE.iter().any(|m| e.message.contains(m)),
            "{e} has no line"
        );
    }
}

/// The messages of a project that must fail to load, one per line as `eyetest check` prints.
fn messages(root: &Path) -> String {
    let errors = match Suite::load(root) {
        Ok(_) => panic!("{} should be rejected", root.display()),
        Err(e) => e,
    };
    assert_placed(&errors);
    let _ = errors.render(false);
    let text: Vec<String> = errors.errors.iter().map(|e| e.one_line()).collect();
    text.join("\n")
}

/// One snapshot per corpus file, named as `insta::glob!` names them. Not `glob!` itself: while
/// a glob runs, insta collects every failing snapshot assertion in the process into it, so the
/// other tests of this binary that check snapshots in parallel would see their mismatches
/// swallowed (and this test fail for them).
#[test]
fn every_bad_spec_gets_an_exact_actionable_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/bad_specs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for path in files {
        let project = project_with(&path);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_suffix(path.file_name().unwrap().to_string_lossy());
        settings.set_input_file(&path);
        settings.set_prepend_module_to_snapshot(true);
        settings.bind(|| insta::assert_snapshot!(messages(project.path())));
    }
}

#[test]
fn the_corpus_has_at_least_40_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/bad_specs");
    let n = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .count();
    assert!(n >= 40, "{n} cases");
}

/// A fresh project with the standard eyetest.toml and fixtures, and no spec yet.
fn empty_project() -> tempfile::TempDir {
    let dir = project_with(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/bad_specs/empty-file.toml"),
    );
    std::fs::remove_file(dir.path().join("specs/case.toml")).unwrap();
    dir
}

#[cfg(unix)]
#[test]
fn generated_bad_inputs() {
    use std::os::unix::fs::symlink;

    // Over the 4 MiB limit: refused before it is parsed.
    let p = empty_project();
    let mut huge = GOOD_CASE.to_string();
    huge.push_str(&"# padding\n".repeat(500_000));
    std::fs::write(p.path().join("specs/huge.toml"), huge).unwrap();
    insta::assert_snapshot!("generated-huge-file", messages(p.path()));

    // A spec file that is a dangling symbolic link.
    let p = empty_project();
    symlink("gone.toml", p.path().join("specs/case.toml")).unwrap();
    insta::assert_snapshot!("generated-dangling-spec-link", messages(p.path()));

    // Unreadable. Root reads a chmod 000 file, and these tests may run as root, so a link
    // loop stands in for it: opening it fails (ELOOP) whoever you are.
    let p = empty_project();
    symlink("b.toml", p.path().join("specs/a.toml")).unwrap();
    symlink("a.toml", p.path().join("specs/b.toml")).unwrap();
    insta::assert_snapshot!("generated-unreadable-spec", messages(p.path()));

    // Images: a dangling link, and an unreadable one (a link loop again).
    let p = empty_project();
    symlink("gone.png", p.path().join("fixtures/link.png")).unwrap();
    symlink("loop.png", p.path().join("fixtures/loop.png")).unwrap();
    std::fs::write(
        p.path().join("specs/case.toml"),
        GOOD_CASE.replace("ok.png", "link.png")
            + &GOOD_CASE
                .replace("\"x\"", "\"y\"")
                .replace("ok.png", "loop.png"),
    )
    .unwrap();
    insta::assert_snapshot!("generated-image-links", messages(p.path()));

    // A spec directory linked back into itself is walked once, not forever.
    let p = empty_project();
    std::fs::write(p.path().join("specs/case.toml"), "prompt = 1").unwrap();
    symlink(".", p.path().join("specs/again")).unwrap();
    insta::assert_snapshot!("generated-link-loop-in-specs", messages(p.path()));

    // A truly unreadable file, where permissions mean something.
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        let p = empty_project();
        let path = p.path().join("specs/case.toml");
        std::fs::write(&path, GOOD_CASE).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        let text = messages(p.path());
        assert!(text.contains("cannot read spec file"), "{text}");
    }
}

/// Case names are namespaced by their file, so the same name in two files is two tests; two
/// files whose names differ only in case would share snapshot directories on macOS and
/// Windows, so that is refused.
#[test]
fn names_across_files() {
    let p = empty_project();
    std::fs::write(p.path().join("specs/a.toml"), GOOD_CASE).unwrap();
    std::fs::write(p.path().join("specs/b.toml"), GOOD_CASE).unwrap();
    let suite = Suite::load(p.path()).unwrap();
    let names: Vec<String> = suite.cases.iter().map(|c| c.test_name("sim")).collect();
    assert_eq!(names, ["a::x@sim", "b::x@sim"]);

    std::fs::create_dir_all(p.path().join("specs/Study")).unwrap();
    std::fs::create_dir_all(p.path().join("specs/study")).unwrap();
    std::fs::write(p.path().join("specs/Study/count.toml"), GOOD_CASE).unwrap();
    std::fs::write(p.path().join("specs/study/count.toml"), GOOD_CASE).unwrap();
    insta::assert_snapshot!("generated-ids-differ-only-in-case", messages(p.path()));
}
