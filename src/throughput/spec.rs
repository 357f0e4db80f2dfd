//! `[[throughput]]` tables in spec files. (Stub: the format is being implemented.)

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::InputErrors;
use crate::target::ProjectConfig;

/// A `[[throughput]]` table exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThroughput {
    pub name: Spanned<String>,
}

/// A validated throughput spec.
#[derive(Debug)]
pub struct ThroughputSpec {
    pub name: String,
    /// Spec id of the file it came from (`throughput/study`).
    pub spec_id: String,
    pub spec_path: std::path::PathBuf,
}

/// Validates the `[[throughput]]` tables of one spec file, pushing every problem to `errors`.
pub fn load(
    _root: &Path,
    rel: &Path,
    _source: &Arc<str>,
    spec_id: &str,
    raw: Vec<Spanned<RawThroughput>>,
    _config: &ProjectConfig,
    _errors: &mut InputErrors,
) -> Vec<Arc<ThroughputSpec>> {
    raw.into_iter()
        .map(|r| {
            Arc::new(ThroughputSpec {
                name: r.into_inner().name.into_inner(),
                spec_id: spec_id.to_string(),
                spec_path: rel.to_path_buf(),
            })
        })
        .collect()
}
