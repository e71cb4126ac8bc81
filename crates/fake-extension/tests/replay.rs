//! `fake-extension --replay FILE` against a bare WebSocket server standing in for `any
//! serve`: it sends the recorded hello, says `ready`, answers the server's new call ids
//! with the recorded frames (ids translated, recorded delays kept), answers pings live,
//! says `replayed`, and closes the socket where the recording did.

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const FAKE: &str = env!("CARGO_BIN_EXE_fake-extension");

/// A session as `any trace --record` writes it: a call answered after 300 ms, another
/// that was never answered, then the extension closing its socket.
const RECORDING: &str = r#"{"t":100.0,"event":"tracing","extensions":[]}
{"t":100.0,"conn":"ext-2","dir":"out","frame":{"v":1,"type":"hello","protocol":1,"extension_version":"9.9.9","browser":{"name":"Chromium","version":"156"},"label":"rec","capabilities":[]}}
{"t":100.0,"conn":"ext-2","dir":"in","frame":{"v":1,"type":"welcome","server_version":"0.1.0","heartbeat_ms":20000}}
{"t":101.0,"conn":"ext-2","dir":"in","frame":{"v":1,"type":"call","id":"c-7","page":"https://e.test/","method":"pageInfo","params":{},"timeout_ms":5000,"tab":"reuse"}}
{"t":101.1,"conn":"ext-2","dir":"out","frame":{"v":1,"type":"progress","id":"c-7","stage":"tab_opened"}}
{"t":101.3,"conn":"ext-2","dir":"out","frame":{"v":1,"type":"result","id":"c-7","value":{"title":"T"}}}
{"t":102.0,"conn":"ext-2","dir":"in","frame":{"v":1,"type":"call","id":"c-8","page":"https://e.test/","method":"pageInfo","params":{},"timeout_ms":500,"tab":"reuse"}}
{"t":102.5,"conn":"ext-2","dir":"in","frame":{"v":1,"type":"cancel","id":"c-8","reason":"deadline"}}
{"t":102.6,"event":"closed","conn":"ext-2","detail":"closed by the extension"}
"#;

async fn next_message<S>(socket: &mut S) -> Option<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")?
            .ok()?;
        match message {
            Message::Text(text) => return Some(serde_json::from_str(&text).expect("JSON")),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_binary_replays_a_recording_with_new_ids_and_recorded_delays() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let file =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("replay-{port}.jsonl"));
    std::fs::write(&file, RECORDING).expect("write the recording");
    let mut child = tokio::process::Command::new(FAKE)
        .args(["--port", &port.to_string(), "--replay"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start fake-extension");
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("it connects")
        .expect("accept");
    let mut socket = tokio_tungstenite::accept_async(tcp)
        .await
        .expect("handshake");

    let hello = next_message(&mut socket).await.expect("hello");
    assert_eq!(
        (
            hello["type"].clone(),
            hello["label"].clone(),
            hello["extension_version"].clone()
        ),
        (json!("hello"), json!("rec"), json!("9.9.9")),
        "the recorded hello"
    );
    socket
        .send(Message::text(
            json!({"v": 1, "type": "welcome", "server_version": "test", "heartbeat_ms": 20000})
                .to_string(),
        ))
        .await
        .expect("welcome");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut line = async || {
        tokio::time::timeout(Duration::from_secs(5), stdout.next_line())
            .await
            .expect("a line")
            .expect("read")
    };
    assert_eq!(line().await.as_deref(), Some("ready"));

    let call = |id: &str| {
        Message::text(
            json!({"v": 1, "type": "call", "id": id, "page": "https://e.test/", "method": "pageInfo",
                   "params": {}, "timeout_ms": 5000, "tab": "reuse"})
            .to_string(),
        )
    };
    socket.send(call("s-1")).await.expect("send");
    let sent = Instant::now();
    let progress = next_message(&mut socket).await.expect("progress");
    assert_eq!(
        (progress["type"].clone(), progress["id"].clone()),
        (json!("progress"), json!("s-1")),
        "the recorded id c-7 became the new s-1"
    );
    socket
        .send(Message::text(
            json!({"v": 1, "type": "ping", "seq": 3}).to_string(),
        ))
        .await
        .expect("ping");
    let mut pong = None;
    let mut result = None;
    while pong.is_none() || result.is_none() {
        let frame = next_message(&mut socket).await.expect("a frame");
        match frame["type"].as_str() {
            Some("pong") => pong = Some(frame),
            Some("result") => result = Some((frame, sent.elapsed())),
            other => panic!("unexpected {other:?}"),
        }
    }
    let (result, after) = result.expect("result");
    assert_eq!(
        (result["id"].clone(), result["value"].clone()),
        (json!("s-1"), json!({"title": "T"}))
    );
    assert!(
        after >= Duration::from_millis(280),
        "answered 300 ms after the call, as recorded (took {after:?})"
    );
    assert_eq!(pong.expect("pong")["seq"], 3, "pings are answered live");

    socket.send(call("s-2")).await.expect("send");
    let started = Instant::now();
    assert_eq!(
        next_message(&mut socket).await,
        None,
        "the second call is never answered; the socket closes as recorded"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(line().await.as_deref(), Some("replayed"));
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("it exits")
        .expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_recording_that_does_not_read_is_refused_with_the_line() {
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay-broken.jsonl");
    std::fs::write(&file, "{\"t\": 1}\nnot json\n").expect("write");

    let out = tokio::process::Command::new(FAKE)
        .args(["--port", "9", "--replay"])
        .arg(&file)
        .output()
        .await
        .expect("run");

    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
}
