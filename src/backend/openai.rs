//! Client for any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, TGI, llama.cpp,
//! Ollama, LM Studio, `transformers serve`, OpenAI itself).
//!
//! It is lenient about what servers send (see [`super::wire`]) but strict about what it
//! reports: every failure becomes a [`BackendError`] that names the endpoint and the cause,
//! with the API key and URL credentials scrubbed out, because error messages end up in test
//! output, reports and CI logs.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;

mod redact;
mod response;
mod tls;

pub use self::response::MAX_RESPONSE_BYTES;
pub use self::tls::{http_client_with_ca, load_ca_file, CaError};

use self::redact::{scrub_error, scrub_text, shown_url, strip_userinfo_text, urlencoding_decode};
use self::response::{
    is_html, read_completion, read_model_ids, read_stream, send_failure, status_failure,
    wrong_content_type, Failure,
};
use super::retry::backoff_delay;
use super::wire::ChatCompletionRequest;
use super::{Answer, BackendError, ChatRequest};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_RETRIES: u32 = 3;
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);

/// A credential that must never be printed.
///
/// `Debug` and `Display` both print `***`, so a `{:?}` of a config, a client or an error can
/// be logged without thought; [`Secret::expose`] is the single, greppable way out.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where and how to reach one endpoint.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// Up to and including the API version, e.g. `http://127.0.0.1:8000/v1`; a trailing slash
    /// is fine. `/chat/completions` and `/models` are appended.
    pub base_url: String,
    /// Sent as `Authorization: Bearer`; the caller reads it from the environment.
    pub api_key: Option<Secret>,
    /// Budget for one attempt, from sending to the end of the body. A timed-out attempt is
    /// not retried: it already spent the whole budget.
    pub timeout: Duration,
    /// reqwest applies connect timeouts per `Client`, not per request, so this takes effect
    /// only through [`http_client_for`]; a shared client keeps the one it was built with.
    pub connect_timeout: Duration,
    /// Retries after a 429, 500, 502, 503, 504 or a failed connection.
    pub max_retries: u32,
    /// First backoff; it doubles per retry, with jitter, up to 30 s.
    pub backoff: Duration,
}

impl OpenAiConfig {
    /// A config with the defaults and no API key.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff: DEFAULT_BACKOFF,
        }
    }
}

/// Hand-written so that a password in `base_url` is not printed with the config.
impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &strip_userinfo_text(&self.base_url))
            .field("api_key", &self.api_key)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// The process-wide HTTP client (callers keep it in a `OnceLock`).
///
/// No global timeout, because each target has its own and [`OpenAiClient`] enforces it per
/// attempt. The pool keeps idle connections so a concurrency sweep reuses them instead of
/// measuring TCP handshakes.
pub fn default_http_client() -> reqwest::Client {
    build_http_client(DEFAULT_CONNECT_TIMEOUT)
}

/// A client honouring `config.connect_timeout`, for a caller that gives a target its own.
pub fn http_client_for(config: &OpenAiConfig) -> reqwest::Client {
    build_http_client(config.connect_timeout)
}

fn build_http_client(connect_timeout: Duration) -> reqwest::Client {
    client_builder(connect_timeout)
        .build()
        // Building only fails if the TLS backend cannot start; the default client would
        // report the same problem on first use.
        .unwrap_or_else(|_| reqwest::Client::new())
}

fn client_builder(connect_timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("eyetest/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(60))
        // SSE chunks are tiny; Nagle's algorithm would distort inter-token latencies.
        .tcp_nodelay(true)
}

/// The request body eyetest sends for `req`.
///
/// Public so a throughput sweep can serialize each distinct request once and send the same
/// bytes (base64 image included) thousands of times through [`OpenAiClient::chat_with_body`].
pub fn request_body(req: &ChatRequest) -> Result<Bytes, BackendError> {
    serde_json::to_vec(&ChatCompletionRequest::for_question(req))
        .map(Bytes::from)
        .map_err(|e| BackendError::Protocol {
            url: String::new(),
            reason: format!("cannot serialize the request: {e}"),
        })
}

/// A cheap-to-clone handle on one OpenAI-compatible endpoint.
#[derive(Clone)]
pub struct OpenAiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: OpenAiConfig,
    /// A bad `base_url` or API key is reported by the first request rather than by `new`,
    /// so constructing a client never fails and the error carries the usual context.
    setup: Result<Setup, BackendError>,
    /// Strings that must never appear in an error: the API key, the URL password.
    secrets: Vec<String>,
}

struct Setup {
    chat: Endpoint,
    models: Endpoint,
    headers: HeaderMap,
}

struct Endpoint {
    url: Url,
    /// The attempt budget, for the rare timeout reported by reqwest itself (a caller-supplied
    /// client with its own total timeout) rather than by the attempt deadline.
    timeout: Duration,
    /// The URL as errors show it: no userinfo, secret-looking query values masked.
    shown: String,
}

impl fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match &self.inner.setup {
            Ok(s) => s.chat.shown.as_str(),
            Err(_) => "<invalid base_url>",
        };
        f.debug_struct("OpenAiClient")
            .field("url", &url)
            .field("api_key", &self.inner.config.api_key)
            .field("timeout", &self.inner.config.timeout)
            .field("max_retries", &self.inner.config.max_retries)
            .finish_non_exhaustive()
    }
}

impl OpenAiClient {
    pub fn new(http: reqwest::Client, config: OpenAiConfig) -> Self {
        let mut secrets = Vec::new();
        if let Some(key) = &config.api_key {
            if !key.expose().is_empty() {
                secrets.push(key.expose().to_owned());
                // A server quoting the header inside JSON escapes `"` and `\`.
                let json = serde_json::to_string(key.expose()).unwrap_or_default();
                let json = json.trim_matches('"');
                if json != key.expose() {
                    secrets.push(json.to_owned());
                }
            }
        }
        let setup = Setup::new(&config, &mut secrets).map_err(|e| scrub_error(e, &secrets));
        Self {
            inner: Arc::new(Inner {
                http,
                config,
                setup,
                secrets,
            }),
        }
    }

    /// The chat-completions URL as errors show it.
    pub fn chat_url(&self) -> String {
        match &self.inner.setup {
            Ok(s) => s.chat.shown.clone(),
            Err(_) => String::new(),
        }
    }

    /// Asks one question, streaming or not as `req.stream` says.
    pub async fn chat(&self, req: &ChatRequest) -> Result<Answer, BackendError> {
        let body = request_body(req).map_err(|e| match e {
            BackendError::Protocol { reason, .. } => BackendError::Protocol {
                url: self.chat_url(),
                reason,
            },
            other => other,
        })?;
        self.chat_with_body(body, req.stream).await
    }

    /// Sends a body made by [`request_body`]; `stream` must match the body's `stream` field.
    pub async fn chat_with_body(&self, body: Bytes, stream: bool) -> Result<Answer, BackendError> {
        let setup = self.setup()?;
        let (mut answer, attempts) = self
            .with_retries(&setup.chat.shown, || {
                self.attempt_chat(setup, body.clone(), stream)
            })
            .await?;
        answer.timing.attempts = attempts;
        // An answer goes into results, recordings and snapshots that get committed; a server
        // that echoes the request headers into it must not take the key there.
        if !self.inner.secrets.is_empty() {
            answer.text = scrub_text(answer.text, &self.inner.secrets);
            answer.model = scrub_text(answer.model, &self.inner.secrets);
        }
        Ok(answer)
    }

    /// The model ids the endpoint serves (`GET {base}/models`).
    pub async fn models(&self) -> Result<Vec<String>, BackendError> {
        let setup = self.setup()?;
        let (ids, _) = self
            .with_retries(&setup.models.shown, || self.attempt_models(setup))
            .await?;
        Ok(ids)
    }

    fn setup(&self) -> Result<&Setup, BackendError> {
        self.inner.setup.as_ref().map_err(Clone::clone)
    }

    /// Runs attempts until one succeeds, one fails for good, or retries run out; returns the
    /// value and the number of attempts. Every error leaving here has been scrubbed.
    async fn with_retries<T, F, Fut>(
        &self,
        url: &str,
        mut attempt: F,
    ) -> Result<(T, u32), BackendError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let config = &self.inner.config;
        let max_attempts = config.max_retries.saturating_add(1);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match tokio::time::timeout(config.timeout, attempt()).await {
                Ok(Ok(value)) => return Ok((value, attempts)),
                Ok(Err(failure)) => failure,
                Err(_elapsed) => Failure::fatal(BackendError::Timeout {
                    url: url.to_owned(),
                    timeout: config.timeout,
                }),
            };
            let error = scrub_error(failure.error, &self.inner.secrets);
            if !failure.retry && attempts == 1 {
                return Err(error);
            }
            // A fatal error after retries still reports every attempt it took.
            if !failure.retry || attempts >= max_attempts {
                return Err(if attempts == 1 {
                    error
                } else {
                    BackendError::RetriesExhausted {
                        attempts,
                        last: Box::new(error),
                    }
                });
            }
            let delay = failure
                .retry_after
                .unwrap_or_else(|| backoff_delay(config.backoff, attempts));
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt_chat(
        &self,
        setup: &Setup,
        body: Bytes,
        stream: bool,
    ) -> Result<Answer, Failure> {
        let url = &setup.chat;
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let request = self
            .inner
            .http
            .post(url.url.clone())
            .headers(setup.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, accept)
            .body(body);
        let start = Instant::now();
        let response = request.send().await.map_err(|e| send_failure(url, e))?;
        if !response.status().is_success() {
            return Err(status_failure(url, response).await);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if is_html(&content_type) {
            return Err(wrong_content_type(url, response, &content_type).await);
        }
        // Some servers ignore `stream: true` and answer with one JSON body; that answer is
        // still good, it just carries no TTFT.
        let is_json = content_type.trim_start().starts_with("application/json");
        if stream && !is_json {
            read_stream(url, response, start).await
        } else {
            read_completion(url, response, start).await
        }
    }

    async fn attempt_models(&self, setup: &Setup) -> Result<Vec<String>, Failure> {
        let url = &setup.models;
        let request = self
            .inner
            .http
            .get(url.url.clone())
            .headers(setup.headers.clone())
            .header(ACCEPT, "application/json");
        let response = request.send().await.map_err(|e| send_failure(url, e))?;
        if !response.status().is_success() {
            return Err(status_failure(url, response).await);
        }
        read_model_ids(url, response).await
    }
}

impl Setup {
    fn new(config: &OpenAiConfig, secrets: &mut Vec<String>) -> Result<Self, BackendError> {
        let invalid = |reason: String| BackendError::Connect {
            url: strip_userinfo_text(&config.base_url),
            reason,
        };
        let base = Url::parse(config.base_url.trim()).map_err(|e| {
            invalid(format!(
                "invalid base_url ({e}); expected e.g. http://127.0.0.1:8000/v1"
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid(
                "base_url must start with http:// or https://".into(),
            ));
        }
        if let Some(password) = base.password().filter(|p| !p.is_empty()) {
            secrets.push(password.to_owned());
            // Percent-decoded too: a server or library may echo either form.
            if let Ok(decoded) = urlencoding_decode(password) {
                if decoded != password {
                    secrets.push(decoded);
                }
            }
        }
        let mut headers = HeaderMap::new();
        if let Some(key) = config.api_key.as_ref().filter(|k| !k.expose().is_empty()) {
            let bearer = format!("Bearer {}", key.expose());
            let mut value = HeaderValue::from_str(&bearer).map_err(|_| {
                invalid(
                    "the API key has characters an HTTP header cannot carry (a newline?)".into(),
                )
            })?;
            // Keeps the value out of the `Debug` output of the header map and the request.
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(Self {
            chat: Endpoint::new(&base, "chat/completions", config.timeout),
            models: Endpoint::new(&base, "models", config.timeout),
            headers,
        })
    }
}

impl Endpoint {
    fn new(base: &Url, suffix: &str, timeout: Duration) -> Self {
        let mut url = base.clone();
        let path = format!("{}/{suffix}", base.path().trim_end_matches('/'));
        url.set_path(&path);
        let shown = shown_url(&url);
        Self {
            url,
            shown,
            timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_paths_with_and_without_trailing_slash() {
        for base in ["http://h:1/v1", "http://h:1/v1/", "http://h:1/v1//"] {
            let base = Url::parse(base).unwrap();
            assert_eq!(
                Endpoint::new(&base, "chat/completions", DEFAULT_TIMEOUT).shown,
                "http://h:1/v1/chat/completions"
            );
        }
        let base = Url::parse("http://h:1").unwrap();
        assert_eq!(
            Endpoint::new(&base, "models", DEFAULT_TIMEOUT).shown,
            "http://h:1/models"
        );
    }
}
