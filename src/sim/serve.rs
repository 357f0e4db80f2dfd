//! Serving the engine on a port: bind, accept, shut down. Behind the `sim` feature, so that a
//! harness with only real targets does not compile an HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{banner, server, SimConfig, SimStats};

/// How long [`SimServer::shutdown`] waits for open responses before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The engine's routes, for embedding in another server. Counters are not reachable from
/// here; use [`SimServer`] when a test needs [`SimStats`].
pub fn router(config: SimConfig) -> axum::Router {
    server::app(server::Engine::new(config))
}

/// A running simulated engine on its own port, served by the current tokio runtime.
pub struct SimServer {
    addr: SocketAddr,
    engine: Arc<server::Engine>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl SimServer {
    /// Binds `addr` (`127.0.0.1:0` for an ephemeral port) and starts serving.
    pub async fn start(addr: SocketAddr, config: SimConfig) -> std::io::Result<SimServer> {
        let listener = bind(addr)?;
        let addr = listener.local_addr()?;
        let engine = server::Engine::new(config);
        let app = server::app(engine.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // A dropped SimServer drops the sender, which also stops the server.
            axum::serve(nodelay(listener), app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(SimServer {
            addr,
            engine,
            stop: Some(stop),
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`, what an OpenAI client takes as its base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn model_id(&self) -> &str {
        self.engine.model_id()
    }

    pub fn stats(&self) -> SimStats {
        self.engine.stats()
    }

    /// Stops accepting, lets open responses finish (for up to 5 s), then returns.
    pub async fn shutdown(mut self) {
        self.engine.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let abort = self.task.abort_handle();
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

impl Drop for SimServer {
    /// Releases `hang` and `stall` requests too, or the server task would outlive its owner
    /// waiting for them.
    fn drop(&mut self) {
        self.engine.close();
    }
}

/// Binds with a deep accept queue: a benchmark opening a thousand connections at once
/// overflows tokio's default backlog (1024), and the dropped handshakes then show up as
/// hundreds of milliseconds of fake TTFT.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Capped by the kernel (`net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 8192;

/// Token events are tiny writes; without TCP_NODELAY, Nagle's algorithm would hold them back
/// and add tens of milliseconds to measured ITL.
fn nodelay(
    listener: TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = SocketAddr> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

/// Runs the engine until Ctrl-C or SIGTERM. `listening` gets the start-up line, which says
/// that the engine is simulated ([`banner`]), once the port is bound: the caller shows it.
pub async fn serve_forever(
    addr: SocketAddr,
    config: SimConfig,
    listening: impl FnOnce(&str),
) -> std::io::Result<()> {
    let listener = bind(addr)?;
    let addr = listener.local_addr()?;
    listening(&banner(addr, &config));
    let app = router(config);
    axum::serve(nodelay(listener), app)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
