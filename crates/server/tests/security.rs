//! Who may connect, at the HTTP level: the token, the Host check (DNS rebinding), exact
//! Origin matching on the API and the extension socket (look-alike origins refused),
//! the record of refusals in `/v1/status`, and `any serve` refusing a non-loopback
//! `--host`; and the limits: calls in flight, a socket message over 128 MiB, invalid
//! UTF-8 and deep nesting in bodies and frames. Every refusal answers in our error shape.

mod common;

use std::time::Duration;

use any_protocol::{EXTENSION_ID, EXTENSION_ORIGIN, VERSION};
use common::{error, quick, start};
use fake_extension::{Error as FakeError, FakeExtension, Options};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A client that sends no token.
fn anonymous() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// The status and JSON body of `response`, checked to be in our error shape when it failed.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    if status >= 400 {
        assert_eq!(body["v"], 1, "{body}");
        for field in ["code", "name", "message"] {
            assert!(error(&body)[field].is_string(), "{field} missing: {body}");
        }
    }
    (status, body)
}

fn assert_refused(status: u16, body: &Value, code: &str, needle: &str) {
    let expected = match code {
        "unauthorized" => 401,
        "forbidden" => 403,
        other => panic!("unexpected code {other}"),
    };
    assert_eq!(
        (status, error(body)["code"].as_str()),
        (expected, Some(code)),
        "{body}"
    );
    let message = error(body)["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
}

const CALL: &str = r#"{"page": "https://example.test/", "method": "echo", "params": {"hi": 1}}"#;

#[tokio::test]
async fn the_client_api_needs_the_token_and_says_where_it_is() {
    let server = start(quick()).await;
    let _fake = server.fake().await;
    let bare = anonymous();
    let url = |path: &str| format!("{}{path}", server.base);

    let missing = bare
        .post(url("/v1/call"))
        .header("content-type", "application/json")
        .body(CALL)
        .send()
        .await
        .expect("POST");
    assert_eq!(
        missing
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or("")),
        Some("Bearer realm=\"any\"")
    );
    let (status, body) = answer(missing).await;
    assert_refused(status, &body, "unauthorized", "any token");

    for (authorization, needle) in [
        (
            "Bearer 0000000000000000000000000000000000000000000000000000000000000000",
            "wrong",
        ),
        (&format!("Bearer {}x", server.token) as &str, "wrong"),
        (&format!("Basic {}", server.token) as &str, "Bearer <token>"),
        ("Bearer", "Bearer <token>"),
        ("Bearer ", "Bearer <token>"),
    ] {
        let (status, body) = answer(
            bare.post(url("/v1/call"))
                .header("content-type", "application/json")
                .header("authorization", authorization)
                .body(CALL)
                .send()
                .await
                .expect("POST"),
        )
        .await;
        assert_refused(status, &body, "unauthorized", needle);
    }
    for path in ["/v1/status", "/v1/nothing"] {
        let (status, body) = answer(bare.get(url(path)).send().await.expect("GET")).await;
        assert_refused(status, &body, "unauthorized", "Authorization");
    }
    let (status, body) = answer(bare.post(url("/v1/shutdown")).send().await.expect("POST")).await;
    assert_refused(status, &body, "unauthorized", "Authorization");

    // Open without the token: health (for autostart) and the API description.
    let (status, health) = answer(bare.get(url("/v1/health")).send().await.expect("GET")).await;
    assert_eq!(status, 200);
    let keys: Vec<&String> = health.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        ["extensions", "ok", "version"],
        "health says nothing more"
    );
    assert_eq!(
        bare.get(url("/v1/openapi.json"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );

    // The right token (any case of the scheme) works, and nothing above made a call.
    let (status, body) = answer(
        bare.post(url("/v1/call"))
            .header("content-type", "application/json")
            .header("authorization", format!("bearer {}", server.token))
            .body(CALL)
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!((status, &body["result"]), (200, &json!({"hi": 1})));
    let (_, status) = server.get("/v1/status").await;
    assert_eq!(
        status["recent"].as_array().map(Vec::len),
        Some(1),
        "one call ran: {status}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_host_that_is_not_this_servers_loopback_address_is_refused() {
    let server = start(quick()).await;
    let port = server.port;
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.com:{port}"),
        format!("localhost.evil.com:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        format!("localhost:{}", port.wrapping_add(1)),
        "127.0.0.1".to_owned(),
        "evil.example".to_owned(),
        format!("[::2]:{port}"),
        format!("10.0.0.1:{port}"),
        String::new(),
    ] {
        for path in ["/v1/health", "/v1/status"] {
            let response = server
                .http
                .get(format!("{}{path}", server.base))
                .header("host", &host)
                .send()
                .await
                .expect("GET");
            let (status, body) = answer(response).await;
            assert_refused(status, &body, "forbidden", "DNS rebinding");
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("[::1]:{port}"),
    ] {
        let response = server
            .http
            .get(format!("{}/v1/status", server.base))
            .header("host", &host)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200, "{host}");
    }
    server.stop().await;
}

/// Origins a hostile or mistaken page could send; none is the extension's.
fn look_alikes(port: u16) -> Vec<String> {
    let id = EXTENSION_ID;
    vec![
        format!("chrome-extension://{id}.evil"),
        format!("chrome-extension://{id}x"),
        format!("chrome-extension://{id}/"),
        format!("chrome-extension://{}", id.to_uppercase()),
        format!("chrome-extension://{}", &id[..31]),
        format!("chrome-extension://x{id}"),
        format!("moz-extension://{id}"),
        "chrome-extension://abcdefghijklmnopabcdefghijklmnop".to_owned(),
        "http://127.0.0.1.evil.com".to_owned(),
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        "http://127.0.0.1".to_owned(),
        "https://evil.example".to_owned(),
        "null".to_owned(),
        String::new(),
    ]
}

#[tokio::test]
async fn the_api_refuses_every_origin_but_the_allowed_ones_even_with_the_token() {
    let mut config = quick();
    config
        .allowed_origins
        .push("http://127.0.0.1:3000".to_owned());
    let server = start(config).await;
    let _fake = server.fake().await;
    for origin in look_alikes(server.port) {
        for (method, path) in [
            ("POST", "/v1/call"),
            ("GET", "/v1/status"),
            ("POST", "/v1/shutdown"),
        ] {
            let response = server
                .http
                .request(
                    method.parse().expect("method"),
                    format!("{}{path}", server.base),
                )
                .header("origin", &origin)
                .header("content-type", "application/json")
                .body(CALL)
                .send()
                .await
                .expect("request");
            let (status, body) = answer(response).await;
            assert_refused(status, &body, "forbidden", "web pages");
        }
    }
    let (_, status) = server.get("/v1/status").await;
    assert_eq!(status["recent"], json!([]), "no call was made");
    assert_eq!(status["calls"], json!([]));

    for origin in [EXTENSION_ORIGIN, "http://127.0.0.1:3000"] {
        let response = server
            .http
            .post(format!("{}/v1/call", server.base))
            .header("origin", origin)
            .header("content-type", "application/json")
            .body(CALL)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 200, "{origin} is allowed");
    }
    server.stop().await;
}

fn hello() -> String {
    json!({
        "v": VERSION, "type": "hello", "protocol": VERSION, "extension_version": "1",
        "browser": {"name": "Test", "version": "1"}, "label": "", "capabilities": []
    })
    .to_string()
}

#[tokio::test]
async fn only_the_extensions_exact_origin_may_open_the_extension_socket() {
    let mut config = quick();
    let store_build = "chrome-extension://abcdefghijklmnopabcdefghijklmnop";
    config.allowed_origins.push(store_build.to_owned());
    let server = start(config).await;

    let mut refused = look_alikes(server.port);
    refused.retain(|o| o != store_build);
    for origin in refused.iter().map(Some).chain([None]) {
        let options = Options {
            origin: origin.cloned(),
            ..Options::port(server.port)
        };
        match FakeExtension::connect(options).await {
            Err(FakeError::Connect { reason, .. }) => {
                assert!(reason.contains("403"), "{origin:?}: {reason}");
            }
            Err(other) => panic!("{origin:?}: refused in the wrong way: {other}"),
            Ok(_) => panic!("{origin:?} was let in as the extension"),
        }
    }
    assert_eq!(server.health_extensions().await, 0);

    // The body of the refusal says what to do.
    let mut request = format!("ws://127.0.0.1:{}/v1/extension", server.port)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "origin",
        format!("chrome-extension://{EXTENSION_ID}.evil")
            .parse()
            .expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("JSON");
            assert_refused(403, &body, "forbidden", "--allow-origin");
        }
        other => panic!("let in: {:?}", other.map(|_| ())),
    }

    // The extension's own origin and an --allow-origin one connect.
    let _ours = server.fake().await;
    let theirs = Options {
        origin: Some(store_build.to_owned()),
        ..Options::port(server.port)
    };
    let _theirs = FakeExtension::connect(theirs)
        .await
        .expect("an allowed origin connects");
    server.wait_extensions(2).await;

    // The refusals are in the status record, newest first, with their origins.
    let (_, status) = server.get("/v1/status").await;
    let rejected = status["rejected"].as_array().expect("rejected");
    assert_eq!(
        rejected.len(),
        refused.len() + 2,
        "every refusal is recorded"
    );
    assert_eq!(
        rejected[0]["origin"],
        format!("chrome-extension://{EXTENSION_ID}.evil")
    );
    assert_eq!(rejected[0]["request"], "GET /v1/extension");
    assert_eq!(rejected[0]["code"], "forbidden");
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_protocol_version_is_recorded_for_any_status() {
    let server = start(quick()).await;
    let old = hello().replace(&format!("\"protocol\":{VERSION}"), "\"protocol\":99");
    let refused = FakeExtension::connect_with_hello(Options::port(server.port), &old).await;
    assert!(matches!(refused, Err(FakeError::Rejected(_))), "rejected");

    let (_, status) = server.get("/v1/status").await;
    let entry = &status["rejected"][0];
    assert_eq!(entry["code"], "protocol_error", "{status}");
    assert!(
        entry["reason"].as_str().is_some_and(|r| r.contains("99")),
        "{entry}"
    );
    server.stop().await;
}

#[tokio::test]
async fn calls_over_the_limit_are_refused_at_once_and_the_server_recovers() {
    let config = any_server::Config {
        max_calls: 2,
        ..quick()
    };
    let server = start(config).await;
    let _fake = server.fake().await;
    let slow = json!({"page": "https://example.test/", "method": "sleep", "params": {"ms": 600}});
    let running: Vec<_> = (0..2)
        .map(|_| {
            let http = server.http.clone();
            let url = format!("{}/v1/call", server.base);
            let body = slow.clone();
            tokio::spawn(async move { http.post(url).json(&body).send().await.map(|r| r.status()) })
        })
        .collect();
    common::wait_until("two calls in flight", || async {
        server.get("/v1/status").await.1["calls"]
            .as_array()
            .map(Vec::len)
            == Some(2)
    })
    .await;

    let started = std::time::Instant::now();
    let (status, body) = server.call_method("echo", json!({})).await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "refused at once"
    );
    assert_eq!(
        (status, error(&body)["code"].as_str()),
        (429, Some("too_many_calls")),
        "{body}"
    );
    assert!(
        error(&body)["message"]
            .as_str()
            .is_some_and(|m| m.contains("--max-calls")),
        "{body}"
    );

    for call in running {
        assert_eq!(call.await.expect("task").expect("answer"), 200);
    }
    let (status, _) = server.call_method("echo", json!({})).await;
    assert_eq!(status, 200, "slots are given back");
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_and_deep_nesting_in_a_body_are_bad_requests() {
    let server = start(quick()).await;
    let deep = format!(
        r#"{{"page": "https://example.test/", "method": "echo", "params": {}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut invalid = br#"{"page": "https://example.test/", "method": "ec"#.to_vec();
    invalid.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid.extend_from_slice(br#"ho"}"#);
    let deep_typed = format!(
        r#"{{"page": {}"x"{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    // Found by schemathesis: a character across the length of "https://" once panicked.
    let split_char = r#"{"page": "FILE://", "method": "m"}"#.as_bytes().to_vec();
    for (what, body, needle) in [
        (
            "a multi-byte character where a scheme could end",
            split_char,
            "",
        ),
        ("invalid UTF-8", invalid, "invalid request body"),
        ("deep raw params", deep.into_bytes(), ""),
        (
            "deep typed field",
            deep_typed.into_bytes(),
            "invalid request body",
        ),
    ] {
        let response = server
            .http
            .post(format!("{}/v1/call", server.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        let (status, body) = answer(response).await;
        // Valid calls (deep params are carried as raw JSON) reach the absent extension.
        if needle.is_empty() {
            assert_eq!(status, 503, "{what}: {body}");
        } else {
            assert_eq!(status, 400, "{what}: {body}");
            assert!(
                error(&body)["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(needle)),
                "{what}: {body}"
            );
        }
    }
    assert_eq!(server.get("/v1/health").await.0, 200, "still serving");
    server.stop().await;
}

#[tokio::test]
async fn frames_with_invalid_utf8_or_unknown_types_do_not_stop_the_extension_socket() {
    let server = start(quick()).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_request())
        .await
        .expect("connect");
    socket.send(Message::text(hello())).await.expect("hello");
    let welcome = socket.next().await.expect("welcome").expect("frame");
    assert!(
        welcome.to_text().is_ok_and(|t| t.contains("welcome")),
        "{welcome:?}"
    );
    // Not UTF-8 (only possible in a binary frame: tungstenite refuses such text), then
    // an unknown type and a frame of a future version: each logged and dropped.
    socket
        .send(Message::binary(vec![0xff, 0xfe, 0x7b]))
        .await
        .expect("binary");
    socket
        .send(Message::text(r#"{"v":1,"type":"teleport","id":"c-1"}"#))
        .await
        .expect("unknown");
    socket
        .send(Message::text(r#"{"v":2,"type":"pong","seq":1}"#))
        .await
        .expect("v2");
    server.wait_extensions(1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.health_extensions().await, 1, "still connected");
    server.stop().await;
}

#[tokio::test]
async fn a_socket_message_over_128_mib_drops_that_socket_and_the_server_keeps_serving() {
    let server = start(quick()).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_request())
        .await
        .expect("connect");
    socket.send(Message::text(hello())).await.expect("hello");
    let _welcome = socket.next().await.expect("welcome").expect("frame");
    server.wait_extensions(1).await;

    let huge = format!(
        r#"{{"v":1,"type":"result","id":"c-1","value":"{}"}}"#,
        "x".repeat(2 * any_server::BODY_LIMIT + 1)
    );
    let _ = socket.send(Message::text(huge)).await;

    server.wait_extensions(0).await;
    let fake = server.fake().await;
    let (status, body) = server.call_method("echo", json!({"after": "huge"})).await;
    assert_eq!((status, &body["result"]), (200, &json!({"after": "huge"})));
    drop(fake);
    server.stop().await;
}

/// Runs the `any` binary with a fresh HOME; returns (exit code, stderr).
fn any_cli(args: &[&str]) -> (Option<i32>, String) {
    let home = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sec-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("home");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_any"))
        .args(args)
        .env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .output()
        .expect("run any");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn serve_refuses_a_non_loopback_host_and_bad_flags_before_listening() {
    for (args, needle) in [
        (
            &["serve", "--port", "0", "--host", "0.0.0.0"][..],
            "not a loopback address",
        ),
        (
            &["serve", "--port", "0", "--host", "192.168.1.10"][..],
            "not a loopback address",
        ),
        (
            &["serve", "--port", "0", "--host", "example.com"][..],
            "not an IP address or localhost",
        ),
        (
            &["serve", "--port", "0", "--allow-origin", "*"][..],
            "is not an origin",
        ),
        (
            &[
                "serve",
                "--port",
                "0",
                "--allow-origin",
                "http://127.0.0.1:3000/",
            ][..],
            "is not an origin",
        ),
        (
            &["serve", "--port", "0", "--max-calls", "0"][..],
            "--max-calls must be 1 or more",
        ),
    ] {
        let (code, stderr) = any_cli(args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
