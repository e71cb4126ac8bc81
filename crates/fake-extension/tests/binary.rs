//! The `fake-extension` binary against a bare WebSocket server standing in for `any
//! serve`: the contract the Python tests rely on (hello with the label, `ready` on
//! stdout once welcomed, answers by method name, pongs, the JSONL transcript, exit on
//! `disconnect`).

use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const FAKE: &str = env!("CARGO_BIN_EXE_fake-extension");

async fn next_json<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .expect("no socket error");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("frames are JSON");
        }
    }
}

#[tokio::test]
async fn the_binary_says_ready_answers_by_method_and_records_a_transcript() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let transcript =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fake-{port}.jsonl"));
    let mut child = tokio::process::Command::new(FAKE)
        .args([
            "--port",
            &port.to_string(),
            "--label",
            "lab",
            "--transcript",
        ])
        .arg(&transcript)
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

    let hello = next_json(&mut socket).await;
    assert_eq!(
        (
            hello["v"].clone(),
            hello["type"].clone(),
            hello["protocol"].clone()
        ),
        (json!(1), json!("hello"), json!(1))
    );
    assert_eq!(hello["label"], "lab");
    socket
        .send(Message::text(
            json!({"v": 1, "type": "welcome", "server_version": "test", "heartbeat_ms": 20000})
                .to_string(),
        ))
        .await
        .expect("welcome");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(Duration::from_secs(5), stdout.next_line())
        .await
        .expect("a line")
        .expect("read");
    assert_eq!(line.as_deref(), Some("ready"));

    let call = |id: &str, method: &str, params: Value| {
        Message::text(
            json!({"v": 1, "type": "call", "id": id, "page": "https://example.test/", "method": method,
                   "params": params, "timeout_ms": 5000, "tab": "reuse"})
            .to_string(),
        )
    };
    socket
        .send(call("c-1", "echo", json!({"a": 1})))
        .await
        .expect("send");
    let answer = next_json(&mut socket).await;
    assert_eq!(
        (
            answer["type"].clone(),
            answer["id"].clone(),
            answer["value"].clone()
        ),
        (json!("result"), json!("c-1"), json!({"a": 1}))
    );

    socket
        .send(call("c-2", "nope", json!({})))
        .await
        .expect("send");
    let answer = next_json(&mut socket).await;
    assert_eq!(
        (answer["type"].clone(), answer["error"]["code"].clone()),
        (json!("error"), json!("method_not_found"))
    );

    socket
        .send(Message::text(
            json!({"v": 1, "type": "ping", "seq": 7}).to_string(),
        ))
        .await
        .expect("ping");
    let pong = next_json(&mut socket).await;
    assert_eq!(
        (pong["type"].clone(), pong["seq"].clone()),
        (json!("pong"), json!(7))
    );

    socket
        .send(call("c-3", "disconnect", json!({})))
        .await
        .expect("send");
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("it exits")
        .expect("wait");
    assert!(status.success(), "{status}");

    let lines: Vec<Value> = std::fs::read_to_string(&transcript)
        .expect("transcript")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSONL"))
        .collect();
    let summary: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["dir"].as_str().unwrap_or("?").to_owned(),
                l["frame"]["type"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("out", "hello"),
        ("in", "welcome"),
        ("in", "call"),
        ("out", "result"),
        ("in", "call"),
        ("out", "error"),
        ("in", "ping"),
        ("out", "pong"),
        ("in", "call"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(d, t)| ((*d).to_owned(), (*t).to_owned()))
        .collect();
    assert_eq!(summary, expected);
    assert!(
        lines
            .iter()
            .all(|l| l["t"].as_f64().is_some_and(|t| t > 1.7e9)),
        "every entry has a timestamp"
    );
}

#[tokio::test]
async fn the_binary_exits_1_with_the_reason_when_rejected() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let child = tokio::process::Command::new(FAKE)
        .args(["--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start fake-extension");
    let (tcp, _) = listener.accept().await.expect("accept");
    let mut socket = tokio_tungstenite::accept_async(tcp)
        .await
        .expect("handshake");
    let _hello = next_json(&mut socket).await;
    socket
        .send(Message::text(
            json!({"v": 1, "type": "reject", "reason": "go away"}).to_string(),
        ))
        .await
        .expect("reject");

    let out = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
        .await
        .expect("exits")
        .expect("output");

    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "never said ready");
    assert!(String::from_utf8_lossy(&out.stderr).contains("go away"));
}
