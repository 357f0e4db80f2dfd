//! Applying a rubric to an answer: keyword checks on folded text, claim checks on words, both
//! on the part of the answer `scope` selects, every outcome with what it matched and where.

use super::claims::{bindings, raw, stated_count};
use super::numbers::extract_numbers;
use super::relation::{relations, stated, Dir};
use super::scope::select;
use super::text::{closest, count_words, find, fold, quote};
use super::verdict::{CheckKind as K, CheckOutcome, Verdict};
use super::words::{forms, tokenize, Term};
use super::{check_digits, digits_of, Rubric, DEFAULT_TOLERANCE, DEFAULT_WINDOW};

/// "at char 14": 1-based character position in the whole answer, as an editor shows it.
pub(super) fn at(answer: &str, byte: usize) -> String {
    format!("at char {}", answer[..byte].chars().count() + 1)
}

/// Collects outcomes with absolute spans.
struct Outcomes<'a> {
    answer: &'a str,
    offset: usize,
    checks: Vec<CheckOutcome>,
}

impl Outcomes<'_> {
    /// `found as "…" at char N` for a span relative to the scoped part.
    fn shown(&self, (s, e): (usize, usize)) -> String {
        let (s, e) = (s + self.offset, e + self.offset);
        format!(
            "found as {} {}",
            quote(&self.answer[s..e]),
            at(self.answer, s)
        )
    }

    fn add(
        &mut self,
        kind: K,
        expected: String,
        passed: bool,
        detail: String,
        span: Option<(usize, usize)>,
    ) {
        let at = span.map(|(s, e)| (s + self.offset, e + self.offset));
        self.checks.push(CheckOutcome {
            kind,
            expected,
            passed,
            detail,
            at,
        });
    }
}

impl Rubric {
    /// Runs every configured check. Never panics: a rubric that `validate` would reject still
    /// yields a failing verdict that says why (an empty rubric fails, it never passes vacuously).
    pub fn check(&self, answer: &str) -> Verdict {
        let ((s0, e0), scope) = select(answer, self.scope);
        let part = &answer[s0..e0];
        let mut out = Outcomes {
            answer,
            offset: s0,
            checks: Vec::new(),
        };
        self.check_keywords(part, &mut out);
        self.check_claims(part, &mut out);
        let checks = out.checks;
        let passed = !checks.is_empty() && checks.iter().all(|c| c.passed);
        Verdict {
            passed,
            checks,
            scope,
            judge: None,
        }
    }

    /// Folded forms to look for: the keyword, its synonyms, and (with `inflect`) the
    /// singular/plural of each one's last word.
    fn needles(&self, kw: &str) -> Vec<String> {
        let opts = self.fold_options();
        let key = fold(kw, opts).text;
        let mut alts = vec![key.clone()];
        for (k, list) in &self.synonyms {
            if fold(k, opts).text == key {
                alts.extend(list.iter().map(|s| fold(s, opts).text));
            }
        }
        let mut out = Vec::new();
        for alt in alts.into_iter().filter(|a| !a.is_empty()) {
            let (head, last) = alt
                .rsplit_once(' ')
                .map_or(("", alt.as_str()), |(h, l)| (h, l));
            if self.inflect && self.fold_punctuation {
                for f in forms(last) {
                    out.push(if head.is_empty() {
                        f
                    } else {
                        format!("{head} {f}")
                    });
                }
            } else {
                out.push(alt.clone());
            }
        }
        out
    }

    fn check_keywords(&self, part: &str, out: &mut Outcomes) {
        let hay = fold(part, self.fold_options());
        let found = |kw: &str| {
            self.needles(kw)
                .iter()
                .filter_map(|n| find(&hay, n))
                .min_by_key(|s| s.0)
        };
        for kw in &self.all {
            let hit = found(kw);
            let detail = match (hit, hit.is_none().then(|| closest(part, kw)).flatten()) {
                (Some(span), _) => out.shown(span),
                (None, Some(near)) => format!("missing (closest: {})", quote(&near)),
                (None, None) => "missing".into(),
            };
            out.add(K::All, quote(kw), hit.is_some(), detail, hit);
        }
        if !self.any.is_empty() {
            let expected: Vec<String> = self.any.iter().map(|k| quote(k)).collect();
            let hit = self.any.iter().find_map(|kw| Some((kw, found(kw)?)));
            let detail = match hit {
                Some((kw, span)) => format!("{} {}", quote(kw), out.shown(span)),
                None => "none of them found".into(),
            };
            out.add(
                K::Any,
                expected.join(", "),
                hit.is_some(),
                detail,
                hit.map(|h| h.1),
            );
        }
        for kw in &self.none {
            let hit = found(kw);
            let detail = hit.map_or("absent".into(), |s| out.shown(s));
            out.add(K::None, quote(kw), hit.is_none(), detail, hit);
        }
        for pat in &self.regex {
            let m = self
                .compile(pat)
                .map(|re| re.find(part).map(|m| (m.start(), m.end())));
            let (passed, detail, span) = match m {
                Ok(Some((s, e))) => {
                    let at = at(out.answer, s + out.offset);
                    (
                        true,
                        format!("matched {} {at}", quote(&part[s..e])),
                        Some((s, e)),
                    )
                }
                Ok(None) => (false, "no match".into(), None),
                Err(e) => (false, format!("does not compile: {e}"), None),
            };
            out.add(K::Regex, format!("/{pat}/"), passed, detail, span);
        }
        let numbers = if self.number.is_empty() {
            Vec::new()
        } else {
            extract_numbers(part)
        };
        let tol = self.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        for &want in &self.number {
            let expected = match self.tolerance {
                Some(t) => format!("{want} ± {t}"),
                None => want.to_string(),
            };
            let hit = numbers.iter().find(|n| (n.value - want).abs() <= tol);
            let detail = match hit {
                Some(n) => out.shown(n.span),
                None if numbers.is_empty() => "not found; the answer has no numbers".into(),
                None => format!(
                    "not found; numbers in answer: {}",
                    distinct(numbers.iter().map(|n| n.value))
                ),
            };
            out.add(
                K::Number,
                expected,
                hit.is_some(),
                detail,
                hit.map(|n| n.span),
            );
        }
        if let Some(max) = self.max_words {
            // Terseness is the whole answer's, whatever the scope.
            let words = count_words(out.answer);
            let detail = format!("{words} words (max {max})");
            out.add(
                K::MaxWords,
                max.to_string(),
                words as i64 <= max,
                detail,
                None,
            );
        }
        if let Some(want) = &self.digits_in_order {
            let (passed, detail, span) = check_digits(part, want);
            let detail = match span {
                Some((s, _)) => format!("{detail} {}", at(out.answer, s + out.offset)),
                None => detail,
            };
            out.add(
                K::DigitsInOrder,
                quote(&digits_of(want)),
                passed,
                detail,
                span,
            );
        }
    }

    fn term(&self, kw: &str) -> Term {
        Term::new(kw, &self.synonyms, self.inflect)
    }

    fn check_claims(&self, part: &str, out: &mut Outcomes) {
        if self.about.is_empty()
            && self.not_about.is_empty()
            && self.relation.is_empty()
            && self.count.is_empty()
        {
            return;
        }
        let toks = tokenize(part);
        let window = self.window.map_or(DEFAULT_WINDOW, |w| w.max(1) as usize);
        let text_of = |r: (usize, usize)| {
            let (s, e) = raw(&toks, r);
            (s, e, quote(&part[s..e]))
        };
        for (object, props) in &self.about {
            let (obj, terms) = (
                self.term(object),
                props.iter().map(|p| self.term(p)).collect::<Vec<_>>(),
            );
            let expected = format!("{} about {}", list(props), quote(object));
            let bound = bindings(&toks, &obj, &terms, window);
            let good = bound.iter().find(|b| !b.negated);
            let (passed, detail, span) = match good {
                Some(b) => {
                    let (s, e, q) = text_of(b.range);
                    (
                        true,
                        format!(
                            "{} said about it as {q} {}",
                            quote(&b.property),
                            at(out.answer, s + out.offset)
                        ),
                        Some((s, e)),
                    )
                }
                None if obj.find_all(&toks).is_empty() => {
                    // The object is not named ("Red." to "what colour is the coat?"): the
                    // question names it, so the property anywhere is the claim.
                    let hit = terms
                        .iter()
                        .find_map(|t| t.find_all(&toks).first().map(|&r| (t, r)));
                    match hit {
                        Some((t, r)) => {
                            let (s, e, q) = text_of(r);
                            let detail = format!(
                                "{} is not named; {} found as {q} {}",
                                quote(object),
                                quote(&t.name),
                                at(out.answer, s + out.offset)
                            );
                            (true, detail, Some((s, e)))
                        }
                        None => (
                            false,
                            format!("neither {} nor {} is mentioned", quote(object), list(props)),
                            None,
                        ),
                    }
                }
                None => {
                    let said: Vec<String> = bound
                        .iter()
                        .map(|b| format!("not {}", b.property))
                        .collect();
                    let mention = obj.find_all(&toks)[0];
                    let (s, _, q) = text_of(mention);
                    let also = if said.is_empty() {
                        String::new()
                    } else {
                        format!(" (says {})", said.join(", "))
                    };
                    (
                        false,
                        format!(
                            "nothing of it said about {} (first mentioned as {q} {}){also}",
                            quote(object),
                            at(out.answer, s + out.offset)
                        ),
                        None,
                    )
                }
            };
            out.add(K::About, expected, passed, detail, span);
        }
        for (object, props) in &self.not_about {
            let (obj, terms) = (
                self.term(object),
                props.iter().map(|p| self.term(p)).collect::<Vec<_>>(),
            );
            let bound = bindings(&toks, &obj, &terms, window);
            for prop in props {
                let hit = bound.iter().find(|b| &b.property == prop && !b.negated);
                let (passed, detail, span) = match hit {
                    Some(b) => {
                        let (s, e, q) = text_of(b.range);
                        (
                            false,
                            format!("said as {q} {}", at(out.answer, s + out.offset)),
                            Some((s, e)),
                        )
                    }
                    None => (true, "not said about it".into(), None),
                };
                out.add(
                    K::NotAbout,
                    format!("{} about {}", quote(prop), quote(object)),
                    passed,
                    detail,
                    span,
                );
            }
        }
        for rel in &self.relation {
            let expected = format!(
                "{} {} {}",
                quote(&rel.subject),
                rel.is.trim(),
                quote(&rel.object)
            );
            let Some(want) = Dir::parse(&rel.is) else {
                out.add(
                    K::Relation,
                    expected,
                    false,
                    format!("unknown direction {:?}", rel.is),
                    None,
                );
                continue;
            };
            let terms = [self.term(&rel.subject), self.term(&rel.object)];
            let found = relations(&stated(&toks, &terms));
            let says = |d: Dir| found.iter().find(|(dir, _)| *dir == d);
            let quote_ranges = |ranges: &[(usize, usize)]| {
                let parts: Vec<String> = ranges
                    .iter()
                    .map(|&r| {
                        let (s, _, q) = text_of(r);
                        format!("{q} {}", at(out.answer, s + out.offset))
                    })
                    .collect();
                parts.join(" and ")
            };
            let (passed, detail, span) = match (says(want), says(want.opposite())) {
                (Some((_, r)), None) => (
                    true,
                    format!("stated as {}", quote_ranges(r)),
                    Some(raw(&toks, r[0])),
                ),
                (Some((_, r)), Some((_, o))) => (
                    false,
                    format!(
                        "stated as {} but contradicted by {}",
                        quote_ranges(r),
                        quote_ranges(o)
                    ),
                    Some(raw(&toks, o[0])),
                ),
                (None, Some((_, o))) => (
                    false,
                    format!("the answer says the opposite: {}", quote_ranges(o)),
                    Some(raw(&toks, o[0])),
                ),
                (None, None) => match found.first() {
                    Some((d, r)) => (
                        false,
                        format!(
                            "states only {} {} {}: {}",
                            quote(&rel.subject),
                            d.name(),
                            quote(&rel.object),
                            quote_ranges(r)
                        ),
                        None,
                    ),
                    None => (false, "no relation between them is stated".into(), None),
                },
            };
            out.add(K::Relation, expected, passed, detail, span);
        }
        if !self.count.is_empty() {
            let numbers: Vec<(f64, (usize, usize))> = extract_numbers(part)
                .into_iter()
                .map(|n| (n.value, n.span))
                .collect();
            for (object, &want) in &self.count {
                let expected = format!("{want} {}", quote(object));
                let hit = stated_count(&toks, &numbers, &self.term(object));
                let (passed, detail, span) = match hit {
                    Some((v, r)) => {
                        let (s, e, q) = text_of(r);
                        (
                            (v - want).abs() < 1e-9,
                            format!("states {v} as {q} {}", at(out.answer, s + out.offset)),
                            Some((s, e)),
                        )
                    }
                    None => match numbers.first() {
                        // "Two." or "There are 2." : the question names the object.
                        Some(&(v, (s, e)))
                            if !toks.iter().any(|t| {
                                self.term(object)
                                    .match_at(std::slice::from_ref(t), 0)
                                    .is_some()
                            }) =>
                        {
                            (
                                (v - want).abs() < 1e-9,
                                format!(
                                    "{} is not named; first number {} {}",
                                    quote(object),
                                    quote(&part[s..e]),
                                    at(out.answer, s + out.offset)
                                ),
                                Some((s, e)),
                            )
                        }
                        _ => (
                            false,
                            format!("no count of {} is stated", quote(object)),
                            None,
                        ),
                    },
                };
                out.add(K::Count, expected, passed, detail, span);
            }
        }
    }
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| quote(s))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn distinct(values: impl Iterator<Item = f64>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for v in values.map(|v| v.to_string()) {
        if !seen.contains(&v) && seen.len() < 8 {
            seen.push(v);
        }
    }
    seen.join(", ")
}
