//! Hosted userscripts (`/v1/scripts`) and ad-hoc scripts (`/v1/run`) against the fake
//! extension peer: the API, the files, and the `scripts` frames every extension gets.

mod common;

use std::time::Duration;

use any_server::Config;
use common::{error, quick, start, wait_until};
use fake_extension::{FakeExtension, Options};
use serde_json::{Value, json};

const DEMO: &str = "// ==UserScript==
// @name         any demo
// @version      1.0
// @match        http://127.0.0.1/*
// @exclude-match http://127.0.0.1/private/*
// @run-at       document-start
// ==/UserScript==
globalThis.__any__ = globalThis.__any__ || {};
globalThis.__any__.hello = async () => 'hello';
";

async fn send(
    server: &common::Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server
        .http
        .request(method, format!("{}{path}", server.base));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("any-scripts-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The names and `enabled` flags of the latest `scripts` frame the fake received.
async fn latest_frame(fake: &FakeExtension, frames: usize) -> Vec<(String, bool)> {
    wait_until("the scripts frame", || async {
        fake.transcript().scripts().len() >= frames
    })
    .await;
    let all = fake.transcript().scripts();
    all.last()
        .expect("a frame")
        .iter()
        .map(|s| (s.name.clone(), s.enabled))
        .collect()
}

#[tokio::test]
async fn scripts_are_stored_as_files_and_pushed_to_every_extension() {
    let dir = temp_dir("files");
    let server = start(Config {
        scripts_dir: Some(dir.clone()),
        ..quick()
    })
    .await;
    let fake = server.fake().await;
    // Right after welcome: the (empty) set.
    assert_eq!(latest_frame(&fake, 1).await, []);

    let (status, added) = send(
        &server,
        reqwest::Method::POST,
        "/v1/scripts",
        Some(json!({"source": DEMO})),
    )
    .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["script"]["name"], "any demo");
    assert_eq!(added["script"]["matches"], json!(["http://127.0.0.1/*"]));
    assert_eq!(
        added["script"]["exclude_matches"],
        json!(["http://127.0.0.1/private/*"])
    );
    assert_eq!(added["script"]["run_at"], "document_start");
    assert_eq!(added["script"]["enabled"], true);
    let file = dir.join("any_demo.user.js");
    assert_eq!(added["script"]["file"], file.display().to_string());
    assert_eq!(std::fs::read_to_string(&file).expect("file"), DEMO);
    assert_eq!(
        latest_frame(&fake, 2).await,
        [("any demo".to_owned(), true)]
    );
    let frame = fake.transcript().scripts().pop().expect("frame");
    assert_eq!(frame[0].code, DEMO, "the extension gets the whole file");

    // A second extension gets the current set right after its welcome.
    let second = server.fake().await;
    assert_eq!(
        latest_frame(&second, 1).await,
        [("any demo".to_owned(), true)]
    );
    let entries = second.transcript().entries();
    let kinds: Vec<&str> = entries.iter().filter_map(|e| e.ty()).collect();
    assert_eq!(&kinds[..3], ["hello", "welcome", "scripts"]);

    let (status, off) = send(
        &server,
        reqwest::Method::POST,
        "/v1/scripts/any%20demo/disable",
        None,
    )
    .await;
    assert_eq!(status, 200, "{off}");
    assert_eq!(off["script"]["enabled"], false);
    assert!(!file.exists());
    assert!(dir.join("any_demo.user.js.disabled").exists());
    assert_eq!(
        latest_frame(&fake, 3).await,
        [("any demo".to_owned(), false)]
    );

    let (status, list) = server.get("/v1/scripts").await;
    assert_eq!(status, 200);
    assert_eq!(list["scripts"][0]["enabled"], false);
    assert_eq!(
        list["warnings"].as_array().map(Vec::len),
        Some(2),
        "both fakes lack user_scripts: {list}"
    );
    assert!(
        list["warnings"][0]
            .as_str()
            .unwrap_or("")
            .contains("Allow User Scripts"),
        "{list}"
    );

    let (status, on) = send(
        &server,
        reqwest::Method::POST,
        "/v1/scripts/any%20demo/enable",
        None,
    )
    .await;
    assert_eq!((status, &on["script"]["enabled"]), (200, &json!(true)));
    assert!(file.exists());

    // Restarting the server finds the script again.
    server.stop().await;
    let again = start(Config {
        scripts_dir: Some(dir.clone()),
        ..quick()
    })
    .await;
    let (_, list) = again.get("/v1/scripts").await;
    assert_eq!(list["scripts"][0]["name"], "any demo");
    assert_eq!(list["scripts"][0]["enabled"], true);

    let (status, removed) = send(
        &again,
        reqwest::Method::DELETE,
        "/v1/scripts/any%20demo",
        None,
    )
    .await;
    assert_eq!(
        (status, &removed["script"]["name"]),
        (200, &json!("any demo"))
    );
    assert!(!file.exists());
    let (_, list) = again.get("/v1/scripts").await;
    assert_eq!(list["scripts"], json!([]));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn adding_again_replaces_by_name_and_keeps_the_disabled_state() {
    let server = start(quick()).await;
    send(
        &server,
        reqwest::Method::POST,
        "/v1/scripts",
        Some(json!({"source": DEMO})),
    )
    .await;
    send(
        &server,
        reqwest::Method::POST,
        "/v1/scripts/any%20demo/disable",
        None,
    )
    .await;
    let newer = DEMO.replace("@version      1.0", "@version      2.0");
    let (status, added) = send(
        &server,
        reqwest::Method::POST,
        "/v1/scripts",
        Some(json!({"source": newer})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(added["script"]["version"], "2.0");
    assert_eq!(added["script"]["enabled"], false);
    assert_eq!(
        added["script"]["file"], "",
        "kept in memory without a directory"
    );
    let (_, list) = server.get("/v1/scripts").await;
    assert_eq!(list["scripts"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn bad_scripts_and_unknown_names_are_clear_errors() {
    let server = start(quick()).await;
    let bad = DEMO.replace("http://127.0.0.1/*", "http://*.*/x");
    let (status, answer) = send(
        &server,
        reqwest::Method::POST,
        "/v1/scripts",
        Some(json!({"source": bad})),
    )
    .await;
    assert_eq!(status, 400);
    let message = error(&answer)["message"].as_str().unwrap_or("");
    assert!(
        message.contains("line 4: @match http://*.*/x: invalid host wildcard"),
        "{message}"
    );

    let (status, answer) = send(&server, reqwest::Method::DELETE, "/v1/scripts/nope", None).await;
    assert_eq!(status, 400);
    assert!(
        error(&answer)["message"]
            .as_str()
            .unwrap_or("")
            .contains("no hosted userscript is named \"nope\""),
        "{answer}"
    );
    let (status, _) = send(
        &server,
        reqwest::Method::POST,
        "/v1/scripts/nope/enable",
        None,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_capability_silences_the_warning() {
    let server = start(quick()).await;
    let _fake = FakeExtension::connect(Options::port(server.port).capability("user_scripts"))
        .await
        .expect("connects");
    let (_, list) = server.get("/v1/scripts").await;
    assert_eq!(list["warnings"], json!([]));
}

#[tokio::test]
async fn ad_hoc_scripts_are_refused_by_default() {
    let server = start(quick()).await;
    let _fake = server.fake().await;
    let (status, answer) = send(
        &server,
        reqwest::Method::POST,
        "/v1/run",
        Some(json!({"page": "https://example.com/", "script": "return 1;"})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(error(&answer)["code"], "scripts_disabled");
    assert!(
        error(&answer)["message"]
            .as_str()
            .unwrap_or("")
            .contains("--allow-scripts")
    );
}

#[tokio::test]
async fn ad_hoc_scripts_run_as_calls_with_allow_scripts() {
    let server = start(Config {
        allow_scripts: true,
        ..quick()
    })
    .await;
    let fake = server.fake().await;
    let (status, answer) = send(
        &server,
        reqwest::Method::POST,
        "/v1/run",
        Some(json!({"page": "https://example.com/", "script": "return document.title;", "timeout_ms": 5000})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"], json!({"ran": "return document.title;"}));
    let id = answer["id"].as_str().expect("id");
    let sent = fake.transcript().for_call(id);
    assert_eq!(sent[0].ty(), Some("run"));
    assert_eq!(sent[0].frame["page"], "https://example.com/");
    assert!(
        sent[0].frame["timeout_ms"]
            .as_u64()
            .is_some_and(|t| t <= 5000)
    );

    for (body, why) in [
        (
            json!({"page": "https://example.com/", "script": "  "}),
            "`script` is empty",
        ),
        (
            json!({"page": "example.com", "script": "return 1"}),
            "`page` must be",
        ),
        (
            json!({"page": "https://example.com/", "script": "1", "method": "x"}),
            "unknown field",
        ),
    ] {
        let (status, answer) = send(&server, reqwest::Method::POST, "/v1/run", Some(body)).await;
        assert_eq!(status, 400);
        assert!(
            error(&answer)["message"]
                .as_str()
                .unwrap_or("")
                .contains(why),
            "{answer}"
        );
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}
