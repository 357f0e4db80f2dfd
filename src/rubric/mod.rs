//! Rubric: decides whether a model's answer is acceptable.
//!
//! Answers vary in form far more than in content ("Two people.", "There are 2 people in the
//! image", "**two**"), so a rubric checks content with forgiving matchers: keywords compared on
//! case- and punctuation-folded text at word boundaries, numbers in any spelling, digit
//! sequences with any separators, and regexes for everything else. Every configured check is
//! reported, passed or not, so a failing test says exactly what was missing or forbidden.

mod numbers;
#[cfg(test)]
mod tests;
mod text;

use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use numbers::extract_numbers;
use text::{closest, count_words, find, fold, quote, wrap, FoldOptions};

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
    /// Rejects rubrics that cannot do their job, so a typo fails at spec load with advice
    /// instead of silently passing (or failing) every answer. All problems are reported at once,
    /// one per line.
    pub fn validate(&self) -> Result<(), String> {
        if self.is_empty() {
            return Err(
                "rubric checks nothing: set at least one of all, any, none, regex, number, \
                 max_words, digits_in_order (e.g. rubric = { all = [\"red\"] })"
                    .into(),
            );
        }
        let opts = self.fold_options();
        let mut errors = Vec::new();
        for (key, list) in [("all", &self.all), ("any", &self.any), ("none", &self.none)] {
            for kw in list.iter().filter(|kw| fold(kw, opts).text.is_empty()) {
                let why = if kw.trim().is_empty() {
                    ""
                } else {
                    " once punctuation is ignored"
                };
                errors.push(format!(
                    "{key} keyword {kw:?} is empty{why}; write the word to look for, or set \
                     fold_punctuation = false to match punctuation literally"
                ));
            }
        }
        for (key, list) in [("all", &self.all), ("any", &self.any)] {
            for kw in list {
                let folded = fold(kw, opts);
                for bad in self
                    .none
                    .iter()
                    .filter(|b| find(&folded, &fold(b, opts).text).is_some())
                {
                    errors.push(format!(
                        "{key} keyword {kw:?} contains {bad:?}, which none forbids, so it can never \
                         help an answer pass; remove it from one of the lists"
                    ));
                }
            }
        }
        for pat in &self.regex {
            if let Err(e) = self.compile(pat) {
                errors.push(format!(
                    "regex {pat:?} does not compile: {}; fix the pattern (in TOML, a literal \
                     string '...' keeps backslashes as written)",
                    regex_problem(&e)
                ));
            }
        }
        for n in self.number.iter().filter(|n| !n.is_finite()) {
            errors.push(format!(
                "number = {n} is not a finite number; write the expected value, e.g. number = 2"
            ));
        }
        if let Some(t) = self.tolerance {
            if !(t.is_finite() && t >= 0.0) {
                errors.push(format!(
                    "tolerance = {t} must be a finite number >= 0 (an absolute difference, e.g. tolerance = 0.01)"
                ));
            } else if self.number.is_empty() {
                errors.push("tolerance is set but there is no number check to apply it to; add number = ... or remove tolerance".into());
            }
        }
        if let Some(m) = self.max_words.filter(|&m| m <= 0) {
            errors.push(format!(
                "max_words = {m} would reject every non-empty answer; set it to the length of the \
                 longest acceptable answer, e.g. max_words = 12"
            ));
        }
        if let Some(d) = &self.digits_in_order {
            if d.chars().any(char::is_alphabetic) || !d.chars().any(|c| c.is_ascii_digit()) {
                errors.push(format!(
                    "digits_in_order = {d:?} must be digits (separators are ignored), e.g. \"01315556363\""
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// True when no check is configured; the options (`case_sensitive`, `fold_punctuation`,
    /// `tolerance`) only modify checks and do not count.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
            && self.any.is_empty()
            && self.none.is_empty()
            && self.regex.is_empty()
            && self.number.is_empty()
            && self.max_words.is_none()
            && self.digits_in_order.is_none()
    }

    /// Runs every configured check. Never panics: a rubric that `validate` would reject still
    /// yields a failing verdict that says why (an empty rubric fails, it never passes vacuously).
    pub fn check(&self, answer: &str) -> Verdict {
        use CheckKind as K;
        let opts = self.fold_options();
        let hay = fold(answer, opts);
        let found = |kw: &str| find(&hay, &fold(kw, opts).text);
        let shown = |(s, e): (usize, usize)| format!("found as {}", quote(&answer[s..e]));
        let mut checks = Vec::new();
        let mut add = |kind, expected, passed, detail| {
            checks.push(CheckOutcome {
                kind,
                expected,
                passed,
                detail,
            });
        };
        for kw in &self.all {
            let hit = found(kw);
            let detail = match (hit, hit.is_none().then(|| closest(answer, kw)).flatten()) {
                (Some(span), _) => shown(span),
                (None, Some(near)) => format!("missing (closest: {})", quote(&near)),
                (None, None) => "missing".into(),
            };
            add(K::All, quote(kw), hit.is_some(), detail);
        }
        if !self.any.is_empty() {
            let expected: Vec<String> = self.any.iter().map(|k| quote(k)).collect();
            let hit = self.any.iter().find_map(|kw| Some((kw, found(kw)?)));
            let detail = match hit {
                Some((kw, span)) => format!("{} {}", quote(kw), shown(span)),
                None => "none of them found".into(),
            };
            add(K::Any, expected.join(", "), hit.is_some(), detail);
        }
        for kw in &self.none {
            let hit = found(kw);
            add(
                K::None,
                quote(kw),
                hit.is_none(),
                hit.map_or("absent".into(), shown),
            );
        }
        for pat in &self.regex {
            let (passed, detail) = match self.compile(pat).map(|re| re.find(answer)) {
                Ok(Some(m)) => (true, format!("matched {}", quote(m.as_str()))),
                Ok(None) => (false, "no match".into()),
                Err(e) => (false, format!("does not compile: {e}")),
            };
            add(K::Regex, format!("/{pat}/"), passed, detail);
        }
        let numbers = if self.number.is_empty() {
            Vec::new()
        } else {
            extract_numbers(answer)
        };
        let tol = self.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        for &want in &self.number {
            let expected = match self.tolerance {
                Some(t) => format!("{want} ± {t}"),
                None => want.to_string(),
            };
            let hit = numbers.iter().find(|n| (n.value - want).abs() <= tol);
            let detail = match hit {
                Some(n) => shown(n.span),
                None if numbers.is_empty() => "not found; the answer has no numbers".into(),
                None => {
                    let mut seen: Vec<String> = Vec::new();
                    for v in numbers.iter().map(|n| n.value.to_string()) {
                        if !seen.contains(&v) && seen.len() < 8 {
                            seen.push(v);
                        }
                    }
                    format!("not found; numbers in answer: {}", seen.join(", "))
                }
            };
            add(K::Number, expected, hit.is_some(), detail);
        }
        if let Some(max) = self.max_words {
            let words = count_words(answer);
            let detail = format!("{words} words (max {max})");
            add(K::MaxWords, max.to_string(), words as i64 <= max, detail);
        }
        if let Some(want) = &self.digits_in_order {
            let (passed, detail) = check_digits(answer, want);
            add(K::DigitsInOrder, quote(&digits_of(want)), passed, detail);
        }
        let passed = !checks.is_empty() && checks.iter().all(|c| c.passed);
        Verdict { passed, checks }
    }

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

/// Looks for `want`'s digits among the answer's digits, whatever separates them.
fn check_digits(answer: &str, want: &str) -> (bool, String) {
    let want = digits_of(want);
    let at: Vec<usize> = answer
        .match_indices(|c: char| c.is_ascii_digit())
        .map(|m| m.0)
        .collect();
    let all = digits_of(answer);
    // Digits are ASCII, so a byte offset in `all` indexes `at` directly.
    match all.find(&want).filter(|_| !want.is_empty()) {
        Some(k) => (
            true,
            format!(
                "found as {}",
                quote(&answer[at[k]..=at[k + want.len() - 1]])
            ),
        ),
        None if all.is_empty() => (false, "the answer has no digits".into()),
        None => (false, format!("answer digits are {}", quote(&all))),
    }
}

/// Which kind of check an outcome belongs to; serialized as the rubric's TOML key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    All,
    Any,
    None,
    Regex,
    Number,
    MaxWords,
    DigitsInOrder,
}

impl CheckKind {
    /// The TOML key that configures this check.
    pub fn key(self) -> &'static str {
        match self {
            CheckKind::All => "all",
            CheckKind::Any => "any",
            CheckKind::None => "none",
            CheckKind::Regex => "regex",
            CheckKind::Number => "number",
            CheckKind::MaxWords => "max_words",
            CheckKind::DigitsInOrder => "digits_in_order",
        }
    }

    /// How a failure of this kind reads in a one-line summary.
    fn failure_label(self) -> &'static str {
        match self {
            CheckKind::All => "missing",
            CheckKind::Any => "missing any of",
            CheckKind::None => "found forbidden",
            CheckKind::Regex => "no match for",
            CheckKind::Number => "missing number",
            CheckKind::MaxWords => "too long",
            CheckKind::DigitsInOrder => "missing digits",
        }
    }
}

/// The result of one configured check: one per keyword of `all` and `none`, one for the whole
/// `any` list, one per regex and per number, one each for `max_words` and `digits_in_order`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub kind: CheckKind,
    /// What was looked for, as the spec wrote it: `"red"`, `/\d+/`, `29`, `12`.
    pub expected: String,
    pub passed: bool,
    /// What matched (as the model wrote it) or what was missing.
    pub detail: String,
}

impl fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { '✓' } else { '✗' };
        write!(
            f,
            "{mark} {} {}: {}",
            self.kind.key(),
            self.expected,
            self.detail
        )
    }
}

/// The outcome of checking one answer: passed only when every check passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub passed: bool,
    pub checks: Vec<CheckOutcome>,
}

impl Verdict {
    pub fn failures(&self) -> impl Iterator<Item = &CheckOutcome> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// One line for test names, progress bars and reports: failures grouped by kind, e.g.
    /// `missing: "red", "coat"; found forbidden: "blue"`, or `ok`.
    pub fn summary(&self) -> String {
        if self.checks.is_empty() {
            return "rubric checks nothing".into();
        }
        let mut groups: Vec<(CheckKind, Vec<&str>)> = Vec::new();
        for c in self.failures() {
            let item = if c.kind == CheckKind::MaxWords {
                &c.detail
            } else {
                &c.expected
            };
            match groups.iter_mut().find(|(k, _)| *k == c.kind) {
                Some((_, items)) => items.push(item),
                None => groups.push((c.kind, vec![item])),
            }
        }
        if groups.is_empty() {
            return "ok".into();
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|(k, items)| format!("{}: {}", k.failure_label(), items.join(", ")))
            .collect();
        parts.join("; ")
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.checks.len();
        let failed = self.failures().count();
        if total == 0 {
            return write!(f, "rubric: FAILED, it checks nothing");
        }
        if self.passed {
            write!(f, "rubric: passed ({total} of {total} checks)")?;
        } else {
            write!(f, "rubric: FAILED ({failed} of {total} checks failed)")?;
        }
        for c in &self.checks {
            write!(f, "\n  {c}")?;
        }
        Ok(())
    }
}

/// What a failing test prints: the answer, quoted and wrapped, then every check.
pub fn explain(answer: &str, verdict: &Verdict) -> String {
    let words = count_words(answer);
    let mut out = format!(
        "answer ({words} word{}):\n",
        if words == 1 { "" } else { "s" }
    );
    if answer.trim().is_empty() {
        out.push_str("  │ (empty answer)\n");
    } else {
        for line in wrap(answer.trim_matches('\n'), 96) {
            out.push_str(format!("  │ {line}").trim_end());
            out.push('\n');
        }
    }
    out.push_str(&verdict.to_string());
    out
}
