//! Spatial relations between two objects, with their converses.
//!
//! "Where is the baby relative to the dog?" is answered by "the baby is to the right of the
//! dog", by "the dog is to the left of the baby" and by "the baby is on the right, the dog on
//! the left"; it is not answered by "in front of the bus, moving towards the right side of the
//! image", which puts the object right of the image, not of the bus. So a relation check finds
//! each stated relation (figure, direction, ground), turns it around when the ground is the
//! rubric's subject, and compares.

use serde::{Deserialize, Serialize};

use super::words::{Kind, Term, Tok};

/// A direction as a rubric names it (`is = "right of"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Left,
    Right,
    Above,
    Below,
    Front,
    Behind,
}

impl Dir {
    pub fn parse(s: &str) -> Option<Dir> {
        let s = s.trim().to_lowercase();
        let s = s
            .trim_end_matches(" of")
            .trim_start_matches("to the ")
            .trim_start_matches("on the ");
        Some(match s {
            "left" | "left side" => Dir::Left,
            "right" | "right side" => Dir::Right,
            "above" | "over" | "on top" => Dir::Above,
            "below" | "under" | "beneath" | "underneath" => Dir::Below,
            "in front" | "front" | "ahead" => Dir::Front,
            "behind" | "in back" => Dir::Behind,
            _ => return None,
        })
    }

    pub fn opposite(self) -> Dir {
        match self {
            Dir::Left => Dir::Right,
            Dir::Right => Dir::Left,
            Dir::Above => Dir::Below,
            Dir::Below => Dir::Above,
            Dir::Front => Dir::Behind,
            Dir::Behind => Dir::Front,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dir::Left => "left of",
            Dir::Right => "right of",
            Dir::Above => "above",
            Dir::Below => "below",
            Dir::Front => "in front of",
            Dir::Behind => "behind",
        }
    }
}

/// `relation = { subject = "baby", is = "right of", object = "dog" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationSpec {
    pub subject: String,
    pub is: String,
    pub object: String,
}

/// One relation the answer states: `figure` is `dir` of `ground` (terms: 0 = subject,
/// 1 = object, 2 = the image frame), with the token range that says so.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stated {
    pub figure: usize,
    pub dir: Dir,
    pub ground: usize,
    pub range: (usize, usize),
}

const FRAME: &[&str] = &[
    "image",
    "picture",
    "photo",
    "photograph",
    "frame",
    "scene",
    "shot",
    "screen",
    "view",
];
const DETERMINERS: &[&str] = &["the", "a", "an", "this", "that"];

fn word(toks: &[Tok], i: usize) -> &str {
    toks.get(i)
        .filter(|t| t.kind == Kind::Word)
        .map_or("", |t| t.text.as_str())
}

/// Finds a direction phrase at token `i`: its direction, the token after it, and whether it
/// ends in "of" (so a ground follows) or names its ground by possessive before it.
fn phrase_at(toks: &[Tok], i: usize) -> Option<(Dir, usize, bool)> {
    let w = |k: usize| word(toks, k);
    match w(i) {
        "left" | "right" => {
            let before = if i > 0 { w(i - 1) } else { "" };
            let mut j = i + 1;
            while matches!(
                w(j),
                "hand" | "side" | "part" | "corner" | "half" | "edge" | "sides"
            ) {
                j += 1;
            }
            let of = w(j) == "of";
            // "right next to", "turned right": not a direction noun.
            if !(of || matches!(before, "the" | "its" | "his" | "her" | "their" | "s")) {
                return None;
            }
            let dir = if w(i) == "left" {
                Dir::Left
            } else {
                Dir::Right
            };
            Some((dir, if of { j + 1 } else { j }, of))
        }
        "above" | "atop" => Some((Dir::Above, i + 1, true)),
        "below" | "beneath" | "underneath" | "under" => Some((Dir::Below, i + 1, true)),
        "behind" => Some((Dir::Behind, i + 1, true)),
        "over" if w(i + 1) != "the" || !FRAME.contains(&w(i + 2)) => {
            Some((Dir::Above, i + 1, true))
        }
        "on" if w(i + 1) == "top" && w(i + 2) == "of" => Some((Dir::Above, i + 3, true)),
        "in" if w(i + 1) == "front" && w(i + 2) == "of" => Some((Dir::Front, i + 3, true)),
        "ahead" if w(i + 1) == "of" => Some((Dir::Front, i + 2, true)),
        "in" if w(i + 1) == "back" && w(i + 2) == "of" => Some((Dir::Behind, i + 3, true)),
        _ => None,
    }
}

/// Every relation between the two terms (or between a term and the frame) the tokens state.
pub(super) fn stated(toks: &[Tok], terms: &[Term; 2]) -> Vec<Stated> {
    let mentions: Vec<(usize, usize, usize)> = terms
        .iter()
        .enumerate()
        .flat_map(|(t, term)| term.find_all(toks).into_iter().map(move |(a, b)| (a, b, t)))
        .collect();
    let sentence = |i: usize| {
        let start = (0..i)
            .rev()
            .find(|&k| toks[k].kind == Kind::Stop)
            .map_or(0, |k| k + 1);
        let end = (i..toks.len())
            .find(|&k| toks[k].kind == Kind::Stop)
            .unwrap_or(toks.len());
        (start, end)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let Some((dir, next, of)) = phrase_at(toks, i) else {
            i += 1;
            continue;
        };
        let (s, e) = sentence(i);
        // The ground: after "of" (past an article), or the possessor before "'s right".
        let ground = if of {
            let mut g = next;
            while DETERMINERS.contains(&word(toks, g)) {
                g += 1;
            }
            match mentions.iter().find(|m| m.0 == g) {
                Some(m) => Some((m.2, m.1)),
                None if FRAME.contains(&word(toks, g)) => Some((2, g + 1)),
                None => None,
            }
        } else if i >= 2 && word(toks, i - 1) == "s" {
            mentions.iter().find(|m| m.1 == i - 1).map(|m| (m.2, i + 1))
        } else if i >= 1 && word(toks, i - 1) == "the" {
            Some((2, next))
        } else {
            None
        };
        let Some((ground, end)) = ground else {
            i += 1;
            continue;
        };
        // The figure: the nearest other term before the phrase in its sentence, else after it.
        let before = mentions
            .iter()
            .filter(|m| m.0 >= s && m.1 <= i && m.2 != ground)
            .max_by_key(|m| m.1);
        let after = mentions
            .iter()
            .filter(|m| m.0 >= end && m.1 <= e && m.2 != ground)
            .min_by_key(|m| m.0);
        if let Some(f) = before.or(after) {
            let (a, b) = (f.0.min(i), f.1.max(end));
            out.push(Stated {
                figure: f.2,
                dir,
                ground,
                range: (a, b),
            });
        }
        i = next.max(i + 1);
    }
    out
}

/// The stated relation of subject (0) to object (1), from explicit statements and, failing
/// those, from opposite positions in the frame ("the baby is on the right, the dog on the
/// left"). Each item: direction and the token ranges that state it.
pub(super) fn relations(stated: &[Stated]) -> Vec<(Dir, Vec<(usize, usize)>)> {
    let mut out: Vec<(Dir, Vec<(usize, usize)>)> = Vec::new();
    for s in stated.iter().filter(|s| s.ground != 2) {
        let dir = if s.figure == 0 {
            s.dir
        } else {
            s.dir.opposite()
        };
        out.push((dir, vec![s.range]));
    }
    if out.is_empty() {
        let frame = |t: usize| {
            stated
                .iter()
                .filter(move |s| s.ground == 2 && s.figure == t)
        };
        for a in frame(0) {
            if let Some(b) = frame(1).find(|b| b.dir == a.dir.opposite()) {
                out.push((a.dir, vec![a.range, b.range]));
            }
        }
    }
    out
}
