//! HTTPS endpoints: a loopback server with a certificate from a private CA made in the test.
//! A target without `ca_file` is refused with a message that says what to do; the same
//! endpoint with `ca_file` pointing at the CA answers; the refusal is not retried.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use eyetest::fixture::encode_png;
use eyetest::results::{read_results, Status};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A CA certificate (PEM) and a server configuration whose certificate, for 127.0.0.1 and
/// localhost, that CA signed.
fn private_ca() -> (String, ServerConfig) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "eyetest test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    (ca.pem(), config)
}

/// TCP accept plus TLS handshake; a client that refuses the certificate just goes away.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn answer() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "model": "tls-model",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Two people."}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    }))
}

fn start_server(rt: &tokio::runtime::Runtime, config: ServerConfig) -> u16 {
    rt.block_on(async {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let listener = TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        };
        let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(answer));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    })
}

fn project(port: u16, ca_pem: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in ["specs", "fixtures", "certs"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("certs/ca.pem"), ca_pem).unwrap();
    let png = encode_png(4, 4, &[0; 4 * 4 * 3], None).unwrap();
    std::fs::write(root.join("fixtures/x.png"), png).unwrap();
    let base = format!("https://127.0.0.1:{port}/v1");
    std::fs::write(
        root.join("eyetest.toml"),
        format!(
            "[target.untrusted]\nbackend = \"openai\"\nmodel = \"m\"\nbase_url = \"{base}\"\n\
             retries = 2\nretry_backoff_ms = 1\n\n\
             [target.trusted]\nbackend = \"openai\"\nmodel = \"m\"\nbase_url = \"{base}\"\n\
             ca_file = \"certs/ca.pem\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("specs/people.toml"),
        "[[case]]\nname = \"people\"\nimage = \"fixtures/x.png\"\nprompt = \"How many?\"\n\
         targets = [\"untrusted\", \"trusted\"]\nrubric = { number = 2 }\n",
    )
    .unwrap();
    dir
}

fn eyetest(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eyetest"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("EYETEST_TARGETS", "all")
        // The first answer is accepted as it comes, so that the verdict is the rubric's
        // (`eyetest run` fails a new snapshot, as `cargo test` does).
        .env("INSTA_UPDATE", "always")
        .env_remove("CI")
        .output()
        .expect("eyetest runs")
}

#[test]
fn a_private_ca_is_trusted_only_by_the_target_that_names_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ca_pem, config) = private_ca();
    let port = start_server(&rt, config);
    let p = project(port, &ca_pem);
    let root = p.path();

    let o = eyetest(root, &["run", "--out", "results.jsonl"]);
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let records = read_results(&root.join("results.jsonl")).unwrap();
    let by_target = |t: &str| records.iter().find(|r| r.target == t).unwrap();

    let trusted = by_target("trusted");
    assert_eq!(trusted.status, Status::Passed, "{output}");
    assert_eq!(trusted.answer.as_deref(), Some("Two people."));

    let untrusted = by_target("untrusted");
    assert_eq!(untrusted.status, Status::Error, "{output}");
    let reason = untrusted.reason.as_deref().unwrap();
    assert_eq!(
        reason,
        format!(
            "cannot connect securely to https://127.0.0.1:{port}/v1/chat/completions: TLS: the \
             server's certificate is not trusted (invalid peer certificate: UnknownIssuer); if \
             the server uses a self-signed or private CA, set `ca_file` on the target to trust \
             it (a PEM file of the CA certificate)"
        ),
        "a refused certificate is not retried"
    );
}

/// Issue 10 item 13: a throughput sweep builds its client where cases do, so it trusts the
/// target's `ca_file` too. Before, the sweep's own copy of the client set-up never applied
/// it: every request failed on the certificate and the level measured nothing.
#[test]
fn a_throughput_sweep_trusts_the_target_ca_file() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ca_pem, config) = private_ca();
    let port = start_server(&rt, config);
    let p = project(port, &ca_pem);
    let root = p.path();
    std::fs::write(
        root.join("specs/sweep.toml"),
        "[[throughput]]\nname = \"tls-sweep\"\ntargets = [\"trusted\"]\n\
         images = { files = [\"fixtures/x.png\"] }\nprompt = \"Describe.\"\nmax_tokens = 3\n\
         stream = false\nconcurrency = [1, 2]\nrequests = [4, 4]\nrepeats = 1\n",
    )
    .unwrap();

    let o = Command::new(env!("CARGO_BIN_EXE_eyetest"))
        .arg("--root")
        .arg(root)
        .args(["bench", "tls-sweep", "--target", "trusted", "--out", "out"])
        .env_remove("EYETEST_TARGETS")
        .env_remove("EYETEST_ACCEPT_BASELINE")
        .output()
        .expect("eyetest runs");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{output}");
    assert!(!output.contains("UnknownIssuer"), "{output}");
    assert!(!output.contains("failed x"), "{output}");

    // The same sweep on the target without the CA is refused on the certificate: the CA,
    // not something else, is what made the difference.
    let o = Command::new(env!("CARGO_BIN_EXE_eyetest"))
        .arg("--root")
        .arg(root)
        .args([
            "bench",
            "tls-sweep",
            "--target",
            "untrusted",
            "--out",
            "out",
        ])
        .env_remove("EYETEST_TARGETS")
        .env_remove("EYETEST_ACCEPT_BASELINE")
        .output()
        .expect("eyetest runs");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "{output}");
    assert!(output.contains("UnknownIssuer"), "{output}");
}
