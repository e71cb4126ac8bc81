//! The live frame trace: a tap in the extension socket loop (`extension.rs`) that copies
//! every frame in and out, and every socket that closes, to whoever watches
//! `GET /v1/trace` (`any trace`). Runs inside `any serve`.
//!
//! The tap is a bounded [`tokio::sync::broadcast`] channel of [`TRACE_BUFFER`] events.
//! When nobody watches, the socket loop pays one atomic load per frame (the count of
//! watchers; the channel's own receiver count takes a lock) and copies nothing. Frames are shared, not copied (`Utf8Bytes` is reference counted). A
//! watcher that falls behind loses the oldest events and is told how many it missed
//! (`{"event": "missed", "count": N}`); the socket loop never waits for a watcher.
//!
//! The stream is JSON Lines, one object per line (see [`Line`]). `dir` is the frame's
//! direction as the **extension** sees it — `out` sent by the extension, `in` received by
//! it — the convention of `fake-extension --transcript` and of the extension's popup, so
//! a recorded trace and a fake peer's transcript read (and replay) the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use any_protocol::api::ExtensionStatus;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::ws::Utf8Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{broadcast, watch};

use crate::AppState;

/// How many events the tap holds for a slow watcher before it starts losing the oldest.
pub const TRACE_BUFFER: usize = 4096;

/// A frame's direction, as the extension sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    /// Server → extension (`welcome`, `reject`, `call`, `cancel`, `ping`).
    In,
    /// Extension → server (`hello`, `progress`, `result`, `error`, `pong`).
    Out,
}

/// One thing the tap saw on one socket.
#[derive(Debug)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub t: f64,
    /// The connection's name (`ext-N`; `refused` for a socket refused at `hello`).
    pub conn: Arc<str>,
    pub what: What,
}

#[derive(Debug)]
pub enum What {
    /// A text frame, as sent or received.
    Frame { dir: Dir, text: Utf8Bytes },
    /// The socket ended, and why.
    Closed { detail: String },
}

/// The server's end of the trace: cloned into every socket task.
#[derive(Clone)]
pub struct Tap {
    tx: broadcast::Sender<Arc<Event>>,
    /// How many [`Subscription`]s are alive.
    watchers: Arc<AtomicUsize>,
}

/// One watcher's receiving end; counted in [`Tap::is_on`] while it lives.
pub struct Subscription {
    pub events: broadcast::Receiver<Arc<Event>>,
    watchers: Arc<AtomicUsize>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Tap {
    fn default() -> Self {
        Tap::with_capacity(TRACE_BUFFER)
    }
}

impl Tap {
    /// A tap that holds `capacity` events for a slow watcher.
    pub fn with_capacity(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Tap {
            tx,
            watchers: Arc::default(),
        }
    }

    /// Whether anyone is watching. Every `record_*` checks this first, so a server
    /// nobody traces copies nothing.
    pub fn is_on(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// Records a frame seen now.
    pub fn frame(&self, conn: &Arc<str>, dir: Dir, text: &Utf8Bytes) {
        if self.is_on() {
            self.frame_at(unix_now(), conn, dir, text);
        }
    }

    /// Records a frame seen at `t` (the `hello`, which arrives before the connection
    /// has its name).
    pub fn frame_at(&self, t: f64, conn: &Arc<str>, dir: Dir, text: &Utf8Bytes) {
        if self.is_on() {
            self.send(Event {
                t,
                conn: conn.clone(),
                what: What::Frame {
                    dir,
                    text: text.clone(),
                },
            });
        }
    }

    /// Records that the socket of `conn` ended.
    pub fn closed(&self, conn: &Arc<str>, detail: &str) {
        if self.is_on() {
            self.send(Event {
                t: unix_now(),
                conn: conn.clone(),
                what: What::Closed {
                    detail: detail.to_owned(),
                },
            });
        }
    }

    fn send(&self, event: Event) {
        // Fails only when the last watcher left since `is_on`: nothing to deliver to.
        let _ = self.tx.send(Arc::new(event));
    }

    /// A new watcher: sees every event from now on.
    pub fn subscribe(&self) -> Subscription {
        let events = self.tx.subscribe();
        self.watchers.fetch_add(1, Ordering::Relaxed);
        Subscription {
            events,
            watchers: self.watchers.clone(),
        }
    }
}

/// One line of the trace stream and of an `any trace --record` file.
///
/// Frame lines are `{"t", "conn", "dir", "frame"}` (`frame` is the frame's JSON as sent,
/// or a JSON string holding the text of a frame that is not JSON); the other lines say
/// `event`: `tracing` (first line: the extensions connected when the watch began),
/// `closed` (a socket ended, `detail` says why) and `missed` (`count` events this
/// watcher lost by falling behind).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Line {
    Frame {
        t: f64,
        conn: String,
        dir: Dir,
        frame: Box<RawValue>,
    },
    Event {
        t: f64,
        #[serde(flatten)]
        event: LineEvent,
    },
}

/// The non-frame lines of [`Line`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LineEvent {
    /// The first line: the watch has begun; these extensions were connected.
    Tracing { extensions: Vec<ExtensionStatus> },
    /// The socket of `conn` ended.
    Closed { conn: String, detail: String },
    /// This watcher fell behind and lost `count` events.
    Missed { count: u64 },
}

impl Line {
    fn from_event(event: &Event) -> Line {
        match &event.what {
            What::Frame { dir, text } => Line::Frame {
                t: event.t,
                conn: event.conn.to_string(),
                dir: *dir,
                frame: frame_json(text),
            },
            What::Closed { detail } => Line::Event {
                t: event.t,
                event: LineEvent::Closed {
                    conn: event.conn.to_string(),
                    detail: detail.clone(),
                },
            },
        }
    }

    /// The line as JSON text with its newline.
    fn to_bytes(&self) -> Bytes {
        let mut text = serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"event\":\"unencodable\",\"detail\":\"{e}\"}}"));
        text.push('\n');
        Bytes::from(text)
    }
}

/// The frame as JSON: itself when it is JSON, else a JSON string of its text.
fn frame_json(text: &str) -> Box<RawValue> {
    match serde_json::from_str::<&RawValue>(text) {
        Ok(raw) => raw.to_owned(),
        Err(_) => serde_json::value::to_raw_value(text)
            .unwrap_or_else(|_| unreachable!("a string always encodes")),
    }
}

/// `GET /v1/trace`: streams every frame between the server and its extensions as JSON
/// Lines (`application/x-ndjson`) until the watcher goes away or the server stops.
pub async fn watch(State(state): State<AppState>) -> Response {
    let events = state.trace.subscribe();
    let first = Line::Event {
        t: unix_now(),
        event: LineEvent::Tracing {
            extensions: state.hub.status().extensions,
        },
    };
    tracing::info!("a trace watcher joined");
    let watcher = Watcher {
        first: Some(first),
        events,
        shutdown: state.shutdown.subscribe(),
    };
    let lines = stream::unfold(watcher, |mut w| async move {
        let line = w.next().await?;
        Some((Ok::<Bytes, std::convert::Infallible>(line.to_bytes()), w))
    });
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(lines),
    )
        .into_response()
}

struct Watcher {
    first: Option<Line>,
    events: Subscription,
    shutdown: watch::Receiver<bool>,
}

impl Watcher {
    /// The next line to send; `None` ends the stream (the server is stopping).
    async fn next(&mut self) -> Option<Line> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if *self.shutdown.borrow() {
            return None;
        }
        tokio::select! {
            received = self.events.events.recv() => match received {
                Ok(event) => Some(Line::from_event(&event)),
                Err(broadcast::error::RecvError::Lagged(count)) => Some(Line::Event {
                    t: unix_now(),
                    event: LineEvent::Missed { count },
                }),
                Err(broadcast::error::RecvError::Closed) => None,
            },
            // Graceful shutdown waits for open responses: end this one.
            _ = self.shutdown.wait_for(|stop| *stop) => None,
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        tracing::info!("a trace watcher left");
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn watcher(tap: &Tap) -> (Watcher, watch::Sender<bool>) {
        let (stop, shutdown) = watch::channel(false);
        let first = Line::Event {
            t: 0.0,
            event: LineEvent::Tracing {
                extensions: Vec::new(),
            },
        };
        let watcher = Watcher {
            first: Some(first),
            events: tap.subscribe(),
            shutdown,
        };
        (watcher, stop)
    }

    async fn next(w: &mut Watcher) -> Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(1), w.next())
            .await
            .expect("a line")
            .expect("not the end");
        serde_json::to_value(&line).expect("JSON")
    }

    fn frame(n: usize) -> Utf8Bytes {
        format!(r#"{{"v":1,"type":"ping","seq":{n}}}"#).into()
    }

    #[tokio::test]
    async fn nothing_is_kept_while_nobody_watches() {
        let tap = Tap::default();
        let conn: Arc<str> = Arc::from("ext-1");
        assert!(!tap.is_on());
        tap.frame(&conn, Dir::In, &frame(1));
        tap.closed(&conn, "gone");

        let (mut w, _stop) = watcher(&tap);
        assert!(tap.is_on());
        let (second, _) = watcher(&tap);
        drop(second);
        assert!(tap.is_on(), "one watcher left");
        tap.frame(&conn, Dir::Out, &frame(2));

        assert_eq!(next(&mut w).await["event"], "tracing");
        let line = next(&mut w).await;
        assert_eq!(
            (
                line["conn"].clone(),
                line["dir"].clone(),
                line["frame"]["seq"].clone()
            ),
            (json!("ext-1"), json!("out"), json!(2)),
            "only what happened after the watch began"
        );
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_is_told_how_much_it_missed() {
        let tap = Tap::with_capacity(4);
        let conn: Arc<str> = Arc::from("ext-1");
        let (mut w, _stop) = watcher(&tap);

        for n in 0..10 {
            tap.frame(&conn, Dir::In, &frame(n));
        }

        assert_eq!(next(&mut w).await["event"], "tracing");
        let missed = next(&mut w).await;
        assert_eq!(
            (missed["event"].clone(), missed["count"].clone()),
            (json!("missed"), json!(6))
        );
        for n in 6..10 {
            assert_eq!(
                next(&mut w).await["frame"]["seq"],
                n,
                "then the newest frames"
            );
        }
    }

    #[tokio::test]
    async fn the_stream_ends_when_the_server_stops() {
        let tap = Tap::default();
        let (mut w, stop) = watcher(&tap);
        assert_eq!(next(&mut w).await["event"], "tracing");

        stop.send_replace(true);

        assert!(w.next().await.is_none());
        drop(w);
        assert!(!tap.is_on(), "a watcher that is gone stops the copying");
    }

    #[test]
    fn a_frame_that_is_not_json_is_carried_as_a_string() {
        assert_eq!(frame_json("{\"a\": 1}").get(), "{\"a\": 1}", "kept as sent");
        assert_eq!(frame_json("not json\n").get(), "\"not json\\n\"");
    }
}
