//! Turning one HTTP response into an [`Answer`], or into a failure that says whether
//! another attempt could succeed.

use std::time::{Duration, Instant, SystemTime};

use reqwest::header::RETRY_AFTER;
use reqwest::{Response, StatusCode};

use super::Endpoint;
use crate::backend::retry::parse_retry_after;
use crate::backend::sse::{SseEvent, SseParser};
use crate::backend::wire::{ChatCompletion, ChatCompletionChunk, WireUsage};
use crate::backend::{Answer, BackendError, Timing, Usage};

/// Server text quoted in an error is cut here: enough to read the server's complaint,
/// short enough that an HTML error page does not swamp the test output.
const QUOTE_CHARS: usize = 500;
/// A response larger than this, streamed or not, is not an answer to an eye-exam question:
/// it is a misbehaving server or a wrong `base_url`, and reading on would only grow memory
/// (a load test holds hundreds of responses at once).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// Error bodies are only quoted, so only their start is read.
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;
/// After `[DONE]`, how long to wait for the server to end the body so the connection can go
/// back to the pool; a server that keeps it open costs one connection, not the request.
const DRAIN_AFTER_DONE: Duration = Duration::from_millis(250);

/// One attempt's failure, and whether another attempt could succeed.
pub(super) struct Failure {
    pub(super) error: BackendError,
    pub(super) retry: bool,
    pub(super) retry_after: Option<Duration>,
}

impl Failure {
    pub(super) fn fatal(error: BackendError) -> Self {
        Self {
            error,
            retry: false,
            retry_after: None,
        }
    }

    fn retryable(error: BackendError) -> Self {
        Self {
            error,
            retry: true,
            retry_after: None,
        }
    }
}

fn protocol(url: &Endpoint, reason: String) -> Failure {
    Failure::fatal(BackendError::Protocol {
        url: url.shown.clone(),
        reason,
    })
}

fn stream_error(url: &Endpoint, reason: String) -> Failure {
    Failure::fatal(BackendError::Stream {
        url: url.shown.clone(),
        reason,
    })
}

/// The error and its causes, without the URL reqwest would otherwise print (it can carry
/// credentials). The causes hold the useful part, e.g. "Connection refused".
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Classifies an error that happened before any response arrived.
pub(super) fn send_failure(url: &Endpoint, error: reqwest::Error) -> Failure {
    let connect = error.is_connect();
    // A connect timeout is a failed connection and worth retrying; any other timeout can
    // only come from a caller-supplied client with its own total timeout.
    if error.is_timeout() && !connect {
        return Failure::fatal(BackendError::Timeout {
            url: url.shown.clone(),
            timeout: url.timeout,
        });
    }
    let fatal = error.is_builder() || error.is_redirect();
    let reason = describe(error);
    // Another attempt would meet the same certificate.
    if let Some(reason) = super::tls::untrusted_certificate(&reason) {
        return Failure::fatal(BackendError::Tls {
            url: url.shown.clone(),
            reason,
        });
    }
    let error = BackendError::Connect {
        url: url.shown.clone(),
        reason,
    };
    if fatal {
        Failure::fatal(error)
    } else {
        // No response came back, so another attempt loses nothing; at worst the server
        // does the work twice.
        Failure::retryable(error)
    }
}

/// Turns a non-2xx response into a failure quoting the body.
pub(super) async fn status_failure(url: &Endpoint, response: Response) -> Failure {
    let status = response.status();
    let retry_after = if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
    } else {
        None
    };
    let body = match read_body(url, response, MAX_ERROR_BODY_BYTES, true).await {
        Ok(bytes) => quote_bytes(&bytes),
        Err(failure) => format!("(body unreadable: {})", failure.error),
    };
    Failure {
        error: BackendError::Http {
            url: url.shown.clone(),
            status: status.as_u16(),
            body,
        },
        retry: matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504),
        retry_after,
    }
}

/// An HTML page is never an API answer: it is a proxy's error page, a login wall or a web UI
/// at the wrong `base_url`. Other unexpected types are parsed leniently, because servers
/// label JSON and SSE carelessly (`text/plain` is common) and the parse settles it.
pub(super) fn is_html(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("text/html")
        || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

/// A 2xx answer of the wrong content type, named, with the start of the page quoted.
pub(super) async fn wrong_content_type(
    url: &Endpoint,
    response: Response,
    content_type: &str,
) -> Failure {
    let body = match read_body(url, response, MAX_ERROR_BODY_BYTES, true).await {
        Ok(bytes) => quote_bytes(&bytes),
        Err(failure) => format!("(body unreadable: {})", failure.error),
    };
    protocol(
        url,
        format!(
            "expected JSON or an SSE stream, got Content-Type `{content_type}` (a proxy, login page or web UI answered, not the model server): {body}"
        ),
    )
}

/// Reads a body of at most `cap` bytes; a longer one is cut (`truncate`, for bodies that are
/// only quoted) or rejected.
async fn read_body(
    url: &Endpoint,
    mut response: Response,
    cap: usize,
    truncate: bool,
) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| body_failure(url, e, false))?
    {
        if body.len() + chunk.len() > cap {
            if truncate {
                body.extend_from_slice(&chunk[..cap - body.len()]);
                break;
            }
            return Err(protocol(url, too_large(cap)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large(cap: usize) -> String {
    format!(
        "the response exceeds {} MiB, far more than any chat answer; stopped reading (is base_url the chat endpoint of a model server?)",
        cap >> 20
    )
}

/// Classifies an error while reading a body. Before any content has been delivered, a
/// broken connection is retried like a failed one; after, the partial answer would be
/// thrown away and the retry measured as a different request, so it is reported.
fn body_failure(url: &Endpoint, error: reqwest::Error, content_started: bool) -> Failure {
    if error.is_timeout() {
        return Failure::fatal(BackendError::Timeout {
            url: url.shown.clone(),
            timeout: url.timeout,
        });
    }
    let error = BackendError::Stream {
        url: url.shown.clone(),
        reason: format!("reading the response failed: {}", describe(error)),
    };
    if content_started {
        Failure::fatal(error)
    } else {
        Failure::retryable(error)
    }
}

pub(super) async fn read_completion(
    url: &Endpoint,
    response: Response,
    start: Instant,
) -> Result<Answer, Failure> {
    let body = read_body(url, response, MAX_RESPONSE_BYTES, false).await?;
    let e2e = start.elapsed();
    let completion: ChatCompletion = serde_json::from_slice(&body)
        .map_err(|e| protocol(url, format!("invalid JSON ({e}): {}", quote_bytes(&body))))?;
    if let (Some(error), true) = (&completion.error, completion.choices.is_empty()) {
        return Err(protocol(
            url,
            format!(
                "the server sent an error instead of an answer: {}",
                message_of(error)
            ),
        ));
    }
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(protocol(
            url,
            format!("no choices in the response: {}", quote_bytes(&body)),
        ));
    };
    Ok(Answer {
        text: choice.message.and_then(|m| m.content).unwrap_or_default(),
        model: completion.model.unwrap_or_default(),
        finish_reason: choice.finish_reason.filter(|r| !r.is_empty()),
        usage: completion.usage.and_then(map_usage),
        timing: Timing {
            ttft: None,
            e2e,
            itl: Vec::new(),
            attempts: 0,
        },
    })
}

/// The model ids of a `GET /models` answer.
pub(super) async fn read_model_ids(
    url: &Endpoint,
    response: Response,
) -> Result<Vec<String>, Failure> {
    let body = read_body(url, response, MAX_RESPONSE_BYTES, false).await?;
    // Parsed loosely: servers disagree on `object` and `owned_by`, and only ids matter.
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| protocol(url, format!("invalid JSON ({e}): {}", quote_bytes(&body))))?;
    let data = value
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or_else(|| protocol(url, format!("no `data` list: {}", quote_bytes(&body))))?;
    Ok(data
        .iter()
        .filter_map(|m| m.get("id")?.as_str().map(str::to_owned))
        .collect())
}

/// An all-zero `usage` is how some servers say "not counted"; treating it as real counts
/// would report zero-token throughput.
fn map_usage(u: WireUsage) -> Option<Usage> {
    (u.prompt_tokens != 0 || u.completion_tokens != 0 || u.total_tokens != 0).then_some(Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
    })
}

/// Accumulates a streamed answer and its timings.
struct StreamState {
    start: Instant,
    text: String,
    model: String,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    ttft: Option<Duration>,
    last_content: Option<Instant>,
    last_choices: Option<Instant>,
    itl: Vec<Duration>,
}

enum Flow {
    Continue,
    Done,
}

impl StreamState {
    fn on_event(&mut self, url: &Endpoint, event: SseEvent, at: Instant) -> Result<Flow, Failure> {
        match event.event.as_deref() {
            None => {}
            Some("error") => {
                return Err(stream_error(
                    url,
                    format!("the server sent an error: {}", server_message(&event.data)),
                ))
            }
            // Keep-alives and extensions under other event names carry no chunk.
            Some(_) => return Ok(Flow::Continue),
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(Flow::Done);
        }
        if data.is_empty() {
            return Ok(Flow::Continue);
        }
        let chunk: ChatCompletionChunk = serde_json::from_str(data).map_err(|e| {
            protocol(
                url,
                format!("invalid JSON in an SSE event ({e}): {}", quote(data)),
            )
        })?;
        if let Some(error) = &chunk.error {
            return Err(stream_error(
                url,
                format!("the server sent an error: {}", message_of(error)),
            ));
        }
        if self.model.is_empty() {
            if let Some(model) = chunk.model {
                self.model = model.0.into_owned();
            }
        }
        if let Some(usage) = chunk.usage.and_then(map_usage) {
            self.usage = Some(usage);
        }
        if chunk.choices.is_empty() {
            return Ok(Flow::Continue);
        }
        self.last_choices = Some(at);
        let mut content = false;
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                self.text.push_str(&text);
                content = true;
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason.0.into_owned());
            }
        }
        if content {
            match self.last_content {
                None => self.ttft = Some(at - self.start),
                Some(previous) => self.itl.push(at - previous),
            }
            self.last_content = Some(at);
        }
        Ok(Flow::Continue)
    }

    /// The answer of a stream that reached `[DONE]`. One that never carried a choice has no
    /// answer in it, just as a non-streaming body with empty `choices` has none.
    fn finished(self, url: &Endpoint, end: Instant) -> Result<Answer, Failure> {
        if self.last_choices.is_none() {
            return Err(protocol(
                url,
                "no choices in the stream: it reached [DONE] without a single choice".into(),
            ));
        }
        Ok(self.into_answer(end))
    }

    fn into_answer(self, end: Instant) -> Answer {
        Answer {
            text: self.text,
            model: self.model,
            finish_reason: self.finish_reason,
            usage: self.usage,
            timing: Timing {
                ttft: self.ttft,
                e2e: self.last_choices.unwrap_or(end) - self.start,
                itl: self.itl,
                attempts: 0,
            },
        }
    }
}

pub(super) async fn read_stream(
    url: &Endpoint,
    mut response: Response,
    start: Instant,
) -> Result<Answer, Failure> {
    let mut parser = SseParser::new();
    let mut state = StreamState {
        start,
        text: String::new(),
        model: String::new(),
        finish_reason: None,
        usage: None,
        ttft: None,
        last_content: None,
        last_choices: None,
        itl: Vec::new(),
    };
    let mut events = Vec::new();
    let mut received = 0usize;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => return Err(body_failure(url, e, state.ttft.is_some())),
        };
        received += chunk.len();
        if received > MAX_RESPONSE_BYTES {
            return Err(protocol(url, too_large(MAX_RESPONSE_BYTES)));
        }
        // Every event in one network chunk arrived at the same moment.
        let at = Instant::now();
        let parsed = parser.push_into(&chunk, &mut events);
        for event in events.drain(..) {
            if let Flow::Done = state.on_event(url, event, at)? {
                let end = Instant::now();
                drain(response).await;
                return state.finished(url, end);
            }
        }
        parsed.map_err(|e| protocol(url, e.to_string()))?;
    }
    let end = Instant::now();
    if let Some(event) = parser.finish() {
        if let Flow::Done = state.on_event(url, event, end)? {
            return state.finished(url, end);
        }
    }
    // `transformers serve` closes after the last chunk without `[DONE]`; a finish_reason
    // shows the answer is complete all the same.
    if state.finish_reason.is_some() {
        return Ok(state.into_answer(end));
    }
    Err(stream_error(
        url,
        format!(
            "the stream ended before [DONE]/finish_reason after {} characters of text",
            state.text.chars().count()
        ),
    ))
}

/// Reads what is left of a finished stream so the connection can be reused.
async fn drain(mut response: Response) {
    let _ = tokio::time::timeout(DRAIN_AFTER_DONE, async {
        let mut left = MAX_ERROR_BODY_BYTES;
        while let Ok(Some(chunk)) = response.chunk().await {
            left = left.saturating_sub(chunk.len());
            if left == 0 {
                break;
            }
        }
    })
    .await;
}

/// The human-readable part of an error event's data, which is JSON in every server seen so
/// far but is quoted raw otherwise.
fn server_message(data: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(data) {
        Ok(value) => message_of(&value),
        Err(_) => quote(data),
    }
}

/// Digs the message out of `{"error": {"message": ..}}`, `{"message": ..}`, `{"error": ".."}`
/// and similar shapes servers use.
fn message_of(value: &serde_json::Value) -> String {
    let mut v = value;
    for _ in 0..4 {
        match v {
            serde_json::Value::String(s) => return quote(s),
            serde_json::Value::Object(map) => {
                if let Some(next) = map
                    .get("error")
                    .or_else(|| map.get("message"))
                    .or_else(|| map.get("detail"))
                {
                    v = next;
                    continue;
                }
                break;
            }
            _ => break,
        }
    }
    quote(&value.to_string())
}

fn quote_bytes(bytes: &[u8]) -> String {
    quote(&String::from_utf8_lossy(bytes))
}

/// Server text cut to [`QUOTE_CHARS`] characters.
fn quote(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}… ({} bytes in all)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_cuts_on_char_boundaries() {
        let long = "é".repeat(QUOTE_CHARS + 10);
        let q = quote(&long);
        assert!(q.starts_with(&"é".repeat(QUOTE_CHARS)));
        assert!(q.ends_with(&format!("… ({} bytes in all)", long.len())));
        assert_eq!(quote(" short "), "short");
    }

    #[test]
    fn server_messages_in_the_usual_shapes() {
        assert_eq!(
            server_message(r#"{"error":{"message":"boom","type":"x"}}"#),
            "boom"
        );
        assert_eq!(
            server_message(r#"{"object":"error","message":"bad"}"#),
            "bad"
        );
        assert_eq!(server_message(r#"{"error":"plain"}"#), "plain");
        assert_eq!(server_message(r#"{"detail":"nope"}"#), "nope");
        assert_eq!(server_message(r#"{"code":5}"#), r#"{"code":5}"#);
        assert_eq!(server_message("not json"), "not json");
    }

    #[test]
    fn all_zero_usage_means_not_counted() {
        assert_eq!(map_usage(WireUsage::default()), None);
        let u = WireUsage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
        };
        assert_eq!(
            map_usage(u),
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4
            })
        );
    }
}
