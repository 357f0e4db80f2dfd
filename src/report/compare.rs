//! What changed between two runs: verdicts that flipped and answers that moved, test by test.
//!
//! The question after a model, engine or driver upgrade is not "what fails" but "what is
//! different", and answers change far more often than verdicts: a word diff of each changed
//! answer shows at a glance whether the model got worse or just rephrased.
//!
//! Only like is compared with like: tests present in both runs. A run filtered by name or
//! target has fewer tests, and listing the hundreds it skipped as "only in the earlier run"
//! buried the changes; those are counted, with a few named, instead.

use std::fmt::Write as _;

use similar::{ChangeTag, TextDiff};

use super::markdown::{inline, verdict_cell};
use crate::results::{ResultRecord, Status};

/// One test present in both runs whose verdict or answer differs.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub before: &'a ResultRecord,
    pub after: &'a ResultRecord,
}

impl Change<'_> {
    pub fn verdict_changed(&self) -> bool {
        self.before.status != self.after.status
    }

    pub fn answer_changed(&self) -> bool {
        self.before.answer != self.after.answer
    }

    /// Passed before, not now: what a reviewer looks at first.
    pub fn is_regression(&self) -> bool {
        self.before.status == Status::Passed
            && matches!(self.after.status, Status::Failed | Status::Error)
    }

    pub fn is_fix(&self) -> bool {
        self.after.status == Status::Passed
            && matches!(self.before.status, Status::Failed | Status::Error)
    }
}

/// Two runs matched by test name.
#[derive(Debug, Clone, Default)]
pub struct Comparison<'a> {
    /// How many tests are in both runs.
    pub compared: usize,
    /// In the order of the later run.
    pub changes: Vec<Change<'a>>,
    pub only_before: Vec<&'a ResultRecord>,
    pub only_after: Vec<&'a ResultRecord>,
}

/// Compares two merged runs (one record per test each).
pub fn compare<'a>(before: &'a [ResultRecord], after: &'a [ResultRecord]) -> Comparison<'a> {
    let find = |rs: &'a [ResultRecord], test: &str| rs.iter().find(|r| r.test == test);
    let mut c = Comparison::default();
    for a in after {
        match find(before, &a.test) {
            Some(b) => {
                c.compared += 1;
                let change = Change {
                    before: b,
                    after: a,
                };
                if change.verdict_changed() || change.answer_changed() {
                    c.changes.push(change);
                }
            }
            None => c.only_after.push(a),
        }
    }
    c.only_before = before
        .iter()
        .filter(|b| find(after, &b.test).is_none())
        .collect();
    c
}

/// How a word diff marks what was removed and added.
#[derive(Debug, Clone, Copy)]
pub struct DiffStyle {
    pub del: (&'static str, &'static str),
    pub ins: (&'static str, &'static str),
    /// Between a removed and an added run that replace each other.
    pub between: &'static str,
    /// Applied to every piece of text (escaping for the output format).
    pub escape: fn(&str) -> String,
}

/// `~~removed~~ **added**`, escaped for a markdown paragraph.
pub const MARKDOWN: DiffStyle = DiffStyle {
    del: ("~~", "~~"),
    ins: ("**", "**"),
    between: " ",
    escape: escape_markdown,
};

/// `[-removed-]{+added+}`, as `git diff --word-diff` prints it.
pub const TERMINAL: DiffStyle = DiffStyle {
    del: ("[-", "-]"),
    ins: ("{+", "+}"),
    between: "",
    escape: str::to_string,
};

/// A word diff of two answers. Runs of removed and of added words are each marked once,
/// removals first, and whitespace at the edges of a run stays outside the markers: markdown
/// does not strike through `~~ word~~`.
pub fn word_diff(old: &str, new: &str, style: DiffStyle) -> String {
    let diff = TextDiff::from_words(old, new);
    let mut out = String::new();
    let (mut del, mut ins) = (String::new(), String::new());
    let flush = |out: &mut String, del: &mut String, ins: &mut String| {
        // Removed whitespace alone is not worth a marker; added whitespace is kept as is.
        let replaced = !del.trim().is_empty();
        if replaced {
            mark(out, del, style.del, style.escape);
        }
        if ins.trim().is_empty() {
            out.push_str(&(style.escape)(ins));
        } else {
            if replaced && !out.ends_with(char::is_whitespace) {
                out.push_str(style.between);
            }
            mark(out, ins, style.ins, style.escape);
        }
        del.clear();
        ins.clear();
    };
    for ch in diff.iter_all_changes() {
        match ch.tag() {
            ChangeTag::Delete => del.push_str(ch.value()),
            ChangeTag::Insert => ins.push_str(ch.value()),
            ChangeTag::Equal => {
                flush(&mut out, &mut del, &mut ins);
                out.push_str(&(style.escape)(ch.value()));
            }
        }
    }
    flush(&mut out, &mut del, &mut ins);
    out
}

fn mark(out: &mut String, run: &str, (open, close): (&str, &str), escape: fn(&str) -> String) {
    let body = run.trim();
    let lead = &run[..run.len() - run.trim_start().len()];
    let trail = &run[run.trim_end().len()..];
    let _ = write!(
        out,
        "{}{open}{}{close}{}",
        escape(lead),
        escape(body),
        escape(trail)
    );
}

/// Escapes answer text inside a markdown paragraph so that the diff markers are the only
/// markup: a model's own `**bold**` or `~` would otherwise merge with them.
fn escape_markdown(s: &str) -> String {
    let mut marked = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '*' | '_' | '~' | '`' | '[' | ']' | '|') {
            marked.push('\\');
        }
        marked.push(c);
    }
    // Whitespace at the edges is part of the diff: keep it, escape only the rest.
    if marked.trim().is_empty() {
        return marked.replace('\r', "").replace('\n', "<br>");
    }
    let body = super::markdown::inline(&marked);
    let lead = &marked[..marked.len() - marked.trim_start().len()];
    let trail = &marked[marked.trim_end().len()..];
    format!(
        "{}{body}{}",
        lead.replace('\n', "<br>"),
        trail.replace('\n', "<br>")
    )
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Passed => "pass",
        Status::Failed => "fail",
        Status::Error => "error",
        Status::Ignored => "ignored",
    }
}

/// At most this many tests of one run only are named; the rest are counted.
const UNMATCHED_NAMED: usize = 5;

fn tally(c: &Comparison) -> String {
    let verdicts = c.changes.iter().filter(|x| x.verdict_changed()).count();
    let regressions = c.changes.iter().filter(|x| x.is_regression()).count();
    let fixes = c.changes.iter().filter(|x| x.is_fix()).count();
    let answers = c.changes.iter().filter(|x| x.answer_changed()).count();
    format!(
        "{} test(s) in both runs: {verdicts} verdict change(s) ({regressions} regression(s), \
         {fixes} fix(es)), {answers} changed answer(s); {} only before, {} only after.",
        c.compared,
        c.only_before.len(),
        c.only_after.len()
    )
}

/// What was left out of the comparison, or `None` when both runs had the same tests.
pub fn left_out(c: &Comparison, quote: fn(&str) -> String) -> Option<String> {
    if c.only_before.is_empty() && c.only_after.is_empty() {
        return None;
    }
    let side = |list: &[&ResultRecord], which: &str| -> Option<String> {
        if list.is_empty() {
            return None;
        }
        let mut names: Vec<String> = list
            .iter()
            .take(UNMATCHED_NAMED)
            .map(|r| quote(&r.test))
            .collect();
        if list.len() > UNMATCHED_NAMED {
            names.push(format!("and {} more", list.len() - UNMATCHED_NAMED));
        }
        Some(format!(
            "{} only in the {which} run ({})",
            list.len(),
            names.join(", ")
        ))
    };
    let parts: Vec<String> = [
        side(&c.only_before, "earlier"),
        side(&c.only_after, "later"),
    ]
    .into_iter()
    .flatten()
    .collect();
    Some(format!(
        "Left out of the comparison, as a run filtered by name or target has fewer tests: {}.",
        parts.join("; ")
    ))
}

/// The comparison as markdown: a table of verdict changes, then each change with its diff.
pub fn render_markdown(c: &Comparison, before_name: &str, after_name: &str) -> String {
    let mut out = String::from("# eyetest comparison\n\n");
    let _ = writeln!(
        out,
        "Before: `{}`; after: `{}`.\n\n{}\n",
        before_name.replace('`', "'"),
        after_name.replace('`', "'"),
        tally(c)
    );
    let flipped: Vec<&Change> = c.changes.iter().filter(|x| x.verdict_changed()).collect();
    if !flipped.is_empty() {
        out.push_str("## Verdict changes\n\n| test | before | after |\n|---|---|---|\n");
        for x in &flipped {
            let mark = if x.is_regression() {
                " 🔻"
            } else if x.is_fix() {
                " 🔺"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "| `{}`{mark} | {} | {} |",
                x.after.test,
                verdict_cell(x.before),
                verdict_cell(x.after)
            );
        }
        out.push('\n');
    }
    if !c.changes.is_empty() {
        out.push_str("## Changes\n\n");
        for x in &c.changes {
            let _ = writeln!(out, "### `{}`\n", x.after.test);
            let _ = writeln!(out, "**Question:** {}\n", inline(&x.after.prompt));
            let _ = writeln!(
                out,
                "**Verdict:** {}{}\n",
                verdict_cell(x.before),
                if x.verdict_changed() {
                    format!(" → {}", verdict_cell(x.after))
                } else {
                    " (unchanged)".into()
                }
            );
            let _ = writeln!(out, "**Answer:** {}\n", answer_diff(x, MARKDOWN));
        }
    }
    if let Some(note) = left_out(c, |t| format!("`{t}`")) {
        let _ = writeln!(out, "{note}\n");
    }
    if c.changes.is_empty() {
        out.push_str("No differences in the tests both runs have.\n");
    }
    let end = out.trim_end().len();
    out.truncate(end);
    out.push('\n');
    out
}

fn answer_diff(x: &Change, style: DiffStyle) -> String {
    match (x.before.answer.as_deref(), x.after.answer.as_deref()) {
        (Some(b), Some(a)) if b == a => (style.escape)(a),
        (Some(b), Some(a)) => word_diff(b, a, style),
        (None, Some(a)) => format!("(none before) {}", word_diff("", a, style)),
        (Some(b), None) => format!("{} (none now)", word_diff(b, "", style)),
        (None, None) => "(none)".into(),
    }
}

/// The comparison for a terminal: one block per change, git's word-diff markers.
pub fn render_text(c: &Comparison) -> String {
    let mut out = String::new();
    for x in &c.changes {
        let verdict = if x.verdict_changed() {
            format!(
                "{} -> {}",
                status_word(x.before.status),
                status_word(x.after.status)
            )
        } else {
            status_word(x.after.status).to_string()
        };
        let _ = writeln!(out, "{}  [{verdict}]", x.after.test);
        if let Some(v) = x.after.verdict.as_ref().filter(|v| !v.passed) {
            let _ = writeln!(out, "  rubric: {}", v.summary());
        }
        if let Some(r) = x.after.reason.as_deref() {
            let _ = writeln!(out, "  reason: {r}");
        }
        for line in answer_diff(x, TERMINAL).lines() {
            let _ = writeln!(out, "  | {line}");
        }
    }
    let _ = writeln!(out, "{}", tally(c));
    if let Some(note) = left_out(c, str::to_string) {
        let _ = writeln!(out, "{note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_diffs_mark_runs_once() {
        assert_eq!(
            word_diff("There are two people.", "There are three people.", MARKDOWN),
            "There are ~~two~~ **three** people."
        );
        assert_eq!(
            word_diff("There are two people.", "There are three people.", TERMINAL),
            "There are [-two-]{+three+} people."
        );
        assert_eq!(
            word_diff("a b", "a new words b", TERMINAL),
            "a {+new words+} b"
        );
        assert_eq!(word_diff("same", "same", MARKDOWN), "same");
        assert_eq!(
            word_diff("x <y> **a**", "x <z> **a**", MARKDOWN),
            "x ~~&lt;y&gt;~~ **&lt;z&gt;** \\*\\*a\\*\\*"
        );
    }
}
