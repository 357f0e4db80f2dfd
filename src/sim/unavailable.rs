//! `SimServer` in a build without the `sim` feature: a `sim` target asked for there fails
//! with what to change, like any target that cannot run, instead of the build failing.

use std::net::SocketAddr;

use super::{SimConfig, SimStats};

/// What a `sim` target says in a build without the simulated engine.
pub const NO_SIM: &str = "this build of eyetest has no simulated engine: \
    enable the `sim` feature of the eyetest dependency (`features = [\"sim\"]`)";

/// Never constructed: [`SimServer::start`] always fails here.
pub enum SimServer {}

impl SimServer {
    pub async fn start(_addr: SocketAddr, _config: SimConfig) -> std::io::Result<SimServer> {
        Err(std::io::Error::other(NO_SIM))
    }
    pub fn local_addr(&self) -> SocketAddr {
        match *self {}
    }
    pub fn base_url(&self) -> String {
        match *self {}
    }
    pub fn model_id(&self) -> &str {
        match *self {}
    }
    pub fn stats(&self) -> SimStats {
        match *self {}
    }
    pub async fn shutdown(self) {
        match self {}
    }
}
