//! Snapshot-checks answers with insta under `golden/snapshots/`, one file per case x target:
//! `golden/snapshots/<spec id>/<case>@<target>.snap`, reviewed with `cargo insta review`.
//!
//! RUST-NOTES: insta names snapshots after the enclosing function and keeps settings per
//! thread, so every check binds its own settings with an explicit name and path.
//!
//! The assertion is made through insta's `_macro_support::assert_snapshot`, the function its
//! `assert_snapshot!` macro expands to, rather than through the macro: the macro passes
//! `file!()` and `line!()` of *this* source file, which put eyetest's own path (relative to
//! wherever the project sits, e.g. `../p/src/snapshot.rs`) into every snapshot header and
//! made `cargo insta review` point at eyetest instead of the spec. Passing the spec file and
//! the case's line instead makes snapshot files byte-identical on every machine and checkout,
//! and review shows the case that asked. The function is public but hidden; Cargo.lock pins
//! insta, and `tests::header_names_the_spec_and_case` fails if a new insta changes it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// The judge's verdict and reason, for rubrics with a judge: what `cargo insta review`
    /// shows beside a new answer. Absent otherwise, so judge-less snapshots stay unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    judge: Option<String>,
}

/// How an answer compared with its stored snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotStatus {
    /// The answer is the stored one.
    Unchanged,
    /// No snapshot was stored for this case x target.
    New,
    /// The answer differs from the stored snapshot.
    Changed,
}

impl SnapshotStatus {
    pub fn word(self) -> &'static str {
        match self {
            SnapshotStatus::Unchanged => "unchanged",
            SnapshotStatus::New => "new",
            SnapshotStatus::Changed => "changed",
        }
    }
}

/// The result of one snapshot check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCheck {
    pub status: SnapshotStatus,
    /// Whether insta let the assertion pass: always for an unchanged answer; for a new or
    /// changed one only when told to write it (`INSTA_UPDATE=always`) or to pass anyway
    /// (`INSTA_FORCE_PASS`), exactly as under `cargo test`.
    pub passed: bool,
    /// The snapshot file, relative to the project root.
    pub file: PathBuf,
}

impl SnapshotCheck {
    /// Why the check fails the case, with what to do; `None` when it passed.
    pub fn problem(&self) -> Option<String> {
        if self.passed {
            return None;
        }
        let shown = self.file.display();
        Some(match self.status {
            SnapshotStatus::Changed => format!(
                "answer differs from the snapshot {shown} (diff above); if the new answer is right, accept it with `cargo insta review`"
            ),
            SnapshotStatus::New | SnapshotStatus::Unchanged => format!(
                "no snapshot yet at {shown}; review and accept the first answer with `cargo insta review` (or run once with INSTA_UPDATE=always)"
            ),
        })
    }
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
/// (outside CI) leaves a `.snap.new` for `cargo insta review`, as under `cargo test`.
///
/// `root` should be absolute: insta resolves the spec path against it for the header.
pub fn check(
    root: &Path,
    golden: &Path,
    case: &Case,
    target: &Target,
    answer: &Answer,
    image_sha256: &str,
) -> SnapshotCheck {
    check_judged(root, golden, case, target, answer, image_sha256, None)
}

/// [`check`], with the judge's verdict on the answer in the snapshot's metadata. The verdict
/// is metadata, not content: a judge changing its mind does not change the snapshot.
pub fn check_judged(
    root: &Path,
    golden: &Path,
    case: &Case,
    target: &Target,
    answer: &Answer,
    image_sha256: &str,
    judge: Option<&crate::rubric::judge::JudgeOutcome>,
) -> SnapshotCheck {
    let root = &std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let file = snapshot_file(root, golden, case, &target.name);
    // Read before insta runs: with `INSTA_UPDATE=always` it rewrites the file in place.
    let status = match insta::Snapshot::from_file(&file) {
        Err(_) => SnapshotStatus::New,
        Ok(old) if holds(&old, &answer.text) => SnapshotStatus::Unchanged,
        Ok(_) => SnapshotStatus::Changed,
    };
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot_dir(root, golden, case));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_suffix(target.name.clone());
    settings.set_input_file(root.join(&case.spec.path));
    settings.set_description(case.prompt.clone());
    settings.set_omit_expression(true);
    settings.set_info(&SnapshotInfo {
        target: &target.name,
        model: &target.common.model,
        gpu: target.common.gpu.as_ref().map(|g| g.to_string()),
        image: storage_path(&case.image),
        image_sha256,
        label: case.label.as_deref(),
        max_tokens: case.max_tokens,
        temperature: case.temperature,
        judge: judge.map(|j| match j.reason.as_str() {
            "" => format!("{} by `{}`", j.status.word(), j.target),
            r => format!("{} by `{}`: {r}", j.status.word(), j.target),
        }),
    });
    // The spec file as the "source" and the case's line as the "assertion line": what the
    // header records and what `cargo insta review` shows.
    let source = root.join(&case.spec.path).to_string_lossy().into_owned();
    let line = u32::try_from(case.line).unwrap_or(u32::MAX);
    let passed = settings.bind(|| {
        catch_unwind(AssertUnwindSafe(|| {
            insta::_macro_support::assert_snapshot(
                (case.name.clone(), answer.text.as_str()).into(),
                root,
                &case.name,
                "eyetest",
                &source,
                line,
                "answer",
            )
        }))
    });
    let passed = matches!(passed, Ok(Ok(())));
    SnapshotCheck {
        status,
        passed,
        file: file
            .strip_prefix(root)
            .map(Path::to_path_buf)
            .unwrap_or(file.clone()),
    }
}

/// Whether a stored snapshot holds `text`, compared as insta compares (line endings and
/// surrounding blank lines aside).
fn holds(snapshot: &insta::Snapshot, text: &str) -> bool {
    use insta::internals::{SnapshotContents, TextSnapshotContents};
    match snapshot.contents() {
        SnapshotContents::Text(stored) => stored.matches_latest(&TextSnapshotContents::new(
            text.to_string(),
            insta::TextSnapshotKind::File,
        )),
        SnapshotContents::Binary(_) => false,
    }
}

/// `/`-separated, so a header written on Windows reads the same as one written elsewhere.
fn storage_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
