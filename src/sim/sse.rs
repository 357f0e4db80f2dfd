//! Server-sent events for a streamed answer, built for a thousand concurrent streams: each
//! event is one allocation (a per-request pre-serialized head, the token escaped in place),
//! token text is borrowed from the plan, and deadlines are absolute (see [`super::server`]).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use tokio::time::Instant;

use super::server::{after, sleep_until, unix_now, usage, Clock, Engine, Job, Slot};
use super::SYSTEM_FINGERPRINT;

pub(super) fn stream_response(engine: Arc<Engine>, job: Job, index: u64) -> Response {
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
    let sse = Sse {
        clock: engine.clock(index),
        engine,
        job,
        head: Bytes::from(head),
        phase: Phase::Admit,
        next_at: Instant::now(),
        slot: None,
    };
    let stream = futures_util::stream::unfold(sse, |mut sse| async move {
        let chunk = sse.step().await?;
        Some((Ok::<_, Infallible>(chunk), sse))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
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
    /// Deadline of the next token.
    next_at: Instant,
    slot: Option<Slot>,
}

impl Sse {
    async fn step(&mut self) -> Option<Bytes> {
        match self.phase {
            Phase::Admit => {
                let slot = self.engine.admit().await;
                let prefill = self.clock.prefill(&self.engine.latency, self.job.tiles);
                self.next_at = after(slot.admitted, prefill);
                self.slot = Some(slot);
                // Like vLLM, the role-only delta comes with the first token, after prefill.
                sleep_until(self.next_at).await;
                self.phase = Phase::Token(0);
                Some(self.choice_chunk(b"{\"role\":\"assistant\"}", None, "null"))
            }
            Phase::Token(i) => {
                let n = self.job.plan.completion_tokens;
                sleep_until(self.next_at).await;
                let last = i + 1 >= n;
                let finish = if last {
                    self.phase = if self.job.include_usage {
                        Phase::Usage
                    } else {
                        Phase::Done
                    };
                    match self.job.plan.finish_reason {
                        "length" => "\"length\"",
                        _ => "\"stop\"",
                    }
                } else {
                    self.next_at = after(self.next_at, self.clock.gap(i + 1));
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
                if let Some(slot) = self.slot.take() {
                    slot.complete();
                }
                Some(Bytes::from_static(b"data: [DONE]\n\n"))
            }
            Phase::End => None,
        }
    }

    /// `head {"index":0,"delta":<delta>[<json string>}],"finish_reason":<finish>}]}\n\n`.
    fn choice_chunk(&self, delta: &[u8], content: Option<&str>, finish: &str) -> Bytes {
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
}
