//! Photo manifests: remote images a project uses but does not commit, each pinned by URL,
//! byte size and sha256.
//!
//! A manifest is a file `manifests/NAME.toml` in the project; a spec points at one of its
//! entries with `photo = "NAME/ENTRY"`, and `eyetest fetch` puts the verified file at
//! `.eyetest/photos/NAME/ENTRY`. The hash is the contract: a photo that does not match it is
//! never used, so a moved or edited upstream file cannot silently change what a case asks about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{from_toml_error, InputError, InputErrors};

/// Where manifests live, relative to the project root.
pub const MANIFEST_DIR: &str = "manifests";
/// Where fetched photos are cached, relative to the project root (git-ignored).
pub const CACHE_DIR: &str = ".eyetest/photos";

/// One remote photo, as a manifest pins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    /// The manifest's name (its file stem): `study`.
    pub manifest: String,
    /// The entry's name, also its file name in the cache: `elephant.png`.
    pub name: String,
    pub url: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

impl Photo {
    /// `study/elephant.png`: what a spec writes after `photo =`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.manifest, self.name)
    }

    /// Where the verified file lives, relative to the project root.
    pub fn cache_path(&self) -> PathBuf {
        Path::new(CACHE_DIR).join(&self.manifest).join(&self.name)
    }

    /// The URL to fetch from: the manifest's, or `MIRROR/MANIFEST/NAME` when a mirror is given
    /// (a directory laid out like the cache, e.g. a local copy served over HTTP).
    pub fn source_url(&self, mirror: Option<&str>) -> String {
        match mirror {
            Some(m) => format!(
                "{}/{}/{}",
                m.trim_end_matches('/'),
                self.manifest,
                self.name
            ),
            None => self.url.clone(),
        }
    }
}

/// Every manifest of a project, by name.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    pub manifests: BTreeMap<String, Manifest>,
}

/// One manifest file.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    /// Relative to the project root.
    pub path: PathBuf,
    /// Entries in file order.
    pub photos: Vec<Arc<Photo>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    /// Free text for people: where the photos come from and under what terms.
    #[serde(default)]
    #[allow(dead_code)]
    origin: Option<String>,
    /// Prefix of every entry's URL that has no `url` of its own.
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    photo: Vec<Spanned<RawPhoto>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhoto {
    name: Spanned<String>,
    #[serde(default)]
    url: Option<Spanned<String>>,
    bytes: Spanned<i64>,
    sha256: Spanned<String>,
}

/// Photos larger than this are refused: a manifest lists test images, not videos, and the
/// limit bounds what a wrong URL can make eyetest download.
pub const MAX_PHOTO_BYTES: i64 = 64 * 1024 * 1024;

impl Manifests {
    /// Reads every `manifests/*.toml` under `root`; a project without the directory has none.
    pub fn load(root: &Path) -> Result<Manifests, InputErrors> {
        let dir = root.join(MANIFEST_DIR);
        let mut errors = InputErrors::default();
        let mut out = Manifests::default();
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                errors.push(InputError::file(
                    Path::new(MANIFEST_DIR),
                    format!("cannot list the manifest directory: {e}"),
                ));
                return Err(errors);
            }
        };
        files.sort();
        for abs in files {
            let rel = abs.strip_prefix(root).unwrap_or(&abs).to_path_buf();
            let name = abs
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(m) = load_one(&abs, rel, name.clone(), &mut errors) {
                out.manifests.insert(name, m);
            }
        }
        errors.into_result()?;
        Ok(out)
    }

    /// The entry a spec's `photo = "MANIFEST/NAME"` names, or why there is none.
    pub fn resolve(&self, key: &str) -> Result<Arc<Photo>, (String, String)> {
        let Some((manifest, name)) = key.split_once('/') else {
            return Err((
                format!("photo `{key}` does not name a manifest entry"),
                "write `photo = \"MANIFEST/NAME\"`, e.g. `photo = \"study/elephant.png\"` for the entry `elephant.png` of manifests/study.toml".into(),
            ));
        };
        let Some(m) = self.manifests.get(manifest) else {
            let known = self.manifests.keys().cloned().collect::<Vec<_>>();
            let help = if known.is_empty() {
                format!("this project has no manifests: add {MANIFEST_DIR}/{manifest}.toml listing the photo (url, bytes, sha256)")
            } else {
                format!(
                    "manifests here: `{}` (files under {MANIFEST_DIR}/)",
                    known.join("`, `")
                )
            };
            return Err((format!("no manifest `{manifest}` for photo `{key}`"), help));
        };
        match m.photos.iter().find(|p| p.name == name) {
            Some(p) => Ok(p.clone()),
            None => {
                let names = m.photos.iter().map(|p| p.name.as_str());
                let help = match crate::diagnostic::closest(name, names) {
                    Some(s) => format!("did you mean `{manifest}/{s}`?"),
                    None => format!("add a [[photo]] named `{name}` to {}", m.path.display()),
                };
                Err((
                    format!("manifest {} has no photo `{name}`", m.path.display()),
                    help,
                ))
            }
        }
    }
}

fn load_one(abs: &Path, rel: PathBuf, name: String, errors: &mut InputErrors) -> Option<Manifest> {
    let source = match crate::files::read_text(abs, "manifest") {
        Ok(s) => s,
        Err(mut e) => {
            e.path = rel;
            errors.push(*e);
            return None;
        }
    };
    let raw: RawManifest = match toml::from_str(&source) {
        Ok(r) => r,
        Err(e) => {
            errors.push(from_toml_error(&rel, &source, &e));
            return None;
        }
    };
    let at = |span: std::ops::Range<usize>, msg: String| InputError::at(&rel, &source, span, msg);
    let before = errors.errors.len();
    let mut photos: Vec<Arc<Photo>> = Vec::new();
    for spanned in raw.photo {
        let p = spanned.into_inner();
        let pname = p.name.get_ref().clone();
        if pname.is_empty()
            || pname.starts_with('.')
            || !pname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            errors.push(
                at(p.name.span(), format!("photo name `{pname}` cannot be a file name in the cache"))
                    .with_help("use letters, digits, `-`, `_` and `.`, not starting with `.` (e.g. `elephant.png`)"),
            );
            continue;
        }
        if photos.iter().any(|q| q.name == pname) {
            errors.push(
                at(p.name.span(), format!("photo `{pname}` is listed twice"))
                    .with_help("remove one of the entries"),
            );
            continue;
        }
        let url = match (&p.url, &raw.base_url) {
            (Some(u), _) => u.get_ref().clone(),
            (None, Some(base)) => format!("{}/{}", base.trim_end_matches('/'), pname),
            (None, None) => {
                errors.push(
                    at(p.name.span(), format!("photo `{pname}` has no `url`"))
                        .with_help("give it `url = \"https://...\"`, or give the manifest a top-level `base_url`"),
                );
                continue;
            }
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            let span = p.url.as_ref().map_or(p.name.span(), |u| u.span());
            errors.push(
                at(span, format!("url `{url}` is not an http(s) URL"))
                    .with_help("use an https:// URL"),
            );
            continue;
        }
        let bytes = *p.bytes.get_ref();
        if !(1..=MAX_PHOTO_BYTES).contains(&bytes) {
            errors.push(
                at(
                    p.bytes.span(),
                    format!("bytes must be between 1 and {MAX_PHOTO_BYTES}, got {bytes}"),
                )
                .with_help("the file's exact size in bytes (`wc -c < FILE`)"),
            );
            continue;
        }
        let sha = p.sha256.get_ref().to_ascii_lowercase();
        if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            errors.push(
                at(
                    p.sha256.span(),
                    "sha256 must be 64 hexadecimal digits".into(),
                )
                .with_help("the file's SHA-256 (`sha256sum FILE`)"),
            );
            continue;
        }
        photos.push(Arc::new(Photo {
            manifest: name.clone(),
            name: pname,
            url,
            bytes: bytes as u64,
            sha256: sha,
        }));
    }
    if photos.is_empty() && errors.errors.len() == before {
        errors.push(
            InputError::at(&rel, &source, 0..0, "manifest lists no [[photo]]").with_help(
                "add [[photo]] name = \"...\" url = \"https://...\" bytes = N sha256 = \"...\"",
            ),
        );
    }
    (errors.errors.len() == before).then_some(Manifest {
        name,
        path: rel,
        photos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(manifest: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(MANIFEST_DIR)).unwrap();
        std::fs::write(d.path().join("manifests/mine.toml"), manifest).unwrap();
        d
    }

    const SHA: &str = "68c87bd5f7cc0369a2f634802feb91168a1575c8bbd1ba830a917967adf989a5";

    #[test]
    fn entries_resolve_with_base_url_or_their_own() {
        let d = project(&format!(
            "base_url = \"https://example.org/img/\"\n\
             [[photo]]\nname = \"a.png\"\nbytes = 10\nsha256 = \"{SHA}\"\n\
             [[photo]]\nname = \"b.png\"\nurl = \"https://cdn.example.org/b.png\"\nbytes = 3\nsha256 = \"{}\"\n",
            SHA.to_uppercase()
        ));
        let m = Manifests::load(d.path()).unwrap();
        let a = m.resolve("mine/a.png").unwrap();
        assert_eq!(a.url, "https://example.org/img/a.png");
        assert_eq!(a.cache_path(), Path::new(".eyetest/photos/mine/a.png"));
        assert_eq!(
            a.source_url(Some("http://127.0.0.1:9/m/")),
            "http://127.0.0.1:9/m/mine/a.png"
        );
        let b = m.resolve("mine/b.png").unwrap();
        assert_eq!(b.sha256, SHA, "hashes are compared in lower case");
        assert!(m
            .resolve("mine/c.png")
            .unwrap_err()
            .1
            .contains("did you mean"));
        assert!(m
            .resolve("other/a.png")
            .unwrap_err()
            .0
            .contains("no manifest `other`"));
        assert!(m.resolve("a.png").is_err());
    }

    #[test]
    fn bad_entries_are_reported_with_their_line() {
        let d = project(
            "[[photo]]\nname = \"../x.png\"\nurl = \"https://e/x\"\nbytes = 1\nsha256 = \"00\"\n\
             [[photo]]\nname = \"y.png\"\nurl = \"ftp://e/y\"\nbytes = 1\nsha256 = \"00\"\n\
             [[photo]]\nname = \"z.png\"\nurl = \"https://e/z\"\nbytes = 0\nsha256 = \"00\"\n\
             [[photo]]\nname = \"w.png\"\nurl = \"https://e/w\"\nbytes = 5\nsha256 = \"xyz\"\n",
        );
        let errs = Manifests::load(d.path()).unwrap_err().errors;
        let lines: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert_eq!(errs.len(), 4, "{lines:?}");
        assert_eq!(errs[0].line, 2);
        assert!(errs[1].message.contains("not an http(s) URL"));
        assert!(errs[2].message.contains("bytes must be"));
        assert!(errs[3].message.contains("64 hexadecimal"));
        assert!(errs
            .iter()
            .all(|e| e.path == Path::new("manifests/mine.toml")));
    }

    #[test]
    fn the_bundled_study_manifest_matches_the_study() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let m = Manifests::load(root).unwrap();
        let study = &m.manifests["study"];
        assert_eq!(study.photos.len(), 28);
        let total: u64 = study.photos.iter().map(|p| p.bytes).sum();
        assert_eq!(total, 2_594_058);
        for p in &study.photos {
            assert_eq!(
                p.url,
                format!("https://raw.githubusercontent.com/LambdaLabsML/Llama-3.2-vision-study/686578a8ca55ffd6be6f95b83e287a4cce8de83f/qualitative/test-images/{}", p.name)
            );
        }
        assert!(
            study.photos.iter().any(|p| p.name == "louve.png"),
            "the study's own spelling"
        );
    }
}
