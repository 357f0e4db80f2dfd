//! Which part of an answer the checks read.
//!
//! Chain-of-thought replies mention every candidate on the way ("29 + 36 ... maybe 64? no ...
//! Answer: 65"), so a `none` keyword or a count must read only the conclusion. Models mark it
//! in a few recurring ways: an "Answer:" line, "the answer is ...", a bold last line; when
//! there is no such mark, `final` reads the whole answer rather than guess.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The `scope` rubric key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The whole answer (the default).
    #[default]
    All,
    /// The marked final answer ("Answer: ...", "the answer is ...", a bold last line), or the
    /// whole answer when none is marked.
    Final,
    /// The marked final answer, else the last sentence.
    LastSentence,
    /// The first sentence: terse-first answers that explain afterwards ("One cat. The mirror
    /// shows its reflection, which looks like two cats.").
    FirstSentence,
}

/// "Answer:", "**Final answer:**", "Réponse :", "答案：" and friends.
static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\b(?:final\s+answer|short\s+answer|answer|output|result|réponse|antwort|respuesta|risposta|resposta)|答案|回答|答え)\s*(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?",
    )
    .expect("marker regex")
});

/// "the answer is", "the output will be", "the final answer is".
static ANSWER_IS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:final\s+)?(?:answer|output)\s+(?:is|would\s+be|will\s+be)\b[:：]?")
        .expect("answer-is regex")
});

/// The byte range of `answer` that `scope` selects, and how it was found (for the verdict).
pub(super) fn select(answer: &str, scope: Scope) -> ((usize, usize), Option<String>) {
    let whole = (0, answer.len());
    let found = match scope {
        Scope::All => return (whole, None),
        Scope::Final => marked(answer),
        Scope::LastSentence => {
            marked(answer).or_else(|| sentences(answer).last().map(|&s| (s, "the last sentence")))
        }
        Scope::FirstSentence => sentences(answer)
            .first()
            .map(|&s| (s, "the first sentence")),
    };
    match found {
        Some((range, how)) => {
            let text = answer[range.0..range.1].trim();
            (range, Some(format!("{how}: {}", super::text::quote(text))))
        }
        None => (
            whole,
            Some("the whole answer (no final answer is marked)".into()),
        ),
    }
}

/// The conclusion a reply marks, if any: the last "Answer:" marker, else the last "the answer
/// is", else a bold last line.
fn marked(answer: &str) -> Option<((usize, usize), &'static str)> {
    if let Some(m) = MARKER.find_iter(answer).last() {
        let start = m.end();
        let mut end = paragraph_end(answer, start);
        if answer[start..end]
            .trim_matches(|c: char| c.is_whitespace() || c == '*')
            .is_empty()
        {
            end = paragraph_end(answer, skip_blank(answer, end));
        }
        if end > start {
            return Some(((start, end), "after the answer marker"));
        }
    }
    if let Some(m) = ANSWER_IS.find_iter(answer).last() {
        let start = m.end();
        let end = sentence_end(answer, start);
        if answer[start..end].chars().any(char::is_alphanumeric) {
            return Some(((start, end), "after \"the answer is\""));
        }
    }
    let last = answer.trim_end();
    let line_start = last.rfind('\n').map_or(0, |i| i + 1);
    let line = last[line_start..].trim();
    let bold = ["**", "__"].iter().any(|b| {
        let inner = line
            .trim_start_matches(['#', '-', '*', '>', ' '])
            .trim_start();
        (line.starts_with(b) || inner.starts_with(b)) && line[b.len()..].contains(b)
    });
    (bold && line_start > 0).then_some(((line_start, last.len()), "the bold last line"))
}

fn paragraph_end(s: &str, from: usize) -> usize {
    s[from..].find("\n\n").map_or(s.len(), |i| from + i)
}

fn skip_blank(s: &str, from: usize) -> usize {
    from + (s.len() - from - s[from..].trim_start().len())
}

/// The end of the sentence that starts at `from`, or of its first clause: in "the output is
/// **1**, not 0" the conclusion is the 1.
fn sentence_end(s: &str, from: usize) -> usize {
    let end = sentences(&s[from..])
        .first()
        .map_or(s.len(), |&(_, e)| from + e);
    let clause = s[from..end]
        .match_indices([',', ';'])
        .map(|(i, _)| from + i)
        .find(|&i| {
            s[i + 1..].starts_with(char::is_whitespace)
                && s[from..i].chars().any(char::is_alphanumeric)
        });
    clause.unwrap_or(end)
}

/// Sentence ranges: split after `.`, `!`, `?` (and their CJK forms) followed by a space or
/// the end, and at line breaks; a period inside a number ("3.14") does not split. Ranges
/// with no letter or digit (a bullet, a rule) are dropped.
pub(super) fn sentences(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let next = chars.get(k + 1).map(|n| n.1);
        let ends = match c {
            '\n' | '。' | '！' | '？' => true,
            '.' | '!' | '?' => next.is_none_or(char::is_whitespace),
            _ => false,
        };
        if ends {
            out.push((start, i + c.len_utf8()));
            start = i + c.len_utf8();
        }
    }
    out.push((start, s.len()));
    out.into_iter()
        .filter(|&(a, b)| s[a..b].chars().any(char::is_alphanumeric))
        .map(|(a, b)| {
            let lead = s[a..b].len() - s[a..b].trim_start().len();
            let trail = s[a..b].len() - s[a..b].trim_end().len();
            (a + lead, b - trail)
        })
        .collect()
}
