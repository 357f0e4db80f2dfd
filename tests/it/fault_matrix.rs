//! The fault matrix: every fault an endpoint can throw, injected by the simulated engine over
//! real loopback HTTP, driven through eyetest's own client (streaming and not) and through a
//! qualitative run, each ending in one exact, documented outcome: an answer after a bounded
//! retry, or an error whose message names the cause. Never a panic, never a hang: every
//! request runs under a hard deadline a little above what its timeouts and retries allow.
//!
//! One table ([`expected`]) says what every fault must end in, so that the client tests and
//! the qualitative run cannot drift apart, and the fault table in docs/reference.md is this table.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eyetest::backend::openai::{http_client_for, OpenAiClient, OpenAiConfig};
use eyetest::backend::{Answer, BackendError, ChatRequest, ImageData};
use eyetest::fixture::{encode_png, Truth};
use eyetest::runner::{Outcome, Selection, Session};
use eyetest::sim::{Behaviour, SimConfig, SimServer, SimStats};
use eyetest::spec::Suite;
use eyetest::warning::Warnings;

/// Per-attempt timeout: short, so `hang` and `stall` cost little, long enough for a 16 MiB
/// body on a loaded machine.
const TIMEOUT: Duration = Duration::from_millis(600);
/// One retry: enough to show recovery and exhaustion, and a `rate-limited` run costs only
/// one `Retry-After` second.
const RETRIES: u32 = 1;
const BACKOFF: Duration = Duration::from_millis(10);
/// Slack over the worst case a request may legitimately take, before it counts as a hang.
const MARGIN: Duration = Duration::from_millis(1000);

/// "There", " are", " two", " people", ".": mid-stream faults strike after "There are".
const ANSWER: &str = "There are two people.";
const URL: &str = "http://SIM/v1/chat/completions";

fn png() -> Vec<u8> {
    let truth = Truth {
        kind: "count".into(),
        terse: ANSWER.into(),
        verbose: "There are two people standing side by side.".into(),
        wrong: "There are three people.".into(),
    };
    encode_png(32, 32, &[200; 32 * 32 * 3], Some(&truth)).unwrap()
}

/// How a request facing a fault must end.
#[derive(Debug, Clone)]
enum Expect {
    /// [`ANSWER`], after this many attempts, with or without usage.
    Answered { attempts: u32, usage: bool },
    /// An error with exactly this message.
    Exactly(String),
    /// An error whose message starts with the first part and contains the second: for
    /// messages that quote a body or an OS error.
    Starts(String, &'static str),
}

use Behaviour::*;
use Expect::*;

fn http(status: u16, message: &str, kind: &str) -> String {
    format!(r#"HTTP {status} from {URL}: {{"error":{{"message":"{message}","type":"{kind}"}}}}"#)
}

fn gave_up(last: &str) -> String {
    format!("gave up after {} attempts; last error: {last}", RETRIES + 1)
}

/// What request facing `fault` on every attempt ends in, with [`RETRIES`] retries and a
/// [`TIMEOUT`] per attempt. Retried: HTTP 429/500/503 and a body broken before any content;
/// never retried: timeouts (the budget is spent), anything after content arrived (the retry
/// would be a different answer), and malformed answers (asking again gets the same).
fn expected(fault: Behaviour, stream: bool) -> Expect {
    let timeout = format!(
        "no answer from {URL} within {TIMEOUT:?} (raise `timeout_s` on the target, or check the server)"
    );
    let malformed = |reason: &str| format!("malformed response from {URL}: {reason}");
    let broke_off = |reason: &str| format!("stream from {URL} broke off: {reason}");
    match (fault, stream) {
        (Failing, _) => Exactly(gave_up(&http(
            500,
            "simulated failure (behaviour = failing)",
            "server_error",
        ))),
        (Unavailable, _) => Exactly(gave_up(&http(
            503,
            "simulated overload (behaviour = unavailable); retrying may succeed",
            "server_error",
        ))),
        (RateLimited | RateLimitedBare, _) => Exactly(gave_up(&http(
            429,
            &format!("simulated rate limit (behaviour = {fault})"),
            "rate_limit_error",
        ))),
        (Hang | Stall, _) => Exactly(timeout),
        // After "There are" the answer is half there: reported, not retried.
        (Reset, true) => Starts(
            broke_off("reading the response failed: error decoding response body"),
            "unexpected EOF",
        ),
        // Half a JSON body carries no usable content yet, so another attempt is safe.
        (Reset, false) => Starts(
            gave_up(&broke_off(
                "reading the response failed: error decoding response body",
            )),
            "unexpected EOF",
        ),
        (CutStream, true) => Exactly(broke_off(
            "the stream ended before [DONE]/finish_reason after 9 characters of text",
        )),
        (CutStream, false) => Starts(
            malformed("invalid JSON (EOF while parsing a string at line 1 column"),
            r#""content":"There are two people.""#,
        ),
        (ErrorEvent, true) => Exactly(broke_off(
            "the server sent an error: simulated engine error mid-answer (behaviour = error-event)",
        )),
        (ErrorEvent, false) => Exactly(malformed(
            "the server sent an error instead of an answer: simulated engine error mid-answer (behaviour = error-event)",
        )),
        (BadJson, true) => Starts(malformed("invalid JSON in an SSE event ("), r#"{"content": two}"#),
        (BadJson, false) => Starts(malformed("invalid JSON ("), r#""content":There are two people.}"#),
        (EmptyChoices, true) => Exactly(malformed(
            "no choices in the stream: it reached [DONE] without a single choice",
        )),
        (EmptyChoices, false) => Starts(
            malformed("no choices in the response: {"),
            r#""choices":[]"#,
        ),
        // Missing usage is flagged (None), not an error: the answer itself is whole.
        (NoUsage, _) => Answered {
            attempts: 1,
            usage: false,
        },
        (WrongContentType, _) => Starts(
            malformed("expected JSON or an SSE stream, got Content-Type `text/html; charset=utf-8` (a proxy, login page or web UI answered, not the model server): <!DOCTYPE html>"),
            "<title>Sign in</title>",
        ),
        (HugeBody, _) => Exactly(malformed(
            "the response exceeds 16 MiB, far more than any chat answer; stopped reading (is base_url the chat endpoint of a model server?)",
        )),
        (other, _) => panic!("{other} is not in the fault matrix"),
    }
}

/// Every fault the engine can inject, in the order of docs/reference.md's fault table.
const FAULTS: [Behaviour; 14] = Behaviour::INJECTABLE;

/// The longest a request facing `fault` may take before it counts as hung: every attempt
/// may run to the timeout, plus the server-requested wait, plus [`MARGIN`].
fn deadline(fault: Behaviour) -> Duration {
    let wait = if fault == RateLimited {
        Duration::from_secs(1)
    } else {
        BACKOFF
    };
    TIMEOUT * (RETRIES + 1) + wait * RETRIES + MARGIN
}

/// `http://127.0.0.1:PORT` -> `http://SIM`, so that messages compare across ports.
fn normalise(message: &str) -> String {
    regex::Regex::new(r"http://127\.0\.0\.1:\d+")
        .unwrap()
        .replace_all(message, "http://SIM")
        .into_owned()
}

/// Checks `result` against `expect`; `context` names the case in a failure.
fn check(context: &str, result: Result<Answer, String>, expect: &Expect) {
    match (result, expect) {
        (Ok(a), Answered { attempts, usage }) => {
            assert_eq!(a.text, ANSWER, "{context}");
            assert_eq!(a.timing.attempts, *attempts, "{context}: attempts");
            assert_eq!(a.usage.is_some(), *usage, "{context}: usage {:?}", a.usage);
            assert_eq!(a.finish_reason.as_deref(), Some("stop"), "{context}");
        }
        (Err(e), Exactly(want)) => assert_eq!(normalise(&e), *want, "{context}"),
        (Err(e), Starts(start, part)) => {
            let e = normalise(&e);
            assert!(
                e.starts_with(start.as_str()),
                "{context}: {e}\nwant: {start}…"
            );
            assert!(
                e.contains(part),
                "{context}: {e}\nwant it to contain: {part}"
            );
            assert!(
                e.len() < 1200,
                "{context}: quotes are cut: {} bytes",
                e.len()
            );
        }
        (got, want) => panic!("{context}: got {got:?}, want {want:?}"),
    }
}

/// Runs `f` under a hard deadline, failing the test (not hanging it) past `limit`.
async fn bounded<T>(context: &str, limit: Duration, f: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    match tokio::time::timeout(limit, f).await {
        Ok(v) => (v, start.elapsed()),
        Err(_) => panic!("{context}: still running after {limit:?}: a hang"),
    }
}

async fn sim(fault: Behaviour, fail_first: u64) -> SimServer {
    let config = SimConfig {
        behaviour: fault,
        fail_first,
        ..SimConfig::default()
    };
    SimServer::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn client(base_url: String, max_retries: u32) -> OpenAiClient {
    let config = OpenAiConfig {
        base_url,
        api_key: None,
        timeout: TIMEOUT,
        connect_timeout: TIMEOUT,
        max_retries,
        backoff: BACKOFF,
    };
    OpenAiClient::new(http_client_for(&config), config)
}

fn question(stream: bool) -> ChatRequest {
    ChatRequest {
        model: "eyetest-sim".into(),
        prompt: "How many people are there in this image?".into(),
        image: Arc::new(ImageData::from_bytes(png()).unwrap()),
        max_tokens: 64,
        temperature: 0.0,
        seed: None,
        stream,
        extra: Default::default(),
    }
}

/// Asks once through the client, under the fault's deadline; returns the result, the time
/// it took and what the engine saw.
async fn ask(
    fault: Behaviour,
    fail_first: u64,
    stream: bool,
) -> (Result<Answer, String>, Duration, SimStats) {
    let server = sim(fault, fail_first).await;
    let context = format!("{fault} (stream: {stream}, fail_first: {fail_first})");
    let (result, elapsed) = bounded(
        &context,
        deadline(fault),
        client(server.base_url(), RETRIES).chat(&question(stream)),
    )
    .await;
    let stats = server.stats();
    bounded(&context, Duration::from_secs(6), server.shutdown()).await;
    (
        result.map_err(|e: BackendError| e.to_string()),
        elapsed,
        stats,
    )
}

/// How many attempts the client makes against a fault on every request: two if it retries.
fn attempts(expect: &Expect) -> u64 {
    match expect {
        Answered { attempts, .. } => u64::from(*attempts),
        Exactly(m) | Starts(m, _) if m.starts_with("gave up after") => u64::from(RETRIES) + 1,
        _ => 1,
    }
}

/// One fault on every request, streamed and not: the exact outcome, the number of attempts
/// the engine saw, and an elapsed time that fits the timeouts.
async fn persistent(fault: Behaviour) {
    for stream in [true, false] {
        let context = format!("{fault} (stream: {stream})");
        let want = expected(fault, stream);
        let (result, elapsed, stats) = ask(fault, 0, stream).await;
        check(&context, result, &want);
        let n = attempts(&want);
        assert_eq!(stats.received, n, "{context}: requests the engine saw");
        let failed = if fault == NoUsage { 0 } else { n };
        assert_eq!(stats.failed, failed, "{context}: {stats:?}");
        assert_eq!(stats.completed, n - failed, "{context}: {stats:?}");
        match fault {
            Hang | Stall => assert!(elapsed >= TIMEOUT, "{context}: {elapsed:?}"),
            RateLimited => assert!(elapsed >= Duration::from_secs(1), "{context}: {elapsed:?}"),
            _ => assert!(elapsed < TIMEOUT, "{context}: {elapsed:?}"),
        }
    }
}

macro_rules! persistent_fault_tests {
    ($($name:ident => $fault:expr,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            persistent($fault).await;
        }
    )*};
}

persistent_fault_tests! {
    http_500_is_retried_then_reported => Failing,
    http_503_is_retried_then_reported => Unavailable,
    http_429_with_retry_after_waits_a_second_then_reports => RateLimited,
    http_429_without_retry_after_backs_off_then_reports => RateLimitedBare,
    a_server_that_never_answers_times_out => Hang,
    a_stream_that_stalls_after_tokens_times_out => Stall,
    a_connection_reset_mid_answer_is_reported => Reset,
    a_stream_cut_before_done_is_reported => CutStream,
    an_error_event_names_the_servers_message => ErrorEvent,
    invalid_json_is_quoted => BadJson,
    empty_choices_are_malformed => EmptyChoices,
    missing_usage_is_flagged_not_failed => NoUsage,
    an_html_page_is_rejected_naming_its_content_type => WrongContentType,
    a_50_mib_body_is_cut_off_at_16_mib => HugeBody,
}

/// A fault on the first request only: the retry answers. `rate-limited` waits the second
/// its `Retry-After` asks for; the others only the client's short backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_retry_recovers_from_a_transient_fault() {
    let cases = [
        (Failing, true),
        (Unavailable, true),
        (RateLimited, false),
        (RateLimitedBare, true),
        (Reset, false),
    ];
    for (fault, stream) in cases {
        let context = format!("{fault} once (stream: {stream})");
        let (result, elapsed, stats) = ask(fault, 1, stream).await;
        let want = Answered {
            attempts: 2,
            usage: true,
        };
        check(&context, result, &want);
        assert_eq!(
            (stats.received, stats.failed, stats.completed),
            (2, 1, 1),
            "{context}"
        );
        if fault == RateLimited {
            assert!(elapsed >= Duration::from_secs(1), "{context}: {elapsed:?}");
        } else {
            assert!(
                elapsed < Duration::from_millis(500),
                "{context}: {elapsed:?}"
            );
        }
    }
}

/// A fault after content has arrived is not retried even when the next attempt would
/// succeed: a retry would be a different answer, timed as if it were this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_broken_after_content_is_not_retried_even_once() {
    for fault in [Reset, CutStream, ErrorEvent, BadJson] {
        let (result, _, stats) = ask(fault, 1, true).await;
        check(&format!("{fault} once"), result, &expected(fault, true));
        assert_eq!((stats.received, stats.failed), (1, 1), "{fault}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_retried_then_reported() {
    // A port that was just free: bound, read, released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let limit = TIMEOUT * (RETRIES + 1) + MARGIN;
    let (result, _) = bounded(
        "refused",
        limit,
        client(base, RETRIES).chat(&question(true)),
    )
    .await;
    let e = normalise(&result.unwrap_err().to_string());
    let start = gave_up(&format!("cannot connect to {URL}: "));
    assert!(e.starts_with(&start), "{e}");
    assert!(e.contains("Connection refused"), "{e}");
}

/// Every fault again, through a qualitative run: a project with one `sim` target per fault
/// (streamed and not), one case, every (case, target) run concurrently by a [`Session`]. The
/// outcome must be the client's exact error, or the answer judged by the rubric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qualitative_run_reports_every_fault_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("fixtures")).unwrap();
    std::fs::create_dir_all(root.join("specs")).unwrap();
    std::fs::write(root.join("fixtures/people.png"), png()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let common = format!(
        "timeout_s = {}\nretries = {RETRIES}\nretry_backoff_ms = {}\n",
        TIMEOUT.as_secs_f64(),
        BACKOFF.as_millis()
    );
    let mut toml = format!(
        "[target.refused]\nbackend = \"openai\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n{common}"
    );
    let mut want = vec![("refused".to_string(), None)];
    for fault in FAULTS {
        for stream in [true, false] {
            let name = format!("{fault}-{}", if stream { "sse" } else { "json" });
            toml.push_str(&format!(
                "\n[target.{name}]\nbackend = \"sim\"\nbehaviour = \"{fault}\"\nstream = {stream}\n{common}"
            ));
            want.push((name, Some(expected(fault, stream))));
        }
    }
    toml.push_str(&format!(
        "\n[target.rate-limited-once]\nbackend = \"sim\"\nbehaviour = \"rate-limited\"\nfail_first = 1\n{common}"
    ));
    want.push((
        "rate-limited-once".into(),
        Some(Answered {
            attempts: 2,
            usage: true,
        }),
    ));
    std::fs::write(root.join("eyetest.toml"), toml).unwrap();
    let targets: Vec<String> = want.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    std::fs::write(
        root.join("specs/faults.toml"),
        format!(
            "[[case]]\nname = \"people\"\nimage = \"fixtures/people.png\"\nprompt = \"How many people?\"\nrubric = {{ any = [\"two\"] }}\ntargets = [{}]\n",
            targets.join(", ")
        ),
    )
    .unwrap();

    let suite = Arc::new(Suite::load(root).unwrap());
    let session = Session::new(suite.clone(), Warnings::none());
    let case = suite.cases[0].clone();
    let runs = want.iter().map(|(name, _)| {
        let target = suite.target(name).unwrap().clone();
        let (session, case) = (session.clone(), case.clone());
        async move { session.run(&case, &target, &Selection::all()).await }
    });
    let limit = deadline(RateLimited).max(deadline(Hang));
    let (outcomes, _) = bounded(
        "qualitative run",
        limit,
        futures_util::future::join_all(runs),
    )
    .await;
    for ((name, expect), outcome) in want.iter().zip(outcomes) {
        let result = match outcome {
            Outcome::Answered {
                answer, verdict, ..
            } => {
                assert!(verdict.passed, "{name}: {verdict:?}");
                Ok(answer)
            }
            Outcome::Error(e) => Err(e.to_string()),
            Outcome::Ignored(r) => panic!("{name}: ignored: {r}"),
        };
        match expect {
            Some(expect) => check(name, result, expect),
            None => {
                let e = normalise(&result.unwrap_err());
                assert!(
                    e.starts_with(&gave_up(&format!("cannot connect to {URL}: "))),
                    "{e}"
                );
            }
        }
    }
}

/// What the client reports for `fault` on a single attempt: the table's message without
/// the retry wrapper (`hang` and `stall` share theirs, a timeout).
fn single_attempt(fault: Behaviour) -> String {
    match expected(fault, true) {
        Answered { .. } => "answer".into(),
        Exactly(m) | Starts(m, _) => m.strip_prefix(&gave_up("")).unwrap_or(&m).to_owned(),
    }
}

/// Every fault at once, the way a throughput run meets them: half of 48 requests faulted
/// (seeded, all fourteen kinds), 8 at a time, no retries. Each request ends within its
/// timeout, and the outcomes are exactly the engine's schedule, kind for kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_under_concurrent_load_ends_within_the_timeout() {
    const N: usize = 48;
    const CONCURRENCY: usize = 8;
    let config = SimConfig {
        fault_rate: 0.5,
        faults: FAULTS.to_vec(),
        seed: 11,
        ..SimConfig::default()
    };
    let server = SimServer::start("127.0.0.1:0".parse().unwrap(), config.clone())
        .await
        .unwrap();
    let client = client(server.base_url(), 0);
    let body = eyetest::backend::openai::request_body(&question(true)).unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers = (0..CONCURRENCY).map(|_| {
        let (client, body, next) = (client.clone(), body.clone(), next.clone());
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < N {
                let start = Instant::now();
                let result = client.chat_with_body(body.clone(), true).await;
                outcomes.push((result.map_err(|e| e.to_string()), start.elapsed()));
            }
            outcomes
        })
    });
    let waves = N.div_ceil(CONCURRENCY) as u32;
    let limit = TIMEOUT * waves + MARGIN;
    let (joined, _) = bounded("load", limit, futures_util::future::join_all(workers)).await;

    let keys: Vec<String> = FAULTS.into_iter().map(single_attempt).collect();
    let mut got: Vec<String> = Vec::new();
    for (result, elapsed) in joined.into_iter().flat_map(|w| w.unwrap()) {
        assert!(
            elapsed < TIMEOUT + Duration::from_millis(300),
            "{elapsed:?}: {result:?}"
        );
        got.push(match result {
            Ok(a) if a.text == ANSWER => "answer".into(),
            Ok(a) => panic!("a wrong answer: {a:?}"),
            Err(e) => {
                // The engine says `fault = X` for an injected fault, `behaviour = X` otherwise.
                let e = normalise(&e).replace("(fault = ", "(behaviour = ");
                let key = keys
                    .iter()
                    .filter(|k| e.starts_with(k.as_str()))
                    .max_by_key(|k| k.len());
                key.unwrap_or_else(|| panic!("an error no fault explains: {e}"))
                    .clone()
            }
        });
    }
    let mut want: Vec<String> = (0..N as u64)
        .map(|i| config.fault_for(i).map_or("answer".into(), single_attempt))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let kinds: std::collections::HashSet<_> =
        (0..N as u64).filter_map(|i| config.fault_for(i)).collect();
    assert!(
        kinds.len() >= 10,
        "the seed should draw most kinds: {kinds:?}"
    );
    let stats = server.stats();
    assert_eq!(stats.received, N as u64, "{stats:?}");
    bounded("shutdown", Duration::from_secs(6), server.shutdown()).await;
}
