//! The OpenAI chat-completions wire format, shared by the client and the simulated engine.
//!
//! Response types are deliberately lenient (`Option`, `#[serde(default)]`, unknown fields
//! ignored): vLLM, SGLang, TGI, llama.cpp, Ollama and `transformers serve` each leave out or
//! add small things, and a strict model would reject answers that are perfectly usable.

use serde::{Deserialize, Serialize};

/// `POST /v1/chat/completions` body, as eyetest sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Anything else (e.g. `ignore_eos`), passed through verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamOptions {
    pub include_usage: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Content,
}

/// Either a plain string or a list of typed parts (text and images).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageUrl {
    pub url: String,
}

/// Non-streaming response body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatCompletion {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// Some servers and proxies answer 200 with `{"error": ...}` instead of an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub message: Option<ResponseMessage>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResponseMessage {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
}

/// One SSE `data:` payload of a streaming response, read in place: a stream has one of
/// these per token, and borrowing its strings from the event (instead of allocating the id,
/// model, role and content of every chunk) is most of what the client spends per event
/// beyond the kernel's work. Fields eyetest does not use (`id`, `object`,
/// `system_fingerprint`) are skipped unread.
#[derive(Debug, Default, Deserialize)]
pub struct ChatCompletionChunk<'a> {
    #[serde(default, borrow)]
    pub model: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// Some servers send errors mid-stream as `data: {"error": ...}`.
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChunkChoice<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(default, borrow)]
    pub delta: Delta<'a>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Delta<'a> {
    #[serde(default, borrow)]
    pub content: Option<Text<'a>>,
}

/// A JSON string borrowed from the input when it has no escapes, owned when it has. A
/// newtype because serde borrows a `Cow<str>` only when it is the field's whole type, not
/// inside an `Option`.
#[derive(Debug, Default, Deserialize)]
pub struct Text<'a>(#[serde(borrow)] pub std::borrow::Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

/// `GET /v1/models` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelCard>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelCard {
    pub id: String,
    pub object: String,
    #[serde(default)]
    pub owned_by: String,
}

impl ChatCompletionRequest {
    /// The request eyetest sends for one question about one image.
    pub fn for_question(req: &super::ChatRequest) -> Self {
        let mut parts = vec![ContentPart::Text {
            text: req.prompt.clone(),
        }];
        if !req.image.is_none() {
            parts.insert(
                0,
                ContentPart::ImageUrl {
                    image_url: ImageUrl {
                        url: req.image.data_url.to_string(),
                    },
                },
            );
        }
        Self {
            model: Some(req.model.clone()).filter(|m| !m.is_empty()),
            messages: vec![Message {
                role: "user".into(),
                content: Content::Parts(parts),
            }],
            max_tokens: Some(req.max_tokens),
            temperature: Some(req.temperature),
            seed: req.seed,
            stream: req.stream,
            stream_options: req.stream.then_some(StreamOptions {
                include_usage: true,
            }),
            extra: req.extra.clone(),
        }
    }

    /// The first image part's URL and the concatenated text of the last user message:
    /// what the simulated engine needs to answer.
    pub fn image_and_prompt(&self) -> (Option<&str>, String) {
        let mut image = None;
        let mut text = String::new();
        for m in self.messages.iter().filter(|m| m.role == "user") {
            match &m.content {
                Content::Text(t) => text = t.clone(),
                Content::Parts(parts) => {
                    text.clear();
                    for p in parts {
                        match p {
                            ContentPart::Text { text: t } => text.push_str(t),
                            ContentPart::ImageUrl { image_url } => {
                                image.get_or_insert(image_url.url.as_str());
                            }
                        }
                    }
                }
            }
        }
        (image, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn a_chunk_borrows_plain_strings_and_unescapes_the_rest() {
        let data = r#"{"id":"x","object":"chat.completion.chunk","model":"m","system_fingerprint":null,
            "choices":[{"index":0,"delta":{"role":"assistant","content":"two\nlines \u00e9"},"finish_reason":null},
                       {"index":1,"delta":{"content":"plain"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        let chunk: ChatCompletionChunk = serde_json::from_str(data).unwrap();
        assert!(matches!(
            chunk.model.as_ref().unwrap().0,
            Cow::Borrowed("m")
        ));
        let first = chunk.choices[0].delta.content.as_ref().unwrap();
        assert!(matches!(first.0, Cow::Owned(_)));
        assert_eq!(&**first, "two\nlines é");
        let second = &chunk.choices[1];
        assert!(matches!(
            second.delta.content.as_ref().unwrap().0,
            Cow::Borrowed("plain")
        ));
        assert_eq!(second.finish_reason.as_deref(), Some("stop"));
        assert_eq!(chunk.usage.unwrap().completion_tokens, 2);
        assert!(chunk.error.is_none());
    }

    #[test]
    fn an_empty_or_error_chunk_still_reads() {
        let chunk: ChatCompletionChunk = serde_json::from_str("{}").unwrap();
        assert!(chunk.choices.is_empty() && chunk.model.is_none());
        let chunk: ChatCompletionChunk =
            serde_json::from_str(r#"{"error":{"message":"boom","code":500}}"#).unwrap();
        assert_eq!(chunk.error.unwrap()["message"], "boom");
        assert!(chunk.choices.is_empty());
    }
}
