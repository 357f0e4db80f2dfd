//! Incremental Server-Sent Events parser for streamed chat completions.
//!
//! Hand-written rather than borrowed so that it stays synchronous and pure: the HTTP layer
//! feeds it whatever chunks the network delivers, the timing code stamps events with the
//! arrival time of the chunk that completed them, and the fuzzer can drive it without a
//! runtime. It follows the WHATWG `text/event-stream` rules (any of `\n`, `\r\n`, `\r` ends a
//! line, `:` starts a comment, consecutive `data:` lines join with `\n`) and bounds memory,
//! because a misbehaving server must not be able to make the client buffer without limit.

/// Default ceiling on one event's buffered size. A chat-completion chunk is a few hundred
/// bytes; 16 MiB leaves room for anything legitimate while stopping a runaway stream.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `None` for the default `message` type so callers need not care
    /// whether a server spelled it out.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Why the parser stopped accepting input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an SSE event grew past {limit} bytes without ending; the server is not sending chat-completion chunks")]
    EventTooLarge { limit: usize },
}

/// Turns a byte stream into [`SseEvent`]s, one chunk at a time.
///
/// Once it has returned an error it is fused: every later call returns the same error and
/// buffers nothing, so a caller that keeps pushing cannot grow memory.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the current, not yet terminated line. Kept as bytes so that a chunk boundary
    /// inside a multi-byte UTF-8 character is harmless: lines are only decoded once whole.
    line: Vec<u8>,
    /// The spec's "data buffer": every data line followed by `\n`.
    data: String,
    event: Option<String>,
    /// The previous chunk ended in `\r`; a leading `\n` in the next one belongs to it.
    skip_lf: bool,
    /// No line completed yet, so a UTF-8 byte-order mark may still need stripping.
    at_start: bool,
    max_event_bytes: usize,
    failed: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser with a custom event-size ceiling (tests and fuzzers use small ones).
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            data: String::new(),
            event: None,
            skip_lf: false,
            at_start: true,
            max_event_bytes,
            failed: None,
        }
    }

    /// Feeds a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        self.push_into(chunk, &mut out)?;
        Ok(out)
    }

    /// Feeds a chunk and appends the events it completed to `out`.
    ///
    /// Events completed before an error are still appended, so a caller can act on
    /// everything the server sent before it went wrong.
    pub fn push_into(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.extend_line(&chunk[..pos])?;
            let terminator = chunk[pos];
            chunk = &chunk[pos + 1..];
            if terminator == b'\r' {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            self.process_line(out)?;
        }
        self.extend_line(chunk)
    }

    /// Ends the stream and returns an event that had data lines but no closing blank line.
    ///
    /// More lenient than the spec (which drops such an event) because a server that closes
    /// right after its last `data:` line did send that data. An unterminated final line is
    /// still dropped: it may be cut off mid-JSON.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.failed.is_some() {
            return None;
        }
        self.line.clear();
        self.skip_lf = false;
        self.take_event()
    }

    /// Bytes held for the event in progress; never more than the ceiling, whatever the input,
    /// which is what lets a fuzzer check that memory stays bounded.
    pub fn buffered_bytes(&self) -> usize {
        self.pending_bytes()
    }

    fn pending_bytes(&self) -> usize {
        self.line.len() + self.data.len() + self.event.as_ref().map_or(0, String::len)
    }

    fn fail(&mut self) -> Result<(), SseError> {
        let e = SseError::EventTooLarge {
            limit: self.max_event_bytes,
        };
        self.failed = Some(e.clone());
        self.line = Vec::new();
        self.data = String::new();
        self.event = None;
        Err(e)
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.pending_bytes().saturating_add(bytes.len()) > self.max_event_bytes {
            return self.fail();
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let line = std::mem::take(&mut self.line);
        let mut bytes = line.as_slice();
        if self.at_start {
            self.at_start = false;
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let result = self.process_field(bytes, out);
        // Hand the allocation back so steady-state parsing does not reallocate per line.
        self.line = line;
        self.line.clear();
        result
    }

    fn process_field(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            if let Some(event) = self.take_event() {
                out.push(event);
            }
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
                // Lossy decoding can grow invalid bytes threefold; re-check the bound.
                if self.pending_bytes() > self.max_event_bytes {
                    return self.fail();
                }
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            // `id` and `retry` steer browser reconnection, which a one-shot request never does.
            _ => {}
        }
        Ok(())
    }

    fn take_event(&mut self) -> Option<SseEvent> {
        let event = self
            .event
            .take()
            .filter(|e| !e.is_empty() && e != "message");
        if self.data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        Some(SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    /// Every parsing rule at once: BOM, all three line endings, comments, multi-line data,
    /// event types, fields without a space or without a colon, ignored fields, multi-byte
    /// UTF-8, an event with a type but no data (dropped), and a trailing unterminated line.
    const SAMPLE: &[u8] = b"\xEF\xBB\xBF: keep-alive comment\r\n\
data: {\"a\":\"h\xC3\xA9llo \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x91\x81\"}\r\n\
\r\n\
event: error\n\
data: line one\n\
data:line two\n\
\n\
id: 7\rretry: 100\rdata\r\r\
event: lonely\n\n\
:comment\n\
data:  two spaces\r\n\
unknown: field\r\n\
\r\n\
data: [DONE]\n\n\
data: cut off";

    fn expected() -> Vec<SseEvent> {
        vec![
            ev(None, "{\"a\":\"héllo 日本 👁\"}"),
            ev(Some("error"), "line one\nline two"),
            ev(None, ""),
            ev(None, " two spaces"),
            ev(None, "[DONE]"),
        ]
    }

    fn parse_in_pieces(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            p.push_into(piece, &mut out).unwrap();
        }
        assert_eq!(
            p.finish(),
            None,
            "the unterminated last line must be dropped"
        );
        out
    }

    #[test]
    fn whole_sample() {
        assert_eq!(parse_in_pieces(&[SAMPLE]), expected());
    }

    #[test]
    fn split_at_every_byte_position() {
        for i in 0..=SAMPLE.len() {
            let (a, b) = SAMPLE.split_at(i);
            assert_eq!(parse_in_pieces(&[a, b]), expected(), "split at {i}");
        }
    }

    #[test]
    fn split_at_every_pair_of_positions() {
        for i in 0..=SAMPLE.len() {
            for j in i..=SAMPLE.len() {
                let pieces = [&SAMPLE[..i], &SAMPLE[i..j], &SAMPLE[j..]];
                assert_eq!(parse_in_pieces(&pieces), expected(), "split at {i},{j}");
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let pieces: Vec<&[u8]> = SAMPLE.chunks(1).collect();
        assert_eq!(parse_in_pieces(&pieces), expected());
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_ending() {
        // If the `\n` after a chunk-final `\r` counted as a second line ending, the blank
        // line would dispatch the event early and split it in two.
        let out = parse_in_pieces(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(out, vec![ev(None, "a\nb")]);
    }

    #[test]
    fn lone_cr_line_endings() {
        let out = parse_in_pieces(&[b"event: x\rdata: 1\r\rdata: 2\r\r"]);
        assert_eq!(out, vec![ev(Some("x"), "1"), ev(None, "2")]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let out = parse_in_pieces(&[b"data: \xFF\xFEok\n\n"]);
        assert_eq!(out, vec![ev(None, "\u{FFFD}\u{FFFD}ok")]);
    }

    #[test]
    fn explicit_message_type_is_the_default_type() {
        let out = parse_in_pieces(&[b"event: message\ndata: x\n\nevent:\ndata: y\n\n"]);
        assert_eq!(out, vec![ev(None, "x"), ev(None, "y")]);
    }

    #[test]
    fn finish_flushes_an_event_missing_its_blank_line() {
        let mut p = SseParser::new();
        assert_eq!(p.push(b"data: {\"x\":1}\ndata: more\n").unwrap(), vec![]);
        assert_eq!(p.finish(), Some(ev(None, "{\"x\":1}\nmore")));
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn oversize_event_is_rejected_and_parser_stays_failed() {
        let mut p = SseParser::with_max_event_bytes(64);
        let mut out = Vec::new();
        p.push_into(b"data: small\n\ndata: ", &mut out).unwrap();
        assert_eq!(out, vec![ev(None, "small")]);
        let mut result = Ok(());
        for _ in 0..100 {
            result = p.push_into(b"xxxxxxxxxx", &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::EventTooLarge { limit: 64 }));
        assert!(p.line.capacity() == 0 && p.data.capacity() == 0);
        assert_eq!(p.push(b"\n\n"), Err(SseError::EventTooLarge { limit: 64 }));
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn oversize_across_many_data_lines_is_rejected() {
        let mut p = SseParser::with_max_event_bytes(64);
        let r = (0..20).try_for_each(|_| p.push(b"data: 0123456789\n").map(drop));
        assert_eq!(r, Err(SseError::EventTooLarge { limit: 64 }));
    }

    #[test]
    fn oversize_comment_line_is_rejected() {
        let mut p = SseParser::with_max_event_bytes(16);
        assert!(p.push(&[b':'; 17]).is_err());
    }

    #[test]
    fn the_limit_is_per_event_not_per_stream() {
        let mut p = SseParser::with_max_event_bytes(64);
        let mut n = 0;
        for _ in 0..1000 {
            n += p.push(b"data: 0123456789\n\n").unwrap().len();
        }
        assert_eq!(n, 1000);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A tiny xorshift stands in for the fuzzer until it exists.
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet = b"data: event\r\n:\xC3\xA9\xFF[DONE]";
        for _ in 0..2000 {
            let mut p = SseParser::with_max_event_bytes(128);
            for _ in 0..8 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let len = (s % 40) as usize;
                let chunk: Vec<u8> = (0..len)
                    .map(|k| alphabet[((s >> (k % 56)) as usize + k) % alphabet.len()])
                    .collect();
                let _ = p.push(&chunk);
            }
            let _ = p.finish();
        }
    }
}
