//! How eyetest talks to a model: one request/answer vocabulary shared by every backend.
//!
//! Every backend speaks OpenAI-compatible chat completions over real HTTP, the simulated
//! engine included, so the code path under test is the one users run against vLLM or OpenAI.

pub mod openai;
pub mod retry;
pub mod sse;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Images larger than this are sent with a warning: no eye exam needs one (a model sees a
/// few hundred pixels a side), servers refuse bodies around 50 MB with HTTP 413, and base64
/// makes the request a third larger still, so one this big is most likely the wrong file.
/// See [`crate::warning::Warning::large_image`].
pub const LARGE_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// An image read once and encoded once per run, shared by every request that sends it
/// (a throughput sweep sends the same bytes thousands of times).
#[derive(Debug)]
pub struct ImageData {
    /// Raw file bytes as read from disk.
    pub bytes: bytes::Bytes,
    /// `image/png` or `image/jpeg`, sniffed from the bytes, never from the file name.
    pub mime: &'static str,
    /// Lower-case hex sha256 of `bytes`; goes into snapshot headers and replay keys.
    pub sha256: String,
    /// `data:<mime>;base64,<...>`, ready to drop into an `image_url` content part.
    pub data_url: Arc<str>,
}

/// Why some bytes cannot be sent as an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not a PNG or JPEG image (first bytes {0:02x?}); convert it to PNG or JPEG")]
    UnknownFormat(Vec<u8>),
}

impl ImageData {
    /// Sniffs the format from the magic bytes and encodes the data URL once.
    pub fn from_bytes(bytes: impl Into<bytes::Bytes>) -> Result<Self, ImageError> {
        let bytes: bytes::Bytes = bytes.into();
        let mime = sniff_mime(&bytes)
            .ok_or_else(|| ImageError::UnknownFormat(bytes.iter().take(8).copied().collect()))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let mut data_url = String::with_capacity(bytes.len() * 4 / 3 + 32);
        data_url.push_str("data:");
        data_url.push_str(mime);
        data_url.push_str(";base64,");
        base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut data_url);
        Ok(Self {
            bytes,
            mime,
            sha256,
            data_url: data_url.into(),
        })
    }
}

impl ImageData {
    /// No image: the request is text only (a model judge not shown the image). Its digest is
    /// empty, so a recording says so.
    pub fn none() -> Self {
        Self {
            bytes: bytes::Bytes::new(),
            mime: "",
            sha256: String::new(),
            data_url: "".into(),
        }
    }

    /// Whether this is [`ImageData::none`]: the request sends no image part.
    pub fn is_none(&self) -> bool {
        self.data_url.is_empty()
    }
}

/// The MIME type of PNG or JPEG bytes, from their magic numbers.
pub fn sniff_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

/// One question about one image, as every backend receives it.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub prompt: String,
    pub image: Arc<ImageData>,
    pub max_tokens: u32,
    pub temperature: f64,
    pub seed: Option<u64>,
    /// Stream with SSE (needed for TTFT/ITL) or ask for one JSON body.
    pub stream: bool,
    /// Extra top-level request fields passed through verbatim (e.g. vLLM's `ignore_eos`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Token counts as the server reported them in `usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Client-side timings of one request, on a monotonic clock started just before sending.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    /// Send -> first event carrying content (None when not streaming or no content came).
    pub ttft: Option<Duration>,
    /// Send -> last event with choices (streaming) or end of body (non-streaming).
    pub e2e: Duration,
    /// Gaps between successive content events.
    pub itl: Vec<Duration>,
    /// How many attempts it took (1 = no retry).
    pub attempts: u32,
}

/// A model's answer to one [`ChatRequest`].
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    /// The `model` field the server answered with (the simulated engine says it is simulated).
    pub model: String,
    pub finish_reason: Option<String>,
    /// `None` when the server sent no usage; throughput reports flag it.
    pub usage: Option<Usage>,
    pub timing: Timing,
}

/// Why a request produced no answer. Messages name the cause and what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect to {url}: {reason} (is the server running?)")]
    Connect { url: String, reason: String },
    #[error("cannot connect securely to {url}: {reason}")]
    Tls { url: String, reason: String },
    #[error("no answer from {url} within {timeout:?} (raise `timeout_s` on the target, or check the server)")]
    Timeout { url: String, timeout: Duration },
    #[error("HTTP {status} from {url}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("malformed response from {url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("stream from {url} broke off: {reason}")]
    Stream { url: String, reason: String },
    #[error("gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        attempts: u32,
        last: Box<BackendError>,
    },
}

impl BackendError {
    /// Requests sent before this error: results record it, so that "gave up after 4
    /// attempts" does not sit beside `"attempts": 0`.
    pub fn attempts(&self) -> u32 {
        match self {
            BackendError::RetriesExhausted { attempts, .. } => *attempts,
            _ => 1,
        }
    }
}
