//! Remote photos: manifests that pin them, a verified cache that holds them, and
//! `eyetest fetch` that fills it.
//!
//! Photos that eyetest may not redistribute (the study's) are listed, never committed: a
//! manifest gives each one's URL, size and sha256, `eyetest fetch` downloads them on request
//! into `.eyetest/photos/` (git-ignored), and a case whose photo is not there, or not the
//! file the manifest pins, is ignored with the command that fixes it. Nothing here runs
//! during `cargo test` or `eyetest run`: both only look at the cache.

#[cfg(feature = "cli")]
mod download;
mod manifest;

use std::path::{Path, PathBuf};
use std::sync::Arc;

#[cfg(feature = "cli")]
pub use download::{fetch, FetchError, FetchEvent, FetchOptions, FetchSummary};
pub use manifest::{Manifest, Manifests, Photo, CACHE_DIR, MANIFEST_DIR, MAX_PHOTO_BYTES};

/// What the cache holds for one photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheState {
    /// The file the manifest pins.
    Verified,
    Missing,
    /// A file that is not the one pinned (a damaged, edited or half-written download).
    Mismatch(String),
}

use crate::digest::sha256_hex;

/// Whether the cached copy of `photo` under `root` is exactly the file its manifest pins.
pub fn cache_state(root: &Path, photo: &Photo) -> CacheState {
    let path = root.join(photo.cache_path());
    let meta = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return CacheState::Mismatch("is not a regular file".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return CacheState::Missing,
        Err(e) => return CacheState::Mismatch(format!("cannot be read: {e}")),
    };
    if meta.len() != photo.bytes {
        return CacheState::Mismatch(format!(
            "is {} bytes, the manifest says {}",
            meta.len(),
            photo.bytes
        ));
    }
    // Hashed every time, not memoised by modification time: a file rewritten within one
    // timestamp tick would slip through, and a 100 kB photo hashes in well under a millisecond.
    match std::fs::read(&path) {
        Ok(bytes) => {
            let got = sha256_hex(&bytes);
            if got == photo.sha256 {
                CacheState::Verified
            } else {
                CacheState::Mismatch(format!(
                    "has sha256 {got}, the manifest says {}",
                    photo.sha256
                ))
            }
        }
        Err(e) => CacheState::Mismatch(format!("cannot be read: {e}")),
    }
}

/// The distinct photos among `photos`, in order (cases share photos; each is fetched once).
pub fn photos_needed<'a>(photos: impl IntoIterator<Item = &'a Arc<Photo>>) -> Vec<Arc<Photo>> {
    let mut out: Vec<Arc<Photo>> = Vec::new();
    for p in photos {
        if !out.iter().any(|q| q.key() == p.key()) {
            out.push(p.clone());
        }
    }
    out
}

/// `2.6 MB`, `840 kB`: sizes as a person reads them (decimal units, like download tools).
pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.0} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// Why a case whose `image` is the manifest `photo` cannot run yet, with the command that
/// fixes it and how much that command fetches (of `all`, every photo the suite uses); `None`
/// when the photo is verified in the cache under `root`.
pub fn not_fetched_reason<'a>(
    root: &Path,
    photo: &Photo,
    image: &Path,
    all: impl IntoIterator<Item = &'a Arc<Photo>>,
) -> Option<String> {
    let state = cache_state(root, photo);
    if state == CacheState::Verified {
        return None;
    }
    let pending: Vec<Arc<Photo>> = photos_needed(all)
        .into_iter()
        .filter(|p| cache_state(root, p) != CacheState::Verified)
        .collect();
    let bytes: u64 = pending.iter().map(|p| p.bytes).sum();
    let what = format!(
        "{} photo{}, {}",
        pending.len(),
        if pending.len() == 1 { "" } else { "s" },
        human_bytes(bytes)
    );
    Some(match state {
        // The details (sizes, hashes) are for `eyetest fetch --check`; a reason stays short.
        CacheState::Mismatch(_) => format!(
            "photo `{}` is not the file {} pins: run `eyetest fetch` to fetch it again ({what})",
            image.display(),
            manifest_file(photo).display()
        ),
        _ => format!("photo not fetched: run `eyetest fetch` ({what})"),
    })
}

/// The manifest file a photo comes from, relative to the project root.
pub fn manifest_file(photo: &Photo) -> PathBuf {
    Path::new(MANIFEST_DIR).join(format!("{}.toml", photo.manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(bytes: &[u8]) -> Photo {
        Photo {
            manifest: "m".into(),
            name: "a.png".into(),
            url: "http://127.0.0.1:9/a.png".into(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        }
    }

    #[test]
    fn the_cache_holds_only_the_pinned_file() {
        let d = tempfile::tempdir().unwrap();
        let p = photo(b"\x89PNG\r\n\x1a\nabc");
        assert_eq!(cache_state(d.path(), &p), CacheState::Missing);
        let path = d.path().join(p.cache_path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"\x89PNG\r\n\x1a\nabc").unwrap();
        assert_eq!(cache_state(d.path(), &p), CacheState::Verified);
        std::fs::write(&path, b"\x89PNG\r\n\x1a\nabd").unwrap();
        let CacheState::Mismatch(why) = cache_state(d.path(), &p) else {
            panic!("a changed byte must be caught")
        };
        assert!(why.contains("sha256"), "{why}");
        std::fs::write(&path, b"short").unwrap();
        let CacheState::Mismatch(why) = cache_state(d.path(), &p) else {
            panic!("a short file must be caught")
        };
        assert!(why.contains("5 bytes"), "{why}");
    }

    #[test]
    fn sizes_read_like_a_download_tool() {
        assert_eq!(human_bytes(2_594_058), "2.6 MB");
        assert_eq!(human_bytes(102_586), "103 kB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
