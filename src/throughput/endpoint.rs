//! The one place throughput touches target knowledge: whether a target can be measured here,
//! reaching its endpoint, and the HTTP client load is sent with. All of it is
//! [`crate::targets`]'s, the same code the case runner uses, so that what one applies (the
//! target's `ca_file`, its API key, its timeouts) the other cannot forget.

use crate::backend::openai::OpenAiClient;
use crate::targets::{client_for, ConnectError, Target, Use};

pub use crate::targets::reach as connect;

/// A client for load: the target's endpoint, timeout and CA, its own connection pool, and no
/// retries (see [`super::load`]).
pub fn load_client(
    target: &Target,
    base_url: String,
) -> Result<(OpenAiClient, reqwest::Client), ConnectError> {
    client_for(target, &base_url, Use::Load, None)
}
