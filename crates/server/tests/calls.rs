//! The server against fake extensions over real sockets: every way a call can end, and
//! that it ends exactly once.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{error, quick, start, wait_until};
use fake_extension::Direction;
use serde_json::{Value, json};

#[tokio::test]
async fn a_call_returns_the_methods_result() {
    let server = start(quick()).await;
    let fake = server.fake().await;
    let params = json!({"delay": 500, "nested": {"list": [1, "two", null]}});

    let (status, answer) = server.call_method("echo", params.clone()).await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["v"], 1);
    assert_eq!(answer["result"], params);
    let id = answer["id"].as_str().expect("the answer names the call");
    // The extension was sent exactly one call, with the page, method, params and a deadline.
    let calls: Vec<_> = fake
        .transcript()
        .for_call(id)
        .into_iter()
        .filter(|e| e.ty() == Some("call"))
        .collect();
    assert_eq!(calls.len(), 1);
    let call = &calls[0].frame;
    assert_eq!(call["v"], 1);
    assert_eq!(call["page"], "https://example.test/");
    assert_eq!(call["method"], "echo");
    assert_eq!(call["params"], params);
    assert_eq!(call["tab"], "reuse");
    assert!(
        call["timeout_ms"]
            .as_u64()
            .is_some_and(|t| t > 29_000 && t <= 30_000),
        "{call}"
    );
    server.stop().await;
}

#[tokio::test]
async fn params_default_to_an_empty_object_and_tab_new_is_passed_on() {
    let server = start(quick()).await;
    let fake = server.fake().await;

    let (status, answer) =
        server.call(json!({"page": "https://example.test/", "method": "echo", "tab": "new", "params": null})).await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"], json!({}));
    let id = answer["id"].as_str().expect("id");
    let call = fake
        .transcript()
        .for_call(id)
        .into_iter()
        .find(|e| e.ty() == Some("call"))
        .expect("call frame");
    assert_eq!(call.frame["tab"], "new");
    server.stop().await;
}

#[tokio::test]
async fn a_page_error_comes_back_with_the_pages_name_message_and_stack() {
    let server = start(quick()).await;
    let _fake = server.fake().await;

    let (status, answer) = server
        .call_method(
            "throw",
            json!({"name": "TypeError", "message": "x is undefined"}),
        )
        .await;

    assert_eq!(status, 422, "{answer}");
    let e = error(&answer);
    assert_eq!(e["code"], "page_error");
    assert_eq!(e["name"], "TypeError");
    assert_eq!(e["message"], "x is undefined");
    assert!(
        e["stack"]
            .as_str()
            .is_some_and(|s| s.starts_with("TypeError: x is undefined")),
        "{e}"
    );
    assert_eq!(e["stage"], "method_called");
    assert!(answer["id"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn a_missing_method_is_method_not_found() {
    let server = start(quick()).await;
    let _fake = server.fake().await;

    let (status, answer) = server.call_method("noSuchMethod", json!({})).await;

    assert_eq!(status, 404, "{answer}");
    assert_eq!(error(&answer)["code"], "method_not_found");
    assert_eq!(error(&answer)["name"], "MethodNotFound");
    assert!(
        error(&answer)["message"]
            .as_str()
            .is_some_and(|m| m.contains("noSuchMethod"))
    );
    server.stop().await;
}

#[tokio::test]
async fn every_error_code_the_extension_sends_reaches_the_caller_with_its_status() {
    let server = start(quick()).await;
    let _fake = server.fake().await;
    for code in any_protocol::ErrorCode::ALL {
        let (status, answer) = server
            .call_method(
                "fail",
                json!({"code": code.as_str(), "message": "from the extension"}),
            )
            .await;
        assert_eq!(status, code.http_status(), "{answer}");
        assert_eq!(error(&answer)["code"], code.as_str());
        assert_eq!(error(&answer)["message"], "from the extension");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_timeout_says_the_stage_reached_cancels_the_call_and_drops_the_late_answer() {
    let server = start(quick()).await;
    let fake = server.fake().await;
    let started = Instant::now();

    let (status, answer) = server
        .call(json!({"page": "https://example.test/", "method": "late", "params": {"ms": 1000}, "timeout_ms": 150}))
        .await;

    let elapsed = started.elapsed();
    assert_eq!(status, 504, "{answer}");
    assert!(
        elapsed >= Duration::from_millis(150) && elapsed < Duration::from_millis(900),
        "{elapsed:?}"
    );
    let e = error(&answer);
    assert_eq!(e["code"], "timeout");
    assert_eq!(e["stage"], "dispatched");
    assert_eq!(
        e["message"], "the call did not finish within 150 ms; it had reached stage dispatched",
        "the message says the deadline and the stage"
    );
    let id = answer["id"].as_str().expect("id").to_owned();

    // The extension was told to stop, and its late answer did arrive at the server...
    let transcript = fake.transcript().clone();
    wait_until("the late result to be sent", || {
        let t = transcript.clone();
        let id = id.clone();
        async move { t.count(&id, Direction::Out, "result") == 1 }
    })
    .await;
    assert_eq!(
        transcript.count(&id, Direction::In, "cancel"),
        1,
        "the extension was told to cancel"
    );
    let entries = transcript.for_call(&id);
    let cancel_at = entries
        .iter()
        .position(|e| e.ty() == Some("cancel"))
        .expect("cancel");
    let result_at = entries
        .iter()
        .position(|e| e.ty() == Some("result"))
        .expect("result");
    assert!(
        cancel_at < result_at,
        "the answer came after the cancel: it is late"
    );

    // ... and was dropped: nothing is in flight and the server still works.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, status_body) = server.get("/v1/status").await;
    assert_eq!(status_body["calls"], json!([]));
    let record = &status_body["recent"][0];
    assert_eq!(
        record["id"],
        id.as_str(),
        "the black-box record has the call"
    );
    assert_eq!(record["error"]["code"], "timeout");
    assert_eq!(
        record["dropped_answers"], 1,
        "and counts the late answer it dropped"
    );
    let (status, answer) = server.call_method("echo", json!({"after": "late"})).await;
    assert_eq!(
        (status, &answer["result"]),
        (200, &json!({"after": "late"}))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_timeout_reports_the_last_stage_the_extension_reported() {
    let server = start(quick()).await;
    let fake = server.fake().await;
    let pending = server
        .spawn_call(json!({"page": "https://example.test/", "method": "never", "timeout_ms": 700}));
    let transcript = fake.transcript().clone();
    wait_until("the call to reach the extension", || {
        let t = transcript.clone();
        async move { t.entries().iter().any(|e| e.ty() == Some("call")) }
    })
    .await;
    let id = transcript
        .entries()
        .iter()
        .find(|e| e.ty() == Some("call"))
        .and_then(|e| e.id().map(str::to_owned));
    let id = id.expect("call id");
    fake.send_raw(
        &json!({"v": 1, "type": "progress", "id": id, "stage": "page_loaded"}).to_string(),
    );

    let (status, answer) = pending.await.expect("task");

    assert_eq!(status, 504);
    assert_eq!(error(&answer)["stage"], "page_loaded");
    assert!(
        error(&answer)["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("it had reached stage page_loaded"))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_duplicate_answer_is_dropped_and_the_caller_gets_one() {
    let server = start(quick()).await;
    let fake = server.fake().await;

    let (status, answer) = server.call_method("duplicate", json!({"n": 1})).await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"], json!({"n": 1}));
    let id = answer["id"].as_str().expect("id").to_owned();
    let transcript = fake.transcript().clone();
    wait_until("both answers to be sent", || {
        let t = transcript.clone();
        let id = id.clone();
        async move { t.count(&id, Direction::Out, "result") == 2 }
    })
    .await;
    // The second answer neither became a second response nor broke the server.
    let (status, next) = server.call_method("echo", json!({"n": 2})).await;
    assert_eq!((status, &next["result"]), (200, &json!({"n": 2})));
    let status = server.get("/v1/status").await.1;
    assert_eq!(status["calls"], json!([]));
    let record = status["recent"]
        .as_array()
        .expect("recent")
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned();
    let record = record.expect("the call is in the record");
    assert!(record.get("error").is_none(), "it completed: {record}");
    assert_eq!(
        record["dropped_answers"], 1,
        "the duplicate was dropped: {record}"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_extension_that_disconnects_mid_call_fails_the_call_at_once() {
    let server = start(quick()).await;
    let _fake = server.fake().await;
    let started = Instant::now();

    let (status, answer) = server
        .call(
            json!({"page": "https://example.test/", "method": "disconnect", "timeout_ms": 20_000}),
        )
        .await;

    assert_eq!(status, 502, "{answer}");
    assert_eq!(error(&answer)["code"], "extension_disconnected");
    assert_eq!(error(&answer)["stage"], "dispatched");
    assert!(
        error(&answer)["message"]
            .as_str()
            .is_some_and(|m| m.contains("FakeBrowser")),
        "names the browser"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "at once, not at the deadline"
    );
    server.wait_extensions(0).await;
    server.stop().await;
}

#[tokio::test]
async fn a_big_answer_sent_just_before_the_close_is_still_delivered() {
    // Over 1 MiB, the server decodes a frame off its one thread; the close that follows
    // must still come second.
    let server = start(quick()).await;
    let fake = server.fake().await;
    let bytes = 3 << 20;
    let (status, answer) = server
        .call_method("big_then_disconnect", json!({"bytes": bytes}))
        .await;
    assert_eq!(
        status,
        200,
        "{}",
        &answer.to_string()[..200.min(answer.to_string().len())]
    );
    assert_eq!(answer["result"].as_str().map(str::len), Some(bytes));
    tokio::time::timeout(Duration::from_secs(5), fake.closed())
        .await
        .expect("the extension socket is closed");
    server.stop().await;
}

#[tokio::test]
async fn closing_the_extension_fails_every_call_it_was_running_and_no_other() {
    let server = start(quick()).await;
    let doomed = server.fake_labelled("doomed").await;
    let _other = server.fake_labelled("other").await;
    let mut pending = Vec::new();
    for label in ["doomed", "doomed", "other"] {
        let http = server.http.clone();
        let base = server.base.clone();
        pending.push(tokio::spawn(async move {
            let body = json!({"page": "https://example.test/", "method": "never", "browser": label, "timeout_ms": 1500});
            let response = http.post(format!("{base}/v1/call")).json(&body).send().await.expect("POST");
            (response.status().as_u16(), response.json::<Value>().await.expect("JSON"))
        }));
    }
    wait_until("three calls in flight", || async {
        server.get("/v1/status").await.1["calls"]
            .as_array()
            .is_some_and(|c| c.len() == 3)
    })
    .await;
    let started = Instant::now();

    doomed.close().await;

    for (i, task) in pending.into_iter().enumerate() {
        let (status, answer) = task.await.expect("task");
        let code = error(&answer)["code"].clone();
        if i < 2 {
            assert_eq!(
                (status, code),
                (502, json!("extension_disconnected")),
                "{answer}"
            );
            assert!(
                started.elapsed() < Duration::from_millis(1000),
                "failed at once"
            );
        } else {
            assert_eq!(
                (status, code),
                (504, json!("timeout")),
                "the other browser's call is untouched"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn calls_route_by_label_and_default_to_the_newest_extension() {
    let server = start(quick()).await;
    let work = server.fake_labelled("work").await;
    let home = server.fake_labelled("home").await;

    for (label, fake, other) in [("work", &work, &home), ("home", &home, &work)] {
        let (status, answer) = server
            .call(json!({"page": "https://example.test/", "method": "echo", "browser": label}))
            .await;
        assert_eq!(status, 200, "{answer}");
        let id = answer["id"].as_str().expect("id");
        assert_eq!(
            fake.transcript().count(id, Direction::In, "call"),
            1,
            "{label} ran it"
        );
        assert_eq!(
            other.transcript().count(id, Direction::In, "call"),
            0,
            "only {label} ran it"
        );
    }

    // No label: the most recently connected extension ("home").
    let (status, answer) = server.call_method("echo", json!({})).await;
    assert_eq!(status, 200);
    let id = answer["id"].as_str().expect("id");
    assert_eq!(home.transcript().count(id, Direction::In, "call"), 1);

    // An unknown label waits, then says which labels are connected.
    let (status, answer) = server
        .call(json!({"page": "https://example.test/", "method": "echo", "browser": "nope"}))
        .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(error(&answer)["code"], "no_extension");
    let message = error(&answer)["message"].as_str().expect("message");
    assert!(
        message.contains("\"nope\"")
            && message.contains("\"work\"")
            && message.contains("\"home\""),
        "{message}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_queued_call_runs_when_a_matching_extension_connects_during_the_wait() {
    let server = start(common::quick()).await;
    let pending = server.spawn_call(json!({"page": "https://example.test/", "method": "echo", "params": {"q": 1}, "browser": "later"}));
    wait_until("the call to be queued", || async {
        server.get("/v1/status").await.1["calls"][0]["stage"] == "queued"
    })
    .await;
    let _wrong = server.fake_labelled("wrong").await;
    let _later = server.fake_labelled("later").await;

    let (status, answer) = pending.await.expect("task");

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"], json!({"q": 1}));
    server.stop().await;
}

#[tokio::test]
async fn without_an_extension_a_call_fails_with_503_after_the_bounded_wait() {
    let config = any_server::Config {
        connect_wait: Duration::from_millis(300),
        ..any_server::Config::default()
    };
    let server = start(config).await;
    let started = Instant::now();

    let (status, answer) = server.call_method("echo", json!({})).await;

    let elapsed = started.elapsed();
    assert_eq!(status, 503, "{answer}");
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    let e = error(&answer);
    assert_eq!(e["code"], "no_extension");
    assert_eq!(e["stage"], "queued");
    let message = e["message"].as_str().expect("message");
    assert!(
        message.contains("no browser with the any extension is connected"),
        "{message}"
    );
    assert!(
        message.contains(&format!("127.0.0.1:{}", server.port)),
        "names the address: {message}"
    );
    assert!(
        message.contains("any browser"),
        "says what to do: {message}"
    );
    server.stop().await;
}

#[tokio::test]
async fn two_hundred_concurrent_calls_are_each_answered_exactly_once() {
    let server = start(quick()).await;
    let fake = server.fake().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let http = server.http.clone();
        let base = server.base.clone();
        tasks.push(tokio::spawn(async move {
            let method = if i % 2 == 0 { "echo" } else { "sleep" };
            let body = json!({"page": "https://example.test/", "method": method, "params": {"i": i, "ms": i % 50}});
            let response = http.post(format!("{base}/v1/call")).json(&body).send().await.expect("POST");
            (i, response.status().as_u16(), response.json::<Value>().await.expect("JSON"))
        }));
    }
    let mut ids = HashSet::new();
    for task in tasks {
        let (i, status, answer) = task.await.expect("task");
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["result"]["i"], i, "each caller gets its own answer");
        assert!(
            ids.insert(answer["id"].as_str().expect("id").to_owned()),
            "ids are unique"
        );
    }
    let entries = fake.transcript().entries();
    let calls_in = entries
        .iter()
        .filter(|e| e.dir == Direction::In && e.ty() == Some("call"))
        .count();
    let results_out = entries
        .iter()
        .filter(|e| e.dir == Direction::Out && e.ty() == Some("result"))
        .count();
    assert_eq!(
        (calls_in, results_out),
        (200, 200),
        "each call dispatched once and answered once"
    );
    assert_eq!(server.get("/v1/status").await.1["calls"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn status_shows_extensions_and_a_call_in_flight_with_its_stage() {
    let server = start(quick()).await;
    let fake = server.fake_labelled("work").await;
    let http = server.http.clone();
    let base = server.base.clone();
    let pending = tokio::spawn(async move {
        let body =
            json!({"page": "https://example.test/slow", "method": "never", "timeout_ms": 3000});
        http.post(format!("{base}/v1/call"))
            .json(&body)
            .send()
            .await
            .expect("POST")
            .status()
            .as_u16()
    });
    wait_until("the call to be dispatched", || async {
        server.get("/v1/status").await.1["calls"][0]["stage"] == "dispatched"
    })
    .await;
    let id = server.get("/v1/status").await.1["calls"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    fake.send_raw(
        &json!({"v": 1, "type": "progress", "id": id, "stage": "method_called"}).to_string(),
    );
    wait_until("the stage to be reported", || async {
        server.get("/v1/status").await.1["calls"][0]["stage"] == "method_called"
    })
    .await;

    let (code, status) = server.get("/v1/status").await;

    assert_eq!(code, 200);
    assert_eq!(status["listen"], format!("127.0.0.1:{}", server.port));
    assert_eq!(status["pid"], std::process::id());
    let ext = &status["extensions"][0];
    assert_eq!(ext["label"], "work");
    assert_eq!(ext["browser"]["name"], "FakeBrowser");
    assert_eq!(ext["calls_in_flight"], 1);
    let call = &status["calls"][0];
    assert_eq!(call["page"], "https://example.test/slow");
    assert_eq!(call["method"], "never");
    assert_eq!(call["conn"], ext["conn"]);
    assert!(call["age_s"].as_f64().is_some_and(|a| a > 0.0 && a < 3.0));
    // Typed check against the protocol's own body type.
    let typed: any_protocol::api::Status = serde_json::from_value(status).expect("status decodes");
    assert_eq!(typed.calls[0].stage, any_protocol::Stage::MethodCalled);
    assert_eq!(pending.await.expect("task"), 504);
    server.stop().await;
}

#[tokio::test]
async fn a_big_result_passes_through_unchanged() {
    let server = start(quick()).await;
    let _fake = server.fake().await;

    let (status, answer) = server.call_method("big", json!({"bytes": 5_000_000})).await;

    assert_eq!(status, 200);
    assert_eq!(answer["result"].as_str().map(str::len), Some(5_000_000));
    server.stop().await;
}

#[tokio::test]
async fn a_result_over_the_limit_fails_with_too_large_and_the_extension_stays() {
    let server = start(quick()).await;
    let _fake = server.fake().await;

    let (status, answer) = server
        .call_method("big", json!({"bytes": any_server::BODY_LIMIT + 10}))
        .await;

    assert_eq!(status, 413, "{answer}");
    assert_eq!(error(&answer)["code"], "too_large");
    assert!(
        error(&answer)["message"]
            .as_str()
            .is_some_and(|m| m.contains("the limit is 67108864 bytes"))
    );
    let (status, _) = server.call_method("echo", json!({})).await;
    assert_eq!(status, 200, "the same extension still answers");
    server.stop().await;
}

#[tokio::test]
async fn a_caller_that_goes_away_gets_its_call_cancelled() {
    let server = start(quick()).await;
    let fake = server.fake().await;
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let body = json!({"page": "https://example.test/", "method": "never", "timeout_ms": 20_000});

    let gave_up = impatient
        .post(format!("{}/v1/call", server.base))
        .bearer_auth(&server.token)
        .json(&body)
        .send()
        .await;

    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    let transcript = fake.transcript().clone();
    wait_until("the extension to be told to cancel", || {
        let t = transcript.clone();
        async move { t.entries().iter().any(|e| e.ty() == Some("cancel")) }
    })
    .await;
    assert_eq!(
        server.get("/v1/status").await.1["calls"],
        json!([]),
        "nothing left in flight"
    );
    server.stop().await;
}

#[tokio::test]
async fn progress_frames_then_a_result_complete_the_call() {
    let server = start(quick()).await;
    let fake = server.fake().await;

    let (status, answer) = server.call_method("progress", json!({"p": true})).await;

    assert_eq!((status, &answer["result"]), (200, &json!({"p": true})));
    let id = answer["id"].as_str().expect("id");
    assert_eq!(fake.transcript().count(id, Direction::Out, "progress"), 4);
    server.stop().await;
}

#[tokio::test]
async fn health_counts_connected_extensions() {
    let server = start(quick()).await;
    let (status, health) = server.get("/v1/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["ok"], true);
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["extensions"], 0);

    let a = server.fake().await;
    let _b = server.fake().await;
    assert_eq!(server.health_extensions().await, 2);
    a.close().await;
    server.wait_extensions(1).await;
    server.stop().await;
}

#[tokio::test]
async fn shutdown_fails_calls_in_flight_and_stops_the_server() {
    let server = start(quick()).await;
    let fake = server.fake().await;
    let http = server.http.clone();
    let base = server.base.clone();
    let pending = tokio::spawn(async move {
        let body =
            json!({"page": "https://example.test/", "method": "never", "timeout_ms": 20_000});
        let response = http
            .post(format!("{base}/v1/call"))
            .json(&body)
            .send()
            .await
            .expect("POST");
        (
            response.status().as_u16(),
            response.json::<Value>().await.expect("JSON"),
        )
    });
    wait_until("the call to be dispatched", || async {
        server.get("/v1/status").await.1["calls"][0]["stage"] == "dispatched"
    })
    .await;
    let started = Instant::now();

    let response = server
        .http
        .post(format!("{}/v1/shutdown", server.base))
        .send()
        .await
        .expect("POST");

    assert_eq!(response.status().as_u16(), 200);
    let (status, answer) = pending.await.expect("task");
    assert_eq!(
        (status, &error(&answer)["code"]),
        (502, &json!("extension_disconnected")),
        "{answer}"
    );
    tokio::time::timeout(Duration::from_secs(5), fake.closed())
        .await
        .expect("the extension socket is closed");
    let Server { task, .. } = server;
    let served = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve returns");
    assert!(served.expect("task").is_ok());
    assert!(started.elapsed() < Duration::from_secs(3));
}

use common::Server;
