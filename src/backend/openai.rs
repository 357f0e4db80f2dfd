//! TEMP STUB (replaced by the real client on merge)
use super::*;
#[derive(Clone)]
pub struct Secret(String);
impl Secret { pub fn new(s: String) -> Self { Secret(s) } }
pub struct OpenAiConfig { pub base_url: String, pub api_key: Option<Secret>, pub timeout: Duration, pub connect_timeout: Duration, pub max_retries: u32, pub backoff: Duration }
#[derive(Clone)]
pub struct OpenAiClient;
impl OpenAiClient {
    pub fn new(_http: reqwest::Client, _c: OpenAiConfig) -> Self { OpenAiClient }
    pub async fn chat(&self, _req: &ChatRequest) -> Result<Answer, BackendError> { unimplemented!() }
}
pub fn default_http_client() -> reqwest::Client { reqwest::Client::new() }
