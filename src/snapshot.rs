//! Snapshot-checks answers with insta under `golden/snapshots/`, one file per case x target:
//! `golden/snapshots/<spec id>/<case>@<target>.snap`, reviewed with `cargo insta review`.
//!
//! RUST-NOTES: insta names snapshots after the enclosing function and keeps settings per
//! thread, so every check binds its own settings with an explicit name and path.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::Answer;
use crate::spec::Case;
use crate::target::Target;

/// What goes into a snapshot's header besides the prompt (description) and spec (input file):
/// enough to tell, in a pull request, what was asked of which model and which exact image.
#[derive(Debug, Serialize)]
struct SnapshotInfo<'a> {
    target: &'a str,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    gpu: Option<String>,
    image: String,
    image_sha256: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    max_tokens: u32,
    temperature: f64,
}

/// Directory holding the snapshots of one spec file.
pub fn snapshot_dir(root: &Path, golden: &Path, case: &Case) -> PathBuf {
    root.join(golden).join("snapshots").join(&case.spec.id)
}

/// The snapshot file of one case x target.
pub fn snapshot_file(root: &Path, golden: &Path, case: &Case, target: &str) -> PathBuf {
    snapshot_dir(root, golden, case).join(format!("{}@{}.snap", case.name, target))
}

/// Compares the answer with its stored snapshot. On a difference insta prints the diff and
/// (outside CI) leaves a `.snap.new` for `cargo insta review`; this returns the error text.
pub fn check(
    root: &Path,
    golden: &Path,
    case: &Case,
    target: &Target,
    answer: &Answer,
    image_sha256: &str,
) -> Result<(), String> {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot_dir(root, golden, case));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_suffix(target.name.clone());
    settings.set_input_file(&case.spec.path);
    settings.set_description(case.prompt.clone());
    settings.set_omit_expression(true);
    settings.set_info(&SnapshotInfo {
        target: &target.name,
        model: &target.config.model,
        gpu: target.config.gpu.as_ref().map(|g| g.to_string()),
        image: case.image.display().to_string(),
        image_sha256,
        label: case.label.as_deref(),
        max_tokens: case.max_tokens,
        temperature: case.temperature,
    });
    let name = case.name.clone();
    let text = answer.text.clone();
    let result = settings.bind(|| {
        catch_unwind(AssertUnwindSafe(|| {
            insta::assert_snapshot!(name, text);
        }))
    });
    result.map_err(|_| {
        let shown = snapshot_file(Path::new(""), golden, case, &target.name);
        if snapshot_file(root, golden, case, &target.name).exists() {
            format!(
                "answer differs from the snapshot {} (diff above); if the new answer is right, accept it with `cargo insta review`",
                shown.display()
            )
        } else {
            format!(
                "no snapshot yet at {}; review and accept the first answer with `cargo insta review` (or run once with INSTA_UPDATE=always)",
                shown.display()
            )
        }
    })
}
