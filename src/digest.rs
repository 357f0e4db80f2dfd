//! Content digests: how fetched photos are verified and how an image is recognised, in one
//! place that the fetcher and the simulated engine both use without importing each other.

use sha2::{Digest as _, Sha256};

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
