//! The simulated engine as a model judge: asked a judge prompt (see
//! [`crate::rubric::judge::prompt`]), it grades by comparing words, so that the judge path is tested
//! end to end without a model. This is string matching, not judgement, and its replies say
//! so ("simulated judge"); the engine's `model` field says it is simulated as always.
//!
//! The verdict is PASS when every content word of the reference answer appears among the
//! graded answer's words (singular or plural), else FAIL. Behaviours shape the reply:
//! `terse` (and every behaviour that answers normally) replies in the requested two lines,
//! `wrong` gives the opposite verdict (a judge that errs), and `verbose` rambles without a
//! verdict: the unparseable reply a real judge gives at times.

use super::config::Behaviour;
use crate::rubric::judge::prompt::parse_prompt;

/// Words that carry no content in a short reference answer ("The couch is red.").
const STOP: [&str; 16] = [
    "a", "an", "the", "is", "are", "of", "in", "on", "to", "and", "it", "this", "that", "there",
    "image", "picture",
];

/// The reply to `prompt` if it is a judge prompt; `None` for a question about an image.
pub fn reply(behaviour: Behaviour, prompt: &str) -> Option<String> {
    let (label, answer) = parse_prompt(prompt)?;
    let said = words(answer);
    let missing: Vec<String> = words(label)
        .into_iter()
        .filter(|w| !STOP.contains(&w.as_str()))
        .filter(|w| !said.iter().any(|s| same_word(s, w)))
        .collect();
    let pass = missing.is_empty() && !words(label).is_empty();
    let reason = if pass {
        format!("the answer states the reference answer {label:?} (simulated judge).")
    } else {
        format!(
            "the answer does not state {} of the reference answer (simulated judge).",
            missing
                .iter()
                .map(|m| format!("{m:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Some(match behaviour {
        Behaviour::Verbose => format!(
            "Let me look at this answer carefully. The reference answer is {label:?}, and the \
             answer under review reads {:?}. There are arguments either way, and a careful \
             grader would want to see the image before deciding (simulated judge).",
            answer.chars().take(80).collect::<String>()
        ),
        Behaviour::Wrong => {
            let verdict = if pass { "FAIL" } else { "PASS" };
            format!("{verdict}\nThis verdict is deliberately wrong: {reason}")
        }
        _ => format!("{}\n{reason}", if pass { "PASS" } else { "FAIL" }),
    })
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn same_word(a: &str, b: &str) -> bool {
    a == b || a.strip_suffix('s') == Some(b) || b.strip_suffix('s') == Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rubric::judge::prompt::{build, parse_reply, JudgeInput, Reply};

    fn ask(behaviour: Behaviour, label: &str, answer: &str) -> String {
        let p = build(&JudgeInput {
            question: "What colour is the coat?",
            label,
            criteria: None,
            answer,
            with_image: false,
        });
        reply(behaviour, &p).expect("a judge prompt")
    }

    #[test]
    fn grades_by_the_label_words() {
        let r = ask(
            Behaviour::Terse,
            "Red coat.",
            "The skier wears a **red** coat.",
        );
        assert!(matches!(parse_reply(&r), Reply::Pass(_)), "{r}");
        let r = ask(Behaviour::Terse, "Red coat.", "A blue coat.");
        assert!(
            matches!(parse_reply(&r), Reply::Fail(ref why) if why.contains("\"red\"")),
            "{r}"
        );
        let r = ask(Behaviour::Terse, "Two elephants", "two elephant");
        assert!(matches!(parse_reply(&r), Reply::Pass(_)), "{r}");
    }

    #[test]
    fn wrong_inverts_and_verbose_is_unparseable() {
        let r = ask(Behaviour::Wrong, "Red", "Red.");
        assert!(matches!(parse_reply(&r), Reply::Fail(_)), "{r}");
        let r = ask(Behaviour::Verbose, "Red", "Red.");
        assert_eq!(parse_reply(&r), Reply::Unparseable, "{r}");
    }

    #[test]
    fn a_question_about_an_image_is_not_a_judge_prompt() {
        assert_eq!(reply(Behaviour::Terse, "What colour is the coat?"), None);
    }
}
