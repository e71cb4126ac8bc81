//! Replay: the fake extension plays the extension's side of a recorded session, so a
//! session a user reported ("connected but silent", a wrong answer, a late one) can be
//! reproduced against a fresh server, frame for frame.
//!
//! Runs where the fake runs (the `fake-extension --replay FILE` process, or a Rust
//! test). The recording is JSON Lines as written by `any trace --record` (`{t, conn,
//! dir, frame}` plus event lines) or by `fake-extension --transcript` (`{t, dir, frame}`);
//! `dir` is as the extension sees it (`out` = sent by the extension).
//!
//! How it plays one connection of the recording ([`Recording`]):
//! - it connects and sends the recorded `hello` (or one made from the `tracing` line's
//!   description of the extension, when the trace began after it connected);
//! - each recorded `call` the server sent is matched, in order, with the next call the
//!   new server sends; from then on the recorded call id stands for the new one;
//! - every frame the extension sent (except `hello` and `pong`) is sent again, with call
//!   ids translated, at the same delay after the call (or the start) it followed as in
//!   the recording — so a late answer is late again and a missing one is missing again;
//! - a socket the extension closed is closed at the same moment;
//! - pings are answered live (recorded pongs are not replayed), cancels are only noted.
//!
//! Calls the recording does not have get no answer. After the last step the peer stays
//! connected until the server closes the socket.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use any_protocol::{ExtensionFrame, Pong, ServerFrame, VERSION, decode, encode};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::{BROWSER_NAME, Error, Options};

/// One connection's part of a recording, ready to play.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The connection played (`ext-N`; empty for a fake's transcript, which has one).
    pub conn: String,
    /// The `hello` frame's text.
    pub hello: String,
    /// When the hello was sent (or the first thing recorded), in recorded seconds.
    start: f64,
    pub steps: Vec<Step>,
}

/// One thing the extension did in the recording.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The server sent call `id` (of `method`); the replay waits for the next live call.
    Call { t: f64, id: String, method: String },
    /// The extension sent `text` (about call `id`, if it names one).
    Send {
        t: f64,
        text: String,
        id: Option<String>,
    },
    /// The extension closed the socket.
    Close { t: f64 },
}

/// Why a recording cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("could not read the recording {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("line {line} of the recording is not a trace line: {reason}")]
    Line { line: usize, reason: String },
    #[error("the recording has no frames of connection {0:?}")]
    NoSuchConn(String),
    #[error("the recording has no frames")]
    Empty,
}

/// A line of a recording, read loosely: both trace and transcript lines fit.
#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    t: f64,
    #[serde(default)]
    conn: String,
    dir: Option<String>,
    frame: Option<Box<RawValue>>,
    event: Option<String>,
    detail: Option<String>,
    extensions: Option<Vec<Value>>,
}

#[derive(Deserialize, Default)]
struct Head {
    #[serde(rename = "type")]
    ty: Option<String>,
    id: Option<String>,
    method: Option<String>,
}

impl Recording {
    /// Reads a recording file; plays `conn`, or the connection of the first recorded call.
    pub fn load(path: &Path, conn: Option<&str>) -> Result<Self, RecordingError> {
        let text = std::fs::read_to_string(path).map_err(|e| RecordingError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, conn)
    }

    /// Reads a recording from its text (see [`Recording::load`]).
    pub fn parse(text: &str, conn: Option<&str>) -> Result<Self, RecordingError> {
        let mut lines = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let line: Line = serde_json::from_str(line).map_err(|e| RecordingError::Line {
                line: n + 1,
                reason: e.to_string(),
            })?;
            lines.push(line);
        }
        let frames = || lines.iter().filter_map(|l| Some((l, l.frame.as_ref()?)));
        let conn = match conn {
            Some(conn) => {
                if !frames().any(|(l, _)| l.conn == conn) {
                    return Err(RecordingError::NoSuchConn(conn.to_owned()));
                }
                conn.to_owned()
            }
            None => frames()
                .find(|(l, f)| {
                    l.dir.as_deref() == Some("in") && head(f).ty.as_deref() == Some("call")
                })
                .or_else(|| frames().next())
                .map(|(l, _)| l.conn.clone())
                .ok_or(RecordingError::Empty)?,
        };

        let mut hello = None;
        let mut start = None;
        let mut steps = Vec::new();
        for line in lines.iter().filter(|l| l.conn == conn) {
            start.get_or_insert(line.t);
            let Some(frame) = &line.frame else {
                let closed_by_extension = line.detail.as_deref().is_some_and(|d| {
                    d.starts_with("closed by the extension")
                        || d.starts_with("socket error")
                        || d.starts_with("the socket ended")
                });
                if line.event.as_deref() == Some("closed") && closed_by_extension {
                    steps.push(Step::Close { t: line.t });
                }
                continue;
            };
            let head = head(frame);
            let text = match serde_json::from_str::<String>(frame.get()) {
                Ok(not_json) => not_json,
                Err(_) => frame.get().to_owned(),
            };
            match (line.dir.as_deref(), head.ty.as_deref()) {
                (Some("out"), Some("hello")) if hello.is_none() => {
                    start = Some(line.t);
                    hello = Some(text);
                }
                (Some("out"), Some("pong")) => {}
                (Some("out"), _) => steps.push(Step::Send {
                    t: line.t,
                    text,
                    id: head.id,
                }),
                (Some("in"), Some("call")) => steps.push(Step::Call {
                    t: line.t,
                    id: head.id.unwrap_or_default(),
                    method: head.method.unwrap_or_default(),
                }),
                _ => {}
            }
        }
        let hello = hello.unwrap_or_else(|| described_hello(&lines, &conn));
        Ok(Recording {
            conn,
            hello,
            start: start.unwrap_or(0.0),
            steps,
        })
    }
}

fn head(frame: &RawValue) -> Head {
    serde_json::from_str(frame.get()).unwrap_or_default()
}

/// A hello for a connection whose own hello is not in the recording (the trace began
/// later): from the `tracing` line's description of it, else a plain fake one.
fn described_hello(lines: &[Line], conn: &str) -> String {
    let described = lines
        .iter()
        .filter_map(|l| l.extensions.as_ref())
        .flatten()
        .find(|e| e["conn"] == conn);
    let field = |key: &str| described.and_then(|e| e.get(key)).cloned();
    serde_json::json!({
        "v": VERSION,
        "type": "hello",
        "protocol": VERSION,
        "extension_version": field("extension_version").unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
        "browser": field("browser").unwrap_or_else(|| serde_json::json!({"name": BROWSER_NAME, "version": env!("CARGO_PKG_VERSION")})),
        "label": field("label").unwrap_or_else(|| "".into()),
        "capabilities": [],
    })
    .to_string()
}

/// What a finished replay did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Recorded call id → the id the new server gave the matching call.
    pub ids: HashMap<String, String>,
    /// How many recorded frames were sent again.
    pub sent: usize,
    /// Whether every step was played (false when the socket closed first).
    pub complete: bool,
}

/// A replay in progress.
pub struct Replay {
    task: JoinHandle<()>,
    report: Arc<Mutex<Report>>,
    /// `true` once every step has been played or the socket has closed.
    done: watch::Receiver<bool>,
}

impl Replay {
    /// Connects to `options.url` (with `options.origin`), sends the recorded hello, and
    /// returns once welcomed; the steps then play in the background. The other options
    /// (label, capabilities, transcript) come from the recording, or are not used.
    pub async fn start(options: &Options, recording: Recording) -> Result<Self, Error> {
        let (mut sink, mut stream) = crate::handshake(options, &recording.hello, None).await?;

        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Option<String>>();
        let (calls_tx, calls_rx) = mpsc::unbounded_channel::<(String, String)>();
        let (done_tx, done) = watch::channel(false);
        let report = Arc::new(Mutex::new(Report::default()));
        let played = report.clone();
        let pongs = out_tx.clone();
        let task = tokio::spawn(async move {
            let writer = async move {
                while let Some(Some(text)) = out_rx.recv().await {
                    if sink.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                let _ = sink.close().await;
            };
            let reader = async move {
                while let Some(Ok(message)) = stream.next().await {
                    let text = match message {
                        Message::Text(text) => text,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    match decode::<ServerFrame>(&text) {
                        Ok(ServerFrame::Ping(p)) => {
                            let pong = ExtensionFrame::Pong(Pong { seq: p.seq });
                            let _ = pongs.send(Some(encode(&pong)));
                        }
                        Ok(ServerFrame::Call(call)) => {
                            let _ = calls_tx.send((call.id, call.method));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("fake-extension: undecodable frame from the server: {e}")
                        }
                    }
                }
            };
            let io = async {
                tokio::select! {
                    () = writer => {}
                    () = reader => {}
                }
            };
            tokio::pin!(io);
            tokio::select! {
                () = play(recording, calls_rx, out_tx, played) => {
                    let _ = done_tx.send(true);
                    io.await;
                }
                () = &mut io => {}
            }
            let _ = done_tx.send(true);
        });
        Ok(Replay { task, report, done })
    }

    /// Waits until every step has been played (or the socket closed first).
    pub async fn played(&self) -> Report {
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d).await;
        self.report()
    }

    /// What has been played so far.
    pub fn report(&self) -> Report {
        self.report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until the socket has closed; returns what was played.
    pub async fn closed(self) -> Report {
        let _ = self.task.await;
        self.report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops the replay (drops the socket).
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Plays the steps, keeping `report` up to date; `None` on `out` closes the socket.
async fn play(
    recording: Recording,
    mut calls: mpsc::UnboundedReceiver<(String, String)>,
    out: mpsc::UnboundedSender<Option<String>>,
    report: Arc<Mutex<Report>>,
) {
    let report = |change: &mut dyn FnMut(&mut Report)| {
        change(&mut report.lock().unwrap_or_else(|p| p.into_inner()));
    };
    let mut ids: HashMap<String, String> = HashMap::new();
    // Recorded time `anchor.0` happened at `anchor.1` in this run.
    let mut anchor = (recording.start, Instant::now());
    for step in recording.steps {
        match step {
            Step::Call { t, id, method } => {
                let Some((live_id, live_method)) = calls.recv().await else {
                    return;
                };
                if live_method != method {
                    eprintln!(
                        "fake-extension: replay: recorded call {id} was {method}, but the server now sent {live_method} ({live_id}); playing it anyway"
                    );
                }
                anchor = (t, Instant::now());
                report(&mut |r| {
                    r.ids.insert(id.clone(), live_id.clone());
                });
                ids.insert(id, live_id);
            }
            Step::Send { t, text, id } => {
                wait_until(anchor, t).await;
                let text = match id.as_ref().and_then(|id| ids.get(id)) {
                    Some(live) => with_id(&text, live),
                    None => text,
                };
                if out.send(Some(text)).is_err() {
                    return;
                }
                report(&mut |r| r.sent += 1);
            }
            Step::Close { t } => {
                wait_until(anchor, t).await;
                let _ = out.send(None);
            }
        }
    }
    report(&mut |r| r.complete = true);
}

async fn wait_until(anchor: (f64, Instant), t: f64) {
    let delay = Duration::try_from_secs_f64(t - anchor.0).unwrap_or(Duration::ZERO);
    tokio::time::sleep_until((anchor.1 + delay).into()).await;
}

/// The frame with its `id` replaced (other fields kept as they were).
fn with_id(text: &str, id: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut frame)) => {
            frame.insert("id".to_owned(), Value::String(id.to_owned()));
            Value::Object(frame).to_string()
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = r#"{"t":10.0,"event":"tracing","extensions":[{"conn":"ext-3","label":"work","browser":{"name":"Chromium","version":"156"},"extension_version":"0.2.0","connected_since":1.0,"calls_in_flight":0}]}
{"t":11.0,"conn":"ext-3","dir":"in","frame":{"v":1,"type":"ping","seq":4}}
{"t":11.1,"conn":"ext-3","dir":"out","frame":{"v":1,"type":"pong","seq":4}}
{"t":12.0,"conn":"ext-3","dir":"in","frame":{"v":1,"type":"call","id":"c-7","page":"https://e.test/","method":"pageInfo","params":{},"timeout_ms":1000,"tab":"reuse"}}
{"t":12.2,"conn":"ext-3","dir":"out","frame":{"v":1,"type":"progress","id":"c-7","stage":"tab_opened"}}
{"t":12.5,"conn":"ext-3","dir":"out","frame":{"v":1,"type":"result","id":"c-7","value":{"title":"T"}}}
{"t":13.0,"conn":"ext-4","dir":"out","frame":"not json"}
{"t":14.0,"event":"closed","conn":"ext-3","detail":"closed by the extension"}
"#;

    #[test]
    fn a_trace_becomes_the_steps_of_its_first_calls_connection() {
        let recording = Recording::parse(TRACE, None).expect("a recording");

        assert_eq!(recording.conn, "ext-3");
        let hello: Value = serde_json::from_str(&recording.hello).expect("hello is JSON");
        assert_eq!(hello["label"], "work", "from the tracing line");
        assert_eq!(hello["browser"]["name"], "Chromium");
        assert_eq!(
            recording.steps,
            vec![
                Step::Call {
                    t: 12.0,
                    id: "c-7".into(),
                    method: "pageInfo".into()
                },
                Step::Send {
                    t: 12.2,
                    text: r#"{"v":1,"type":"progress","id":"c-7","stage":"tab_opened"}"#.into(),
                    id: Some("c-7".into())
                },
                Step::Send {
                    t: 12.5,
                    text: r#"{"v":1,"type":"result","id":"c-7","value":{"title":"T"}}"#.into(),
                    id: Some("c-7".into())
                },
                Step::Close { t: 14.0 },
            ],
            "pings, pongs and other connections are left out"
        );
    }

    #[test]
    fn a_fake_transcript_and_a_chosen_connection_also_play() {
        let transcript = r#"{"t":1.0,"dir":"out","frame":{"v":1,"type":"hello","protocol":1,"extension_version":"x","browser":{"name":"B","version":"1"},"label":"l","capabilities":[]}}
{"t":1.1,"dir":"in","frame":{"v":1,"type":"welcome","server_version":"0.1.0","heartbeat_ms":20000}}
"#;
        let recording = Recording::parse(transcript, None).expect("a recording");
        assert!(
            recording.hello.contains("\"label\":\"l\""),
            "{}",
            recording.hello
        );
        assert!(recording.steps.is_empty());

        let other = Recording::parse(TRACE, Some("ext-4")).expect("ext-4");
        assert_eq!(
            other.steps,
            vec![Step::Send {
                t: 13.0,
                text: "not json".into(),
                id: None
            }],
            "a frame that was not JSON is sent as its text"
        );
        assert!(matches!(
            Recording::parse(TRACE, Some("ext-9")),
            Err(RecordingError::NoSuchConn(_))
        ));
        assert!(matches!(
            Recording::parse("{oops\n", None),
            Err(RecordingError::Line { line: 1, .. })
        ));
    }

    #[test]
    fn ids_are_translated_and_the_rest_kept() {
        assert_eq!(
            with_id(r#"{"v":1,"type":"result","id":"c-7","value":1}"#, "c-1"),
            r#"{"id":"c-1","type":"result","v":1,"value":1}"#
        );
        assert_eq!(with_id("not json", "c-1"), "not json");
    }
}
