//! Reading the files users point eyetest at: spec and manifest text, and images named in
//! specs. Both the case and the throughput loaders check images, and the spec and manifest
//! loaders read text, with the same located errors, so the checks live below all of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::InputError;

/// Reads a file as UTF-8, with errors that name it and say what it is (`what`: "spec file",
/// "manifest").
pub(crate) fn read_text(path: &Path, what: &str) -> Result<Arc<str>, Box<InputError>> {
    let bytes = std::fs::read(path)
        .map_err(|e| Box::new(InputError::file(path, format!("cannot read {what}: {e}"))))?;
    String::from_utf8(bytes).map(Arc::from).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        let (line, col) = crate::diagnostic::line_col(&text, at);
        let mut err = InputError::file(
            path,
            format!("not valid UTF-8 at line {line}, column {col} (byte {at})"),
        )
        .with_help("save the file as UTF-8");
        err.line = line;
        err.column = col;
        Box::new(err)
    })
}

/// Where a symbolic link points, when what it points at does not exist.
pub(crate) fn dangling_link(path: &Path) -> Option<PathBuf> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let missing =
        matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    (meta.file_type().is_symlink() && missing)
        .then(|| std::fs::read_link(path).ok())
        .flatten()
}

/// Why a case's image cannot be used; the help a spec problem gets depends on which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ImageProblem {
    #[error("does not exist")]
    Missing,
    #[error("is a symbolic link to `{0}`, which does not exist")]
    DanglingLink(PathBuf),
    #[error("cannot be read: {0}")]
    Unreadable(String),
    #[error("is a directory, not an image file")]
    Directory,
    #[error("is not a PNG or JPEG image")]
    NotAnImage,
}

/// Whether a path is a readable PNG or JPEG (by its magic bytes).
pub(crate) fn check_image(path: &Path) -> Result<(), ImageProblem> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(match dangling_link(path) {
                Some(to) => ImageProblem::DanglingLink(to),
                None => ImageProblem::Missing,
            })
        }
        Err(e) => return Err(ImageProblem::Unreadable(e.to_string())),
    };
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(ImageProblem::Directory);
    }
    let mut head = [0u8; 8];
    let n = f
        .read(&mut head)
        .map_err(|e| ImageProblem::Unreadable(e.to_string()))?;
    match crate::backend::sniff_mime(&head[..n]) {
        Some(_) => Ok(()),
        None => Err(ImageProblem::NotAnImage),
    }
}
