//! Errors in user input (spec and target files) that point at the exact place to fix.
//!
//! Modelled on cargo-nextest and miette: every error carries the file, line and column, what
//! was expected, and a `help` that says how to fix it. They render as a labelled code frame in
//! a terminal, and as one `file:line:col: message` line where a frame would be noise.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// One problem in one input file.
#[derive(Debug, Clone, thiserror::Error, Diagnostic)]
#[error("{}: {message}", self.location())]
pub struct InputError {
    pub path: PathBuf,
    /// 1-based; 0 when the problem is about the file as a whole (unreadable, not UTF-8).
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[help]
    pub help: Option<String>,
    #[source_code]
    source_code: Option<NamedSource<Arc<str>>>,
    #[label("{}", self.label.as_deref().unwrap_or("here"))]
    span: Option<SourceSpan>,
    label: Option<String>,
}

impl InputError {
    /// An error about a byte range of a file whose text is `source`.
    pub fn at(
        path: &Path,
        source: &Arc<str>,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let start = span.start.min(source.len());
        let (line, column) = line_col(source, start);
        let len = span.end.min(source.len()).saturating_sub(start);
        Self {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
            help: None,
            source_code: Some(NamedSource::new(path.display().to_string(), source.clone())),
            span: Some(SourceSpan::new(start.into(), len)),
            label: None,
        }
    }

    /// An error about a whole file (it cannot be read, or is not text).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            help: None,
            source_code: None,
            span: None,
            label: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// `path:line:col`, or just `path` for whole-file errors.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.path.display().to_string()
        } else {
            format!("{}:{}:{}", self.path.display(), self.line, self.column)
        }
    }

    /// `path:line:col: message` plus `help: ...`, for logs and test output.
    pub fn one_line(&self) -> String {
        match &self.help {
            Some(h) => format!("{self}\n  help: {h}"),
            None => self.to_string(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Every problem found in a set of input files: the whole spec set is validated before any
/// request is sent, so a user fixes all mistakes in one round.
#[derive(Debug, Clone, Default, thiserror::Error, Diagnostic)]
#[error("{}", self.summary())]
pub struct InputErrors {
    #[related]
    pub errors: Vec<InputError>,
}

impl InputErrors {
    pub fn push(&mut self, e: InputError) {
        self.errors.push(e);
    }
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
    /// Ok when no error was collected.
    pub fn into_result(self) -> Result<(), InputErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// A code frame per error, like rustc, for a terminal.
    pub fn render(&self, color: bool) -> String {
        let handler = if color {
            miette::GraphicalReportHandler::new()
        } else {
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        };
        let mut out = String::new();
        for e in &self.errors {
            let _ = handler.render_report(&mut out, e);
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// `3 problem(s) in eyetest.toml and the specs; nothing was run`: where they are, so
    /// that a problem in the project file is not called one in the specs.
    pub fn summary(&self) -> String {
        let project_file = |p: &Path| p.file_name().is_some_and(|n| n == "eyetest.toml");
        let in_project = self.errors.iter().any(|e| project_file(&e.path));
        let in_specs = self
            .errors
            .iter()
            .any(|e| !project_file(&e.path) && e.path.extension().is_some_and(|x| x == "toml"));
        let other = self
            .errors
            .iter()
            .any(|e| e.path.extension().is_none_or(|x| x != "toml"));
        let place = match (in_project, in_specs, other) {
            (true, false, false) => "eyetest.toml",
            (false, true, false) => "the specs",
            (true, true, false) => "eyetest.toml and the specs",
            _ => "the project",
        };
        format!(
            "{} problem(s) in {place}; nothing was run",
            self.errors.len()
        )
    }
}

/// Deserializes `source` as `T` and reports every problem serde finds, not only the first:
/// after each one, the offending lines are blanked in a scratch copy (byte offsets kept, so
/// later spans still point into `source`) and the file is read again. A missing key blanks
/// its whole table. A problem caused by an earlier blanking (the key a type error removed is
/// now "missing") is not reported. Returns the value of the cleaned text, if any.
pub fn parse_all<T: serde::de::DeserializeOwned>(
    path: &Path,
    source: &Arc<str>,
) -> (Option<T>, Vec<InputError>) {
    let mut scratch = source.to_string();
    let mut errors = Vec::new();
    let mut removed_keys: Vec<String> = Vec::new();
    // Each round blanks at least one line, so this bounds the work on a hostile file.
    for _ in 0..256 {
        let err = match toml::from_str::<T>(&scratch) {
            Ok(v) => return (Some(v), errors),
            Err(e) => e,
        };
        let syntax = scratch.parse::<toml::Table>().is_err();
        if syntax && !errors.is_empty() {
            // Blanking broke the file's structure (a value over several lines): what is left
            // to say would be about the scratch copy, not the user's file.
            break;
        }
        let Some(span) = err.span() else {
            errors.push(from_toml_error(path, source, &err));
            break;
        };
        let missing = err
            .message()
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
            .map(str::to_string);
        // A key we blanked for a wrong type, or a misspelling of the missing one, is the
        // problem already reported.
        let caused_by_us = missing.as_ref().is_some_and(|k| {
            removed_keys
                .iter()
                .any(|r| r == k || closest(r, [k.as_str()]).is_some())
        });
        if !caused_by_us {
            errors.push(from_toml_error(path, source, &err));
        }
        if syntax {
            break;
        }
        let header = {
            let (from, to) = lines_around(&scratch, span.start, span.start);
            scratch[from..to].trim_start().starts_with('[')
        };
        let (start, end) = if missing.is_some() || header {
            table_around(&scratch, span.start)
        } else {
            lines_around(&scratch, span.start, span.end)
        };
        for line in scratch[start..end].lines() {
            if let Some(key) = line.trim_start().split(['=', ' ', '.']).next() {
                if !key.is_empty() {
                    removed_keys.push(key.trim_matches('"').to_string());
                }
            }
        }
        // Same length in bytes, so later spans still point into `source`.
        let blanked: String = scratch[start..end]
            .chars()
            .map(|c| match c {
                '\n' => "\n".to_string(),
                c => " ".repeat(c.len_utf8()),
            })
            .collect();
        if blanked == scratch[start..end] {
            break;
        }
        scratch.replace_range(start..end, &blanked);
    }
    (None, errors)
}

/// The byte range of whole lines covering `start..end`.
fn lines_around(text: &str, start: usize, end: usize) -> (usize, usize) {
    let mut start = start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = end.max(start).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let from = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let to = text[end..].find('\n').map_or(text.len(), |i| end + i);
    (from, to)
}

/// The byte range of the `[table]` or `[[table]]` holding `at`: from its header line to the
/// next header (or the end). An inline table is just its own lines.
fn table_around(text: &str, at: usize) -> (usize, usize) {
    let (line_start, line_end) = lines_around(text, at, at);
    if !text[line_start..line_end].trim_start().starts_with('[') {
        return (line_start, line_end);
    }
    let mut to = line_end;
    while to < text.len() {
        let next = to + 1;
        let next_end = text[next..].find('\n').map_or(text.len(), |i| next + i);
        if text[next..next_end].trim_start().starts_with('[') {
            break;
        }
        to = next_end;
    }
    (line_start, to)
}

impl fmt::Display for Suggestion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "did you mean `{s}`?"),
            None => Ok(()),
        }
    }
}

/// The closest valid name to a misspelt one, if any is close enough to be a likely typo.
pub struct Suggestion<'a>(pub Option<&'a str>);

pub fn closest<'a>(wrong: &str, valid: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    valid
        .into_iter()
        .map(|v| (strsim::jaro_winkler(wrong, v), v))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

/// Turns a `toml` parse/deserialize error into an [`InputError`] at its span, and when it is
/// an unknown key, suggests the nearest valid one.
pub fn from_toml_error(path: &Path, source: &Arc<str>, err: &toml::de::Error) -> InputError {
    let span = err.span().unwrap_or(0..0);
    let mut message = plain_types(&toml_message(err.message(), source, &span));
    // Valid TOML that does not fit the schema: never call it invalid TOML. serde words the
    // errors of types with a custom `expecting` as that text alone.
    let parses = source.parse::<toml::Table>().is_ok();
    // (`max_drop`'s own deserializer already words its message as the fix.)
    if parses
        && !message.starts_with("max_drop")
        && !["invalid", "unknown", "missing", "duplicate"]
            .iter()
            .any(|p| message.starts_with(p))
    {
        message = format!("invalid value: expected {message}");
    }
    let mut e = InputError::at(path, source, span.clone(), message.clone());
    if let Some((wrong, valid)) = parse_unknown_field(&message) {
        let list = valid.join("`, `");
        e = match closest(&wrong, valid.iter().map(String::as_str)) {
            Some(s) => e.with_help(format!("did you mean `{s}`? valid keys here: `{list}`")),
            None => e.with_help(format!("remove `{wrong}`; valid keys here: `{list}`")),
        }
        .with_label("unknown key");
    } else if let Some(variant) = parse_unknown_variant(&message) {
        e = e.with_help(variant);
    } else if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        e = e
            .with_help(format!("add `{field} = ...` to this table"))
            .with_label("this table");
    } else if let Some(expected) = message.split(", expected ").nth(1) {
        let single_bracket_case = source
            .get(span.start..)
            .is_some_and(|rest| rest.starts_with("[case]"));
        if single_bracket_case {
            e = e.with_help(
                "each case starts with its own `[[case]]` line (double brackets: a list of \
                 tables)",
            );
        } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
            let example = match expected {
                "a list" => " like `[\"a\", \"b\"]`",
                "a table" => " like `{ key = \"value\" }`",
                "a boolean" => ": `true` or `false`, unquoted",
                _ => " (strings are quoted, numbers are not)",
            };
            e = e.with_help(format!("write {expected} here{example}"));
        }
    } else if message.contains("escape") || message.contains("unicode") {
        e = e.with_help(
            "in a \"...\" string a backslash starts an escape; write regexes and Windows paths \
             in a literal string '...', which keeps backslashes as written",
        );
    } else if message.starts_with("duplicate key") {
        e = e.with_help(
            "a key may appear only once in a table: remove one of them (each further case \
             starts with its own `[[case]]` line)",
        );
    } else if message.starts_with("the file ends") {
        e = e.with_help("complete the last line, e.g. `key = \"value\"`");
    } else if err.span().is_some() && !parses && !message.contains("max_drop") {
        // (A `max_drop` message comes from its own deserializer and already says the fix.)
        e = e.with_help(
            "this is not valid TOML: check for an unclosed quote, bracket or brace near here",
        );
    }
    e
}

/// serde names Rust types ("expected i64", "invalid type: map"); a spec author knows TOML's.
fn plain_types(message: &str) -> String {
    if !(message.starts_with("invalid type") || message.starts_with("invalid value")) {
        return message.to_string();
    }
    message
        .replace("expected i64", "expected an integer")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected u32", "expected a non-negative integer")
        .replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected a list")
        .replace("expected a map", "expected a table")
        .replace("invalid type: sequence", "invalid type: list")
        .replace("invalid type: map", "invalid type: table")
}

/// The toml crate's parse messages run over several lines ("invalid string\nexpected `\"`")
/// and are empty when the file stops after `key =`: one line each, and never blank.
fn toml_message(raw: &str, source: &str, span: &Range<usize>) -> String {
    let joined = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if !joined.is_empty() {
        joined
    } else if span.start >= source.trim_end().len() {
        "the file ends in the middle of a TOML statement".into()
    } else {
        "invalid TOML".into()
    }
}

fn parse_unknown_field(msg: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (wrong, rest) = rest.split_once('`')?;
    let valid = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((wrong.to_string(), valid))
}

fn parse_unknown_variant(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown variant `")?;
    let (wrong, rest) = rest.split_once('`')?;
    let valid: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    Some(match closest(wrong, valid.iter().copied()) {
        Some(s) => format!(
            "did you mean `{s}`? expected one of `{}`",
            valid.join("`, `")
        ),
        // The one enum a user is likely to guess at: the engine's name instead of its API.
        None if valid.contains(&"openai") => "vLLM, SGLang, TGI, llama.cpp, Ollama and every \
            other OpenAI-compatible server are `openai`"
            .to_string(),
        None => format!("expected one of `{}`", valid.join("`, `")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let s = "a = 1\nbé = 2\n";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 6), (2, 1));
        assert_eq!(line_col(s, 9), (2, 3)); // after the two-byte é
    }

    #[test]
    fn closest_suggests_typos_only() {
        let keys = ["prompt", "image", "rubric"];
        assert_eq!(closest("promt", keys), Some("prompt"));
        assert_eq!(closest("xyz", keys), None);
    }

    #[test]
    fn unknown_field_message_is_parsed() {
        let (w, v) =
            parse_unknown_field("unknown field `promt`, expected one of `name`, `prompt`").unwrap();
        assert_eq!(w, "promt");
        assert_eq!(v, ["name", "prompt"]);
    }
}
