//! The OpenAI-compatible client against scripted servers over real loopback HTTP.
//!
//! Each test starts its own axum server whose answers are scripted per attempt, so retries,
//! timeouts and broken streams are exercised through the same sockets, pools and parsers
//! that talk to vLLM in production, and each test asserts the exact outcome.

#[path = "openai_backend/support.rs"]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use eyetest::backend::openai::{http_client_for, request_body, OpenAiClient, OpenAiConfig, Secret};
use eyetest::backend::{BackendError, Usage};

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_success() {
    let server = serve(|_, _| json_reply(200, &completion("Two people."))).await;
    let answer = client(config(&server.base))
        .chat(&question(false))
        .await
        .unwrap();
    assert_eq!(answer.text, "Two people.");
    assert_eq!(answer.model, "m-json");
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        answer.usage,
        Some(Usage {
            prompt_tokens: 12,
            completion_tokens: 3
        })
    );
    assert_eq!(answer.timing.ttft, None);
    assert!(answer.timing.itl.is_empty());
    assert_eq!(answer.timing.attempts, 1);
    assert!(answer.timing.e2e > Duration::ZERO);

    let (headers, body) = server.request(0);
    assert_eq!(headers["accept"], "application/json");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.get("authorization").is_none());
    assert_eq!(body["stream"], false);
    assert!(body.get("stream_options").is_none());
    assert_eq!(body["model"], "test-model");
    let parts = &body["messages"][0]["content"];
    assert!(parts[0]["image_url"]["url"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    assert_eq!(parts[1]["text"], "How many people are there in this image?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_success() {
    let server = serve(|_, _| {
        let parts = vec![
            role(),
            content("Two"),
            content(" people"),
            content("."),
            finish(),
            usage_only(10, 3),
            done(),
        ];
        sse_reply(parts, gap())
    })
    .await;
    let answer = client(config(&server.base))
        .chat(&question(true))
        .await
        .unwrap();
    assert_eq!(answer.text, "Two people.");
    assert_eq!(answer.model, "m-stream");
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        answer.usage,
        Some(Usage {
            prompt_tokens: 10,
            completion_tokens: 3
        })
    );
    let ttft = answer.timing.ttft.unwrap();
    assert!(ttft < answer.timing.e2e, "{:?}", answer.timing);
    assert_eq!(answer.timing.itl.len(), 2);
    assert_eq!(answer.timing.attempts, 1);

    let (headers, body) = server.request(0);
    assert_eq!(headers["accept"], "text/event-stream");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_timings_follow_the_servers_pacing() {
    // 50 ms between chunks, and bounds well below it: per-value checks must survive a busy
    // 2-core CI machine delaying one read but not the next.
    let pace = Duration::from_millis(50);
    let server = serve(move |_, _| {
        let mut parts = vec![role()];
        parts.extend(["a", "b", "c", "d", "e"].map(content));
        parts.extend([finish(), done()]);
        sse_reply(parts, pace)
    })
    .await;
    let answer = client(config(&server.base))
        .chat(&question(true))
        .await
        .unwrap();
    assert_eq!(answer.text, "abcde");
    let timing = &answer.timing;
    let ms = Duration::from_millis;
    // The role-only chunk is not a token: TTFT waits for "a", one gap later.
    let ttft = timing.ttft.unwrap();
    assert!(ttft >= ms(25), "{timing:?}");
    assert_eq!(timing.itl.len(), 4);
    for itl in &timing.itl {
        assert!(*itl >= ms(25), "{timing:?}");
    }
    let itl_sum: Duration = timing.itl.iter().sum();
    assert!(itl_sum >= ms(4 * 40), "{timing:?}");
    // E2E ends at the finish chunk, one gap after "e"; the [DONE] after it does not count.
    assert!(timing.e2e >= ttft + itl_sum + ms(25), "{timing:?}");
    assert!(timing.e2e < ttft + itl_sum + ms(95), "{timing:?}");
    assert_eq!(answer.usage, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_closed_after_finish_reason_without_done_is_complete() {
    let server =
        serve(|_, _| sse_reply(vec![role(), content("Two"), content("."), finish()], gap())).await;
    let answer = client(config(&server.base))
        .chat(&question(true))
        .await
        .unwrap();
    assert_eq!(answer.text, "Two.");
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
    assert_eq!(answer.usage, None);
    assert_eq!(answer.timing.itl.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_ignoring_stream_true_still_answers() {
    let server = serve(|_, _| json_reply(200, &completion("Two."))).await;
    let answer = client(config(&server.base))
        .chat(&question(true))
        .await
        .unwrap();
    assert_eq!(answer.text, "Two.");
    assert_eq!(answer.timing.ttft, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_429_is_honoured() {
    let server = serve(|n, _| {
        if n == 0 {
            let mut r = json_reply(429, r#"{"error":{"message":"slow down"}}"#);
            r.headers_mut().insert("retry-after", "1".parse().unwrap());
            r
        } else {
            json_reply(200, &completion("Two."))
        }
    })
    .await;
    let start = Instant::now();
    let answer = client(config(&server.base))
        .chat(&question(false))
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(answer.text, "Two.");
    assert_eq!(answer.timing.attempts, 2);
    assert_eq!(server.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_500_exhausts_retries() {
    let server = serve(|_, _| json_reply(500, "engine exploded")).await;
    let err = client(config(&server.base))
        .chat(&question(false))
        .await
        .unwrap_err();
    match err {
        BackendError::RetriesExhausted { attempts: 4, last } => match *last {
            BackendError::Http {
                url,
                status: 500,
                body,
            } => {
                assert_eq!(url, server.chat_url());
                assert_eq!(body, "engine exploded");
            }
            other => panic!("last error: {other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_400_is_not_retried_and_long_bodies_are_cut() {
    let long = "x".repeat(5000);
    let body = format!(r#"{{"object":"error","message":"image too large {long}"}}"#);
    let server = serve(move |_, _| json_reply(400, &body)).await;
    let err = client(config(&server.base))
        .chat(&question(false))
        .await
        .unwrap_err();
    match &err {
        BackendError::Http {
            url,
            status: 400,
            body,
        } => {
            assert_eq!(url, &server.chat_url());
            assert!(body.starts_with(r#"{"object":"error","message":"image too large xxx"#));
            assert!(body.ends_with("… (5047 bytes in all)"), "{body}");
            assert!(body.chars().count() < 600);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_times_out_without_retry() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                json_reply(200, &completion("too late"))
            }
        }),
    );
    let base = spawn(app).await;
    let mut cfg = config(&base);
    cfg.timeout = Duration::from_millis(300);
    let start = Instant::now();
    let err = client(cfg).chat(&question(true)).await.unwrap_err();
    let elapsed = start.elapsed();
    match err {
        BackendError::Timeout { url, timeout } => {
            assert_eq!(url, format!("{base}/chat/completions"));
            assert_eq!(timeout, Duration::from_millis(300));
        }
        other => panic!("{other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(800), "{elapsed:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_body_is_a_protocol_error() {
    let server = serve(|_, _| json_reply(200, "{\"choices\": [oops")).await;
    let err = client(config(&server.base))
        .chat(&question(false))
        .await
        .unwrap_err();
    match err {
        BackendError::Protocol { url, reason } => {
            assert_eq!(url, server.chat_url());
            assert!(reason.contains("{\"choices\": [oops"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sse_data_is_a_protocol_error_quoting_it() {
    let garbage = format!("{{not json {}", "y".repeat(3000));
    let g = garbage.clone();
    let server = serve(move |_, _| {
        let parts = vec![
            role(),
            Part::Send(format!("data: {g}\n\n")),
            finish(),
            done(),
        ];
        sse_reply(parts, gap())
    })
    .await;
    let err = client(config(&server.base))
        .chat(&question(true))
        .await
        .unwrap_err();
    match err {
        BackendError::Protocol { reason, .. } => {
            assert!(reason.contains("{not json yyy"), "{reason}");
            assert!(reason.contains("… (3010 bytes in all)"), "{reason}");
            assert!(reason.len() < 1000);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_event_mid_stream_names_the_servers_message() {
    let server = serve(|_, _| {
        let error =
            r#"{"error":{"message":"CUDA out of memory","type":"InternalServerError","code":500}}"#;
        let parts = vec![
            role(),
            content("Two"),
            Part::Send(format!("event: error\ndata: {error}\n\n")),
            done(),
        ];
        sse_reply(parts, gap())
    })
    .await;
    let err = client(config(&server.base))
        .chat(&question(true))
        .await
        .unwrap_err();
    match err {
        BackendError::Stream { url, reason } => {
            assert_eq!(url, server.chat_url());
            assert_eq!(reason, "the server sent an error: CUDA out of memory");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_payload_in_data_names_the_servers_message() {
    let server = serve(|_, _| {
        let error = r#"data: {"error": {"message": "context length exceeded"}}"#;
        sse_reply(vec![role(), Part::Send(format!("{error}\n\n"))], gap())
    })
    .await;
    let err = client(config(&server.base))
        .chat(&question(true))
        .await
        .unwrap_err();
    match err {
        BackendError::Stream { reason, .. } => {
            assert_eq!(reason, "the server sent an error: context length exceeded");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_ending_without_done_or_finish_reason_is_an_error() {
    let server =
        serve(|_, _| sse_reply(vec![role(), content("Two"), content(" peo")], gap())).await;
    let err = client(config(&server.base))
        .chat(&question(true))
        .await
        .unwrap_err();
    match err {
        BackendError::Stream { url, reason } => {
            assert_eq!(url, server.chat_url());
            assert_eq!(
                reason,
                "the stream ended before [DONE]/finish_reason after 7 characters of text"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_broken_after_content_is_not_retried() {
    let server = serve(|_, _| sse_reply(vec![role(), content("Two"), Part::Abort], gap())).await;
    let err = client(config(&server.base))
        .chat(&question(true))
        .await
        .unwrap_err();
    match err {
        BackendError::Stream { reason, .. } => {
            assert!(
                reason.starts_with("reading the response failed"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_broken_before_content_is_retried() {
    let server = serve(|n, _| {
        if n == 0 {
            sse_reply(vec![role(), Part::Abort], gap())
        } else {
            sse_reply(vec![role(), content("Two"), finish(), done()], gap())
        }
    })
    .await;
    let answer = client(config(&server.base))
        .chat(&question(true))
        .await
        .unwrap();
    assert_eq!(answer.text, "Two");
    assert_eq!(answer.timing.attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_sent_and_never_leaks() {
    let bearer = format!("Bearer {KEY}");
    let server = serve(move |n, headers| {
        let auth: Vec<_> = headers.get_all("authorization").iter().collect();
        if auth != [bearer.as_str()] {
            return json_reply(401, "missing or wrong bearer token");
        }
        if n == 0 {
            return json_reply(200, &completion("Two."));
        }
        // A proxy that echoes request headers into its error page.
        json_reply(
            502,
            &format!("bad gateway; you sent Authorization: {bearer}"),
        )
    })
    .await;
    let userinfo_base = server
        .base
        .replace("http://", "http://eyetest:hunter2-PASSWORD@");
    let mut cfg = config(&userinfo_base);
    cfg.api_key = Some(Secret::new(KEY));
    cfg.max_retries = 1;
    let client = client(cfg.clone());

    // The bearer header replaces the Basic one reqwest derives from the URL userinfo.
    let answer = client.chat(&question(false)).await.unwrap();
    assert_eq!(answer.text, "Two.");

    let err = client.chat(&question(false)).await.unwrap_err();
    match &err {
        BackendError::RetriesExhausted { attempts: 2, last } => match &**last {
            BackendError::Http {
                status: 502,
                body,
                url,
            } => {
                assert_eq!(body, "bad gateway; you sent Authorization: Bearer ***");
                assert_eq!(url, &server.chat_url());
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }

    let refused = OpenAiClient::new(
        http_client_for(&cfg),
        OpenAiConfig {
            base_url: format!("http://eyetest:hunter2-PASSWORD@{}/v1", closed_port()),
            max_retries: 0,
            ..cfg.clone()
        },
    );
    let refused_err = refused.chat(&question(true)).await.unwrap_err();
    let models_err = OpenAiClient::new(
        http_client_for(&cfg),
        OpenAiConfig {
            base_url: format!("{userinfo_base}/nowhere"),
            max_retries: 0,
            ..cfg.clone()
        },
    )
    .models()
    .await
    .unwrap_err();

    for text in [
        err.to_string(),
        format!("{err:?}"),
        refused_err.to_string(),
        format!("{refused_err:?}"),
        models_err.to_string(),
        format!("{models_err:?}"),
        format!("{cfg:?}"),
        format!("{client:?}"),
        cfg.api_key.as_ref().unwrap().to_string(),
    ] {
        assert!(!text.contains("SECRET"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert!(
        matches!(refused_err, BackendError::Connect { .. }),
        "{refused_err:?}"
    );
    assert!(
        matches!(models_err, BackendError::Http { status: 404, .. }),
        "{models_err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_retried_then_reported() {
    let base = format!("http://{}/v1", closed_port());
    let mut cfg = config(&base);
    cfg.max_retries = 2;
    let err = client(cfg.clone()).chat(&question(true)).await.unwrap_err();
    match err {
        BackendError::RetriesExhausted { attempts: 3, last } => match *last {
            BackendError::Connect { url, reason } => {
                assert_eq!(url, format!("{base}/chat/completions"));
                assert!(reason.to_lowercase().contains("refused"), "{reason}");
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }

    cfg.max_retries = 0;
    let err = client(cfg).chat(&question(true)).await.unwrap_err();
    assert!(matches!(err, BackendError::Connect { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_base_url_is_reported_not_panicked() {
    for base in ["127.0.0.1:8000/v1", "ftp://host/v1", "http://us:pw@[::1/v1"] {
        let err = client(config(base))
            .chat(&question(false))
            .await
            .unwrap_err();
        match err {
            BackendError::Connect { url, reason } => {
                assert!(!url.contains("pw"), "{url}");
                assert!(reason.contains("base_url"), "{reason}");
            }
            other => panic!("{base}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_lists_ids_with_or_without_trailing_slash() {
    let server = serve(|_, _| {
        json_reply(
            200,
            r#"{"object":"list","data":[{"id":"llama-11b","object":"model"},{"id":"sim"}]}"#,
        )
    })
    .await;
    for base in [server.base.clone(), format!("{}/", server.base)] {
        let ids = client(config(&base)).models().await.unwrap();
        assert_eq!(ids, ["llama-11b", "sim"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_serialized_body_is_sent_verbatim() {
    let server = serve(|_, _| sse_reply(vec![content("ok"), finish(), done()], gap())).await;
    let body = request_body(&question(true)).unwrap();
    let client = client(config(&format!("{}/", server.base)));
    for _ in 0..3 {
        let answer = client.chat_with_body(body.clone(), true).await.unwrap();
        assert_eq!(answer.text, "ok");
    }
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|(_, b)| *b == body));
}
