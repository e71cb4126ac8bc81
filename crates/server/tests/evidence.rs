//! The evidence tools as a user runs them, against `any serve` processes and the fake
//! extension: `any trace` shows and `--record`s every frame of a call; the recording,
//! replayed by the fake peer against a fresh server, gives the same outcomes; `any repl`
//! with stdin piped answers each line (methods in one reused tab, scripts via /v1/run).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use fake_extension::replay::{Recording, Replay};
use fake_extension::{FakeExtension, Options};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const ANY: &str = env!("CARGO_BIN_EXE_any");

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A fresh HOME, so that tokens, logs and the REPL history stay in this test.
fn fresh_home(name: &str) -> PathBuf {
    let home =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).expect("create home");
    home
}

fn any_command(home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(ANY);
    command
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .kill_on_drop(true);
    command
}

async fn any(home: &Path, args: &[&str]) -> Output {
    any_command(home, args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run any")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `any serve` on a free port, killed when dropped.
struct Serve {
    port: u16,
    _child: Child,
}

async fn serve(home: &Path, extra: &[&str]) -> Serve {
    let port = free_port();
    let p = port.to_string();
    let mut args = vec!["serve", "--port", &p];
    args.extend_from_slice(extra);
    let log = std::fs::File::create(home.join(format!("serve-{port}.log"))).expect("log");
    let child = any_command(home, &args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start any serve");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "any serve did not listen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Serve {
        port,
        _child: child,
    }
}

/// `any trace` with `args`, returned once it says on stderr that the watch has begun.
async fn trace(
    home: &Path,
    port: u16,
    args: &[&str],
) -> (
    Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
) {
    let p = port.to_string();
    let mut all = vec!["trace", "--port", &p];
    all.extend_from_slice(args);
    let mut child = any_command(home, &all)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start any trace");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), stderr.next_line())
        .await
        .expect("any trace says it started")
        .expect("read")
        .expect("a line");
    assert!(
        first.starts_with("any trace: tracing the frames"),
        "{first}"
    );
    (child, stderr)
}

fn interrupt(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each recorded line is JSON"))
        .collect()
}

/// The recorded frames of `conn`, as (dir, type, id).
fn frames(lines: &[Value], conn: &str) -> Vec<(String, String, String)> {
    lines
        .iter()
        .filter(|l| l["conn"] == conn && l.get("frame").is_some())
        .map(|l| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
            (s(&l["dir"]), s(&l["frame"]["type"]), s(&l["frame"]["id"]))
        })
        .collect()
}

async fn wait_for<F: FnMut() -> bool>(what: &str, mut check: F) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const PAGE: &str = "https://example.test/";

/// The three calls whose outcomes the recording must reproduce: a result after progress,
/// a page error, and silence (a timeout). Returns (exit code, stdout) of each.
async fn three_calls(home: &Path, port: u16) -> Vec<(i32, Value)> {
    let p = port.to_string();
    let mut outcomes = Vec::new();
    for (method, params, timeout) in [
        ("progress", r#"{"n": 1, "s": "x"}"#, "10"),
        ("throw", r#"{"name": "TypeError", "message": "boom"}"#, "10"),
        ("never", "{}", "0.5"),
    ] {
        let out = any(
            home,
            &[
                "call",
                PAGE,
                method,
                "--params",
                params,
                "--timeout",
                timeout,
                "--json",
                "--no-autostart",
                "--port",
                &p,
            ],
        )
        .await;
        let stdout: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap_or_else(|e| {
            panic!(
                "{method}: stdout is JSON ({e}); stderr: {}",
                text(&out.stderr)
            )
        });
        outcomes.push((out.status.code().unwrap_or(-1), stdout));
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_session_replayed_by_the_fake_peer_gives_the_same_outcomes() {
    let home = fresh_home("trace-replay");
    let recorded = serve(&home, &[]).await;
    let fake = FakeExtension::connect(Options::port(recorded.port).label("rec"))
        .await
        .expect("the fake connects");
    let file = home.join("session.jsonl");
    let (tracer, mut stderr) = trace(
        &home,
        recorded.port,
        &["--record", file.to_str().expect("utf-8 path")],
    )
    .await;

    let original = three_calls(&home, recorded.port).await;

    assert_eq!(original[0], (0, json!({"n": 1, "s": "x"})));
    assert_eq!(original[1].0, 14, "page_error");
    assert_eq!(original[1].1["error"]["name"], "TypeError");
    assert_eq!(original[2].0, 11, "timeout");
    // The cancel of the timed-out call is the last frame of the session.
    wait_for("the recording of the cancel", || {
        frames(&read_lines(&file), "ext-1")
            .iter()
            .any(|(_, ty, _)| ty == "cancel")
    })
    .await;
    interrupt(&tracer);
    let done = tokio::time::timeout(Duration::from_secs(5), tracer.wait_with_output())
        .await
        .expect("any trace stops on Ctrl-C")
        .expect("wait");
    assert!(done.status.success(), "exit {:?}", done.status);
    let mut rest = String::new();
    while let Ok(Some(line)) = stderr.next_line().await {
        rest.push_str(&line);
    }
    assert!(rest.contains("recorded 10 frame(s)"), "{rest}");
    let shown = text(&done.stdout);
    assert!(
        shown.lines().any(
            |l| l.contains("ext-1 <- call     c-1   {\"v\":1,\"type\":\"call\",\"id\":\"c-1\"")
        ),
        "a readable line per frame: {shown}"
    );

    let lines = read_lines(&file);
    assert_eq!(lines[0]["event"], "tracing");
    assert_eq!(lines[0]["extensions"][0]["label"], "rec");
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        frames(&lines, "ext-1"),
        vec![
            s("in", "call", "c-1"),
            s("out", "progress", "c-1"),
            s("out", "progress", "c-1"),
            s("out", "progress", "c-1"),
            s("out", "progress", "c-1"),
            s("out", "result", "c-1"),
            s("in", "call", "c-2"),
            s("out", "error", "c-2"),
            s("in", "call", "c-3"),
            s("in", "cancel", "c-3"),
        ],
        "every frame of the three calls, in order (pings only every 20 s)"
    );
    let call = lines
        .iter()
        .find(|l| l["frame"]["type"] == "call")
        .expect("call");
    assert_eq!(
        call["frame"]["params"],
        json!({"n": 1, "s": "x"}),
        "full frames"
    );
    assert!(
        call["t"].as_f64().is_some_and(|t| t > 1.7e9),
        "Unix seconds"
    );
    drop(fake);
    drop(recorded);

    // A fresh server, and no fake extension: the recording plays the extension's side.
    let fresh = serve(&home, &[]).await;
    let recording = Recording::load(&file, None).expect("the recording reads");
    let replay = Replay::start(&Options::port(fresh.port), recording)
        .await
        .expect("the replay connects");

    let replayed = three_calls(&home, fresh.port).await;

    assert_eq!(replayed, original, "the same outcome for each call");
    let report = replay.played().await;
    assert!(report.complete, "{report:?}");
    assert_eq!(report.sent, 6, "4 progress, 1 result, 1 error");
    let status = any(
        &home,
        &["status", "--json", "--port", &fresh.port.to_string()],
    )
    .await;
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(
        status["extensions"][0]["label"], "rec",
        "the hello is the recorded extension's"
    );
    replay.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trace_shows_hellos_closes_and_refusals_and_json_mode_prints_full_lines() {
    let home = fresh_home("trace-json");
    let server = serve(&home, &[]).await;
    let (mut tracer, _stderr) = trace(&home, server.port, &["--json"]).await;
    let mut stdout = BufReader::new(tracer.stdout.take().expect("stdout")).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
            .await
            .expect("a line within 10 s")
            .expect("read")
            .expect("a line");
        serde_json::from_str(&line).expect("JSON")
    };

    assert_eq!(next().await["event"], "tracing");
    let fake = FakeExtension::connect(Options::port(server.port).label("a"))
        .await
        .expect("connects");
    let hello = next().await;
    assert_eq!(
        (
            hello["conn"].clone(),
            hello["dir"].clone(),
            hello["frame"]["type"].clone()
        ),
        (json!("ext-1"), json!("out"), json!("hello"))
    );
    assert_eq!(hello["frame"]["label"], "a");
    assert_eq!(next().await["frame"]["type"], "welcome");
    fake.close().await;
    let closed = loop {
        // Other frames (the server's `scripts`) may come first.
        let line = next().await;
        if line.get("event").is_some() {
            break line;
        }
    };
    assert_eq!(closed["event"], "closed");
    assert_eq!(closed["conn"], "ext-1");
    assert!(
        closed["detail"]
            .as_str()
            .is_some_and(|d| d.contains("closed by the extension")),
        "{closed}"
    );

    let wrong = r#"{"v":1,"type":"hello","protocol":99,"extension_version":"x","browser":{"name":"B","version":"1"},"label":"","capabilities":[]}"#;
    let refused = FakeExtension::connect_with_hello(Options::port(server.port), wrong).await;
    assert!(refused.is_err());
    let hello = next().await;
    assert_eq!(
        (hello["conn"].clone(), hello["frame"]["protocol"].clone()),
        (json!("refused"), json!(99))
    );
    let reject = next().await;
    assert_eq!(reject["frame"]["type"], "reject");
    assert_eq!(next().await["event"], "closed");

    // A web page may not watch the frames.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let response = http
        .get(format!("http://127.0.0.1:{}/v1/trace", server.port))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn any_trace_without_a_server_says_so() {
    let home = fresh_home("trace-none");
    let port = free_port().to_string();

    let out = any(&home, &["trace", "--port", &port]).await;

    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("no any server is running on port {port}")),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn any_repl_with_piped_lines_answers_each_in_one_reused_tab() {
    let home = fresh_home("repl");
    let server = serve(&home, &[]).await;
    let fake = FakeExtension::connect(Options::port(server.port))
        .await
        .expect("connects");
    let p = server.port.to_string();
    let mut child = any_command(&home, &["repl", PAGE, "--port", &p, "--no-autostart"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start any repl");
    let input = concat!(
        "echo {\"title\": \"T\", \"list\": [1, 2]}\n",
        "\n",
        ".call throw {\"name\": \"TypeError\", \"message\": \"x is undefined\"}\n",
        "echo {\"broken\": }\n",
        "return document.title\n",
        ".help\n",
        "echo\n",
        ".exit\n",
        "echo {\"after\": \"exit\"}\n",
    );
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).await.expect("write");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the REPL ends at .exit")
        .expect("wait");

    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "some lines failed; stdout: {stdout}"
    );
    let expected_start = "{\n  \"title\": \"T\",\n  \"list\": [\n    1,\n    2\n  ]\n}\n\
        TypeError (page_error): x is undefined\n    at throw (https://example.test/:1:1)\n\
        the params of echo are not JSON";
    assert!(stdout.starts_with(expected_start), "{stdout}");
    assert!(
        stdout.contains("scripts_disabled") && stdout.contains("any serve --allow-scripts"),
        "a script line on a server without --allow-scripts says how to allow it: {stdout}"
    );
    assert!(stdout.contains("name {json}"), ".help: {stdout}");
    assert!(
        stdout.ends_with("{}\n"),
        "`echo` alone sends {{}}: {stdout}"
    );
    assert!(
        !stdout.contains("after"),
        "nothing runs after .exit: {stdout}"
    );

    let calls: Vec<_> = fake
        .transcript()
        .entries()
        .into_iter()
        .filter(|e| e.ty() == Some("call"))
        .collect();
    assert_eq!(calls.len(), 3, "echo, throw, echo");
    for call in &calls {
        assert_eq!(call.frame["page"], PAGE);
        assert_eq!(call.frame["tab"], "reuse", "one tab for the whole session");
    }
    assert!(
        !home.join(".local/share/any/repl-history").exists(),
        "piped lines are not history"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn any_repl_runs_script_lines_when_the_server_allows_scripts() {
    let home = fresh_home("repl-scripts");
    let server = serve(&home, &["--allow-scripts"]).await;
    let _fake = FakeExtension::connect(Options::port(server.port))
        .await
        .expect("connects");
    let p = server.port.to_string();
    let mut child = any_command(&home, &["repl", PAGE, "--port", &p, "--no-autostart"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start any repl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"return document.title\necho {\"a\": 1}\n")
        .await
        .expect("write");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the REPL ends at the end of input")
        .expect("wait");

    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout, "{\n  \"ran\": \"return document.title\"\n}\n{\n  \"a\": 1\n}\n",
        "the fake extension answers a script with what it received"
    );
}
