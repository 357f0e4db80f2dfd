//! An API key never leaves the process: a live-style `openai` target is run through
//! `eyetest run --record`, `eyetest test` and `eyetest report` against a loopback server
//! that echoes the Authorization header back in every way it can (in the answer, in 401 and
//! 500 bodies, cut off at the quote limit, in an SSE error event, in invalid JSON), plus a
//! refused connection; the key must then appear in no file of the project and in no line of
//! output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use crate::support::{people_png, write_people};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

const KEY: &str = "sk-live-SECRET-7f3a9c2e5b1d4f60";
const KEY_ENV: &str = "EYETEST_SECRETS_TEST_KEY";

type Seen = Arc<Mutex<Vec<String>>>;

/// Answers as the mode in the URL says, always quoting the Authorization header it got.
async fn chat(
    State(seen): State<Seen>,
    UrlPath(mode): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    seen.lock().unwrap().push(format!("{mode}: {auth}"));
    let json = [("content-type", "application/json")];
    match mode.as_str() {
        "ok" => {
            let body = serde_json::json!({
                "model": format!("echo ({auth})"),
                "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": format!("Two people. You sent {auth}")}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
            });
            (json, body.to_string()).into_response()
        }
        "e401" => {
            let body = serde_json::json!({"error": {"message": format!("Incorrect API key provided: {auth}")}});
            (StatusCode::UNAUTHORIZED, json, body.to_string()).into_response()
        }
        "e500" => {
            // The key straddles the 500-character cut of quoted server text.
            let dump: String = headers
                .iter()
                .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("?")))
                .collect();
            let body = format!("{}{auth} | {dump}", "E".repeat(482));
            (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
        }
        "sse" => {
            let body = format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"Two\"}}}}]}}\n\n\
                 event: error\ndata: {{\"error\":{{\"message\":\"key {auth} revoked\"}}}}\n\n"
            );
            ([("content-type", "text/event-stream")], body).into_response()
        }
        _ => (json, format!("not json; you sent {auth}")).into_response(),
    }
}

fn start_server(rt: &tokio::runtime::Runtime, seen: Seen) -> std::net::SocketAddr {
    rt.block_on(async {
        let app = axum::Router::new()
            .route("/{mode}/v1/chat/completions", axum::routing::post(chat))
            .with_state(seen);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    })
}

fn project(addr: std::net::SocketAddr, refused_port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs")).unwrap();
    write_people(root, people_png(8, 10, "Two people.", "Three."));
    let mut toml = String::new();
    for mode in ["ok", "e401", "e500", "sse", "badjson", "refused"] {
        let base = if mode == "refused" {
            format!("http://127.0.0.1:{refused_port}/v1")
        } else {
            format!("http://{addr}/{mode}/v1")
        };
        toml.push_str(&format!(
            "[target.{mode}]\nbackend = \"openai\"\nmodel = \"m\"\nbase_url = \"{base}\"\n\
             api_key_env = \"{KEY_ENV}\"\nretries = 1\nretry_backoff_ms = 1\ntimeout_s = 10\n\n"
        ));
    }
    toml.push_str("[target.replayed]\nbackend = \"replay\"\nreplay_of = \"ok\"\n");
    std::fs::write(root.join("eyetest.toml"), toml).unwrap();
    std::fs::write(
        root.join("specs/people.toml"),
        "[[case]]\nname = \"people\"\nimage = \"fixtures/people.png\"\n\
         prompt = \"How many people?\"\nrubric = { number = 2 }\n",
    )
    .unwrap();
    dir
}

fn eyetest(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eyetest"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env(KEY_ENV, KEY)
        .env("EYETEST_TARGETS", "all")
        .env("INSTA_UPDATE", "always")
        .env(
            "EYETEST_RESULTS",
            root.join("target/eyetest/test-results.jsonl"),
        )
        .env("EYETEST_RECORD", "1")
        .env_remove("CI")
        .output()
        .expect("eyetest runs")
}

/// Every 8-character piece of the key: a leak of part of it counts.
fn assert_no_key(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for piece in KEY.as_bytes().windows(8) {
        let piece = std::str::from_utf8(piece).unwrap();
        assert!(!text.contains(piece), "{what} contains {piece:?}:\n{text}");
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            files_under(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

#[test]
fn the_api_key_appears_in_no_file_and_no_output() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seen = Seen::default();
    let addr = start_server(&rt, seen.clone());
    let refused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = project(addr, refused_port);
    let root = p.path();

    let mut outputs = String::new();
    let runs: &[&[&str]] = &[
        &["run", "--record"],
        &["test"],
        &["report"],
        &["report", "--out", "target/eyetest/report.md"],
        &[
            "report",
            "--format",
            "junit",
            "--out",
            "target/eyetest/junit.xml",
        ],
        &[
            "report",
            "--format",
            "json",
            "--out",
            "target/eyetest/report.jsonl",
        ],
        &["report", "--format", "text"],
    ];
    for args in runs {
        let o = eyetest(root, args);
        assert_no_key(&format!("stdout of {args:?}"), &o.stdout);
        assert_no_key(&format!("stderr of {args:?}"), &o.stderr);
        outputs.push_str(&String::from_utf8_lossy(&o.stdout));
        outputs.push_str(&String::from_utf8_lossy(&o.stderr));
    }

    // Proof that the key went out, and that every echoing path was taken.
    let seen = seen.lock().unwrap().clone();
    for mode in ["ok", "e401", "e500", "sse", "badjson"] {
        assert!(
            seen.contains(&format!("{mode}: Bearer {KEY}")),
            "{mode} never saw the key: {seen:?}"
        );
    }
    for expected in [
        "HTTP 401",
        "HTTP 500",
        "gave up after 2 attempts",
        "cannot connect",
        "the server sent an error: key Bearer *** revoked",
        "malformed response",
        "Two people. You sent Bearer ***",
    ] {
        assert!(outputs.contains(expected), "no {expected:?} in:\n{outputs}");
    }

    let mut files = Vec::new();
    files_under(root, &mut files);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    // `eyetest run` writes a file per run (target/eyetest/runs/<run id>.jsonl).
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("target/eyetest/runs/") && n.ends_with(".jsonl")),
        "no run file in {names:?}"
    );
    for must in [
        "target/eyetest/latest",
        "target/eyetest/test-results.jsonl",
        "target/eyetest/report.md",
        "target/eyetest/junit.xml",
        "golden/recordings/ok/people/people.toml",
        "golden/snapshots/people/people@ok.snap",
    ] {
        assert!(names.iter().any(|n| n == must), "no {must} in {names:?}");
    }
    for f in &files {
        assert_no_key(&f.display().to_string(), &std::fs::read(f).unwrap());
    }
}
