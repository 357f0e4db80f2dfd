//! Spec-load validation of rubrics: every problem at once, each with what to do.

use super::relation::Dir;
use super::text::{find, fold};
use super::{regex_problem, Rubric};

impl Rubric {
    /// Rejects rubrics that cannot do their job, so a typo fails at spec load with advice
    /// instead of silently passing (or failing) every answer. All problems are reported at once,
    /// one per line.
    pub fn validate(&self) -> Result<(), String> {
        if self.is_empty() {
            return Err(
                "rubric checks nothing: set at least one of all, any, none, regex, number, \
                 max_words, digits_in_order, about, not_about, relation, count, judge \
                 (e.g. rubric = { all = [\"red\"] })"
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
        self.claim_errors(&mut errors);
        if let Some(j) = &self.judge {
            if j.target.trim().is_empty() {
                errors.push("judge.target is empty; name a target declared in eyetest.toml, e.g. judge = { target = \"gpt-4o\" }".into());
            }
            if j.criteria.as_deref().is_some_and(|c| c.trim().is_empty()) {
                errors.push(
                    "judge.criteria is empty; say what the judge should weigh, or remove it".into(),
                );
            }
            if let Some(m) = j.max_tokens.filter(|&m| !(1..=131_072).contains(&m)) {
                errors.push(format!(
                    "judge.max_tokens = {m} must be between 1 and 131072, e.g. max_tokens = 256"
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
            && self.about.is_empty()
            && self.not_about.is_empty()
            && self.relation.is_empty()
            && self.count.is_empty()
            && self.judge.is_none()
    }

    /// Problems with the claim keys (`about`, `not_about`, `relation`, `count`, `window`,
    /// `synonyms`), one message each.
    fn claim_errors(&self, errors: &mut Vec<String>) {
        let blank = |s: &str| s.chars().all(|c| !super::text::is_word_char(c));
        for (key, map) in [("about", &self.about), ("not_about", &self.not_about)] {
            for (object, props) in map {
                if blank(object) {
                    errors.push(format!("{key} has an empty object name {object:?}; name the object the properties describe, e.g. {key} = {{ coat = [\"red\"] }}"));
                }
                if props.is_empty() {
                    errors.push(format!("{key}.{object} lists no properties; list what is (or must not be) said about it, e.g. {key} = {{ {object} = [\"red\"] }}"));
                }
                for p in props.iter().filter(|p| blank(p)) {
                    errors.push(format!(
                        "{key}.{object} has an empty property {p:?}; write the word to look for"
                    ));
                }
            }
        }
        for (object, props) in &self.about {
            for p in props
                .iter()
                .filter(|p| self.not_about.get(object).is_some_and(|n| n.contains(p)))
            {
                errors.push(format!("{p:?} is both required (about) and forbidden (not_about) for {object:?}; remove it from one"));
            }
        }
        if let Some(w) = self.window {
            if w <= 0 {
                errors.push(format!("window = {w} must be at least 1 (words between a property and its object), e.g. window = 4"));
            } else if self.about.is_empty() && self.not_about.is_empty() {
                errors.push("window is set but there is no about or not_about check to apply it to; add one or remove window".into());
            }
        }
        for r in &self.relation {
            if Dir::parse(&r.is).is_none() {
                errors.push(format!("relation is = {:?} is not a direction; use one of \"left of\", \"right of\", \"above\", \"below\", \"in front of\", \"behind\"", r.is));
            }
            if blank(&r.subject) || blank(&r.object) {
                errors.push("relation needs a subject and an object, e.g. relation = { subject = \"baby\", is = \"right of\", object = \"dog\" }".into());
            } else if r.subject.trim().eq_ignore_ascii_case(r.object.trim()) {
                errors.push(format!(
                    "relation relates {:?} to itself; subject and object must differ",
                    r.subject
                ));
            }
        }
        for (object, n) in &self.count {
            if blank(object) {
                errors.push("count has an empty object name; write what is counted, e.g. count = { cat = 1 }".into());
            }
            if !(n.is_finite() && *n >= 0.0 && n.fract() == 0.0) {
                errors.push(format!("count.{object} = {n} must be a whole number >= 0, e.g. count = {{ {object} = 2 }}"));
            }
        }
        for (word, alts) in &self.synonyms {
            if alts.is_empty() || alts.iter().any(|a| blank(a)) {
                errors.push(format!("synonyms.{word} must list non-empty alternatives, e.g. synonyms = {{ {word} = [\"...\"] }}"));
            }
        }
    }
}
