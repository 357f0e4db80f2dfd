//! Injected faults: what each fault behaviour (or a `fault_rate` draw) sends instead of a
//! proper answer. Each one is deterministic, so that a test can assert the client's exact
//! reaction to it; see [`Behaviour`] for the list.
//!
//! Where a fault strikes decides what the client can do about it, so it mirrors where real
//! engines fail: HTTP errors and `hang` before the request is even read (an overloaded or
//! wedged engine), broken bodies after the answer has been computed (a crash or a proxy
//! mid-answer). Mid-stream faults of a streamed answer live in [`super::sse`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::{BufMut, BytesMut};
use futures_util::StreamExt as _;
use serde_json::json;

use super::config::{Behaviour, HUGE_BODY_BYTES};
use super::server::{completion_json, compute, ApiError, Engine, Job};
use super::sse::{chunk_head, event_stream};

/// How long `reset` waits between its last token and the broken connection, so that the
/// tokens are flushed to the client first rather than dropped with the connection.
pub(super) const RESET_FLUSH: Duration = Duration::from_millis(10);

/// `huge-body` is sent in pieces this big, all sharing one buffer: the engine must not need
/// 50 MiB of memory per request to send it.
const HUGE_PIECE: usize = 64 << 10;
static FILLER: [u8; HUGE_PIECE] = [b'x'; HUGE_PIECE];

/// Says in every fault message which fault it is and whether the behaviour or the fault
/// rate put it there, so a failing test's output points at the sim config.
fn origin(engine: &Engine, fault: Behaviour) -> String {
    if engine.config.behaviour == fault {
        format!("behaviour = {fault}")
    } else {
        format!("fault = {fault}")
    }
}

/// The faults that strike before the request is validated; `None` for the others. Counts
/// the request as failed.
pub(super) async fn before_validation(engine: &Engine, fault: Behaviour) -> Option<Response> {
    let why = origin(engine, fault);
    let (status, message, kind) = match fault {
        Behaviour::Failing => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("simulated failure ({why})"),
            "server_error",
        ),
        Behaviour::Flaky => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("simulated transient failure ({why}); retrying may succeed"),
            "server_error",
        ),
        Behaviour::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("simulated overload ({why}); retrying may succeed"),
            "server_error",
        ),
        Behaviour::RateLimited | Behaviour::RateLimitedBare => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("simulated rate limit ({why})"),
            "rate_limit_error",
        ),
        Behaviour::Hang => {
            engine.count_failed();
            engine.closed().await;
            let message = format!("the simulated engine stopped while hanging ({why})");
            let e = ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message,
                kind: "server_error",
            };
            return Some(e.into_response());
        }
        _ => return None,
    };
    engine.count_failed();
    let mut response = ApiError {
        status,
        message,
        kind,
    }
    .into_response();
    if fault == Behaviour::RateLimited {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Some(response)
}

/// Whether the fault replaces the answer here, rather than striking inside a streamed one
/// ([`super::sse`]) or leaving it whole (`no-usage`, handled where usage is written).
pub(super) fn replaces_the_answer(fault: Behaviour, stream: bool) -> bool {
    match fault {
        Behaviour::WrongContentType | Behaviour::HugeBody => true,
        _ => !stream && (strikes_mid_stream(fault) || fault == Behaviour::EmptyChoices),
    }
}

/// The faults that break a streamed answer after its first tokens.
pub(super) fn strikes_mid_stream(fault: Behaviour) -> bool {
    matches!(
        fault,
        Behaviour::Reset
            | Behaviour::Stall
            | Behaviour::CutStream
            | Behaviour::ErrorEvent
            | Behaviour::BadJson
    )
}

/// A faulty answer in place of the real one, sent when the real one would have been; the
/// request counts as failed.
pub(super) async fn answer(
    engine: Arc<Engine>,
    job: Job,
    index: u64,
    fault: Behaviour,
) -> Response {
    let mut slot = compute(&engine, &job, index).await;
    slot.fail();
    let why = origin(&engine, fault);
    match fault {
        Behaviour::WrongContentType => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            format!(
                "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n<body><h1>Sign in \
                 to continue</h1><p>A login wall or proxy in front of the engine answered \
                 (simulated: {why}).</p></body></html>\n"
            ),
        )
            .into_response(),
        Behaviour::HugeBody if job.stream => {
            let mut event = BytesMut::with_capacity(HUGE_PIECE + 512);
            event.put_slice(&chunk_head(&engine, index));
            event.put_slice(b"{\"index\":0,\"delta\":{\"content\":\"");
            event.put_slice(&FILLER);
            event.put_slice(b"\"},\"finish_reason\":null}]}\n\n");
            let event = event.freeze();
            let n = HUGE_BODY_BYTES / event.len() + 1;
            let end = Bytes::from_static(b"data: [DONE]\n\n");
            let pieces = std::iter::repeat_n(event, n).chain([end]);
            event_stream(held(pieces, slot))
        }
        Behaviour::HugeBody => {
            let mut head = completion_json(&engine, &job, index);
            head["choices"][0]["message"]["content"] = json!("");
            let text = head.to_string();
            // Splits the body around the empty content string, to pour the filler in there.
            let (open, close) = text.split_at(text.find(r#""content":"""#).unwrap_or(0) + 11);
            let pieces = std::iter::once(Bytes::from(open.to_owned()))
                .chain(std::iter::repeat_n(
                    Bytes::from_static(&FILLER),
                    HUGE_BODY_BYTES / HUGE_PIECE,
                ))
                .chain([Bytes::from(close.to_owned())]);
            json_body(held(pieces, slot))
        }
        Behaviour::ErrorEvent => {
            let message = error_message(&why);
            Json(json!({"error": {"message": message, "type": "server_error", "code": 500}}))
                .into_response()
        }
        Behaviour::EmptyChoices => {
            let mut body = completion_json(&engine, &job, index);
            body["choices"] = json!([]);
            Json(body).into_response()
        }
        Behaviour::BadJson => json_body(Body::from(format!(
            r#"{{"id":"chatcmpl-sim-{index}","object":"chat.completion","choices":[{{"index":0,"message":{{"role":"assistant","content":{}}},"finish_reason":"stop"}}]}}"#,
            job.plan.content()
        ))),
        Behaviour::Reset => {
            let half = half_body(&engine, &job, index);
            let broken = futures_util::stream::once(async move { Ok(half) }).chain(
                futures_util::stream::once(async move {
                    tokio::time::sleep(RESET_FLUSH).await;
                    drop(slot);
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "simulated connection reset (reset)",
                    ))
                }),
            );
            json_body(Body::from_stream(broken))
        }
        Behaviour::Stall => {
            let half = half_body(&engine, &job, index);
            let stalled = futures_util::stream::once(async move { Ok(half) }).chain(
                futures_util::stream::once(async move {
                    engine.closed().await;
                    drop(slot);
                    Err(std::io::Error::other("the simulated engine stopped"))
                }),
            );
            json_body(Body::from_stream(stalled))
        }
        // cut-stream: half the body, ended cleanly (its length is what is sent).
        _ => json_body(half_body(&engine, &job, index)),
    }
}

/// The first half of the proper non-streaming body.
fn half_body(engine: &Engine, job: &Job, index: u64) -> Bytes {
    let whole = Bytes::from(completion_json(engine, job, index).to_string());
    whole.slice(..whole.len() / 2)
}

/// The message of `error-event`'s error, streamed or not.
fn error_message(why: &str) -> String {
    format!("simulated engine error mid-answer ({why})")
}

/// `event: error` with an OpenAI-style error object, as vLLM sends one.
pub(super) fn error_event(engine: &Engine) -> Bytes {
    let fault = Behaviour::ErrorEvent;
    let data = json!({"error": {"message": error_message(&origin(engine, fault)), "type": "server_error", "code": 500}});
    Bytes::from(format!("event: error\ndata: {data}\n\n"))
}

/// A body streamed from `pieces` that holds the batch slot until it has been sent or the
/// client has gone.
fn held(pieces: impl Iterator<Item = Bytes> + Send + 'static, slot: super::server::Slot) -> Body {
    let stream = futures_util::stream::iter(pieces).map(move |piece| {
        let _ = &slot;
        Ok::<_, std::convert::Infallible>(piece)
    });
    Body::from_stream(stream)
}

fn json_body(body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body.into()).into_response()
}
