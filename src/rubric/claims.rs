//! Claims about one object: what is said about it (`about`, `not_about`) and how many of it
//! the answer states (`count`).
//!
//! "A red coat; the blue sky behind" says blue about the sky, not the coat, and "one cat,
//! reflected in the mirror, creating the appearance of two cats" states one cat. Without a
//! parser, binding is decided by English word order, which VLM answers follow closely:
//! a property binds to an object when it premodifies it ("red and white couch", "bright red
//! coat") or follows it after a copula or a colon ("the couches are red and white",
//! "**Couch**: red"), within `window` words and without crossing the end of a phrase or
//! another noun phrase (an article, a preposition, an unknown word after "and").

use super::words::{span_of, Kind, Term, Tok};

/// Words that start another noun phrase or a prepositional phrase: a property beyond them
/// describes something else ("a white blanket and a red couch", "couch with a white throw").
const BARRIERS: &[&str] = &[
    "a", "an", "the", "this", "that", "these", "those", "its", "their", "his", "her", "some",
    "another", "with", "on", "in", "of", "behind", "near", "next", "under", "over", "beside", "by",
    "to", "from", "at", "against", "while", "whereas", "but", "there", "which", "who", "is", "are",
    "was", "were", "has", "have", "wearing", "holding",
];

/// Words for the picture itself: "in the image" says where, not what.
const FRAME: &[&str] = &["image", "picture", "photo", "photograph", "scene", "frame"];

/// Small counts in the languages VLMs answer in besides English ("dos personas", "deux
/// chats"); English numbers in any spelling come from the number parser.
const FOREIGN_COUNTS: &[(&str, f64)] = &[
    ("uno", 1.0),
    ("una", 1.0),
    ("dos", 2.0),
    ("tres", 3.0),
    ("cuatro", 4.0),
    ("cinco", 5.0),
    ("un", 1.0),
    ("une", 1.0),
    ("deux", 2.0),
    ("trois", 3.0),
    ("quatre", 4.0),
    ("cinq", 5.0),
    ("ein", 1.0),
    ("eine", 1.0),
    ("einen", 1.0),
    ("zwei", 2.0),
    ("drei", 3.0),
    ("vier", 4.0),
    ("due", 2.0),
    ("tre", 3.0),
    ("quattro", 4.0),
    ("duas", 2.0),
    ("três", 3.0),
];

/// Verbs that link an object to what follows it ("the coat is red", "the couch appears red").
const COPULAS: &[&str] = &[
    "is", "are", "was", "were", "appears", "appear", "looks", "look", "seems", "seem", "being",
    "be", "s",
];

/// Words that may sit between a copula and the property without changing the claim.
const FILLERS: &[&str] = &[
    "mostly",
    "mainly",
    "primarily",
    "predominantly",
    "all",
    "both",
    "entirely",
    "completely",
    "a",
    "an",
    "bright",
    "dark",
    "light",
    "pale",
    "deep",
    "vibrant",
    "vivid",
    "also",
    "in",
    "colored",
    "coloured",
    "color",
    "colour",
    "shade",
    "of",
    "upholstered",
    "painted",
];

/// Modifiers that may be joined by "and" or a comma in a list of properties.
const MODIFIERS: &[&str] = &[
    "red", "white", "black", "blue", "green", "yellow", "orange", "purple", "pink", "brown",
    "gray", "grey", "beige", "cream", "tan", "maroon", "navy", "teal", "gold", "silver",
    "burgundy", "crimson", "scarlet", "dark", "light", "bright", "pale", "deep", "striped",
];

fn is(tok: Option<&Tok>, list: &[&str]) -> bool {
    tok.is_some_and(|t| t.kind == Kind::Word && list.contains(&t.text.as_str()))
}

/// A property bound to a mention of the object.
#[derive(Debug, Clone)]
pub(super) struct Binding {
    pub property: String,
    /// Token range covering property and object.
    pub range: (usize, usize),
    /// "not red": the property is denied, not asserted.
    pub negated: bool,
}

/// Every property of `props` that some mention of `object` binds, in answer order.
pub(super) fn bindings(toks: &[Tok], object: &Term, props: &[Term], window: usize) -> Vec<Binding> {
    let is_prop = |i: usize| {
        props
            .iter()
            .find_map(|p| p.match_at(toks, i).map(|n| (p, n)))
    };
    let mut out = Vec::new();
    for (a, b) in object.find_all(toks) {
        // Before the object: premodifiers, walking back.
        let mut i = a;
        let mut words = 0;
        while i > 0 && words < window {
            let t = &toks[i - 1];
            if matches!(t.kind, Kind::Stop | Kind::Intro) {
                break;
            }
            let joiner = t.kind == Kind::Comma || matches!(t.text.as_str(), "and" | "or");
            if joiner {
                let before = i.checked_sub(2).map(|k| &toks[k]);
                let prop_before = (0..i.saturating_sub(1))
                    .rev()
                    .take(3)
                    .any(|k| is_prop(k).is_some_and(|(_, n)| k + n == i - 1));
                if !(prop_before || is(before, MODIFIERS)) {
                    break;
                }
            } else if is(Some(t), BARRIERS) {
                break;
            }
            i -= 1;
            if t.kind == Kind::Word {
                words += 1;
            }
            if let Some((p, n)) = is_prop(i) {
                if i + n <= a {
                    out.push(Binding {
                        property: p.name.clone(),
                        range: (i, b),
                        negated: i > 0 && is(toks.get(i - 1), &["no", "not", "non"]),
                    });
                }
            }
        }
        // After the object: a copula, a colon or "in", then the properties.
        let mut j = b;
        // "the coats in the image are red", "the couch visible here is red".
        loop {
            if is(toks.get(j), &["in", "within", "on", "of"])
                && is(toks.get(j + 1), &["the", "this"])
                && is(toks.get(j + 2), FRAME)
            {
                j += 3;
            } else if is(
                toks.get(j),
                &[
                    "visible", "shown", "seen", "present", "here", "there", "itself",
                ],
            ) {
                j += 1;
            } else {
                break;
            }
        }
        if is(toks.get(j), &["s"]) && is(toks.get(j + 1), &["color", "colour", "colors"]) {
            j += 2;
        }
        if is(toks.get(j), &["that", "which"]) {
            j += 1;
        }
        let linked = match toks.get(j) {
            Some(t) if t.kind == Kind::Intro => true,
            Some(t)
                if t.kind == Kind::Word
                    && (COPULAS.contains(&t.text.as_str()) || t.text == "in") =>
            {
                true
            }
            _ => false,
        };
        if !linked {
            continue;
        }
        j += 1;
        let mut negated = false;
        let mut words = 0;
        while j < toks.len() && words < window {
            let t = &toks[j];
            if matches!(t.kind, Kind::Stop) {
                break;
            }
            if let Some((p, n)) = is_prop(j) {
                out.push(Binding {
                    property: p.name.clone(),
                    range: (a, j + n),
                    negated,
                });
                j += n;
                words += n;
                continue;
            }
            let joiner = t.kind == Kind::Comma || matches!(t.text.as_str(), "and" | "or");
            if matches!(t.text.as_str(), "not" | "never" | "no") {
                negated = true;
            } else if joiner {
                if !(is_prop(j + 1).is_some()
                    || is(toks.get(j + 1), MODIFIERS)
                    || is(toks.get(j + 1), FILLERS))
                {
                    break;
                }
            } else if !is(Some(t), FILLERS) && !is(Some(t), COPULAS) && !is(Some(t), MODIFIERS) {
                break;
            }
            j += 1;
            if t.kind == Kind::Word {
                words += 1;
            }
        }
    }
    out
}

/// The answer's stated count of `object`: a number directly before a mention (up to two
/// words between: "two tennis players"), preferring an emphasised one ("only one cat") and
/// skipping counts inside a contrast or an illusion ("the appearance of two cats") when
/// another count is stated. Returns the value and the token range of number + object.
pub(super) fn stated_count(
    toks: &[Tok],
    numbers: &[(f64, (usize, usize))],
    object: &Term,
) -> Option<(f64, (usize, usize))> {
    const HEDGES: &[&str] = &[
        "appearance",
        "illusion",
        "like",
        "reflection",
        "reflections",
        "reflected",
        "mirrored",
        "not",
        "rather",
        "instead",
        "mistaken",
        "mistake",
        "impression",
        "trick",
        "than",
        "double",
        "doubled",
        "duplicate",
        "seemingly",
    ];
    const EMPHASIS: &[&str] = &[
        "only", "just", "exactly", "total", "answer", "actually", "single",
    ];
    let number_at = |k: usize| {
        numbers
            .iter()
            .find(|(_, (s, e))| toks[k].span.0 >= *s && toks[k].span.1 <= *e)
            .map(|&(v, _)| v)
            .or_else(|| is(Some(&toks[k]), &["a", "an", "single", "lone"]).then_some(1.0))
            .or_else(|| {
                let w = toks[k].text.as_str();
                (toks[k].kind == Kind::Word)
                    .then(|| {
                        FOREIGN_COUNTS
                            .iter()
                            .find(|(f, _)| *f == w)
                            .map(|&(_, v)| v)
                    })
                    .flatten()
            })
    };
    let mut pairs = Vec::new();
    for (a, b) in object.find_all(toks) {
        for gap in 0..=2 {
            let Some(k) = a.checked_sub(gap + 1) else {
                break;
            };
            if toks[k].kind != Kind::Word {
                break;
            }
            if let Some(v) = number_at(k) {
                // "a" before a plural is not a count ("a few cats"); before "single" it is.
                let first = (k..a).find(|&m| number_at(m).is_none()).unwrap_or(a);
                let article = is(Some(&toks[k]), &["a", "an"]);
                if article
                    && (first < a || toks[a].text.ends_with('s') && toks[a].text != object.name)
                {
                    break;
                }
                let mut k0 = k;
                while k0 > 0 && number_at(k0 - 1).is_some() && toks[k0 - 1].kind == Kind::Word {
                    k0 -= 1;
                }
                let clause = (0..k0)
                    .rev()
                    .take_while(|&m| toks[m].kind != Kind::Stop)
                    .take(8)
                    .map(|m| toks[m].text.as_str())
                    .collect::<Vec<_>>();
                let hedged = clause.iter().any(|w| HEDGES.contains(w));
                let emphasis = clause.iter().take(3).any(|w| EMPHASIS.contains(w))
                    || is(Some(&toks[k]), &["single"]);
                pairs.push((v, (k0, b), hedged, emphasis));
                break;
            }
        }
    }
    let pick = pairs
        .iter()
        .find(|p| p.3 && !p.2)
        .or_else(|| pairs.iter().find(|p| !p.2))
        .or_else(|| pairs.first())?;
    Some((pick.0, pick.1))
}

/// Raw byte span of a token range.
pub(super) fn raw(toks: &[Tok], range: (usize, usize)) -> (usize, usize) {
    span_of(toks, range.0, range.1)
}
