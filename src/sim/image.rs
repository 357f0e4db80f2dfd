//! The image side of a request: data URL -> bytes -> a real decode -> size and ground truth.
//!
//! Decoding is done for real so that a client that sends broken images is caught here, as it
//! would be by a real engine, but once per distinct data URL (see the private `memo` module): a capacity
//! benchmark sends the same few images thousands of times a second.

use std::sync::Arc;

use base64::Engine as _;

use crate::backend::sniff_mime;
use crate::fixture::truth::{read_truth, Truth};

/// What the engine needs to know about a decoded image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    pub mime: &'static str,
    pub truth: Option<Truth>,
}

/// Why an `image_url` could not be used; each message says what to send instead.
#[derive(Debug, thiserror::Error)]
pub enum ImageProblem {
    #[error(
        "image_url is not a data URL (got {0:?}...); the simulated engine does not fetch \
         remote images, send data:image/png;base64,..."
    )]
    NotDataUrl(String),
    #[error("image data URL is not base64-encoded (expected data:<mime>;base64,<data>)")]
    NotBase64,
    #[error("invalid base64 in image data URL: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("image data is not a PNG or JPEG (first bytes {0:02x?})")]
    UnknownFormat(Vec<u8>),
    #[error("image data could not be decoded as {mime}: {err}")]
    Decode {
        mime: &'static str,
        err: image::ImageError,
    },
    #[error("image decoding failed unexpectedly: {0}")]
    Internal(String),
}

/// Decodes a data URL for real. CPU-bound: call from the blocking pool.
pub fn decode_data_url(url: &str) -> Result<ImageInfo, ImageProblem> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| ImageProblem::NotDataUrl(url.chars().take(32).collect()))?;
    let (meta, data) = rest.split_once(',').ok_or(ImageProblem::NotBase64)?;
    if !meta.ends_with(";base64") {
        return Err(ImageProblem::NotBase64);
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim())?;
    let mime = sniff_mime(&bytes)
        .ok_or_else(|| ImageProblem::UnknownFormat(bytes.iter().take(8).copied().collect()))?;
    let format = match mime {
        "image/png" => image::ImageFormat::Png,
        _ => image::ImageFormat::Jpeg,
    };
    let img = image::load_from_memory_with_format(&bytes, format)
        .map_err(|err| ImageProblem::Decode { mime, err })?;
    // A generated fixture carries its truth; a study photo is known by its hash.
    let truth = (format == image::ImageFormat::Png)
        .then(|| read_truth(&bytes))
        .flatten()
        .or_else(|| super::study::truth_by_sha256(&crate::digest::sha256_hex(&bytes)));
    Ok(ImageInfo {
        width: img.width(),
        height: img.height(),
        mime,
        truth,
    })
}

/// Decoding takes milliseconds: on the blocking pool it cannot delay other streams' tokens.
pub(crate) async fn decode_blocking(url: &str) -> Result<Arc<ImageInfo>, ImageProblem> {
    let owned = url.to_owned();
    tokio::task::spawn_blocking(move || decode_data_url(&owned).map(Arc::new))
        .await
        .map_err(|e| ImageProblem::Internal(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::truth::encode_png;

    fn data_url(bytes: &[u8]) -> String {
        let mime = sniff_mime(bytes).unwrap_or("application/octet-stream");
        format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    #[test]
    fn decodes_png_with_truth() {
        let t = Truth {
            kind: "count".into(),
            terse: "2".into(),
            verbose: "Two.".into(),
            wrong: "3".into(),
        };
        let png = encode_png(3, 2, &[9; 18], Some(&t)).unwrap();
        let info = decode_data_url(&data_url(&png)).unwrap();
        assert_eq!((info.width, info.height, info.truth), (3, 2, Some(t)));
    }

    #[test]
    fn names_each_problem() {
        let e = |u: &str| decode_data_url(u).unwrap_err().to_string();
        assert!(e("https://x/y.png").contains("not a data URL"));
        assert!(e("data:image/png,abc").contains("not base64"));
        assert!(e("data:image/png;base64,@@@").contains("invalid base64"));
        assert!(e(&data_url(b"hello world")).contains("not a PNG or JPEG"));
        let png = encode_png(3, 2, &[9; 18], None).unwrap();
        assert!(e(&data_url(&png[..40])).contains("could not be decoded"));
    }
}
