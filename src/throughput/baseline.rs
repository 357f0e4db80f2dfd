//! Stored throughput baselines: one TOML file per spec x throughput x target x fingerprint.
//!
//! Layout: `golden/baselines/<spec id>/<throughput name>@<target>/<fingerprint key>.toml`.
//! One file per fingerprint (rather than one file with a table per fingerprint) so that
//! recording on new hardware adds a file instead of rewriting one, and a pull request shows
//! exactly which machine's numbers changed. Every repeat's value is stored, not only a
//! mean: the gate's significance test needs the baseline's spread, not just its centre.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fingerprint::{slug, Fingerprint};
use super::level::LevelKey;
use super::metrics::{LevelMetrics, Metric};

/// Why a baseline could not be read or written. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read baseline {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("baseline {path} is not valid: {message}\n  (fix it by hand, or delete it and record again with EYETEST_ACCEPT_BASELINE=1)")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write baseline {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot list baselines in {dir}: {source}")]
    List {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Recorded results of one throughput spec on one target and fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub eyetest_version: String,
    /// RFC 3339 time of recording, passed in by the caller so tests are deterministic.
    pub created_at: String,
    pub fingerprint: Fingerprint,
    #[serde(rename = "level", default)]
    pub levels: Vec<BaselineLevel>,
}

/// One concurrency level of a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineLevel {
    pub concurrency: usize,
    /// Open-loop levels: the asked rate (requests/s); absent for a closed loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    pub repeats: usize,
    /// Mean answer length: a model that starts answering in 50 tokens instead of 500 gets
    /// "faster" without the engine changing; this lets a reader see why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_len_mean: Option<f64>,
    /// Every metric, one value per repeat that measured it. All metrics are kept, not only
    /// the gated one, so switching the gate's metric needs no re-recording. A repeat that did
    /// not measure a metric (no usage, every request failed) contributes no value; the test
    /// compares independent samples, so values need not line up with repeat numbers.
    pub values: BTreeMap<Metric, Vec<f64>>,
}

/// What [`find_for`] found.
#[derive(Debug, Clone)]
pub enum BaselineLookup {
    Found {
        path: PathBuf,
        baseline: Box<Baseline>,
    },
    /// No baseline for this fingerprint. `others` are the baselines that do exist in the
    /// directory, so the gate can say what differs instead of just "missing".
    Missing {
        expected: PathBuf,
        others: Vec<(PathBuf, Fingerprint)>,
    },
}

impl Baseline {
    /// Groups metrics of all repeats by concurrency (levels in ascending order).
    pub fn from_metrics(
        fingerprint: Fingerprint,
        created_at: impl Into<String>,
        repeats: &[LevelMetrics],
    ) -> Baseline {
        let mut by_level: BTreeMap<LevelKey, Vec<&LevelMetrics>> = BTreeMap::new();
        for m in repeats {
            by_level.entry(LevelKey::of(m)).or_default().push(m);
        }
        let levels = by_level
            .into_iter()
            .map(|(key, ms)| {
                let lens: Vec<f64> = ms
                    .iter()
                    .filter_map(|m| m.output_len.map(|s| s.mean))
                    .collect();
                let values = Metric::ALL
                    .iter()
                    .map(|&metric| {
                        let v = ms.iter().filter_map(|m| metric.value(m)).map(round6);
                        (metric, v.collect())
                    })
                    .filter(|(_, v): &(Metric, Vec<f64>)| !v.is_empty())
                    .collect();
                BaselineLevel {
                    concurrency: key.concurrency,
                    rate: key.rate(),
                    repeats: ms.len(),
                    output_len_mean: (!lens.is_empty())
                        .then(|| round6(lens.iter().sum::<f64>() / lens.len() as f64)),
                    values,
                }
            })
            .collect();
        Baseline {
            eyetest_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: created_at.into(),
            fingerprint,
            levels,
        }
    }

    /// The closed-loop level at `concurrency`.
    pub fn level(&self, concurrency: usize) -> Option<&BaselineLevel> {
        self.level_at(LevelKey::closed(concurrency))
    }

    pub fn level_at(&self, key: LevelKey) -> Option<&BaselineLevel> {
        self.levels
            .iter()
            .find(|l| LevelKey::new(l.concurrency, l.rate) == key)
    }

    /// The directory holding every fingerprint's baseline of one throughput on one target.
    /// Each path segment is slugged, except that `spec_id` keeps its `/` structure
    /// (`throughput/study`), so no name can climb out of `golden/` or collide with `@`.
    pub fn dir(golden: &Path, spec_id: &str, throughput: &str, target: &str) -> PathBuf {
        let mut dir = golden.join("baselines");
        for seg in spec_id.split(['/', '\\']).filter(|s| !s.is_empty()) {
            dir.push(slug(seg));
        }
        dir.join(format!("{}@{}", slug(throughput), slug(target)))
    }

    pub fn path(
        golden: &Path,
        spec_id: &str,
        throughput: &str,
        target: &str,
        fp: &Fingerprint,
    ) -> PathBuf {
        Self::dir(golden, spec_id, throughput, target).join(format!("{}.toml", fp.key()))
    }

    /// `Ok(None)` when the file does not exist: a missing baseline is a normal state.
    pub fn load(path: &Path) -> Result<Option<Baseline>, BaselineError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(BaselineError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| BaselineError::Parse {
                path: path.into(),
                message: e.to_string(),
            })
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a baseline always serializes to TOML");
        format!(
            "# eyetest throughput baseline. Regenerate with EYETEST_ACCEPT_BASELINE=1 cargo test\n\
             # or `eyetest bench --accept`; review changes like any other golden file.\n{body}"
        )
    }

    /// Writes to a temp file in the same directory, fsyncs it and renames it over `path`, so
    /// an interrupted accept leaves the old baseline or the new one, never half of one.
    pub fn save_atomic(&self, path: &Path) -> Result<(), BaselineError> {
        let err = |source| BaselineError::Write {
            path: path.into(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(self.to_toml().as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(err(e));
        }
        // Make the rename itself durable; not every platform can open a directory.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Six significant digits: far finer than any run-to-run noise, and a re-recorded baseline
/// diffs as `0.780488 -> 0.779512` instead of two 17-digit numbers.
fn round6(x: f64) -> f64 {
    format!("{x:.5e}").parse().unwrap_or(x)
}

/// The baseline for exactly this fingerprint in `dir` (see [`Baseline::dir`]), or every
/// other fingerprint recorded there. A file whose name matches the key but whose recorded
/// fingerprint differs (edited by hand) is reported as an "other", never trusted.
pub fn find_for(dir: &Path, fp: &Fingerprint) -> Result<BaselineLookup, BaselineError> {
    let expected = dir.join(format!("{}.toml", fp.key()));
    if let Some(baseline) = Baseline::load(&expected)? {
        if baseline.fingerprint == *fp {
            return Ok(BaselineLookup::Found {
                path: expected,
                baseline: Box::new(baseline),
            });
        }
    }
    let mut others = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(BaselineLookup::Missing { expected, others })
        }
        Err(source) => {
            return Err(BaselineError::List {
                dir: dir.into(),
                source,
            })
        }
    };
    for entry in entries {
        let path = entry
            .map_err(|source| BaselineError::List {
                dir: dir.into(),
                source,
            })?
            .path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Some(b) = Baseline::load(&path)? {
                others.push((path, b.fingerprint));
            }
        }
    }
    others.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(BaselineLookup::Missing { expected, others })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throughput::test_support::{h100, level};

    fn sample_baseline() -> Baseline {
        let repeats = [
            level(1, 0.79, 120.0),
            level(1, 0.80, 118.0),
            level(4, 2.10, 240.0),
            level(1, 0.78, 121.0),
            level(4, 2.05, 250.0),
        ];
        Baseline::from_metrics(h100(), "2026-11-27T10:00:00Z", &repeats)
    }

    #[test]
    fn groups_repeats_by_level() {
        let b = sample_baseline();
        assert_eq!(b.levels.len(), 2);
        let l1 = b.level(1).unwrap();
        assert_eq!(l1.repeats, 3);
        assert_eq!(l1.values[&Metric::ImagesPerS], vec![0.79, 0.80, 0.78]);
        assert_eq!(l1.output_len_mean, Some(512.0));
        assert_eq!(
            b.level(4).unwrap().values[&Metric::TtftP50],
            vec![240.0, 250.0]
        );
    }

    #[test]
    fn round_trips_through_a_temp_dir() {
        let golden = tempfile::tempdir().unwrap();
        let b = sample_baseline();
        let path = Baseline::path(
            golden.path(),
            "throughput/study",
            "caption-560",
            "llama-11b",
            &b.fingerprint,
        );
        let rel = path
            .strip_prefix(golden.path())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            rel.starts_with("baselines/throughput/study/caption-560@llama-11b/1x-nvidia-h100"),
            "{rel}"
        );
        assert_eq!(Baseline::load(&path).unwrap(), None);
        b.save_atomic(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("[[level]]") && text.contains("images_per_s = [0.79, 0.8, 0.78]"),
            "{text}"
        );
        assert_eq!(Baseline::load(&path).unwrap(), Some(b.clone()));
        // No temp files left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);

        let dir = path.parent().unwrap();
        match find_for(dir, &b.fingerprint).unwrap() {
            BaselineLookup::Found { baseline, .. } => assert_eq!(*baseline, b),
            other => panic!("{other:?}"),
        }
        let mut other = b.fingerprint.clone();
        other.max_tokens = 256;
        match find_for(dir, &other).unwrap() {
            BaselineLookup::Missing { expected, others } => {
                assert!(expected.ends_with(format!("{}.toml", other.key())));
                assert_eq!(others.len(), 1);
                assert_eq!(others[0].1, b.fingerprint);
            }
            found => panic!("{found:?}"),
        }
        match find_for(&golden.path().join("nowhere"), &other).unwrap() {
            BaselineLookup::Missing { others, .. } => assert!(others.is_empty()),
            found => panic!("{found:?}"),
        }
    }

    #[test]
    fn broken_file_error_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        fs::write(&path, "eyetest_version = 3\n").unwrap();
        let err = Baseline::load(&path).unwrap_err().to_string();
        assert!(err.contains("x.toml") && err.contains("not valid"), "{err}");
        let err = find_for(dir.path(), &h100()).unwrap_err().to_string();
        assert!(err.contains("x.toml"), "{err}");
    }

    #[test]
    fn names_cannot_escape_golden() {
        let p = Baseline::dir(Path::new("golden"), "../../etc", "a/b", "..");
        assert_eq!(p, Path::new("golden/baselines/x/x/etc/a-b@x"));
    }
}
