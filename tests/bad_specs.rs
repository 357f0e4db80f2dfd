//! The bad-spec corpus: each file in tests/bad_specs/ is loaded as the only spec of a small
//! project, and the exact messages (file:line:col, what is wrong, how to fix it) are
//! snapshot-checked, so a change to any message shows up in review.

use std::path::Path;

use eyetest::fixture::encode_png;
use eyetest::spec::Suite;

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
    std::fs::write(
        root.join("eyetest.toml"),
        "[target.sim]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\n\n[target.llama-11b]\nbackend = \"openai\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
    )
    .unwrap();
    std::fs::copy(spec, root.join("specs/case.toml")).unwrap();
    dir
}

#[test]
fn every_bad_spec_gets_an_exact_actionable_message() {
    insta::glob!("bad_specs/*.toml", |path| {
        let project = project_with(path);
        let errors = match Suite::load(project.path()) {
            Ok(_) => panic!("{} should be rejected", path.display()),
            Err(e) => e,
        };
        let text: Vec<String> = errors.errors.iter().map(|e| e.one_line()).collect();
        for e in &errors.errors {
            assert!(
                e.line > 0 || e.message.contains("no `[[case]]`"),
                "{e} has no line"
            );
        }
        insta::assert_snapshot!(text.join("\n"));
    });
}
