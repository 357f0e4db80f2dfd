//! Server-sent events for a streamed answer, built for a thousand concurrent streams: each
//! event is one allocation (a per-request pre-serialized head, the token escaped in place),
//! token text is borrowed from the plan; each token is due a gap after the previous one was
//! sent (see [`super::pacing`]).
//! Mid-stream faults ([`super::fault`]) strike from inside the same state machine, so that
//! they keep the latency model's timing.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use tokio::time::Instant;

use super::config::{Behaviour, FAULT_AFTER_TOKENS};
use super::fault;
use super::pacing::{after, sleep_until, Clock};
use super::server::{unix_now, usage, Engine, Job, Slot};
use super::SYSTEM_FINGERPRINT;

/// `data: {"id":..,"object":..,"created":..,"model":..,"system_fingerprint":..,"choices":[`,
/// the part every chunk of one answer shares.
pub(super) fn chunk_head(engine: &Engine, index: u64) -> Bytes {
    let mut head = String::with_capacity(160 + engine.model_json.len());
    head.push_str("data: {\"id\":\"chatcmpl-sim-");
    head.push_str(&index.to_string());
    head.push_str("\",\"object\":\"chat.completion.chunk\",\"created\":");
    head.push_str(&unix_now().to_string());
    head.push_str(",\"model\":");
    head.push_str(&engine.model_json);
    head.push_str(",\"system_fingerprint\":\"");
    head.push_str(SYSTEM_FINGERPRINT);
    head.push_str("\",\"choices\":[");
    Bytes::from(head)
}

/// A streamed answer; `fault`, if any, is one of the mid-stream ones or `empty-choices` or
/// `no-usage` (the others never get here).
pub(super) fn stream_response(
    engine: Arc<Engine>,
    job: Job,
    index: u64,
    fault: Option<Behaviour>,
) -> Response {
    let n = job.plan.completion_tokens;
    let sse = Sse {
        clock: engine.clock(index),
        head: chunk_head(&engine, index),
        engine,
        job,
        phase: Phase::Admit,
        next_at: Instant::now(),
        last_sent: None,
        slot: None,
        fault,
        strike_at: FAULT_AFTER_TOKENS.min(n.saturating_sub(1)),
    };
    let stream = futures_util::stream::unfold(sse, |mut sse| async move {
        let chunk = sse.step().await?;
        Some((chunk, sse))
    });
    event_stream(Body::from_stream(stream))
}

pub(super) fn event_stream(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

enum Phase {
    Admit,
    Token(usize),
    Usage,
    Done,
    End,
}

/// One streamed answer, advanced one event per poll.
struct Sse {
    engine: Arc<Engine>,
    clock: Clock,
    job: Job,
    head: Bytes,
    phase: Phase,
    /// Deadline of the next token: the previous one's send time plus its gap.
    next_at: Instant,
    /// When the previous token went out, for the engine-side ITL.
    last_sent: Option<Instant>,
    slot: Option<Slot>,
    fault: Option<Behaviour>,
    /// The token a mid-stream fault replaces: never the last, which carries finish_reason.
    strike_at: usize,
}

impl Sse {
    async fn step(&mut self) -> Option<std::io::Result<Bytes>> {
        if let Phase::Token(i) = self.phase {
            if i == self.strike_at && self.fault.is_some_and(fault::strikes_mid_stream) {
                return self.strike(i).await;
            }
        }
        self.next().await.map(Ok)
    }

    /// The mid-stream fault, at token `i`'s deadline; the stream ends with it.
    async fn strike(&mut self, i: usize) -> Option<std::io::Result<Bytes>> {
        sleep_until(self.next_at).await;
        self.phase = Phase::End;
        if let Some(slot) = &mut self.slot {
            slot.fail();
        }
        match self.fault? {
            Behaviour::Reset => {
                // Lets the server flush the tokens already written: an error returned in the
                // same poll would drop them with the connection.
                tokio::time::sleep(fault::RESET_FLUSH).await;
                Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated connection reset (reset)",
                )))
            }
            Behaviour::Stall => {
                self.engine.closed().await;
                None
            }
            Behaviour::ErrorEvent => Some(Ok(fault::error_event(&self.engine))),
            Behaviour::BadJson => {
                let token = self.job.plan.token(i).as_bytes();
                Some(Ok(self.raw_chunk(token)))
            }
            // cut-stream: a clean end, without finish_reason or [DONE].
            _ => None,
        }
    }

    async fn next(&mut self) -> Option<Bytes> {
        match self.phase {
            Phase::Admit => {
                let slot = self.engine.admit(self.job.arrival).await;
                let prefill = self.clock.prefill(&self.engine.latency, self.job.tiles);
                self.next_at = after(slot.start, prefill);
                self.slot = Some(slot);
                // Like vLLM, the role-only delta comes with the first token, after prefill.
                sleep_until(self.next_at).await;
                self.phase = Phase::Token(0);
                Some(self.choice_chunk(b"{\"role\":\"assistant\"}", None, "null"))
            }
            Phase::Token(i) => {
                let n = self.job.plan.completion_tokens;
                sleep_until(self.next_at).await;
                if i == 0 {
                    self.engine.count_tokens(self.job.plan.prompt_tokens, 0);
                }
                if n > 0 {
                    self.engine.count_tokens(0, 1);
                    let now = Instant::now();
                    let since = match self.last_sent {
                        None => now.saturating_duration_since(self.job.arrival),
                        Some(prev) => now.saturating_duration_since(prev),
                    };
                    self.engine.time_token(self.last_sent.is_none(), since);
                    self.last_sent = Some(now);
                }
                let last = i + 1 >= n;
                let finish = if last {
                    let usage = self.fault != Some(Behaviour::NoUsage);
                    self.phase = if self.job.include_usage && usage {
                        Phase::Usage
                    } else {
                        Phase::Done
                    };
                    match self.job.plan.finish_reason {
                        "length" => "\"length\"",
                        _ => "\"stop\"",
                    }
                } else {
                    // From now, the moment this token goes out, not from its deadline: a late
                    // token delays the next instead of letting it out right behind.
                    self.next_at = after(Instant::now(), self.clock.gap(i + 1));
                    self.phase = Phase::Token(i + 1);
                    "null"
                };
                if n == 0 {
                    return Some(self.choice_chunk(b"{}", None, finish));
                }
                let token = self.job.plan.token(i);
                Some(self.choice_chunk(b"{\"content\":", Some(token), finish))
            }
            Phase::Usage => {
                self.phase = Phase::Done;
                let u = usage(&self.job.plan).to_string();
                let mut b = BytesMut::with_capacity(self.head.len() + u.len() + 16);
                b.put_slice(&self.head);
                b.put_slice(b"],\"usage\":");
                b.put_slice(u.as_bytes());
                b.put_slice(b"}\n\n");
                Some(b.freeze())
            }
            Phase::Done => {
                self.phase = Phase::End;
                if let Some(mut slot) = self.slot.take() {
                    if self.fault == Some(Behaviour::EmptyChoices) {
                        slot.fail();
                    } else {
                        slot.complete();
                    }
                }
                Some(Bytes::from_static(b"data: [DONE]\n\n"))
            }
            Phase::End => None,
        }
    }

    /// `head {"index":0,"delta":<delta>[<json string>}],"finish_reason":<finish>}]}\n\n`.
    /// With `empty-choices`, `head ]}\n\n`: the chunk with its one choice left out.
    fn choice_chunk(&self, delta: &[u8], content: Option<&str>, finish: &str) -> Bytes {
        if self.fault == Some(Behaviour::EmptyChoices) {
            let mut b = BytesMut::with_capacity(self.head.len() + 4);
            b.put_slice(&self.head);
            b.put_slice(b"]}\n\n");
            return b.freeze();
        }
        let extra = content.map_or(0, |c| c.len() + 8);
        let mut b = BytesMut::with_capacity(self.head.len() + delta.len() + extra + 64);
        b.put_slice(&self.head);
        b.put_slice(b"{\"index\":0,\"delta\":");
        b.put_slice(delta);
        if let Some(c) = content {
            // Writing into a BytesMut cannot fail.
            let _ = serde_json::to_writer((&mut b).writer(), c);
            b.put_slice(b"}");
        }
        b.put_slice(b",\"finish_reason\":");
        b.put_slice(finish.as_bytes());
        b.put_slice(b"}]}\n\n");
        b.freeze()
    }

    /// A content chunk whose token is written without JSON quoting: `bad-json`'s data line.
    fn raw_chunk(&self, token: &[u8]) -> Bytes {
        let mut b = BytesMut::with_capacity(self.head.len() + token.len() + 64);
        b.put_slice(&self.head);
        b.put_slice(b"{\"index\":0,\"delta\":{\"content\":");
        b.put_slice(token);
        b.put_slice(b"},\"finish_reason\":null}]}\n\n");
        b.freeze()
    }
}
