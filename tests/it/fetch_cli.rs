//! `eyetest fetch` end to end: the real binary against a loopback HTTP server that serves
//! generated photos, and misbehaves on purpose (404, wrong bytes, a cut-off body, a web page
//! instead of an image, a stalled server, redirects, a proxy).
//!
//! The study's own photos cannot be had here (no internet, and they are not ours), so the test
//! project stands generated PNGs in for them, under the study's names and with a manifest of
//! their own hashes. Each carries, embedded, the answers the simulated engine gives for the
//! real photo, so `eyetest run` on it exercises the study's real specs and rubrics.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::text;
use eyetest::digest::sha256_hex;
use eyetest::sim::study::{truth_by_name, STUDY};

/// What the loopback server does for one path.
#[derive(Clone)]
enum Route {
    Ok(Vec<u8>),
    Redirect(String),
    /// Declares `Content-Length: declared`, sends `body`, closes.
    CutOff(Vec<u8>, usize),
    /// Sends the headers and nothing more for a long time.
    Stall,
}

#[derive(Clone, Default)]
struct Server {
    routes: Arc<Mutex<HashMap<String, Route>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    port: u16,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = Server {
            port: listener.local_addr().unwrap().port(),
            ..Default::default()
        };
        let me = s.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let me = me.clone();
                std::thread::spawn(move || me.serve(conn));
            }
        });
        s
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn route(&self, path: &str, r: Route) {
        self.routes.lock().unwrap().insert(path.into(), r);
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }

    fn serve(&self, mut conn: TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        // A proxy gets the absolute URL: serve its path the same way.
        let path = match target.strip_prefix("http://") {
            Some(rest) => format!("/{}", rest.split_once('/').map_or("", |(_, p)| p)),
            None => target,
        };
        *self.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        let route = self.routes.lock().unwrap().get(&path).cloned();
        let _ = match route {
            None => conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
            ),
            Some(Route::Ok(body)) => conn
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                )
                .and_then(|_| conn.write_all(&body)),
            Some(Route::Redirect(to)) => conn.write_all(
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            ),
            Some(Route::CutOff(body, declared)) => conn
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .and_then(|_| conn.write_all(&body)),
            Some(Route::Stall) => {
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100\r\n\r\n",
                );
                std::thread::sleep(Duration::from_secs(20));
                Ok(())
            }
        };
        let _ = conn.flush();
    }
}

/// A small PNG standing in for a study photo, carrying the simulated engine's answers for it.
fn stand_in(name: &str, i: usize) -> Vec<u8> {
    let (w, h) = (48u32, 32u32);
    let rgb: Vec<u8> = (0..w * h)
        .flat_map(|p| {
            [
                (p as usize * 7 + i * 31) as u8,
                (i * 9) as u8,
                (p / w) as u8,
            ]
        })
        .collect();
    eyetest::fixture::encode_png(w, h, &rgb, truth_by_name(name).as_ref()).unwrap()
}

const PROJECT: &str = r#"
[settings]
specs = "specs"
golden = "golden"

[target.sim]
backend = "sim"
model = "eyetest-sim"
behaviour = "terse"
"#;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A project holding the study's real spec, a manifest of stand-in photos (URLs that must never
/// be contacted: only the mirror is), and the repo's committed `sim` snapshots of the study.
fn study_project(server: &Server) -> (tempfile::TempDir, HashMap<String, Vec<u8>>) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::write(root.join("eyetest.toml"), PROJECT).unwrap();
    std::fs::create_dir_all(root.join("specs/study")).unwrap();
    std::fs::copy(
        repo().join("specs/study/tasks.toml"),
        root.join("specs/study/tasks.toml"),
    )
    .unwrap();
    let snaps = root.join("golden/snapshots/study/tasks");
    std::fs::create_dir_all(&snaps).unwrap();
    for (name, ..) in STUDY {
        let stem = name.trim_end_matches(".png");
        let snap = format!("{stem}@sim.snap");
        std::fs::copy(
            repo().join("golden/snapshots/study/tasks").join(&snap),
            snaps.join(&snap),
        )
        .unwrap_or_else(|e| panic!("committed snapshot {snap}: {e}"));
    }
    let mut manifest = String::from("base_url = \"https://photos.invalid/study\"\n");
    let mut bodies = HashMap::new();
    for (i, (name, ..)) in STUDY.iter().enumerate() {
        let body = stand_in(name, i);
        manifest.push_str(&format!(
            "[[photo]]\nname = \"{name}\"\nbytes = {}\nsha256 = \"{}\"\n",
            body.len(),
            sha256_hex(&body)
        ));
        // Half the photos reach the client through a redirect, as raw.githubusercontent.com
        // and mirrors do.
        let path = format!("/m/study/{name}");
        if i % 2 == 0 {
            server.route(&path, Route::Redirect(format!("/store/{name}")));
            server.route(&format!("/store/{name}"), Route::Ok(body.clone()));
        } else {
            server.route(&path, Route::Ok(body.clone()));
        }
        bodies.insert(name.to_string(), body);
    }
    std::fs::create_dir_all(root.join("manifests")).unwrap();
    std::fs::write(root.join("manifests/study.toml"), manifest).unwrap();
    (d, bodies)
}

fn eyetest(root: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eyetest"));
    c.arg("--root").arg(root).args(args);
    for v in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "EYETEST_TARGETS",
        "EYETEST_PHOTO_MIRROR",
    ] {
        c.env_remove(v);
    }
    c.env("CI", "1").env_remove("INSTA_UPDATE");
    c.output().expect("eyetest runs")
}

fn cached(root: &Path, name: &str) -> PathBuf {
    root.join(".eyetest/photos/study").join(name)
}

#[test]
fn fetch_then_run_passes_every_study_task_and_refetches_only_what_is_damaged() {
    let server = Server::start();
    let (p, bodies) = study_project(&server);
    let root = p.path();
    let mirror = server.url("/m");

    // Before fetching, nothing downloads and every study task is ignored with the command.
    let o = eyetest(root, &["run", "--target", "sim"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(server.total_hits(), 0, "a run must not download");
    assert!(
        out.contains("photo not fetched: run `eyetest fetch` (28 photos, "),
        "{out}"
    );

    let o = eyetest(root, &["fetch", "--mirror", &mirror]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("28 fetched, 0 already verified, 0 failed"),
        "{out}"
    );
    for (name, body) in &bodies {
        assert_eq!(&std::fs::read(cached(root, name)).unwrap(), body, "{name}");
    }
    assert_eq!(server.hits("/store/elephant.png"), 1, "redirect followed");
    let no_partials = std::fs::read_dir(root.join(".eyetest/photos/study"))
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().starts_with('.'));
    assert!(no_partials, "temporary files are renamed or removed");

    let o = eyetest(root, &["run", "--target", "sim"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("28 passed, 0 failed, 0 errors, 0 ignored"),
        "{out}"
    );
    // As tests (what `cargo test` runs): the answers also match the committed snapshots.
    let o = eyetest(root, &["test"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("28 passed; 0 failed; 0 ignored"), "{out}");

    // A second fetch downloads nothing.
    let before = server.total_hits();
    let o = eyetest(root, &["fetch", "--mirror", &mirror]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("0 fetched, 28 already verified"),
        "{}",
        text(&o)
    );
    assert_eq!(server.total_hits(), before);

    // One changed byte: the case is ignored (never run on the wrong image), the check says
    // so, and the next fetch replaces exactly that photo.
    let victim = cached(root, "cat.png");
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 20;
    bytes[last] ^= 0xff;
    std::fs::write(&victim, &bytes).unwrap();
    let o = eyetest(
        root,
        &[
            "run",
            "--target",
            "sim",
            "study/tasks::cat",
            "--out",
            "cat.jsonl",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let record = std::fs::read_to_string(root.join("cat.jsonl")).unwrap();
    assert!(
        record.contains(r#""status":"ignored""#)
            && record.contains("photo `.eyetest/photos/study/cat.png` is not the file manifests/study.toml pins: run `eyetest fetch` to fetch it again (1 photo, "),
        "{record}"
    );
    let o = eyetest(root, &["fetch", "--check"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("damaged  study/cat.png"), "{}", text(&o));
    let o = eyetest(root, &["fetch", "--mirror", &mirror]);
    assert!(
        text(&o).contains("1 fetched, 27 already verified"),
        "{}",
        text(&o)
    );
    assert_eq!(server.hits("/m/study/cat.png"), 2);
    assert_eq!(&std::fs::read(&victim).unwrap(), &bodies["cat.png"]);
    assert!(eyetest(root, &["fetch", "--check"]).status.success());
}

/// A project with its own manifest `mine`, one photo per way a download can go wrong.
fn faulty_project(server: &Server) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::write(root.join("eyetest.toml"), PROJECT).unwrap();
    let good = stand_in("elephant.png", 1);
    // Same size and still a PNG, one byte different: only the hash tells.
    let mut other = good.clone();
    let mid = other.len() / 2;
    other[mid] ^= 0x01;
    let entries: Vec<(&str, Vec<u8>, Route)> = vec![
        ("missing.png", good.clone(), Route::Ok(vec![])), // not routed: 404
        ("wrong.png", good.clone(), Route::Ok(other.clone())),
        (
            "cut.png",
            good.clone(),
            Route::CutOff(good[..200].to_vec(), good.len()),
        ),
        (
            "short.png",
            good.clone(),
            Route::Ok(good[..good.len() - 10].to_vec()),
        ),
        (
            "page.png",
            good.clone(),
            Route::Ok(b"<!DOCTYPE html><html>Sign in</html>".to_vec()),
        ),
        ("slow.png", good.clone(), Route::Stall),
        (
            "loop.png",
            good.clone(),
            Route::Redirect("/m/mine/loop.png".into()),
        ),
        ("fine.png", good.clone(), Route::Ok(good.clone())),
    ];
    let mut manifest = String::new();
    let mut spec = String::new();
    for (name, pinned, route) in &entries {
        manifest.push_str(&format!(
            "[[photo]]\nname = \"{name}\"\nurl = \"https://photos.invalid/{name}\"\nbytes = {}\nsha256 = \"{}\"\n",
            pinned.len(),
            sha256_hex(pinned)
        ));
        if *name != "missing.png" {
            server.route(&format!("/m/mine/{name}"), route.clone());
        }
        spec.push_str(&format!(
            "[[case]]\nname = \"{}\"\nphoto = \"mine/{name}\"\nprompt = \"What is this?\"\nrubric = {{ any = [\"elephant\"] }}\n",
            name.trim_end_matches(".png")
        ));
    }
    std::fs::create_dir_all(root.join("manifests")).unwrap();
    std::fs::write(root.join("manifests/mine.toml"), manifest).unwrap();
    std::fs::create_dir_all(root.join("specs")).unwrap();
    std::fs::write(root.join("specs/mine.toml"), spec).unwrap();
    d
}

#[test]
fn every_bad_download_fails_with_a_clear_message_and_leaves_nothing_behind() {
    let server = Server::start();
    let p = faulty_project(&server);
    let root = p.path();
    let started = std::time::Instant::now();
    let o = eyetest(
        root,
        &["fetch", "--mirror", &server.url("/m"), "--timeout-s", "1"],
    );
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the stall timed out"
    );
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("error: mine/{name}:")))
            .unwrap_or_else(|| panic!("no error line for {name}:\n{out}"))
            .to_string()
    };
    assert!(line("missing.png").contains("HTTP 404 Not Found; the photo is not at that URL"));
    assert!(line("wrong.png").contains("wrong file: sha256 is "));
    assert!(
        line("cut.png").contains("the download broke off after"),
        "{}",
        line("cut.png")
    );
    assert!(
        line("short.png").contains("truncated: got "),
        "{}",
        line("short.png")
    );
    assert!(line("page.png").contains("not a PNG or JPEG image (it starts with \"<!DOCTYPE html>"));
    assert!(
        line("slow.png").contains("no data for 1 s"),
        "{}",
        line("slow.png")
    );
    assert!(
        line("loop.png").contains("too many redirects"),
        "{}",
        line("loop.png")
    );
    assert!(out.contains("8 photo(s)"), "{out}");
    assert!(
        out.contains("1 fetched, 0 already verified, 7 failed"),
        "{out}"
    );
    let left: Vec<String> = std::fs::read_dir(root.join(".eyetest/photos/mine"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["fine.png"],
        "only the verified photo is in the cache"
    );
}

#[test]
fn fetch_goes_through_the_proxy_the_environment_names() {
    // The manifest's host does not exist; the proxy (the loopback server) serves the path.
    let server = Server::start();
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::write(root.join("eyetest.toml"), PROJECT).unwrap();
    let good = stand_in("elephant.png", 1);
    std::fs::create_dir_all(root.join("manifests")).unwrap();
    std::fs::write(
        root.join("manifests/mine.toml"),
        format!(
            "[[photo]]\nname = \"fine.png\"\nurl = \"http://photos.invalid/fine.png\"\nbytes = {}\nsha256 = \"{}\"\n",
            good.len(),
            sha256_hex(&good)
        ),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("specs")).unwrap();
    std::fs::write(
        root.join("specs/mine.toml"),
        "[[case]]\nname = \"fine\"\nphoto = \"mine/fine.png\"\nprompt = \"What is this?\"\nrubric = { any = [\"elephant\"] }\n",
    )
    .unwrap();
    server.route("/fine.png", Route::Ok(good.clone()));
    let fetch = |no_proxy: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_eyetest"));
        c.arg("--root")
            .arg(root)
            .args(["fetch", "--timeout-s", "2"])
            .env("HTTP_PROXY", server.url(""))
            .env("http_proxy", server.url(""))
            .env_remove("EYETEST_PHOTO_MIRROR");
        match no_proxy {
            Some(v) => c.env("NO_PROXY", v).env("no_proxy", v),
            None => c.env_remove("NO_PROXY").env_remove("no_proxy"),
        };
        c.output().unwrap()
    };
    let o = fetch(None);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(server.hits("/fine.png"), 1, "{}", text(&o));
    assert_eq!(
        std::fs::read(root.join(".eyetest/photos/mine/fine.png")).unwrap(),
        good
    );

    // NO_PROXY naming the host bypasses the proxy: the (nonexistent) host is then tried
    // directly and fails, and the proxy sees nothing more.
    std::fs::remove_file(root.join(".eyetest/photos/mine/fine.png")).unwrap();
    let o = fetch(Some("photos.invalid"));
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(server.hits("/fine.png"), 1, "{}", text(&o));
}

/// The simulated targets' snapshots of the study tasks, for the study's real photos.
///
/// They cannot be recorded from the photos here, so they are recorded from the stand-ins
/// (which carry exactly the answers the engine gives for the real photos) and their header's
/// `image_sha256` is set to the real photo's, from manifests/study.toml. Regenerate with
/// `cargo test --test it -- --ignored fetch_cli::regenerate_study_snapshots` after changing the
/// study spec or the engine's study answers.
#[test]
#[ignore = "writes golden/snapshots/study: run by hand"]
fn regenerate_study_snapshots() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::copy(repo().join("eyetest.toml"), root.join("eyetest.toml")).unwrap();
    std::fs::create_dir_all(root.join("specs/study")).unwrap();
    std::fs::copy(
        repo().join("specs/study/tasks.toml"),
        root.join("specs/study/tasks.toml"),
    )
    .unwrap();
    let real = std::fs::read_to_string(repo().join("manifests/study.toml")).unwrap();
    let mut manifest = String::new();
    let mut swaps = Vec::new();
    std::fs::create_dir_all(root.join(".eyetest/photos/study")).unwrap();
    for (i, (name, real_sha, ..)) in STUDY.iter().enumerate() {
        assert!(real.contains(real_sha), "{name}");
        let body = stand_in(name, i);
        std::fs::write(cached(root, name), &body).unwrap();
        manifest.push_str(&format!(
            "[[photo]]\nname = \"{name}\"\nurl = \"https://photos.invalid/{name}\"\nbytes = {}\nsha256 = \"{}\"\n",
            body.len(),
            sha256_hex(&body)
        ));
        swaps.push((sha256_hex(&body), real_sha.to_string()));
    }
    std::fs::create_dir_all(root.join("manifests")).unwrap();
    std::fs::write(root.join("manifests/study.toml"), manifest).unwrap();
    let sims = "sim,sim-llama-11b,sim-llama-90b,sim-llava-ov-0.5b,sim-llava-ov-7b,sim-llava-ov-72b,sim-gpt-4o,sim-gpt-4o-mini";
    let o = Command::new(env!("CARGO_BIN_EXE_eyetest"))
        .arg("--root")
        .arg(root)
        .args(["test", "--", "study/"])
        .env("EYETEST_TARGETS", sims)
        .env("INSTA_UPDATE", "always")
        .env_remove("CI")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let from = root.join("golden/snapshots/study/tasks");
    let to = repo().join("golden/snapshots/study/tasks");
    std::fs::create_dir_all(&to).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(&from).unwrap().flatten() {
        let mut s = std::fs::read_to_string(e.path()).unwrap();
        for (stand, real) in &swaps {
            s = s.replace(stand.as_str(), real);
        }
        // The header names the spec (`source: specs/study/tasks.toml`), the same wherever the
        // project lives, so the snapshots recorded in the temporary project are the ones to commit.
        std::fs::write(to.join(e.file_name()), s).unwrap();
        n += 1;
    }
    assert_eq!(n, 28 * 8);
}

/// A report of the study on the study's seven simulated counterparts plus one `wrong` target,
/// from photos fetched over loopback, written to `$EYETEST_STUDY_DEMO/report.md`: what
/// docs/study-report.png shows. Run by hand:
/// `EYETEST_STUDY_DEMO=/tmp/demo cargo test --test it -- --ignored fetch_cli::study_report_demo`.
#[test]
#[ignore = "writes a demo project where EYETEST_STUDY_DEMO says: run by hand"]
fn study_report_demo() {
    let dir = PathBuf::from(std::env::var("EYETEST_STUDY_DEMO").expect("EYETEST_STUDY_DEMO"));
    let server = Server::start();
    let (p, _) = study_project(&server);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["specs/study/tasks.toml", "manifests/study.toml"] {
        std::fs::create_dir_all(dir.join(f).parent().unwrap()).unwrap();
        std::fs::copy(p.path().join(f), dir.join(f)).unwrap();
    }
    let mut project = std::fs::read_to_string(repo().join("eyetest.toml")).unwrap();
    project.push_str("\n[target.sim-wrong]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\nbehaviour = \"wrong\"\nnotes = \"gives the plausible wrong answers\"\n");
    std::fs::write(dir.join("eyetest.toml"), project).unwrap();
    // A run judges snapshots too: the simulated targets' committed ones come along (their
    // answers are the same for the stand-ins); `sim-wrong` has none and fails anyway.
    let golden = dir.join("golden/snapshots/study/tasks");
    std::fs::create_dir_all(&golden).unwrap();
    for e in std::fs::read_dir(repo().join("golden/snapshots/study/tasks"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), golden.join(e.file_name())).unwrap();
    }
    let o = eyetest(&dir, &["fetch", "--mirror", &server.url("/m")]);
    assert!(o.status.success(), "{}", text(&o));
    let targets = "sim-llama-11b,sim-llama-90b,sim-llava-ov-0.5b,sim-llava-ov-7b,sim-llava-ov-72b,sim-gpt-4o,sim-gpt-4o-mini,sim-wrong";
    let o = eyetest(
        &dir,
        &["run", "--target", targets, "--out", "results.jsonl"],
    );
    assert!(text(&o).contains("196 passed, 28 failed"), "{}", text(&o));
    let o = eyetest(&dir, &["report", "results.jsonl", "-o", "report.md"]);
    assert!(o.status.success(), "{}", text(&o));
}
