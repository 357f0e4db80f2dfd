//! Numbers in an answer, however they are spelled.
//!
//! Models write the same count as "2", "2.0", "two", "Two people" or "the 2nd"; a phone number
//! as "0131 555 6363"; a sum as "twenty-nine + thirty-six = sixty-five". Every one of those
//! spellings must count, while "12" must not count as 2 and "2, 3" must stay two numbers.

use super::text::is_word_char;

/// A number found in the answer, with its raw byte span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct FoundNumber {
    pub value: f64,
    pub span: (usize, usize),
}

/// All numbers in `text`, digits and English number words, in order of appearance.
pub(super) fn extract_numbers(text: &str) -> Vec<FoundNumber> {
    let mut found = digit_numbers(text);
    found.extend(word_numbers(text));
    found.sort_by_key(|n| n.span.0);
    found
}

/// Digit numbers: "42", "+2", "-3", "2.5", "1,000" (comma groups of exactly three digits),
/// "0131" (leading zeros), and digits glued to letters ("2nd", "H2O").
fn digit_numbers(text: &str) -> Vec<FoundNumber> {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !digit(i) {
            i += 1;
            continue;
        }
        let start = i;
        while digit(i) {
            i += 1;
        }
        if i - start <= 3 {
            while b.get(i) == Some(&b',') && (1..=3).all(|k| digit(i + k)) && !digit(i + 4) {
                i += 4;
            }
        }
        if b.get(i) == Some(&b'.') && digit(i + 1) {
            i += 1;
            while digit(i) {
                i += 1;
            }
        }
        let (sign_start, negative) = sign_before(text, start);
        let plain: String = text[start..i].chars().filter(|&c| c != ',').collect();
        if let Ok(v) = plain.parse::<f64>() {
            let value = if negative { -v } else { v };
            found.push(FoundNumber {
                value,
                span: (sign_start, i),
            });
        }
    }
    found
}

/// A sign directly before the digits, unless it is glued to a preceding word or number, where
/// it is a hyphen or an operator ("0131-555-6363", "29+36").
fn sign_before(text: &str, start: usize) -> (usize, bool) {
    let before = &text[..start];
    let negative = match before.chars().next_back() {
        Some('-' | '\u{2212}') => true,
        Some('+') => false,
        _ => return (start, false),
    };
    let sign_start = start - before.chars().next_back().map_or(0, char::len_utf8);
    if before[..sign_start]
        .chars()
        .next_back()
        .is_some_and(is_word_char)
    {
        return (start, false);
    }
    (sign_start, negative)
}

#[derive(Debug)]
struct Token {
    word: String,
    span: (usize, usize),
    /// Separated from the previous token only by spaces or hyphens, so it can continue a
    /// number ("twenty-nine", "one hundred"); a comma or a digit between them ends it.
    joins_prev: bool,
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut start = None;
    let mut prev_end = 0;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (start, c.is_alphabetic()) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                let gap = &text[prev_end..s];
                let joins_prev = !out.is_empty()
                    && gap
                        .chars()
                        .all(|g| g.is_whitespace() || matches!(g, '-' | '\u{2010}'));
                out.push(Token {
                    word: text[s..i].to_lowercase(),
                    span: (s, i),
                    joins_prev,
                });
                prev_end = i;
                start = None;
            }
            _ => {}
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Word {
    Unit(u64),
    Teen(u64),
    Tens(u64),
    Hundred,
    Scale(u64),
    Dozen,
    And,
}

fn classify(word: &str) -> Option<Word> {
    const SMALL: &str = "zero one two three four five six seven eight nine ten eleven twelve \
        thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty \
        sixty seventy eighty ninety";
    if let Some(i) = SMALL.split(' ').position(|w| w == word) {
        let i = i as u64;
        return Some(match i {
            0..=9 => Word::Unit(i),
            10..=19 => Word::Teen(i),
            _ => Word::Tens(10 * (i - 18)),
        });
    }
    Some(match word {
        "hundred" => Word::Hundred,
        "thousand" => Word::Scale(1_000),
        "million" => Word::Scale(1_000_000),
        "billion" => Word::Scale(1_000_000_000),
        "dozen" => Word::Dozen,
        "and" => Word::And,
        _ => return None,
    })
}

/// Numbers written in English words. "one two" is two numbers, not twelve or three. The
/// pronoun in "the one on the left" also reads as 1: for counts of one, add a `none` keyword
/// for the likely wrong counts rather than relying on `number = 1` alone.
fn word_numbers(text: &str) -> Vec<FoundNumber> {
    let toks = tokens(text);
    let mut found = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match parse_words(&toks, i) {
            Some((value, end)) => {
                let span = (toks[i].span.0, toks[end - 1].span.1);
                found.push(FoundNumber {
                    value: value as f64,
                    span,
                });
                i = end;
            }
            None => i += 1,
        }
    }
    found
}

/// What the last consumed word was; decides which words may follow within one number.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Prev {
    Start,
    Unit,
    Teen,
    Tens,
    Hundred,
    Scale,
}

/// Parses the longest number starting at token `i`: its value and the index after it.
fn parse_words(toks: &[Token], i: usize) -> Option<(u64, usize)> {
    let next_word = |j: usize| {
        toks.get(j)
            .filter(|t| t.joins_prev)
            .and_then(|t| classify(&t.word))
    };
    let (mut total, mut current, mut last_scale) = (0u64, 0u64, u64::MAX);
    let mut prev = Prev::Start;
    let mut j = i;
    // The article counts as one only before a multiplier: "a hundred", "a dozen", not "a cat".
    if matches!(toks[i].word.as_str(), "a" | "an") {
        if !matches!(
            next_word(i + 1),
            Some(Word::Hundred | Word::Scale(_) | Word::Dozen)
        ) {
            return None;
        }
        (current, prev, j) = (1, Prev::Unit, i + 1);
    }
    while let Some(tok) = toks.get(j) {
        if j > i && !tok.joins_prev {
            break;
        }
        let Some(word) = classify(&tok.word) else {
            break;
        };
        use Prev::*;
        match (word, prev) {
            (Word::Unit(0), Start) => {
                prev = Unit;
                j += 1;
                break;
            }
            (Word::Unit(u), Start | Tens | Hundred | Scale) if u > 0 => {
                current += u;
                prev = Unit;
            }
            (Word::Teen(t), Start | Hundred | Scale) => {
                current += t;
                prev = Teen;
            }
            (Word::Tens(t), Start | Hundred | Scale) => {
                current += t;
                prev = Tens;
            }
            (Word::Hundred, Unit | Teen | Tens) if current < 100 => {
                current *= 100;
                prev = Hundred;
            }
            (Word::Scale(s), Unit | Teen | Tens | Hundred) if s < last_scale => {
                total += current * s;
                (current, last_scale, prev) = (0, s, Scale);
            }
            (Word::Dozen, Unit | Teen | Tens) => {
                current *= 12;
                j += 1;
                break;
            }
            (Word::And, Hundred | Scale)
                if matches!(
                    next_word(j + 1),
                    Some(Word::Unit(1..) | Word::Teen(_) | Word::Tens(_))
                ) => {}
            _ => break,
        }
        j += 1;
    }
    (prev != Prev::Start).then_some((total + current, j))
}

/// Whether `word` (lowercase) is an English number word such as "two" or "dozen".
pub(super) fn is_number_word(word: &str) -> bool {
    classify(word).is_some_and(|w| w != Word::And)
}
