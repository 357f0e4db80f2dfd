//! Trusting a private CA for one target, and saying plainly when a certificate is not
//! trusted.
//!
//! HTTPS uses rustls with the bundled webpki roots, so a public endpoint needs nothing. A
//! self-signed or company-CA endpoint is refused unless its target names the CA in
//! `ca_file`: trust is granted per target, never by turning verification off.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What is wrong with a target's `ca_file`. The message completes a sentence that starts
/// with the file's name (as the user wrote it, which only the caller knows). Cloneable, as
/// [`crate::targets::ConnectError`] is.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CaError {
    #[error("cannot be read: {0}")]
    Read(#[source] Arc<std::io::Error>),
    #[error("has a damaged PEM certificate block")]
    Damaged,
    #[error("holds no PEM certificate (a `-----BEGIN CERTIFICATE-----` block)")]
    NoCertificate,
    #[error("holds a certificate that cannot be parsed")]
    Unparsable,
    /// The certificates are fine, but the client trusting them could not be built.
    #[error("cannot be used to set up TLS: {0}")]
    Tls(#[source] Arc<reqwest::Error>),
}

/// The certificates of a PEM file, checked the way the TLS stack will use them, so that a
/// wrong file is reported when eyetest.toml is loaded rather than on the first request.
pub fn load_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, CaError> {
    let pem = std::fs::read(path).map_err(|e| CaError::Read(Arc::new(e)))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| CaError::Damaged)?;
    if certs.is_empty() {
        return Err(CaError::NoCertificate);
    }
    // Building a client is what parses each certificate's DER.
    certs
        .iter()
        .fold(reqwest::Client::builder(), |b, c| {
            b.add_root_certificate(c.clone())
        })
        .build()
        .map_err(|_| CaError::Unparsable)?;
    Ok(certs)
}

/// A client that trusts the CA(s) in `ca_file` on top of the bundled roots.
pub fn http_client_with_ca(
    ca_file: &Path,
    connect_timeout: Duration,
) -> Result<reqwest::Client, CaError> {
    let certs = load_ca_file(ca_file)?;
    certs
        .into_iter()
        .fold(super::client_builder(connect_timeout), |b, c| {
            b.add_root_certificate(c)
        })
        .build()
        .map_err(|e| CaError::Tls(Arc::new(e)))
}

/// When a failed request's error text says the server's certificate was refused, what to
/// tell the user instead. rustls words these as `"invalid peer certificate: <reason>"`.
pub(super) fn untrusted_certificate(error_text: &str) -> Option<String> {
    let at = error_text.find("invalid peer certificate")?;
    let detail = error_text[at..].trim();
    let advice = if detail.contains("NotValidForName") {
        "the certificate is not issued for this host name: use the name it was issued for in the base URL"
    } else if detail.contains("Expired") || detail.contains("NotValidYet") {
        "the certificate is outside its validity period: renew it, or check this machine's clock"
    } else {
        "if the server uses a self-signed or private CA, set `ca_file` on the target to trust it (a PEM file of the CA certificate)"
    };
    Some(format!(
        "TLS: the server's certificate is not trusted ({detail}); {advice}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_issuer_points_at_ca_file() {
        let msg = untrusted_certificate(
            "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer",
        )
        .unwrap();
        assert!(msg.starts_with("TLS: the server's certificate is not trusted (invalid peer certificate: UnknownIssuer)"), "{msg}");
        assert!(msg.contains("set `ca_file` on the target"), "{msg}");
        assert_eq!(untrusted_certificate("Connection refused"), None);
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let err = load_ca_file(&path).unwrap_err();
        assert!(matches!(err, CaError::NoCertificate), "{err:?}");
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = load_ca_file(&path).unwrap_err();
        assert!(err.to_string().contains("cannot be parsed"), "{err}");
        assert!(load_ca_file(&dir.path().join("missing.pem"))
            .unwrap_err()
            .to_string()
            .contains("cannot be read"));
    }
}
