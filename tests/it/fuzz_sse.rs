//! Property-based fuzzing of the SSE parser (proptest stands in for cargo-fuzz, which needs a
//! nightly toolchain): whatever bytes a server sends, cut wherever the network cuts them, the
//! parser must not panic, must give the same events as a plain reading of the WHATWG rules
//! over the whole stream, and must never hold more than its per-event ceiling.
//!
//! `cargo test --test it -- fuzz_sse::` runs a few hundred cases; `PROPTEST_CASES=N` runs more
//! (docs/design.md: "Fuzzing" and "Fuzz runs" have the long runs and their results).

use eyetest::backend::sse::{SseError, SseEvent, SseParser};
use proptest::prelude::*;
use proptest::sample::Index;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    }
}

/// Pieces a stream is made of: field names, every line ending, comments, multi-byte and
/// invalid UTF-8, the byte-order mark, and raw bytes for anything the grammar misses.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => Just(b"data:".to_vec()),
        4 => Just(b"data: ".to_vec()),
        2 => Just(b"event:".to_vec()),
        2 => Just(b"event: error".to_vec()),
        1 => Just(b"event: message".to_vec()),
        1 => Just(b"id: 7".to_vec()),
        1 => Just(b"retry: 10".to_vec()),
        2 => Just(b":".to_vec()),
        2 => Just(b" ".to_vec()),
        6 => Just(b"\n".to_vec()),
        4 => Just(b"\r".to_vec()),
        4 => Just(b"\r\n".to_vec()),
        3 => Just(b"\n\n".to_vec()),
        2 => Just(b"[DONE]".to_vec()),
        2 => Just(br#"{"choices":[{"delta":{"content":"hi"}}]}"#.to_vec()),
        1 => Just(b"\xEF\xBB\xBF".to_vec()),
        1 => Just("é日👁".as_bytes().to_vec()),
        1 => Just(b"\xFF\xC3".to_vec()),
        3 => any::<u8>().prop_map(|b| vec![b]),
        1 => prop::collection::vec(any::<u8>(), 0..16),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(token(), 0..64).prop_map(|t| t.concat())
}

/// Cut points, as fractions of the stream so they stay valid however it shrinks.
fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..12)
}

fn split<'a>(input: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
    at.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in at {
        pieces.push(&input[start..cut]);
        start = cut;
    }
    pieces.push(&input[start..]);
    pieces
}

/// What a parser made of a stream: its events, in order, and whether it gave up.
#[derive(Debug, PartialEq)]
struct Parsed {
    events: Vec<SseEvent>,
    error: Option<SseError>,
}

/// Feeds the pieces one by one, checking the memory bound after every push.
fn parse(pieces: &[&[u8]], max: usize) -> Parsed {
    let mut parser = SseParser::with_max_event_bytes(max);
    let mut events = Vec::new();
    let mut error = None;
    for piece in pieces {
        let result = parser.push_into(piece, &mut events);
        assert!(
            parser.buffered_bytes() <= max,
            "{} bytes buffered over a ceiling of {max}",
            parser.buffered_bytes()
        );
        if let Err(e) = result {
            error = Some(e);
            break;
        }
    }
    if error.is_none() {
        events.extend(parser.finish());
    }
    Parsed { events, error }
}

/// The WHATWG `text/event-stream` rules read straight off the spec, over the whole stream at
/// once, plus eyetest's one leniency: data left without a closing blank line is dispatched.
fn reference(input: &[u8]) -> Vec<SseEvent> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut lines = Vec::new();
    let (mut i, mut start) = (0, 0);
    while i < input.len() {
        match input[i] {
            b'\n' => {
                lines.push(&input[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&input[start..i]);
                if input.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let (mut out, mut data, mut event) = (Vec::new(), String::new(), String::new());
    let dispatch = |data: &mut String, event: &mut String, out: &mut Vec<SseEvent>| {
        let kind = std::mem::take(event);
        if data.is_empty() {
            return;
        }
        data.pop();
        out.push(SseEvent {
            event: (!kind.is_empty() && kind != "message").then_some(kind),
            data: std::mem::take(data),
        });
    };
    for line in lines {
        if line.is_empty() {
            dispatch(&mut data, &mut event, &mut out);
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                data.push_str(&String::from_utf8_lossy(value));
                data.push('\n');
            }
            b"event" => event = String::from_utf8_lossy(value).into_owned(),
            _ => {}
        }
    }
    dispatch(&mut data, &mut event, &mut out);
    out
}

proptest! {
    #![proptest_config(config())]

    /// With room for any event, chunked parsing gives exactly the reference events.
    #[test]
    fn chunked_parsing_matches_the_spec(input in stream(), cuts in cuts()) {
        let max = input.len() * 3 + 16;
        let whole = parse(&[&input], max);
        prop_assert_eq!(&whole.error, &None);
        prop_assert_eq!(&whole.events, &reference(&input));
        prop_assert_eq!(parse(&split(&input, &cuts), max), whole);
    }

    /// With a small ceiling, where the parser gives up does not depend on the chunking, and
    /// it never buffers past the ceiling (checked inside `parse`).
    #[test]
    fn the_ceiling_is_split_invariant(input in stream(), cuts in cuts(), max in 0usize..96) {
        let whole = parse(&[&input], max);
        for event in &whole.events {
            prop_assert!(event.data.len() <= max);
        }
        prop_assert_eq!(parse(&split(&input, &cuts), max), whole);
    }

    /// Raw bytes with no grammar behind them: no panic, bounded, split-invariant.
    #[test]
    fn arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..512), cuts in cuts()) {
        let whole = parse(&[&input], 64);
        prop_assert_eq!(parse(&split(&input, &cuts), 64), whole);
    }
}

/// Byte at a time is the harshest chunking; a fixed stream keeps it in every run.
#[test]
fn one_byte_at_a_time_matches_the_reference() {
    let input = b"\xEF\xBB\xBFdata: a\r\n\r\nevent: x\rdata:b\r\rdata\n\n: c\ndata: d".to_vec();
    let pieces: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(parse(&pieces, 1 << 20).events, reference(&input));
}
