//! The `any` binary as a user runs it: `any call` starting a server that was not
//! running (detached, outliving the CLI, logging to the data dir), results on stdout,
//! failures with their exit codes, `any status`, `any stop`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use fake_extension::{FakeExtension, Options};
use serde_json::Value;

const ANY: &str = env!("CARGO_BIN_EXE_any");

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A fresh HOME so that the server log lands in a directory of this test.
fn fresh_home(name: &str) -> PathBuf {
    let home =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).expect("create home");
    home
}

async fn any(home: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(ANY)
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run any")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn health(port: u16) -> Option<Value> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let response = http
        .get(format!("http://127.0.0.1:{port}/v1/health"))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

/// Stops the server on `port` when the test ends, even if it fails half-way.
struct StopOnDrop {
    port: u16,
    home: PathBuf,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new(ANY)
            .args(["stop", "--port", &self.port.to_string()])
            .env("HOME", &self.home)
            .output();
    }
}

#[tokio::test]
async fn any_call_starts_a_detached_server_that_outlives_it() {
    let port = free_port();
    let home = fresh_home("autostart");
    let _stop = StopOnDrop {
        port,
        home: home.clone(),
    };
    assert!(health(port).await.is_none(), "nothing runs on the port yet");
    // A browser that keeps trying to connect, as the real extension does.
    let fake = tokio::spawn(async move {
        let started = Instant::now();
        loop {
            match FakeExtension::connect(Options::port(port).label("cli")).await {
                Ok(fake) => return fake,
                Err(e) if started.elapsed() > Duration::from_secs(20) => {
                    panic!("never connected: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let p = port.to_string();

    let out = any(
        &home,
        &[
            "call",
            "https://example.test/",
            "echo",
            "--params",
            r#"{"hi": [1, 2]}"#,
            "--port",
            &p,
        ],
    )
    .await;

    assert!(
        out.status.success(),
        "exit {:?}; stderr: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        "{\"hi\": [1, 2]}\n",
        "the result JSON on stdout"
    );
    assert!(
        text(&out.stderr).contains("started a server"),
        "says it started one: {}",
        text(&out.stderr)
    );
    let log = home.join(format!(".local/share/any/server-{port}.log"));
    let log_text =
        std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(
        log_text.contains("listening on http://127.0.0.1"),
        "{log_text}"
    );
    assert!(
        text(&out.stderr).contains(&log.display().to_string()),
        "names the log file"
    );

    // The CLI has exited; the server it started still answers.
    let h = health(port).await.expect("the server outlived the CLI");
    assert_eq!(h["extensions"], 1);
    let fake = fake.await.expect("fake task");

    // A second call reuses the running server (no second start).
    let out = any(
        &home,
        &["call", "https://example.test/", "echo", "--port", &p],
    )
    .await;
    assert!(out.status.success());
    assert!(
        !text(&out.stderr).contains("started a server"),
        "{}",
        text(&out.stderr)
    );

    // Failures: a message on stderr and the code's exit status ...
    let out = any(
        &home,
        &[
            "call",
            "https://example.test/",
            "noSuchMethod",
            "--port",
            &p,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(13), "method_not_found exits 13");
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("method_not_found"),
        "{}",
        text(&out.stderr)
    );
    // ... or, with --json, the error object as one JSON line on stdout.
    let params = r#"{"name": "TypeError", "message": "x is undefined"}"#;
    let out = any(
        &home,
        &[
            "call",
            "https://example.test/",
            "throw",
            "--params",
            params,
            "--json",
            "--port",
            &p,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(14), "page_error exits 14");
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let failure: Value = serde_json::from_str(&stdout).expect("one JSON line");
    assert_eq!(failure["error"]["code"], "page_error");
    assert_eq!(failure["error"]["name"], "TypeError");
    let out = any(
        &home,
        &[
            "call",
            "https://example.test/",
            "late",
            "--params",
            r#"{"ms": 3000}"#,
            "--timeout",
            "0.2",
            "--port",
            &p,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(11), "timeout exits 11");
    assert!(
        text(&out.stderr).contains("within 200 ms"),
        "{}",
        text(&out.stderr)
    );

    // `any status` shows the browser.
    let out = any(&home, &["status", "--port", &p]).await;
    assert!(out.status.success());
    let table = text(&out.stdout);
    assert!(
        table.contains("Extensions (1)") && table.contains("FakeBrowser") && table.contains("cli"),
        "{table}"
    );

    // `any stop` stops it, gracefully: the extension is disconnected.
    let out = any(&home, &["stop", "--port", &p]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("stopped"),
        "{}",
        text(&out.stderr)
    );
    assert!(health(port).await.is_none(), "the server is gone");
    tokio::time::timeout(Duration::from_secs(5), fake.closed())
        .await
        .expect("the extension was disconnected");
}

#[tokio::test]
async fn without_a_server_status_fails_stop_is_a_no_op_and_no_autostart_fails_clearly() {
    let port = free_port();
    let home = fresh_home("noserver");
    let p = port.to_string();

    let out = any(&home, &["status", "--port", &p]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&format!("no any server is running on port {port}")));

    let out = any(&home, &["stop", "--port", &p]).await;
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("nothing to stop"));

    let out = any(
        &home,
        &[
            "call",
            "https://example.test/",
            "echo",
            "--no-autostart",
            "--port",
            &p,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no any server answers"),
        "{}",
        text(&out.stderr)
    );
    assert!(health(port).await.is_none(), "nothing was started");
}

#[tokio::test]
async fn bad_params_are_refused_before_anything_is_started() {
    let port = free_port();
    let home = fresh_home("badparams");

    let out = any(
        &home,
        &[
            "call",
            "https://example.test/",
            "echo",
            "--params",
            "{oops",
            "--port",
            &port.to_string(),
        ],
    )
    .await;

    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--params is not valid JSON"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        health(port).await.is_none(),
        "no server was started for a call that cannot be made"
    );
}

#[tokio::test]
async fn help_texts_say_what_defaults_and_examples_are() {
    let home = fresh_home("help");
    let out = any(&home, &["call", "--help"]).await;
    let help = text(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "Example",
        "--params",
        "--timeout",
        "--browser",
        "--new-tab",
        "--json",
        "[default: 8765]",
        "server-<port>.log",
        "14 page_error",
    ] {
        assert!(
            help.contains(needle),
            "`any call --help` lacks {needle:?}:\n{help}"
        );
    }
    let out = any(&home, &["serve", "--help"]).await;
    let help = text(&out.stdout);
    for needle in [
        "--connect-wait",
        "[default: 5]",
        "--host",
        "[default: 127.0.0.1]",
    ] {
        assert!(
            help.contains(needle),
            "`any serve --help` lacks {needle:?}:\n{help}"
        );
    }
}
