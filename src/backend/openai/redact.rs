//! Keeping credentials out of everything eyetest prints.
//!
//! Error messages reach test output, reports and CI logs, so URLs are shown without
//! userinfo and with secret-looking query values masked, and every message is scrubbed of
//! the API key and URL password as a last line of defence against servers that echo them.

use reqwest::Url;

use crate::backend::BackendError;

pub(super) fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = ["key", "token", "secret", "sig", "pass", "auth"]
                    .iter()
                    .any(|s| lower.contains(s));
                let v = if secret {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// Best effort for a base URL that does not even parse: drop anything that looks like
/// `user:password@` after the scheme.
pub(super) fn strip_userinfo_text(raw: &str) -> String {
    let raw = raw.trim();
    let (scheme, rest) = raw.split_once("://").unwrap_or(("", raw));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    if scheme.is_empty() {
        rest.to_owned()
    } else {
        format!("{scheme}://{rest}")
    }
}

pub(super) fn urlencoding_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes: Vec<u8> = url_decode_bytes(s.as_bytes());
    String::from_utf8(bytes)
}

fn url_decode_bytes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            s[i],
            s.get(i + 1).copied().and_then(hex),
            s.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The shortest start of a secret that is masked where a quote of server text was cut
/// right after it: shorter ones say next to nothing and would mask ordinary words.
const MIN_PARTIAL: usize = 4;

/// Replaces every secret in `text` with `***`, and the start of one where a quote of server
/// text was cut off (`…`) in the middle of it, since half a key is still half a key.
pub(super) fn scrub_text(text: String, secrets: &[String]) -> String {
    secrets.iter().fold(text, |mut t, secret| {
        if t.contains(secret.as_str()) {
            t = t.replace(secret.as_str(), "***");
        }
        if t.contains('…') {
            let cuts = secret.char_indices().map(|(i, _)| i).rev();
            for cut in cuts.filter(|&i| i >= MIN_PARTIAL) {
                let partial = format!("{}…", &secret[..cut]);
                if t.contains(&partial) {
                    t = t.replace(&partial, "***…");
                }
            }
        }
        t
    })
}

/// Replaces every secret in every message of `error` with `***`.
pub(super) fn scrub_error(error: BackendError, secrets: &[String]) -> BackendError {
    if secrets.is_empty() {
        return error;
    }
    let s = |text: String| scrub_text(text, secrets);
    match error {
        BackendError::Connect { url, reason } => BackendError::Connect {
            url: s(url),
            reason: s(reason),
        },
        BackendError::Tls { url, reason } => BackendError::Tls {
            url: s(url),
            reason: s(reason),
        },
        BackendError::Timeout { url, timeout } => BackendError::Timeout {
            url: s(url),
            timeout,
        },
        BackendError::Http { url, status, body } => BackendError::Http {
            url: s(url),
            status,
            body: s(body),
        },
        BackendError::Protocol { url, reason } => BackendError::Protocol {
            url: s(url),
            reason: s(reason),
        },
        BackendError::Stream { url, reason } => BackendError::Stream {
            url: s(url),
            reason: s(reason),
        },
        BackendError::RetriesExhausted { attempts, last } => BackendError::RetriesExhausted {
            attempts,
            last: Box::new(scrub_error(*last, secrets)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_url_hides_credentials() {
        let url = Url::parse(
            "https://user:pa%24s@host:8443/v1/chat/completions?api-version=1&api_key=sk-1",
        )
        .unwrap();
        assert_eq!(
            shown_url(&url),
            "https://host:8443/v1/chat/completions?api-version=1&api_key=***"
        );
    }

    #[test]
    fn unparseable_base_url_loses_its_userinfo() {
        assert_eq!(
            strip_userinfo_text("http://u:secret@bad host/v1"),
            "http://bad host/v1"
        );
        assert_eq!(strip_userinfo_text("u:secret@host"), "host");
        assert_eq!(strip_userinfo_text("http://host/a@b"), "http://host/a@b");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(urlencoding_decode("pa%24s%2").unwrap(), "pa$s%2");
    }

    #[test]
    fn a_secret_cut_off_by_a_quote_is_masked_too() {
        let secrets = ["sk-abcdef123".to_owned()];
        assert_eq!(
            scrub_text("key: sk-abcde… (900 bytes in all)".into(), &secrets),
            "key: ***… (900 bytes in all)"
        );
        assert_eq!(
            scrub_text("a sk-abcdef123 b sk-…".into(), &secrets),
            "a *** b sk-…",
            "three characters are too few to tell a key from a word"
        );
    }

    #[test]
    fn scrubbing_reaches_nested_errors() {
        let e = BackendError::RetriesExhausted {
            attempts: 2,
            last: Box::new(BackendError::Http {
                url: "u".into(),
                status: 500,
                body: "echo sk-abc".into(),
            }),
        };
        let scrubbed = scrub_error(e, &["sk-abc".to_owned()]);
        assert_eq!(
            scrubbed.to_string(),
            "gave up after 2 attempts; last error: HTTP 500 from u: echo ***"
        );
    }
}
