//! Malformed input on both lanes: HTTP bodies get our error shape (never a framework's
//! text) and the server keeps serving; broken frames are logged, fail the call they name,
//! and a wrong protocol version is rejected with a reason.

mod common;

use std::time::Duration;

use any_protocol::{ErrorCode, VERSION};
use common::{error, quick, start};
use fake_extension::{Error as FakeError, FakeExtension, Options};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Posts `body` with `content_type` to `/v1/call`; returns the status and the JSON answer.
async fn post_raw(
    server: &common::Server,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = server
        .http
        .post(format!("{}/v1/call", server.base))
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let answer =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
    (status, answer)
}

/// Asserts a `400 bad_request` in our shape whose message contains `needle`.
fn assert_bad_request(status: u16, answer: &Value, needle: &str) {
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["v"], 1);
    assert!(
        answer.get("id").is_none(),
        "a request that never became a call has no id: {answer}"
    );
    assert_eq!(error(answer)["code"], "bad_request");
    assert_eq!(error(answer)["name"], "BadRequest");
    let message = error(answer)["message"].as_str().expect("message");
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
}

#[tokio::test]
async fn malformed_http_bodies_get_bad_request_in_our_shape() {
    let server = start(quick()).await;
    let json_ct = Some("application/json");
    let cases: Vec<(&str, Option<&str>, &str, &str)> = vec![
        ("bad JSON", json_ct, "{\"page\": ", "invalid request body"),
        ("not an object", json_ct, "[1, 2]", "invalid request body"),
        (
            "wrong type",
            json_ct,
            r#"{"page": 7, "method": "m"}"#,
            "invalid type: integer `7`, expected a string",
        ),
        (
            "missing method",
            json_ct,
            r#"{"page": "https://example.test/"}"#,
            "missing field `method`",
        ),
        (
            "unknown field",
            json_ct,
            r#"{"page": "https://example.test/", "method": "m", "timeout": 5}"#,
            "unknown field `timeout`",
        ),
        (
            "bad tab",
            json_ct,
            r#"{"page": "https://example.test/", "method": "m", "tab": "old"}"#,
            "unknown variant `old`",
        ),
        (
            "relative page",
            json_ct,
            r#"{"page": "/index.html", "method": "m"}"#,
            "absolute http://, https:// or file:// URL",
        ),
        (
            "javascript page",
            json_ct,
            r#"{"page": "javascript:alert(1)", "method": "m"}"#,
            "`page` must be",
        ),
        (
            "empty method",
            json_ct,
            r#"{"page": "https://example.test/", "method": ""}"#,
            "`method` must be",
        ),
        (
            "zero timeout",
            json_ct,
            r#"{"page": "https://example.test/", "method": "m", "timeout_ms": 0}"#,
            "`timeout_ms`",
        ),
        (
            "negative timeout",
            json_ct,
            r#"{"page": "https://example.test/", "method": "m", "timeout_ms": -1}"#,
            "invalid value: integer `-1`",
        ),
        (
            "text content type",
            Some("text/plain"),
            r#"{"page": "https://example.test/", "method": "m"}"#,
            "Content-Type: application/json",
        ),
        (
            "no content type",
            None,
            r#"{"page": "https://example.test/", "method": "m"}"#,
            "no content type",
        ),
        ("empty body", json_ct, "", "invalid request body"),
    ];
    for (what, content_type, body, needle) in cases {
        let (status, answer) = post_raw(&server, content_type, body.as_bytes().to_vec()).await;
        assert_bad_request(status, &answer, needle);
        eprintln!("ok: {what}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_body_is_413_too_large_and_the_server_keeps_serving() {
    let server = start(quick()).await;
    let _fake = server.fake().await;
    // A syntactically fine call whose params push the body past 64 MiB.
    let filler = "x".repeat(any_server::BODY_LIMIT + 1024);
    let body =
        format!(r#"{{"page": "https://example.test/", "method": "echo", "params": "{filler}"}}"#);

    let (status, answer) = post_raw(&server, Some("application/json"), body.into_bytes()).await;

    assert_eq!(status, 413, "{answer}");
    assert_eq!(error(&answer)["code"], "too_large");
    let message = error(&answer)["message"].as_str().expect("message");
    assert!(message.contains("67108864"), "names the limit: {message}");
    let (status, answer) = server
        .call_method("echo", json!({"still": "serving"}))
        .await;
    assert_eq!(
        (status, &answer["result"]),
        (200, &json!({"still": "serving"}))
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_our_shape() {
    let server = start(quick()).await;

    let (status, answer) = server.get("/v1/nothing").await;
    assert_eq!(status, 404);
    assert_eq!(error(&answer)["code"], "bad_request");
    assert!(
        error(&answer)["message"]
            .as_str()
            .is_some_and(|m| m.contains("/v1/openapi.json"))
    );

    let response = server
        .http
        .delete(format!("{}/v1/call", server.base))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status().as_u16(), 405);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(error(&answer)["code"], "bad_request");

    // The extension probes the socket's address with a plain GET before connecting.
    let response = server
        .http
        .get(format!("{}/v1/extension", server.base))
        .header("origin", any_protocol::EXTENSION_ORIGIN)
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(status, 400, "a plain GET of the socket path: {answer}");
    assert!(
        error(&answer)["message"]
            .as_str()
            .is_some_and(|m| m.contains("WebSocket"))
    );
    server.stop().await;
}

#[tokio::test]
async fn undecodable_frames_are_dropped_and_the_connection_keeps_working() {
    let server = start(quick()).await;
    let fake = server.fake().await;

    for junk in [
        "this is not JSON".to_owned(),
        "[1,2,3]".to_owned(),
        json!({"v": 1, "type": "teleport", "id": "c-999"}).to_string(),
        json!({"type": "result", "id": "c-999", "value": 1}).to_string(),
        json!({"v": 1, "type": "result", "id": "c-424242", "value": 1}).to_string(),
    ] {
        fake.send_raw(&junk);
    }
    let (status, answer) = server.call_method("echo", json!({"fine": true})).await;

    assert_eq!((status, &answer["result"]), (200, &json!({"fine": true})));
    assert_eq!(
        server.health_extensions().await,
        1,
        "the extension is still connected"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_broken_frame_that_names_a_call_fails_it_with_protocol_error() {
    let server = start(quick()).await;
    let fake = server.fake().await;
    let pending = server.spawn_call(
        json!({"page": "https://example.test/", "method": "never", "timeout_ms": 5000}),
    );
    common::wait_until("the call to be dispatched", || async {
        server.get("/v1/status").await.1["calls"][0]["stage"] == "dispatched"
    })
    .await;
    let id = server.get("/v1/status").await.1["calls"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // A result frame without its value.
    fake.send_raw(&json!({"v": 1, "type": "result", "id": id}).to_string());

    let (status, answer) = pending.await.expect("task");
    assert_eq!(status, ErrorCode::ProtocolError.http_status(), "{answer}");
    assert_eq!(error(&answer)["code"], "protocol_error");
    let message = error(&answer)["message"].as_str().expect("message");
    assert!(message.contains("missing field `value`"), "{message}");
    // The server told the extension to stop working on it.
    assert_eq!(
        fake.transcript()
            .count(&id, fake_extension::Direction::In, "cancel"),
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn an_error_with_an_unknown_code_fails_the_call_with_protocol_error() {
    let server = start(quick()).await;
    let _fake = server.fake().await;

    let (status, answer) = server
        .call_method("fail", json!({"code": "exploded", "message": "?"}))
        .await;

    assert_eq!(status, 502, "{answer}");
    assert_eq!(error(&answer)["code"], "protocol_error");
    assert!(
        error(&answer)["message"]
            .as_str()
            .is_some_and(|m| m.contains("exploded"))
    );
    server.stop().await;
}

fn hello(v: u32, protocol: u32) -> String {
    json!({
        "v": v, "type": "hello", "protocol": protocol, "extension_version": "9.9.9",
        "browser": {"name": "Old", "version": "1"}, "label": "", "capabilities": []
    })
    .to_string()
}

#[tokio::test]
async fn a_wrong_protocol_version_is_rejected_with_a_reason_that_says_what_to_do() {
    let server = start(quick()).await;

    for (v, protocol) in [(VERSION + 1, VERSION + 1), (VERSION, VERSION + 1)] {
        let refused =
            FakeExtension::connect_with_hello(Options::port(server.port), &hello(v, protocol))
                .await;
        match refused {
            Err(FakeError::Rejected(reason)) => {
                assert!(
                    reason.contains(&format!("{}", VERSION + 1)),
                    "names the version: {reason}"
                );
                assert!(
                    reason.contains("update the any server"),
                    "says what to do: {reason}"
                );
            }
            Err(other) => panic!("expected a reject, got {other}"),
            Ok(_) => panic!("a hello with version {v}/{protocol} was welcomed"),
        }
    }
    assert_eq!(server.health_extensions().await, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_first_frame_that_is_not_hello_is_rejected_and_the_socket_closed() {
    let server = start(quick()).await;
    for first in [
        "garbage",
        r#"{"v":1,"type":"pong","seq":1}"#,
        r#"{"v":1,"type":"hello"}"#,
    ] {
        let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_request())
            .await
            .expect("connect");
        socket.send(Message::text(first)).await.expect("send");

        let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("an answer");
        let Some(Ok(Message::Text(text))) = reply else {
            panic!("expected a reject frame, got {reply:?}")
        };
        let frame: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(frame["type"], "reject", "{frame}");
        assert!(
            frame["reason"]
                .as_str()
                .is_some_and(|r| r.contains("hello")),
            "{frame}"
        );
        let closed = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("closed");
        assert!(
            matches!(closed, Some(Ok(Message::Close(_))) | None),
            "{closed:?}"
        );
    }
    assert_eq!(server.health_extensions().await, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_socket_is_rejected_after_the_hello_wait() {
    let config = any_server::Config {
        hello_wait: Duration::from_millis(200),
        ..quick()
    };
    let server = start(config).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_request())
        .await
        .expect("connect");

    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("an answer");

    let Some(Ok(Message::Text(text))) = reply else {
        panic!("expected a reject frame, got {reply:?}")
    };
    assert!(text.contains("no hello within"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn the_server_pings_and_drops_an_extension_that_never_answers() {
    let config = any_server::Config {
        heartbeat: Duration::from_millis(100),
        silence_limit: Duration::from_millis(350),
        ..quick()
    };
    let server = start(config).await;
    // The fake answers pings: it stays.
    let alive = server.fake().await;
    // A raw socket that says hello and then nothing: it is dropped.
    let (mut silent, _) = tokio_tungstenite::connect_async(server.ws_request())
        .await
        .expect("connect");
    silent
        .send(Message::text(hello(VERSION, VERSION)))
        .await
        .expect("hello");
    server.wait_extensions(2).await;

    let mut pings = 0;
    let dropped = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = silent.next().await {
            match message {
                Message::Text(t) if t.contains("\"ping\"") => pings += 1,
                Message::Close(frame) => return frame.map(|f| f.reason.to_string()),
                _ => {}
            }
        }
        None
    })
    .await
    .expect("the silent socket is closed");

    assert!(pings >= 2, "pinged before giving up ({pings})");
    assert!(dropped.is_some_and(|r| r.contains("silent")), "says why");
    server.wait_extensions(1).await;
    let pongs = alive
        .transcript()
        .entries()
        .iter()
        .filter(|e| e.ty() == Some("pong"))
        .count();
    assert!(pongs >= 2, "the live extension answered pings ({pongs})");
    server.stop().await;
}

#[tokio::test]
async fn a_web_page_cannot_pose_as_the_extension_but_the_extension_origin_can() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = start(quick()).await;
    let url = format!("ws://127.0.0.1:{}/v1/extension", server.port);

    let mut request = url.as_str().into_client_request().expect("request");
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().expect("header"));
    let refused = tokio_tungstenite::connect_async(request).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("JSON");
            assert!(
                error(&body)["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("https://evil.example"))
            );
        }
        other => panic!("a web origin was let in: {:?}", other.map(|_| ())),
    }

    let mut request = url.as_str().into_client_request().expect("request");
    request.headers_mut().insert(
        "origin",
        any_protocol::EXTENSION_ORIGIN.parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("an extension origin connects");
    socket
        .send(Message::text(hello(VERSION, VERSION)))
        .await
        .expect("hello");
    server.wait_extensions(1).await;
    server.stop().await;
}

#[tokio::test]
async fn a_web_page_cannot_stop_the_server_or_make_calls() {
    let server = start(quick()).await;
    for (path, content_type) in [
        ("/v1/shutdown", "text/plain"),
        ("/v1/call", "application/json"),
    ] {
        let response = server
            .http
            .post(format!("{}{path}", server.base))
            .header("origin", "https://evil.example")
            .header("content-type", content_type)
            .body(r#"{"page": "https://example.test/", "method": "echo"}"#)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status().as_u16(), 403, "{path}");
        let body: Value = response.json().await.expect("JSON");
        assert!(
            error(&body)["message"]
                .as_str()
                .is_some_and(|m| m.contains("web pages")),
            "{body}"
        );
    }
    assert_eq!(server.get("/v1/health").await.0, 200, "still running");
    server.stop().await;
}
