//! Downloading manifest photos: one at a time, each checked (HTTP status, image bytes, size,
//! sha256) before it is renamed into the cache, so the cache never holds a half-written or
//! wrong file under a photo's name.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{cache_state, sha256_hex, CacheState, Photo};

/// How to reach the photos.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Replaces every photo's URL with `MIRROR/MANIFEST/NAME` (a local mirror, or a test server).
    pub mirror: Option<String>,
    /// PEM file of a CA to trust on top of the bundled roots (a company proxy or mirror).
    pub ca_file: Option<PathBuf>,
    /// Longest wait for the server: to connect, to answer, and between two pieces of the body.
    pub timeout: Duration,
    /// Draw a progress bar (when stderr is a terminal).
    pub progress: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            mirror: None,
            ca_file: None,
            timeout: Duration::from_secs(30),
            progress: true,
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
    pub failed: Vec<(String, String)>,
}

/// Builds the HTTP client: redirects followed (reqwest's default, up to 10), proxies from
/// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` with `NO_PROXY` honoured (reqwest reads them), and
/// the CA file trusted on top of the bundled webpki roots.
fn client(opts: &FetchOptions) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("eyetest/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(opts.timeout)
        .redirect(reqwest::redirect::Policy::limited(10));
    if let Some(ca) = &opts.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| format!("CA file `{}` cannot be read: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
            format!(
                "CA file `{}` has a damaged PEM certificate block",
                ca.display()
            )
        })?;
        if certs.is_empty() {
            return Err(format!(
                "CA file `{}` holds no PEM certificate (a `-----BEGIN CERTIFICATE-----` block)",
                ca.display()
            ));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build()
        .map_err(|e| format!("cannot set up the HTTP client: {}", chain(&e)))
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
pub async fn fetch(root: &Path, photos: &[Arc<Photo>], opts: &FetchOptions) -> FetchSummary {
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
    let total: u64 = todo.iter().map(|p| p.bytes).sum();
    let bar = ProgressBar::with_draw_target(
        Some(total),
        if opts.progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for p in todo {
        bar.set_message(p.key());
        let url = p.source_url(opts.mirror.as_deref());
        let before = bar.position();
        match download(&client, &url, p, opts.timeout, &bar)
            .await
            .and_then(|body| store(root, p, &body))
        {
            Ok(()) => {
                bar.suspend(|| eprintln!("fetched {} ({} bytes)", p.key(), p.bytes));
                bar.set_position(before + p.bytes);
                summary.fetched.push(p.key());
            }
            Err(e) => {
                bar.suspend(|| eprintln!("FAILED  {}: {e}", p.key()));
                bar.set_position(before + p.bytes);
                summary.failed.push((p.key(), e));
            }
        }
    }
    bar.finish_and_clear();
    summary
}

/// The body of `url`, checked against what the manifest pins. Each error says what was
/// wrong with what the server sent, and what to do.
async fn download(
    client: &reqwest::Client,
    url: &str,
    p: &Photo,
    timeout: Duration,
    bar: &ProgressBar,
) -> Result<Vec<u8>, String> {
    let stalled = || {
        format!(
            "{url}: no data for {} s (the server is too slow or stalled); try again later, or raise --timeout-s",
            timeout.as_secs_f64()
        )
    };
    let resp = match tokio::time::timeout(timeout, client.get(url).send()).await {
        Err(_) => return Err(stalled()),
        Ok(Err(e)) => return Err(request_error(url, &e)),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    let final_url = resp.url().to_string();
    if !status.is_success() {
        let advice = if status == reqwest::StatusCode::NOT_FOUND {
            "the photo is not at that URL: check the manifest's `url` (or the --mirror layout MIRROR/MANIFEST/NAME)"
        } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            "the server failed or refused for now: try again later"
        } else {
            "check the URL, and any proxy between here and the server"
        };
        return Err(format!("{final_url}: HTTP {status}; {advice}"));
    }
    let limit = p.bytes as usize;
    let mut body: Vec<u8> = Vec::with_capacity(limit.min(super::MAX_PHOTO_BYTES as usize));
    let mut stream = resp.bytes_stream();
    let start = bar.position();
    loop {
        match tokio::time::timeout(timeout, stream.next()).await {
            Err(_) => return Err(stalled()),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(format!(
                    "{final_url}: the download broke off after {} of {} bytes ({}); try again",
                    body.len(),
                    p.bytes,
                    chain(&e)
                ))
            }
            Ok(Some(Ok(chunk))) => {
                body.extend_from_slice(&chunk);
                if body.len() > limit {
                    return Err(format!(
                        "{final_url}: the server sends more than the manifest's {} bytes: not the pinned file (check the manifest's `url`, `bytes` and `sha256`)",
                        p.bytes
                    ));
                }
                bar.set_position(start + body.len() as u64);
            }
        }
    }
    check(&final_url, p, &body)?;
    Ok(body)
}

/// The checks on a complete body, in the order that gives the most useful message: a web
/// page served instead of the photo is named as such before its size or hash is compared.
fn check(url: &str, p: &Photo, body: &[u8]) -> Result<(), String> {
    if crate::backend::sniff_mime(body).is_none() {
        let head: String = String::from_utf8_lossy(&body[..body.len().min(24)])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        return Err(format!(
            "{url}: not a PNG or JPEG image (it starts with {:?}); the URL serves something else, such as an error or login page",
            head.trim()
        ));
    }
    if (body.len() as u64) < p.bytes {
        return Err(format!(
            "{url}: truncated: got {} of {} bytes; try again",
            body.len(),
            p.bytes
        ));
    }
    let got = sha256_hex(body);
    if got != p.sha256 {
        return Err(format!(
            "{url}: wrong file: sha256 is {got}, the manifest pins {}; the file at that URL changed, or the manifest is wrong",
            p.sha256
        ));
    }
    image::ImageReader::new(std::io::Cursor::new(body))
        .with_guessed_format()
        .map_err(|e| format!("{url}: cannot read the image: {e}"))?
        .into_dimensions()
        .map_err(|e| format!("{url}: not a decodable image: {e}"))?;
    Ok(())
}

fn request_error(url: &str, e: &reqwest::Error) -> String {
    let text = chain(e);
    if text.contains("invalid peer certificate") || text.contains("UnknownIssuer") {
        format!("{url}: the server's TLS certificate is not trusted ({text}); behind a company proxy or mirror with its own CA, pass it with --ca-file")
    } else if e.is_redirect() {
        format!("{url}: too many redirects ({text})")
    } else if e.is_connect() {
        format!("{url}: cannot connect ({text}); check the network, or HTTPS_PROXY / NO_PROXY")
    } else if e.is_timeout() {
        format!("{url}: timed out ({text}); try again later, or raise --timeout-s")
    } else {
        format!("{url}: {text}")
    }
}

/// Writes the verified body under its cache name atomically: a temporary file in the same
/// directory, flushed to disk, then renamed, so an interrupted fetch leaves no partial photo.
fn store(root: &Path, p: &Photo, body: &[u8]) -> Result<(), String> {
    let dest = root.join(p.cache_path());
    let dir = dest.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let tmp = dir.join(format!(".{}.partial-{}", p.name, std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &dest)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write `{}`: {e}", dest.display())
    })
}
