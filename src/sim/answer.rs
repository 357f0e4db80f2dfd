//! What the simulated engine says, token by token, and the seeded randomness behind `flaky`,
//! `fault_rate` and latency jitter.
//!
//! The token model is deliberately simple and documented, so that tests and throughput runs
//! can predict token counts exactly: a token is optional leading whitespace followed by
//! either a run of alphanumeric characters (a word or number) or one other character
//! (punctuation). "A 560x560 image." is four tokens: `A`, ` 560x560`, ` image`, `.`.

use std::ops::Range;

use super::config::Behaviour;
use crate::fixture::truth::Truth;

/// Side of the square tiles that the prompt-token estimate and `prefill_per_tile` count in
/// (Llama 3.2 Vision's tile size).
pub const TILE_SIZE: u32 = 560;
/// Tiles are capped like Llama 3.2 Vision's (at most 4 per image).
pub const MAX_TILES: u32 = 4;
/// Prompt tokens charged per image tile (Llama 3.2 Vision: 1601 per tile).
pub const TOKENS_PER_TILE: u64 = 1601;
/// The simulated context length: `max_tokens` / `min_tokens` above it are rejected, as a real
/// engine would, so that a typo cannot make the engine stream for hours.
pub const MAX_OUTPUT_TOKENS: u32 = 131_072;

/// Padding for `ignore_eos` / `min_tokens`: plain words that say where they come from.
pub const FILLER: [&str; 10] = [
    " This",
    " is",
    " simulated",
    " filler",
    " text",
    ",",
    " not",
    " model",
    " output",
    ".",
];

/// `ceil(w/560) * ceil(h/560)`, between 1 and [`MAX_TILES`].
pub fn tiles(width: u32, height: u32) -> u32 {
    let t = width.div_ceil(TILE_SIZE).max(1) as u64 * height.div_ceil(TILE_SIZE).max(1) as u64;
    t.min(MAX_TILES as u64) as u32
}

/// The rough prompt-token count reported in `usage`: whitespace-separated words of the prompt
/// plus [`TOKENS_PER_TILE`] per image tile. Not a real tokenizer; stable and cheap.
pub fn prompt_tokens(prompt: &str, tiles: u32) -> u64 {
    prompt.split_whitespace().count() as u64 + TOKENS_PER_TILE * tiles as u64
}

/// The caption for an image without ground truth (a user photo, random noise): deterministic,
/// so that snapshots of it are stable.
pub fn generic_caption(width: u32, height: u32) -> String {
    format!("A {width}x{height} image.")
}

/// The full answer for a behaviour that answers at all.
pub fn answer_text(behaviour: Behaviour, truth: Option<&Truth>, width: u32, height: u32) -> String {
    match truth {
        None => generic_caption(width, height),
        Some(t) => match behaviour {
            Behaviour::Verbose => t.verbose.clone(),
            Behaviour::Wrong => t.wrong.clone(),
            // Faults that answer at all answer tersely around their fault.
            _ => t.terse.clone(),
        },
    }
}

/// Splits `text` into tokens (see the module docs); the tokens concatenate back to `text`
/// exactly, trailing whitespace going to the last token.
pub fn tokenize(text: &str) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::with_capacity(text.len() / 4 + 1);
    let mut it = text.char_indices().peekable();
    let mut start = 0;
    loop {
        while it.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        match it.next() {
            None => {
                if start < text.len() {
                    match out.last_mut() {
                        Some(last) => last.end = text.len(),
                        None => out.push(start..text.len()),
                    }
                }
                return out;
            }
            Some((_, c)) => {
                if c.is_alphanumeric() {
                    while it.next_if(|&(_, c)| c.is_alphanumeric()).is_some() {}
                }
                let end = it.peek().map_or(text.len(), |&(i, _)| i);
                out.push(start..end);
                start = end;
            }
        }
    }
}

/// The client's say over output length, from standard and vLLM extension fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    pub max_tokens: Option<u32>,
    pub min_tokens: u32,
    /// vLLM's `ignore_eos`: keep generating (filler) until `max_tokens`, so that throughput
    /// runs can fix the output length.
    pub ignore_eos: bool,
}

/// One answer cut into the tokens that will be sent.
#[derive(Debug, Clone)]
pub struct Plan {
    answer: String,
    /// The answer's tokens that are sent (all, or the first `max_tokens`).
    answer_tokens: Vec<Range<usize>>,
    /// Tokens sent in all: answer tokens then filler.
    pub completion_tokens: usize,
    pub finish_reason: &'static str,
    pub prompt_tokens: u64,
}

impl Plan {
    pub fn new(answer: String, budget: Budget, prompt_tokens: u64) -> Self {
        let mut answer_tokens = tokenize(&answer);
        let natural = answer_tokens.len();
        let mut wanted = natural.max(budget.min_tokens as usize);
        if budget.ignore_eos {
            if let Some(max) = budget.max_tokens {
                wanted = wanted.max(max as usize);
            }
        }
        let (n, finish_reason) = match budget.max_tokens.map(|m| m as usize) {
            Some(max) if wanted > max || (budget.ignore_eos && wanted == max) => (max, "length"),
            _ => (wanted, "stop"),
        };
        answer_tokens.truncate(n);
        Self {
            answer,
            answer_tokens,
            completion_tokens: n,
            finish_reason,
            prompt_tokens,
        }
    }

    /// Token `i`; filler beyond the answer. Borrowed, so streaming allocates nothing for it.
    pub fn token(&self, i: usize) -> &str {
        match self.answer_tokens.get(i) {
            Some(r) => &self.answer[r.clone()],
            None => FILLER[(i - self.answer_tokens.len()) % FILLER.len()],
        }
    }

    /// Everything that is sent, as one string (the non-streaming `content`).
    pub fn content(&self) -> String {
        let end = self.answer_tokens.last().map_or(0, |r| r.end);
        let mut s =
            String::with_capacity(end + 8 * (self.completion_tokens - self.answer_tokens.len()));
        s.push_str(&self.answer[..end]);
        for i in self.answer_tokens.len()..self.completion_tokens {
            s.push_str(self.token(i));
        }
        s
    }
}

/// SplitMix64's finaliser: a good 64-bit mix, the core of the counter-based RNG below.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform number in `[0, 1)` for (seed, request number, draw number).
///
/// Counter-based rather than a shared sequential RNG: request `n`'s draws do not depend on
/// the order in which concurrent requests happened to arrive, so a seeded run of `flaky` fails
/// the same request numbers every time, whatever the concurrency.
pub fn unit(seed: u64, request: u64, draw: u64) -> f64 {
    let x = splitmix64(seed ^ splitmix64(request ^ splitmix64(draw.wrapping_add(0x5EED))));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// `d` scaled by a uniform factor in `[1 - jitter, 1 + jitter]`.
pub fn jittered(d: std::time::Duration, jitter: f64, u: f64) -> std::time::Duration {
    if d.is_zero() || jitter.is_nan() || jitter <= 0.0 {
        return d;
    }
    let j = jitter.min(1.0);
    let factor = (1.0 + j * (2.0 * u - 1.0)).max(0.0);
    std::time::Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<&str> {
        tokenize(s).into_iter().map(|r| &s[r]).collect()
    }

    #[test]
    fn tokens_are_words_with_leading_space_and_punctuation() {
        assert_eq!(toks("A 560x560 image."), ["A", " 560x560", " image", "."]);
        assert_eq!(toks("2"), ["2"]);
        assert_eq!(toks("  hi,  there ! "), ["  hi", ",", "  there", " ! "]);
        assert_eq!(toks("Grün: 3"), ["Grün", ":", " 3"]);
        assert!(toks("").is_empty());
        assert_eq!(toks("   "), ["   "]);
        for s in ["x y", "a\nb\tc.", "émoji 🎉 ok"] {
            assert_eq!(toks(s).concat(), s);
        }
    }

    #[test]
    fn plan_truncates_and_pads() {
        let b = |max, min, ignore_eos| Budget {
            max_tokens: max,
            min_tokens: min,
            ignore_eos,
        };
        let p = Plan::new("one two three four".into(), b(Some(2), 0, false), 0);
        assert_eq!((p.completion_tokens, p.finish_reason), (2, "length"));
        assert_eq!(p.content(), "one two");
        let p = Plan::new("one two".into(), b(Some(2), 0, false), 0);
        assert_eq!((p.completion_tokens, p.finish_reason), (2, "stop"));
        let p = Plan::new("one".into(), b(Some(5), 0, true), 0);
        assert_eq!((p.completion_tokens, p.finish_reason), (5, "length"));
        assert_eq!(p.content(), "one This is simulated filler");
        let p = Plan::new("one".into(), b(Some(50), 3, false), 0);
        assert_eq!((p.completion_tokens, p.finish_reason), (3, "stop"));
        let p = Plan::new("one".into(), b(None, 0, true), 0);
        assert_eq!((p.completion_tokens, p.finish_reason), (1, "stop"));
    }

    #[test]
    fn tiles_and_prompt_tokens() {
        assert_eq!(tiles(560, 560), 1);
        assert_eq!(tiles(561, 560), 2);
        assert_eq!(tiles(4000, 4000), 4);
        assert_eq!(tiles(0, 0), 1);
        assert_eq!(prompt_tokens("How many people?", 2), 3 + 2 * 1601);
    }

    #[test]
    fn unit_is_deterministic_and_spread() {
        assert_eq!(unit(1, 2, 3), unit(1, 2, 3));
        assert_ne!(unit(1, 2, 3), unit(2, 2, 3));
        let mean = (0..10_000).map(|i| unit(7, i, 0)).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }
}
