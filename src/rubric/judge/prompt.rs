//! What a judge is asked and how its reply is read.
//!
//! The prompt is plain text with fenced sections, so that any chat model reads it and the
//! simulated engine can recognise it (by [`PREAMBLE`]) and pick the label and the graded
//! answer back out of it ([`parse_prompt`]) without a second channel. The reply must start
//! with `PASS` or `FAIL`; reading is tolerant of the markdown, "Verdict:" prefixes and JSON
//! that real models wrap round a verdict, but never guesses: anything else is unparseable.

/// The first line of every judge prompt: how the simulated engine tells a judge request
/// from a question about an image.
pub const PREAMBLE: &str = "You are grading a model's answer to a question about an image.";

const OPEN: &str = "<<<";
const CLOSE: &str = ">>>";
const REFERENCE: &str = "Reference answer:";
const GRADED: &str = "Answer to grade:";

/// Everything a judge is shown, besides the image.
#[derive(Debug, Clone, Copy)]
pub struct JudgeInput<'a> {
    pub question: &'a str,
    pub label: &'a str,
    pub criteria: Option<&'a str>,
    pub answer: &'a str,
    pub with_image: bool,
}

/// The judge's prompt: question, reference answer, criteria, the answer, and the reply
/// format. Stable text: it is part of the recorded request's digest.
pub fn build(input: &JudgeInput) -> String {
    let mut p = format!("{PREAMBLE}\n");
    p.push_str(if input.with_image {
        "The image is attached. Decide whether the answer is correct, using the reference answer and the image.\n"
    } else {
        "You do not see the image. Decide whether the answer is correct, using the reference answer as the truth.\n"
    });
    p.push_str(
        "Judge only correctness, not style or length: an answer that states the reference \
         answer in other words is correct; one that hedges between candidates or adds a wrong \
         claim about what was asked is not.\n\n",
    );
    let section = |p: &mut String, head: &str, body: &str| {
        p.push_str(&format!("{head}\n{OPEN}\n{}\n{CLOSE}\n\n", body.trim()));
    };
    section(&mut p, "Question:", input.question);
    section(&mut p, REFERENCE, input.label);
    if let Some(c) = input.criteria {
        section(&mut p, "Criteria:", c);
    }
    section(&mut p, GRADED, input.answer);
    p.push_str(
        "Reply with exactly two lines: PASS or FAIL on the first, then one sentence giving the reason.",
    );
    p
}

/// The reference answer and the graded answer of a judge prompt; `None` when `prompt` is not
/// one (the simulated engine then answers as a vision model).
pub fn parse_prompt(prompt: &str) -> Option<(&str, &str)> {
    if !prompt.trim_start().starts_with(PREAMBLE) {
        return None;
    }
    let fenced = |head: &str| -> Option<&str> {
        let start = prompt.find(&format!("{head}\n{OPEN}\n"))? + head.len() + OPEN.len() + 2;
        let rest = &prompt[start..];
        // The graded answer is the last section: its fence is the last close, so an answer
        // that itself contains ">>>" is read whole.
        let end = if head == GRADED {
            rest.rfind(&format!("\n{CLOSE}"))?
        } else {
            rest.find(&format!("\n{CLOSE}"))?
        };
        Some(&rest[..end])
    };
    Some((fenced(REFERENCE)?, fenced(GRADED)?))
}

/// A judge's reply, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Pass(String),
    Fail(String),
    /// Neither verdict could be read: the reply's text, for the error.
    Unparseable,
}

/// Reads `PASS`/`FAIL` from the first non-empty line (markdown, quotes and a "Verdict:" or
/// "Grade:" label ignored), or `{"verdict": "pass", "reason": "..."}`. The reason is the rest
/// of that line or, when empty, the next non-empty line (a "Reason:" label dropped).
pub fn parse_reply(text: &str) -> Reply {
    if let Some(r) = parse_json(text) {
        return r;
    }
    let mut lines = text.lines().map(clean).filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return Reply::Unparseable;
    };
    let first = strip_label(
        &first,
        &["verdict", "grade", "result", "judgement", "judgment"],
    );
    let (word, rest) = first
        .split_once(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or((first, ""));
    let pass = match word.to_ascii_uppercase().as_str() {
        "PASS" | "PASSED" | "CORRECT" => true,
        "FAIL" | "FAILED" | "INCORRECT" => false,
        _ => return Reply::Unparseable,
    };
    let mut reason = rest
        .trim_start_matches(|c: char| c.is_whitespace() || ":-–—.,;|".contains(c))
        .to_string();
    if reason.is_empty() {
        reason = lines
            .next()
            .map(|l| strip_label(&l, &["reason", "because"]).to_string())
            .unwrap_or_default();
    }
    let reason = one_line(&reason);
    if pass {
        Reply::Pass(reason)
    } else {
        Reply::Fail(reason)
    }
}

fn parse_json(text: &str) -> Option<Reply> {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .map_or(t, |s| s.trim_end().trim_end_matches("```"))
        .trim();
    let v: serde_json::Value = serde_json::from_str(t).ok()?;
    let verdict = v.get("verdict").or_else(|| v.get("grade"))?;
    let reason = v
        .get("reason")
        .and_then(|r| r.as_str())
        .map(one_line)
        .unwrap_or_default();
    Some(match verdict {
        serde_json::Value::Bool(true) => Reply::Pass(reason),
        serde_json::Value::Bool(false) => Reply::Fail(reason),
        serde_json::Value::String(s) => match s.trim().to_ascii_uppercase().as_str() {
            "PASS" | "PASSED" | "CORRECT" => Reply::Pass(reason),
            "FAIL" | "FAILED" | "INCORRECT" => Reply::Fail(reason),
            _ => Reply::Unparseable,
        },
        _ => Reply::Unparseable,
    })
}

/// A line without markdown emphasis, headings, block quote or list marks, or quotes round
/// the whole of it; quotes inside (a reason quoting the answer) are kept.
fn clean(line: &str) -> String {
    let s: String = line.chars().filter(|c| !"*#`".contains(*c)).collect();
    let s = s.trim().trim_start_matches(['>', '-', ' ']).trim();
    let s = ['"', '\''].iter().fold(s, |s, q| {
        match s.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)) {
            Some(inner) => inner.trim(),
            None => s,
        }
    });
    s.to_string()
}

/// `line` without a leading `label:` (case-insensitive), if it has one.
fn strip_label<'a>(line: &'a str, labels: &[&str]) -> &'a str {
    for l in labels {
        if line.len() >= l.len() && line[..l.len()].eq_ignore_ascii_case(l) {
            let rest = line[l.len()..].trim_start();
            if let Some(r) = rest.strip_prefix(':') {
                return r.trim();
            }
        }
    }
    line
}

/// At most one line of at most 200 characters: a reason goes into one-line reports.
pub fn one_line(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > 200 {
        let cut: String = joined.chars().take(199).collect();
        format!("{cut}…")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(answer: &'a str) -> JudgeInput<'a> {
        JudgeInput {
            question: "What colour is the couch?",
            label: "Red.",
            criteria: Some("Any shade of red counts."),
            answer,
            with_image: false,
        }
    }

    #[test]
    fn the_simulated_engine_reads_back_label_and_answer() {
        let p = build(&input("It is red.\n>>> quoted\nand more"));
        assert_eq!(
            parse_prompt(&p),
            Some(("Red.", "It is red.\n>>> quoted\nand more"))
        );
        assert_eq!(parse_prompt("What colour is the couch?"), None);
    }

    #[test]
    fn verdicts_in_the_forms_models_write_them() {
        let pass = |r: &str| Reply::Pass(r.to_string());
        let fail = |r: &str| Reply::Fail(r.to_string());
        for (reply, want) in [
            ("PASS\nThe answer says red.", pass("The answer says red.")),
            ("FAIL: it says blue", fail("it says blue")),
            (
                "**Verdict:** PASS\n\n**Reason:** matches the reference.",
                pass("matches the reference."),
            ),
            (
                "## FAIL\n- Reason: two cats, not one",
                fail("two cats, not one"),
            ),
            ("pass - the count is right", pass("the count is right")),
            (
                "Correct.\nIt names the coat as red.",
                pass("It names the coat as red."),
            ),
            ("INCORRECT", fail("")),
            (
                "```json\n{\"verdict\": \"fail\", \"reason\": \"says 64\"}\n```",
                fail("says 64"),
            ),
            ("{\"verdict\": true, \"reason\": \"ok\"}", pass("ok")),
        ] {
            assert_eq!(parse_reply(reply), want, "{reply:?}");
        }
    }

    #[test]
    fn anything_else_is_unparseable_never_a_pass() {
        for reply in [
            "",
            "   \n",
            "The answer looks mostly right to me.",
            "I think it passes.",
            "Passing grade would be generous.",
            "{\"verdict\": \"maybe\"}",
            "No.",
        ] {
            assert_eq!(parse_reply(reply), Reply::Unparseable, "{reply:?}");
        }
    }

    #[test]
    fn reasons_are_one_line() {
        let long = "word ".repeat(100);
        let r = one_line(&long);
        assert!(r.chars().count() <= 200 && !r.contains('\n'));
    }
}
