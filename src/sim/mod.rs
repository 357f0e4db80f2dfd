//! TEMP STUB
use std::net::SocketAddr;
use std::time::Duration;
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    Terse,
    Verbose,
    Wrong,
    Failing,
    Slow,
    Flaky,
}
impl std::str::FromStr for Behaviour {
    type Err = String;
    fn from_str(_s: &str) -> Result<Self, String> {
        Ok(Behaviour::Terse)
    }
}
#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub ttft: Duration,
    pub per_token: Duration,
    pub prefill_per_tile: Duration,
    pub jitter: f64,
}
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub behaviour: Behaviour,
    pub latency: Latency,
    pub max_concurrency: usize,
    pub seed: u64,
}
pub struct SimServer;
impl SimServer {
    pub async fn start(_a: SocketAddr, _c: SimConfig) -> std::io::Result<SimServer> {
        Ok(SimServer)
    }
    pub fn base_url(&self) -> String {
        String::new()
    }
}
pub async fn serve_forever(_a: SocketAddr, _c: SimConfig) -> std::io::Result<()> {
    Ok(())
}
