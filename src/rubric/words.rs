//! Words of an answer, and terms (a keyword with its inflections and synonyms) matched on them.
//!
//! Claim checks ("red" said about the coat, "baby right of dog", "one cat") reason about which
//! word sits next to which, so they work on a token stream rather than on folded text: words
//! with their raw spans, and the punctuation that ends a phrase. Inflection lives here too,
//! because "elephants" answers `elephant` in every kind of check.

use std::collections::BTreeMap;

use super::text::is_word_char;

/// What a token is; punctuation matters only as far as it separates phrases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Word,
    /// `,`: joins list items ("red, white and blue") but also separates clauses.
    Comma,
    /// `:` or `(`: introduces what is said about the word before ("**Couch**: red").
    Intro,
    /// `.`, `;`, `!`, `?`, `)`, a line break: nothing binds across it.
    Stop,
}

#[derive(Debug, Clone)]
pub(super) struct Tok {
    /// Lowercased word, or the punctuation character.
    pub text: String,
    pub span: (usize, usize),
    pub kind: Kind,
}

/// Splits `s` into words and phrase punctuation. Apostrophes and hyphens split words ("dog's"
/// is "dog" + "s", "right-hand" is "right" + "hand"); a period between digits is part of the
/// number; Han and kana characters are one word each.
pub(super) fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word: Option<usize> = None;
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let flush = |out: &mut Vec<Tok>, start: Option<usize>, end: usize| {
        if let Some(st) = start {
            out.push(Tok {
                text: s[st..end].to_lowercase(),
                span: (st, end),
                kind: Kind::Word,
            });
        }
    };
    for (k, &(i, c)) in chars.iter().enumerate() {
        let cjk = matches!(c, '\u{3040}'..='\u{30FF}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}');
        let digit_dot = c == '.'
            && k > 0
            && chars[k - 1].1.is_ascii_digit()
            && chars.get(k + 1).is_some_and(|n| n.1.is_ascii_digit());
        if (is_word_char(c) && !cjk) || digit_dot {
            word.get_or_insert(i);
            continue;
        }
        flush(&mut out, word.take(), i);
        let span = (i, i + c.len_utf8());
        let kind = match c {
            _ if cjk => Kind::Word,
            ',' | '，' | '、' => Kind::Comma,
            ':' | '：' | '(' => Kind::Intro,
            '.' | ';' | '!' | '?' | ')' | '\n' | '。' | '！' | '？' | '；' => Kind::Stop,
            _ => continue,
        };
        out.push(Tok {
            text: c.to_string(),
            span,
            kind,
        });
    }
    flush(&mut out, word, s.len());
    out
}

/// Irregular English plurals that answers about scenes and people actually use.
const IRREGULAR: &[(&str, &str)] = &[
    ("person", "people"),
    ("man", "men"),
    ("woman", "women"),
    ("child", "children"),
    ("mouse", "mice"),
    ("foot", "feet"),
    ("tooth", "teeth"),
    ("goose", "geese"),
    ("knife", "knives"),
    ("leaf", "leaves"),
    ("shelf", "shelves"),
    ("life", "lives"),
    ("wife", "wives"),
    ("loaf", "loaves"),
    ("half", "halves"),
    ("wolf", "wolves"),
    ("calf", "calves"),
    ("sheep", "sheep"),
    ("fish", "fish"),
];

/// Words that are never inflected: number words and short function words, whose "plural"
/// would be another word ("one" -> "ones", "is" -> "i").
fn uninflected(w: &str) -> bool {
    w.chars().count() < 3
        || !w.chars().all(char::is_alphabetic)
        || super::numbers::is_number_word(w)
        || matches!(
            w,
            "the" | "and" | "not" | "his" | "her" | "its" | "was" | "has" | "this" | "news"
        )
}

/// The singular and plural forms of one word, itself first. Deliberately conservative:
/// regular `-s`/`-es`/`-ies` and a short irregular table, never stemming ("red" never finds
/// "reduced", "cat" never finds "catalog").
pub(super) fn forms(w: &str) -> Vec<String> {
    let mut out = vec![w.to_string()];
    if uninflected(w) {
        return out;
    }
    for &(one, many) in IRREGULAR {
        if w == one || w == many {
            out.extend([one, many].iter().map(|s| s.to_string()));
        }
    }
    let ends = |suffixes: &[&str]| suffixes.iter().any(|s| w.ends_with(s));
    let consonant_y =
        w.ends_with('y') && !matches!(w.chars().rev().nth(1), Some('a' | 'e' | 'i' | 'o' | 'u'));
    if consonant_y {
        out.push(format!("{}ies", &w[..w.len() - 1]));
    } else if ends(&["s", "x", "z", "ch", "sh"]) {
        out.push(format!("{w}es"));
    } else {
        out.push(format!("{w}s"));
    }
    if let Some(stem) = w.strip_suffix("ies") {
        out.push(format!("{stem}y"));
    } else if ends(&["ses", "xes", "zes", "ches", "shes"]) {
        out.push(w[..w.len() - 2].to_string());
    } else if w.ends_with('s') && !ends(&["ss", "us", "is", "os"]) {
        out.push(w[..w.len() - 1].to_string());
    }
    out.dedup();
    out
}

/// A keyword as claim checks look for it: each alternative is a word sequence whose last
/// word may be inflected. Alternatives come from the rubric's `synonyms` table.
#[derive(Debug, Clone)]
pub(super) struct Term {
    /// As the spec wrote it, for messages.
    pub name: String,
    alternatives: Vec<Vec<Vec<String>>>,
}

impl Term {
    pub fn new(keyword: &str, synonyms: &BTreeMap<String, Vec<String>>, inflect: bool) -> Term {
        let mut alts: Vec<&str> = vec![keyword];
        let key = keyword.trim().to_lowercase();
        for (k, list) in synonyms {
            if k.trim().to_lowercase() == key {
                alts.extend(list.iter().map(String::as_str));
            }
        }
        let alternatives = alts
            .iter()
            .map(|a| {
                let words: Vec<String> = tokenize(a)
                    .into_iter()
                    .filter(|t| t.kind == Kind::Word)
                    .map(|t| t.text)
                    .collect();
                let n = words.len();
                words
                    .into_iter()
                    .enumerate()
                    .map(|(i, w)| {
                        if inflect && i + 1 == n {
                            forms(&w)
                        } else {
                            vec![w]
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|a: &Vec<Vec<String>>| !a.is_empty())
            .collect();
        Term {
            name: keyword.to_string(),
            alternatives,
        }
    }

    /// The number of tokens the term covers when it starts at token `i`.
    pub fn match_at(&self, toks: &[Tok], i: usize) -> Option<usize> {
        self.alternatives
            .iter()
            .filter(|alt| {
                alt.iter().enumerate().all(|(k, options)| {
                    toks.get(i + k)
                        .is_some_and(|t| t.kind == Kind::Word && options.contains(&t.text))
                })
            })
            .map(Vec::len)
            .max()
    }

    /// Every match as a token range `(start, end)`.
    pub fn find_all(&self, toks: &[Tok]) -> Vec<(usize, usize)> {
        (0..toks.len())
            .filter_map(|i| self.match_at(toks, i).map(|n| (i, i + n)))
            .collect()
    }
}

/// The raw byte span of tokens `a..b` (b exclusive, non-empty).
pub(super) fn span_of(toks: &[Tok], a: usize, b: usize) -> (usize, usize) {
    (toks[a].span.0, toks[b - 1].span.1)
}
