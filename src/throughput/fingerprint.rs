//! What a throughput number depends on, so a baseline is only ever compared with a run on
//! the same hardware and settings: a 90B model on 4 GPUs is not "slower" than an 11B on one.

use std::fmt;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The GPUs a run used. `count == 0` means no GPU.
///
/// Detected with [`detect_gpus`] when the engine runs on this machine, or declared by the
/// target (`gpu = { name = "H100 SXM", count = 1 }`) when it runs elsewhere: the local
/// `nvidia-smi` says nothing about a remote server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub name: String,
    pub count: usize,
    /// `None` when declared rather than detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

impl GpuInfo {
    pub fn none() -> GpuInfo {
        GpuInfo {
            name: "no GPU".into(),
            count: 0,
            driver: None,
        }
    }

    pub fn declared(name: impl Into<String>, count: usize) -> GpuInfo {
        GpuInfo {
            name: name.into(),
            count,
            driver: None,
        }
    }

    pub fn is_none(&self) -> bool {
        self.count == 0
    }

    /// Short form for chart legends: "1x H100 SXM".
    pub fn short(&self) -> String {
        if self.is_none() {
            self.name.clone()
        } else {
            format!("{}x {}", self.count, self.name)
        }
    }
}

impl fmt::Display for GpuInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())?;
        match &self.driver {
            Some(d) if !self.is_none() => write!(f, " (driver {d})"),
            _ => Ok(()),
        }
    }
}

/// How long `nvidia-smi` may take. It normally answers in well under a second, but hangs
/// for a long time on a wedged driver; a test run must not hang with it.
pub const NVIDIA_SMI_TIMEOUT: Duration = Duration::from_secs(5);

/// The GPUs of this machine per `nvidia-smi`, or "no GPU" when it is absent, fails, prints
/// nothing usable or takes longer than [`NVIDIA_SMI_TIMEOUT`].
pub fn detect_gpus() -> GpuInfo {
    detect_gpus_with("nvidia-smi", NVIDIA_SMI_TIMEOUT)
}

/// [`detect_gpus`] with the program and timeout as parameters, so tests can stand in a
/// fake `nvidia-smi` that hangs or prints known lines.
pub fn detect_gpus_with(program: &str, timeout: Duration) -> GpuInfo {
    run_with_timeout(
        program,
        &["--query-gpu=name,driver_version", "--format=csv,noheader"],
        timeout,
    )
    .map(|out| parse_nvidia_smi(&out))
    .unwrap_or_else(GpuInfo::none)
}

/// Stdout of a successful run, or `None` on spawn failure, non-zero exit or timeout.
/// Stdout is drained on a thread so a chatty child cannot block on a full pipe while we
/// poll; on timeout the child is killed and reaped so no zombie is left behind.
fn run_with_timeout(program: &str, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).ok().map(|_| s)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    // After exit or kill the pipe's write end is closed (unless the child left a grandchild
    // holding it, in which case we do not wait for the reader).
    let status = status?;
    if !status.success() {
        return None;
    }
    reader.join().ok().flatten()
}

/// Parses `name, driver_version` lines, one per GPU. Mixed GPU models are joined with " + "
/// so a mixed box never matches a uniform one.
pub fn parse_nvidia_smi(out: &str) -> GpuInfo {
    let mut names: Vec<String> = Vec::new();
    let mut driver = None;
    let mut count = 0;
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, drv) = match line.rsplit_once(',') {
            Some((n, d)) => (n.trim(), Some(d.trim())),
            None => (line, None),
        };
        if name.is_empty()
            || name.starts_with("No devices")
            || name.contains("NVIDIA-SMI has failed")
        {
            continue;
        }
        count += 1;
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        if driver.is_none() {
            driver = drv.filter(|d| !d.is_empty()).map(str::to_string);
        }
    }
    if count == 0 {
        return GpuInfo::none();
    }
    GpuInfo {
        name: names.join(" + "),
        count,
        driver,
    }
}

/// Everything a throughput result depends on besides the code under test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub gpu: GpuInfo,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// The load's image, e.g. "random 560x560": the vision encoder's cost depends on it.
    pub image: String,
    pub max_tokens: u32,
    /// With `ignore_eos` every answer is `max_tokens` long; without it, lengths vary with
    /// the model's mood and so do throughputs.
    pub ignore_eos: bool,
    /// First 12 hex digits of the prompt's sha256 (see [`Fingerprint::prompt_hash`]).
    pub prompt_sha256: String,
}

impl Fingerprint {
    /// 12 hex digits are plenty to tell prompts apart and short enough to read in a diff.
    pub fn prompt_hash(prompt: &str) -> String {
        hex::encode(Sha256::digest(prompt.as_bytes()))[..12].to_string()
    }

    /// Field name and rendered value, in a fixed order. The single source for both the key
    /// hash and [`Fingerprint::differences`], so the two can never disagree about what counts.
    fn fields(&self) -> Vec<(&'static str, String)> {
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "unknown".into());
        vec![
            ("gpu", self.gpu.to_string()),
            ("model", self.model.clone()),
            ("engine", opt(&self.engine)),
            ("engine_version", opt(&self.engine_version)),
            ("image", self.image.clone()),
            ("max_tokens", self.max_tokens.to_string()),
            ("ignore_eos", self.ignore_eos.to_string()),
            ("prompt_sha256", self.prompt_sha256.clone()),
        ]
    }

    /// A filesystem-safe baseline file name: readable GPU part plus 8 hex digits of a hash
    /// of every field (driver included), e.g. `1x-nvidia-h100-80gb-hbm3-3fa2b1c9`. The hash
    /// covers the GPU too, so two fingerprints share a key only if they are equal.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        for (name, value) in self.fields() {
            h.update(name.as_bytes());
            h.update(b"=");
            h.update(value.as_bytes());
            h.update(b"\n");
        }
        let hash = &hex::encode(h.finalize())[..8];
        let gpu = if self.gpu.is_none() {
            "no-gpu".to_string()
        } else {
            format!("{}x-{}", self.gpu.count, slug(&self.gpu.name))
        };
        format!("{gpu}-{hash}")
    }

    /// One line per differing field, `"<field>: <self> vs <other>"`; empty when equal.
    pub fn differences(&self, other: &Fingerprint) -> Vec<String> {
        self.fields()
            .into_iter()
            .zip(other.fields())
            .filter(|(a, b)| a.1 != b.1)
            .map(|((name, a), (_, b))| format!("{name}: {a} vs {b}"))
            .collect()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.model, self.gpu)?;
        if let Some(e) = &self.engine {
            write!(f, ", {e}")?;
            if let Some(v) = &self.engine_version {
                write!(f, " {v}")?;
            }
        }
        write!(
            f,
            ", {} image, max_tokens {}{}, prompt {}",
            self.image,
            self.max_tokens,
            if self.ignore_eos { " (ignore_eos)" } else { "" },
            self.prompt_sha256
        )
    }
}

/// Lower-case ASCII alphanumerics with single dashes: safe on every filesystem and in URLs.
pub(crate) fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "x".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throughput::test_support::h100;

    #[test]
    fn parses_one_line_per_gpu() {
        let g = parse_nvidia_smi("NVIDIA H100 80GB HBM3, 580.1\nNVIDIA H100 80GB HBM3, 580.1\n\n");
        assert_eq!(g.count, 2);
        assert_eq!(g.to_string(), "2x NVIDIA H100 80GB HBM3 (driver 580.1)");
        assert!(parse_nvidia_smi("").is_none());
        assert!(parse_nvidia_smi("No devices were found\n").is_none());
        let mixed = parse_nvidia_smi("NVIDIA A100, 550\nTesla T4, 550\n");
        assert_eq!(mixed.name, "NVIDIA A100 + Tesla T4");
    }

    #[test]
    fn missing_nvidia_smi_means_no_gpu() {
        let g = detect_gpus_with("/nonexistent/nvidia-smi", Duration::from_secs(1));
        assert_eq!(g, GpuInfo::none());
        assert_eq!(g.to_string(), "no GPU");
    }

    #[cfg(unix)]
    #[test]
    fn hanging_or_failing_nvidia_smi_does_not_hang_us() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p.to_string_lossy().into_owned()
        };
        let hang = script("hang", "exec sleep 30");
        let t = Instant::now();
        assert!(detect_gpus_with(&hang, Duration::from_millis(300)).is_none());
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

        let fail = script("fail", "echo 'NVIDIA H100, 1'; exit 9");
        assert!(detect_gpus_with(&fail, Duration::from_secs(5)).is_none());

        let good = script("good", "echo 'NVIDIA H100 80GB HBM3, 580.1'");
        assert_eq!(detect_gpus_with(&good, Duration::from_secs(5)).count, 1);
    }

    #[test]
    fn key_is_safe_and_sensitive_to_every_field() {
        let a = h100();
        let key = a.key();
        assert!(key.starts_with("1x-nvidia-h100-80gb-hbm3-"), "{key}");
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        let mut b = a.clone();
        b.gpu.driver = Some("575.0".into());
        assert_ne!(a.key(), b.key());
        let mut c = a.clone();
        c.max_tokens = 256;
        assert_ne!(a.key(), c.key());
        let mut none = a.clone();
        none.gpu = GpuInfo::none();
        assert!(none.key().starts_with("no-gpu-"));
    }

    #[test]
    fn differences_list_exactly_what_differs() {
        let a = h100();
        assert!(a.differences(&a).is_empty());
        let mut b = a.clone();
        b.gpu = GpuInfo::none();
        b.max_tokens = 256;
        assert_eq!(
            a.differences(&b),
            vec![
                "gpu: 1x NVIDIA H100 80GB HBM3 (driver 580.1) vs no GPU".to_string(),
                "max_tokens: 512 vs 256".to_string(),
            ]
        );
    }
}
