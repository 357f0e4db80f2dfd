//! Rubric: decides whether a model's answer is acceptable.
//!
//! Answers vary in form far more than in content ("Two people.", "There are 2 people in the
//! image", "**two**"), so a rubric checks content with forgiving matchers: keywords compared on
//! case- and punctuation-folded text at word boundaries, numbers in any spelling, digit
//! sequences with any separators, and regexes for everything else. Every configured check is
//! reported, passed or not, so a failing test says exactly what was missing or forbidden.
//!
//! Keywords alone cannot tell "a red coat" from "a blue coat under a red sky", so claim checks
//! (`about`, `not_about`, `relation`, `count`) reason about which word is said about which
//! object, and `scope` narrows every check to a chain-of-thought reply's conclusion.
//! docs/rubrics.md documents every key with the answer it is for.

mod check;
mod claims;
pub mod judge;
mod numbers;
mod relation;
mod scope;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_claims;
mod text;
mod validate;
mod verdict;
mod words;

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use text::{quote, FoldOptions};

pub use relation::RelationSpec;
pub use scope::Scope;
pub use verdict::{explain, CheckKind, CheckOutcome, Verdict};

const DEFAULT_TOLERANCE: f64 = 1e-9;

/// What an acceptable answer must (and must not) contain. Deserialized from a case's
/// `rubric = { ... }` table; fields are public so code and tests can build rubrics directly
/// (`Rubric { all: vec!["red".into()], ..Default::default() }`).
///
/// `Default` is the empty rubric with the same option defaults as TOML (notably
/// `fold_punctuation = true`), so `Rubric::default()` and `rubric = {}` mean the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rubric {
    /// Keywords that must all appear.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<String>,
    /// Keywords of which at least one must appear: alternatives such as `["two", "2"]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<String>,
    /// Keywords that must not appear: the plausible wrong answers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub none: Vec<String>,
    /// Regexes that must each match the raw answer. TOML may give one string or a list.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_regexes",
        serialize_with = "ser_one_or_many"
    )]
    pub regex: Vec<String>,
    /// Numbers that must each appear in some spelling. TOML may give one number or a list.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_numbers",
        serialize_with = "ser_one_or_many"
    )]
    pub number: Vec<f64>,
    /// Absolute tolerance for `number`; exact (1e-9) when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Longest acceptable answer in words. Signed so that `validate`, not the TOML parser,
    /// explains a negative value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_words: Option<i64>,
    /// A digit sequence the answer's digits must contain once everything else is stripped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digits_in_order: Option<String>,
    /// Compare keywords and regexes with case. Off by default: "Red" and "red" are one answer.
    #[serde(skip_serializing_if = "is_false")]
    pub case_sensitive: bool,
    /// Ignore punctuation and collapse whitespace when matching keywords. On by default.
    #[serde(skip_serializing_if = "is_true")]
    pub fold_punctuation: bool,
    /// Which part of the answer every check except `max_words` reads.
    #[serde(skip_serializing_if = "is_all")]
    pub scope: Scope,
    /// Match singular and plural of a keyword's last word ("elephants" for `elephant`,
    /// "people" for `person`). On by default.
    #[serde(skip_serializing_if = "is_true")]
    pub inflect: bool,
    /// Alternatives for a keyword, wherever the keyword is used:
    /// `synonyms = { coat = ["jacket", "parka"] }`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub synonyms: BTreeMap<String, Vec<String>>,
    /// Object -> properties of which at least one must be said about it:
    /// `about = { coat = ["red"] }`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub about: BTreeMap<String, Vec<String>>,
    /// Object -> properties that must not be said about it: `not_about = { couch = ["white"] }`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub not_about: BTreeMap<String, Vec<String>>,
    /// Most words between a property and its object for `about`/`not_about` (default 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
    /// Spatial relations that must be stated, converses accepted. One table or a list.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_relations",
        serialize_with = "ser_one_or_many"
    )]
    pub relation: Vec<RelationSpec>,
    /// Object -> the count the answer must state for it: `count = { cat = 1 }`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub count: BTreeMap<String, f64>,
    /// A model judge that grades the answer against the case's label (see
    /// [`judge`]); the runner asks it, [`Rubric::check`] does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<judge::JudgeSpec>,
}

/// Words between a property and its object when `window` is unset: "red leather sectional
/// couch" binds, a property two clauses away does not.
pub(crate) const DEFAULT_WINDOW: usize = 4;

fn is_all(s: &Scope) -> bool {
    *s == Scope::All
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a relation table or a list of them, e.g. relation = { subject = \"baby\", is = \"right of\", object = \"dog\" }"
)]
enum Relations {
    One(RelationSpec),
    Many(Vec<RelationSpec>),
}

fn de_relations<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RelationSpec>, D::Error> {
    Ok(match Relations::deserialize(d)? {
        Relations::One(r) => vec![r],
        Relations::Many(rs) => rs,
    })
}

impl Default for Rubric {
    fn default() -> Self {
        Rubric {
            all: Vec::new(),
            any: Vec::new(),
            none: Vec::new(),
            regex: Vec::new(),
            number: Vec::new(),
            tolerance: None,
            max_words: None,
            digits_in_order: None,
            case_sensitive: false,
            fold_punctuation: true,
            scope: Scope::All,
            inflect: true,
            synonyms: BTreeMap::new(),
            about: BTreeMap::new(),
            not_about: BTreeMap::new(),
            window: None,
            relation: Vec::new(),
            count: BTreeMap::new(),
            judge: None,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a regex string or a list of regex strings")]
enum Regexes {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a number or a list of numbers, e.g. number = 2 or [29, 36, 65]"
)]
enum Numbers {
    One(f64),
    Many(Vec<f64>),
}

fn de_regexes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Regexes::deserialize(d)? {
        Regexes::One(r) => vec![r],
        Regexes::Many(rs) => rs,
    })
}

fn de_numbers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(match Numbers::deserialize(d)? {
        Numbers::One(n) => vec![n],
        Numbers::Many(ns) => ns,
    })
}

/// Writes a one-element list back as a scalar, the way people write it in specs.
fn ser_one_or_many<T: Serialize, S: serde::Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    match v {
        [one] => one.serialize(s),
        many => many.serialize(s),
    }
}

impl Rubric {
    fn fold_options(&self) -> FoldOptions {
        FoldOptions {
            case_sensitive: self.case_sensitive,
            fold_punctuation: self.fold_punctuation,
        }
    }

    fn compile(&self, pat: &str) -> Result<Regex, regex::Error> {
        RegexBuilder::new(pat)
            .case_insensitive(!self.case_sensitive)
            .build()
    }
}

/// The regex crate's own message draws the pattern with a caret under the fault over several
/// lines; in a one-line `file:line:col` message only its last line, the diagnosis, reads well.
fn regex_problem(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.trim())
        .to_string()
}

fn digits_of(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Looks for `want`'s digits among the answer's digits, whatever separates them: the verdict,
/// its detail, and the raw span of the digits found.
fn check_digits(answer: &str, want: &str) -> (bool, String, Option<(usize, usize)>) {
    let want = digits_of(want);
    let at: Vec<usize> = answer
        .match_indices(|c: char| c.is_ascii_digit())
        .map(|m| m.0)
        .collect();
    let all = digits_of(answer);
    // Digits are ASCII, so a byte offset in `all` indexes `at` directly.
    match all.find(&want).filter(|_| !want.is_empty()) {
        Some(k) => {
            let span = (at[k], at[k + want.len() - 1] + 1);
            (
                true,
                format!("found as {}", quote(&answer[span.0..span.1])),
                Some(span),
            )
        }
        None if all.is_empty() => (false, "the answer has no digits".into(), None),
        None => (false, format!("answer digits are {}", quote(&all)), None),
    }
}
