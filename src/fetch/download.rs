//! Downloading manifest photos: one at a time, each checked (HTTP status, image bytes, size,
//! sha256) before it is renamed into the cache, so the cache never holds a half-written or
//! wrong file under a photo's name.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;

use super::{cache_state, CacheState, Photo};
use crate::digest::sha256_hex;

/// How to reach the photos.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Replaces every photo's URL with `MIRROR/MANIFEST/NAME` (a local mirror, or a test server).
    pub mirror: Option<String>,
    /// PEM file of a CA to trust on top of the bundled roots (a company proxy or mirror).
    pub ca_file: Option<PathBuf>,
    /// Longest wait for the server: to connect, to answer, and between two pieces of the body.
    pub timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            mirror: None,
            ca_file: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What a fetch did, photo by photo.
#[derive(Debug, Default)]
pub struct FetchSummary {
    /// Downloaded and verified now.
    pub fetched: Vec<String>,
    /// Already in the cache and verified: not downloaded again.
    pub present: Vec<String>,
    /// Photo key and why it failed.
    pub failed: Vec<(String, FetchError)>,
}

/// What a fetch reports while it runs, for the caller to draw (the CLI's progress bar).
#[derive(Debug)]
pub enum FetchEvent<'a> {
    /// Downloads start: this many bytes in all, for the photos not already in the cache.
    Begin { total_bytes: u64 },
    /// One photo's download starts.
    Photo { photo: &'a Photo },
    /// Bytes of the current photo received so far.
    Received { bytes: u64 },
    /// The current photo is verified and in the cache.
    Fetched { photo: &'a Photo },
    /// The current photo failed; it is also in [`FetchSummary::failed`].
    Failed {
        photo: &'a Photo,
        error: &'a FetchError,
    },
}

/// Why a photo was not fetched. Each says what was wrong with what the server sent (naming
/// the URL), or which file could not be read or written, and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("CA file `{}` cannot be read: {source}", path.display())]
    CaRead {
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    #[error("CA file `{}` has a damaged PEM certificate block", path.display())]
    CaDamaged { path: PathBuf },
    #[error("CA file `{}` holds no PEM certificate (a `-----BEGIN CERTIFICATE-----` block)", path.display())]
    CaEmpty { path: PathBuf },
    #[error("cannot set up the HTTP client: {}", chain(source))]
    Client { source: Arc<reqwest::Error> },
    #[error("{url}: no data for {} s (the server is too slow or stalled); try again later, or raise --timeout-s", timeout.as_secs_f64())]
    Stalled { url: String, timeout: Duration },
    /// The request failed before an answer: TLS, redirects, connection, timeout.
    #[error("{url}: {}", request_error(source))]
    Request {
        url: String,
        source: Arc<reqwest::Error>,
    },
    #[error("{url}: HTTP {status}; {}", status_advice(*status))]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error(
        "{url}: the download broke off after {got} of {expected} bytes ({}); try again",
        chain(source)
    )]
    BrokeOff {
        url: String,
        got: usize,
        expected: u64,
        source: Arc<reqwest::Error>,
    },
    #[error("{url}: the server sends more than the manifest's {expected} bytes: not the pinned file (check the manifest's `url`, `bytes` and `sha256`)")]
    TooLong { url: String, expected: u64 },
    #[error("{url}: not a PNG or JPEG image (it starts with {head:?}); the URL serves something else, such as an error or login page")]
    NotAnImage {
        url: String,
        /// The first bytes, control characters blanked.
        head: String,
    },
    #[error("{url}: truncated: got {got} of {expected} bytes; try again")]
    Truncated {
        url: String,
        got: usize,
        expected: u64,
    },
    #[error("{url}: wrong file: sha256 is {got}, the manifest pins {expected}; the file at that URL changed, or the manifest is wrong")]
    WrongHash {
        url: String,
        got: String,
        expected: String,
    },
    #[error("{url}: cannot read the image: {source}")]
    Unreadable {
        url: String,
        source: Arc<std::io::Error>,
    },
    #[error("{url}: not a decodable image: {source}")]
    Undecodable {
        url: String,
        source: Arc<image::ImageError>,
    },
    #[error("cannot create `{}`: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        source: Arc<std::io::Error>,
    },
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
}

/// Builds the HTTP client: redirects followed (reqwest's default, up to 10), proxies from
/// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` with `NO_PROXY` honoured (reqwest reads them), and
/// the CA file trusted on top of the bundled webpki roots.
fn client(opts: &FetchOptions) -> Result<reqwest::Client, FetchError> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("eyetest/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(opts.timeout)
        .redirect(reqwest::redirect::Policy::limited(10));
    if let Some(ca) = &opts.ca_file {
        let pem = std::fs::read(ca).map_err(|e| FetchError::CaRead {
            path: ca.clone(),
            source: Arc::new(e),
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| FetchError::CaDamaged { path: ca.clone() })?;
        if certs.is_empty() {
            return Err(FetchError::CaEmpty { path: ca.clone() });
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| FetchError::Client {
        source: Arc::new(e),
    })
}

/// An error with its causes, which is where reqwest keeps the useful part.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// Fetches every photo not already verified in the cache under `root`. Never stops at the
/// first failure: each photo is tried, and the summary says which failed and why.
/// `on_event` hears of each step as it happens.
pub async fn fetch(
    root: &Path,
    photos: &[Arc<Photo>],
    opts: &FetchOptions,
    mut on_event: impl FnMut(FetchEvent<'_>),
) -> FetchSummary {
    let mut summary = FetchSummary::default();
    let todo: Vec<&Arc<Photo>> = photos
        .iter()
        .filter(|p| {
            let ok = cache_state(root, p) == CacheState::Verified;
            if ok {
                summary.present.push(p.key());
            }
            !ok
        })
        .collect();
    if todo.is_empty() {
        return summary;
    }
    let client = match client(opts) {
        Ok(c) => c,
        Err(e) => {
            summary.failed = todo.iter().map(|p| (p.key(), e.clone())).collect();
            return summary;
        }
    };
    on_event(FetchEvent::Begin {
        total_bytes: todo.iter().map(|p| p.bytes).sum(),
    });
    for p in todo {
        on_event(FetchEvent::Photo { photo: p });
        let url = p.source_url(opts.mirror.as_deref());
        match download(&client, &url, p, opts.timeout, &mut on_event)
            .await
            .and_then(|body| store(root, p, &body))
        {
            Ok(()) => {
                on_event(FetchEvent::Fetched { photo: p });
                summary.fetched.push(p.key());
            }
            Err(error) => {
                on_event(FetchEvent::Failed {
                    photo: p,
                    error: &error,
                });
                summary.failed.push((p.key(), error));
            }
        }
    }
    summary
}

/// The body of `url`, checked against what the manifest pins. Each error says what was
/// wrong with what the server sent, and what to do.
async fn download(
    client: &reqwest::Client,
    url: &str,
    p: &Photo,
    timeout: Duration,
    on_event: &mut impl FnMut(FetchEvent<'_>),
) -> Result<Vec<u8>, FetchError> {
    let stalled = || FetchError::Stalled {
        url: url.to_string(),
        timeout,
    };
    let resp = match tokio::time::timeout(timeout, client.get(url).send()).await {
        Err(_) => return Err(stalled()),
        Ok(Err(e)) => {
            return Err(FetchError::Request {
                url: url.to_string(),
                source: Arc::new(e),
            })
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    let final_url = resp.url().to_string();
    if !status.is_success() {
        return Err(FetchError::Status {
            url: final_url,
            status,
        });
    }
    let limit = p.bytes as usize;
    let mut body: Vec<u8> = Vec::with_capacity(limit.min(super::MAX_PHOTO_BYTES as usize));
    let mut stream = resp.bytes_stream();
    loop {
        match tokio::time::timeout(timeout, stream.next()).await {
            Err(_) => return Err(stalled()),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(FetchError::BrokeOff {
                    url: final_url,
                    got: body.len(),
                    expected: p.bytes,
                    source: Arc::new(e),
                })
            }
            Ok(Some(Ok(chunk))) => {
                body.extend_from_slice(&chunk);
                if body.len() > limit {
                    return Err(FetchError::TooLong {
                        url: final_url,
                        expected: p.bytes,
                    });
                }
                on_event(FetchEvent::Received {
                    bytes: body.len() as u64,
                });
            }
        }
    }
    check(&final_url, p, &body)?;
    Ok(body)
}

/// What to do about an HTTP error status.
fn status_advice(status: reqwest::StatusCode) -> &'static str {
    if status == reqwest::StatusCode::NOT_FOUND {
        "the photo is not at that URL: check the manifest's `url` (or the --mirror layout MIRROR/MANIFEST/NAME)"
    } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        "the server failed or refused for now: try again later"
    } else {
        "check the URL, and any proxy between here and the server"
    }
}

/// The checks on a complete body, in the order that gives the most useful message: a web
/// page served instead of the photo is named as such before its size or hash is compared.
fn check(url: &str, p: &Photo, body: &[u8]) -> Result<(), FetchError> {
    let url = || url.to_string();
    if crate::backend::sniff_mime(body).is_none() {
        let head: String = String::from_utf8_lossy(&body[..body.len().min(24)])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        return Err(FetchError::NotAnImage {
            url: url(),
            head: head.trim().to_string(),
        });
    }
    if (body.len() as u64) < p.bytes {
        return Err(FetchError::Truncated {
            url: url(),
            got: body.len(),
            expected: p.bytes,
        });
    }
    let got = sha256_hex(body);
    if got != p.sha256 {
        return Err(FetchError::WrongHash {
            url: url(),
            got,
            expected: p.sha256.clone(),
        });
    }
    image::ImageReader::new(std::io::Cursor::new(body))
        .with_guessed_format()
        .map_err(|e| FetchError::Unreadable {
            url: url(),
            source: Arc::new(e),
        })?
        .into_dimensions()
        .map_err(|e| FetchError::Undecodable {
            url: url(),
            source: Arc::new(e),
        })?;
    Ok(())
}

/// A failed request's message, after its URL: what went wrong and what to do.
fn request_error(e: &reqwest::Error) -> String {
    let text = chain(e);
    if text.contains("invalid peer certificate") || text.contains("UnknownIssuer") {
        format!("the server's TLS certificate is not trusted ({text}); behind a company proxy or mirror with its own CA, pass it with --ca-file")
    } else if e.is_redirect() {
        format!("too many redirects ({text})")
    } else if e.is_connect() {
        format!("cannot connect ({text}); check the network, or HTTPS_PROXY / NO_PROXY")
    } else if e.is_timeout() {
        format!("timed out ({text}); try again later, or raise --timeout-s")
    } else {
        text
    }
}

/// Writes the verified body under its cache name atomically: a temporary file in the same
/// directory, flushed to disk, then renamed, so an interrupted fetch leaves no partial photo.
fn store(root: &Path, p: &Photo, body: &[u8]) -> Result<(), FetchError> {
    let dest = root.join(p.cache_path());
    let dir = dest.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(|e| FetchError::CreateDir {
        dir: dir.to_path_buf(),
        source: Arc::new(e),
    })?;
    let tmp = dir.join(format!(".{}.partial-{}", p.name, std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &dest)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        FetchError::Write {
            path: dest.clone(),
            source: Arc::new(e),
        }
    })
}
