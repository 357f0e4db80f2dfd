//! Building a run's [`Fingerprint`] from what the target declares and what the server says.
//!
//! The GPU comes from `nvidia-smi` only when the engine runs on this machine (a localhost
//! endpoint): the local GPUs say nothing about a remote server, whose hardware is what the
//! target declares. The model is the one the server says it serves, and the engine version
//! comes from vLLM's and SGLang's `GET /version` where the server has one, so an engine
//! upgrade makes a new fingerprint instead of a "regression".

use std::time::Duration;

use reqwest::Url;

use super::fingerprint::{detect_gpus, Fingerprint, GpuInfo};
use super::spec::ThroughputSpec;
use crate::backend::openai::OpenAiClient;
use crate::target::Target;

/// GPU recorded for the simulated engine: there is none, and the name says why.
pub const SIM_GPU: &str = "simulated, no GPU";
/// Engine recorded for the simulated engine.
pub const SIM_ENGINE: &str = "eyetest-sim (simulated engine)";
/// The simulated engine's "version", e.g. `debug build on 2x Intel(R) Xeon(R) Processor`.
///
/// The engine is eyetest's own code running on this machine's CPUs: its latency model sets
/// the pace only while the CPU keeps up, and at high concurrency (1.25 MB bodies arriving at
/// once) the CPU and the build decide. So both are part of what a simulated run's numbers
/// depend on, and a baseline recorded by a release build, or on another CPU, is reported as
/// a different fingerprint instead of gating this run.
pub fn sim_engine_version() -> String {
    format!("{SIM_BUILD} on {}", cpu_description())
}

/// `2x Intel(R) Xeon(R) Processor`: how many CPUs and which model, the context any
/// client-side or simulated number needs (also printed by the benchmarks).
pub fn cpu_description() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| format!("{} CPU", std::env::consts::ARCH));
    format!("{cpus}x {model}")
}

/// An unoptimized build of the simulated engine (what `cargo test` runs) is several times
/// slower than a release build.
pub const SIM_BUILD: &str = if cfg!(debug_assertions) {
    "debug build"
} else {
    "release build"
};
/// `/version` must answer quickly or not at all: it is metadata, not the run.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// The fingerprint of `spec` on `target` behind `base_url`, plus notes on anything that had
/// to be assumed (shown with the run so a reader knows what the key rests on).
pub async fn fingerprint(
    spec: &ThroughputSpec,
    target: &Target,
    base_url: &str,
    client: &OpenAiClient,
    http: &reqwest::Client,
    image_label: &str,
) -> (Fingerprint, Vec<String>) {
    let mut notes = Vec::new();
    let sim = target.is_simulated();
    let gpu = if sim {
        GpuInfo {
            name: SIM_GPU.into(),
            count: 0,
            driver: None,
        }
    } else {
        gpu_for(target, base_url, &mut notes).await
    };
    let configured = target.common.model.clone();
    let model = match client.models().await {
        Ok(ids) if ids.contains(&configured) => configured,
        Ok(ids) if configured.is_empty() && !ids.is_empty() => ids[0].clone(),
        Ok(ids) if ids.len() == 1 => {
            // The simulated engine answers to any model name and reports its own.
            if !configured.is_empty() && !sim {
                notes.push(format!(
                    "the server serves `{}`, not the configured `{configured}`; recording the served one",
                    ids[0]
                ));
            }
            ids[0].clone()
        }
        Ok(_) => configured,
        Err(e) => {
            notes.push(format!(
                "could not list the served models ({e}); recording the configured model"
            ));
            configured
        }
    };
    let engine = if sim {
        Some(SIM_ENGINE.to_string())
    } else {
        target.common.engine.clone()
    };
    let engine_version = if sim {
        Some(sim_engine_version())
    } else {
        engine_version(http, base_url).await
    };
    let fp = Fingerprint {
        gpu,
        model,
        engine,
        engine_version,
        image: image_label.to_string(),
        max_tokens: spec.max_tokens,
        ignore_eos: spec.ignore_eos,
        prompt_sha256: Fingerprint::prompt_hash(&spec.prompt),
    };
    (fp, notes)
}

async fn gpu_for(target: &Target, base_url: &str, notes: &mut Vec<String>) -> GpuInfo {
    let declared = target
        .common
        .gpu
        .as_ref()
        .map(|g| GpuInfo::declared(g.name.clone(), g.count as usize));
    if is_local(base_url) {
        // nvidia-smi may take seconds on a busy driver; keep it off the runtime's workers.
        let detected = tokio::task::spawn_blocking(detect_gpus)
            .await
            .unwrap_or_else(|_| GpuInfo::none());
        if !detected.is_none() {
            return detected;
        }
        if let Some(d) = declared {
            notes.push(format!(
                "the endpoint is on this machine but nvidia-smi found no GPU; recording the declared {}",
                d.short()
            ));
            return d;
        }
        return detected;
    }
    declared.unwrap_or_else(|| {
        notes.push(
            "the target declares no `gpu` and its endpoint is remote: the hardware is recorded as undeclared; add `gpu = { name = \"...\", count = N }` to the target".into(),
        );
        GpuInfo {
            name: "undeclared (remote endpoint)".into(),
            count: 0,
            driver: None,
        }
    })
}

/// Whether the endpoint's host is this machine.
pub fn is_local(base_url: &str) -> bool {
    let Ok(url) = Url::parse(base_url.trim()) else {
        return false;
    };
    let host = url.host_str().unwrap_or("");
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// `GET <server root>/version` (`{"version": "0.10.2"}` from vLLM and SGLang); `None`
/// when the server has no such route or says nothing usable.
pub async fn engine_version(http: &reqwest::Client, base_url: &str) -> Option<String> {
    let mut url = Url::parse(base_url.trim()).ok()?;
    let path = url.path().trim_end_matches('/');
    let root = path.strip_suffix("/v1").unwrap_or(path).to_string();
    url.set_path(&format!("{root}/version"));
    url.set_query(None);
    let response = http.get(url).timeout(VERSION_TIMEOUT).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let value: serde_json::Value = response.json().await.ok()?;
    let v = value.get("version")?.as_str()?.trim();
    (!v.is_empty() && v.len() < 100).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts() {
        for u in [
            "http://localhost:8000/v1",
            "http://127.0.0.1:8000/v1",
            "http://[::1]:8000/v1",
            "http://0.0.0.0:8000",
        ] {
            assert!(is_local(u), "{u}");
        }
        for u in [
            "http://10.0.0.5:8000/v1",
            "https://api.openai.com/v1",
            "nonsense",
        ] {
            assert!(!is_local(u), "{u}");
        }
    }
}
