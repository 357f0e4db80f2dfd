//! The spec file exactly as written: serde types that keep spans for error messages.
//! Validation and defaults live in the parent module.

use serde::Deserialize;
use toml::Spanned;

use crate::rubric::Rubric;

/// A whole spec file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpecFile {
    #[serde(default)]
    pub defaults: Option<RawDefaults>,
    #[serde(default, rename = "case")]
    pub cases: Vec<Spanned<RawCase>>,
    /// Throughput sweeps; see [`crate::throughput::spec`].
    #[serde(default)]
    pub throughput: Vec<Spanned<crate::throughput::spec::RawThroughput>>,
}

/// `[defaults]`: values every case of the file inherits unless it sets its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub targets: Option<Spanned<Vec<Spanned<String>>>>,
    pub max_tokens: Option<Spanned<i64>>,
    pub temperature: Option<Spanned<f64>>,
    pub seed: Option<u64>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub repeats: Option<Spanned<i64>>,
    pub pass_rate: Option<Spanned<f64>>,
}

/// `[[case]]`: one question about one image.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCase {
    pub name: Spanned<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    /// A local image file, relative to the project root. Exactly one of `image` and `photo`.
    pub image: Option<Spanned<String>>,
    /// A remote photo listed in a manifest, `MANIFEST/NAME` (see [`crate::fetch`]): used once
    /// `eyetest fetch` has put it, verified, into the project's photo cache.
    pub photo: Option<Spanned<String>>,
    pub user_image: Option<bool>,
    pub prompt: Spanned<String>,
    pub label: Option<String>,
    pub rubric: Spanned<Rubric>,
    pub targets: Option<Spanned<Vec<Spanned<String>>>>,
    pub max_tokens: Option<Spanned<i64>>,
    pub temperature: Option<Spanned<f64>>,
    pub seed: Option<u64>,
    /// Ask this many times; the case passes when at least `pass_rate` of the answers pass.
    pub repeats: Option<Spanned<i64>>,
    pub pass_rate: Option<Spanned<f64>>,
}
