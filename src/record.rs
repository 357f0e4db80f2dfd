//! Record and replay: answers from a live run stored as text under
//! `golden/recordings/<target>/<spec id>/<case>.toml`, so that rubric edits can be re-checked
//! offline against real answers and a CI machine without a GPU can run the gate.
//!
//! A recording is keyed by a digest of everything that shapes the answer (image bytes,
//! prompt, model, generation parameters). Replaying a request whose digest changed fails and
//! names the part that changed, rather than answering a different question with an old answer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::{Answer, ChatRequest, Timing, Usage};

/// What shaped the answer: compared part by part on replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestParts {
    pub model: String,
    pub image_sha256: String,
    pub prompt: String,
    pub max_tokens: u32,
    pub temperature: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl RequestParts {
    pub fn of(req: &ChatRequest) -> Self {
        Self {
            model: req.model.clone(),
            image_sha256: req.image.sha256.clone(),
            prompt: req.prompt.clone(),
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            seed: req.seed,
        }
    }

    /// A short, stable digest of all parts.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).expect("parts serialize");
        hex::encode(&Sha256::digest(json)[..8])
    }

    /// Human-readable differences between a recorded request and the one asked now.
    pub fn differences(&self, now: &RequestParts) -> Vec<String> {
        let mut d = Vec::new();
        let mut cmp = |name: &str, was: String, is: String| {
            if was != is {
                d.push(format!("{name} changed: recorded {was}, now {is}"));
            }
        };
        cmp(
            "model",
            format!("{:?}", self.model),
            format!("{:?}", now.model),
        );
        cmp(
            "image",
            format!("sha256 {}", short(&self.image_sha256)),
            format!("sha256 {}", short(&now.image_sha256)),
        );
        cmp(
            "prompt",
            format!("{:?}", self.prompt),
            format!("{:?}", now.prompt),
        );
        cmp(
            "max_tokens",
            self.max_tokens.to_string(),
            now.max_tokens.to_string(),
        );
        cmp(
            "temperature",
            self.temperature.to_string(),
            now.temperature.to_string(),
        );
        cmp(
            "seed",
            format!("{:?}", self.seed),
            format!("{:?}", now.seed),
        );
        d
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// One recorded answer, as stored on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub digest: String,
    /// The target it was recorded from.
    pub target: String,
    pub request: RequestParts,
    pub answer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub served_model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    pub e2e_ms: f64,
}

/// Why a replay could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReplayError {
    #[error("no recording of `{case}` for target `{target}` at {path} (record it with `eyetest run --record --target {target}`)")]
    Missing {
        case: String,
        target: String,
        path: PathBuf,
    },
    #[error("the recording at {path} is for a different request ({}); re-record with `eyetest run --record --target {target}`", .differences.join("; "))]
    Changed {
        path: PathBuf,
        target: String,
        differences: Vec<String>,
    },
    #[error("cannot read recording {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
}

/// `golden/recordings/<target>/<spec id>/<case>.toml`
pub fn path(golden_dir: &Path, target: &str, spec_id: &str, case: &str) -> PathBuf {
    golden_dir
        .join("recordings")
        .join(target)
        .join(spec_id)
        .join(format!("{case}.toml"))
}

impl Recording {
    pub fn new(target: &str, req: &ChatRequest, answer: &Answer) -> Self {
        let request = RequestParts::of(req);
        Self {
            digest: request.digest(),
            target: target.to_string(),
            request,
            answer: answer.text.clone(),
            served_model: answer.model.clone(),
            finish_reason: answer.finish_reason.clone(),
            usage: answer.usage,
            ttft_ms: answer.timing.ttft.map(|d| d.as_secs_f64() * 1e3),
            e2e_ms: answer.timing.e2e.as_secs_f64() * 1e3,
        }
    }

    /// Writes atomically (temp file + rename), so a killed run never leaves half a file.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = toml::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::atomic::write_atomic(path, text.as_bytes())
    }

    pub fn load(path: &Path) -> Result<Option<Recording>, ReplayError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ReplayError::Unreadable {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
            }
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| ReplayError::Unreadable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    }

    /// The recorded answer, as if the server had just sent it.
    pub fn to_answer(&self) -> Answer {
        let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1e3);
        Answer {
            text: self.answer.clone(),
            model: self.served_model.clone(),
            finish_reason: self.finish_reason.clone(),
            usage: self.usage,
            timing: Timing {
                ttft: self.ttft_ms.map(ms),
                e2e: ms(self.e2e_ms),
                itl: Vec::new(),
                attempts: 1,
            },
        }
    }
}

/// Answers `req` from the recording at `path`, or says exactly why it cannot.
pub fn replay(
    path: &Path,
    target: &str,
    case: &str,
    req: &ChatRequest,
) -> Result<Answer, ReplayError> {
    let rec = Recording::load(path)?.ok_or_else(|| ReplayError::Missing {
        case: case.to_string(),
        target: target.to_string(),
        path: path.to_path_buf(),
    })?;
    let now = RequestParts::of(req);
    if rec.digest != now.digest() {
        let mut differences = rec.request.differences(&now);
        if differences.is_empty() {
            differences.push("request digest differs".into());
        }
        return Err(ReplayError::Changed {
            path: path.to_path_buf(),
            target: target.to_string(),
            differences,
        });
    }
    Ok(rec.to_answer())
}
