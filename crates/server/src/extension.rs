//! `WS /v1/extension`: one browser extension's socket, inside `any serve`.
//!
//! The first frame must be `hello` with this server's protocol version; it is answered
//! by `welcome` (and the extension joins the [`Hub`]) or by `reject` with a reason, after
//! which the socket is closed. Then two tasks run until either ends: the **send** task
//! writes queued frames and an application-level `ping` every heartbeat (WebSocket
//! pings do not keep a Chrome service worker alive), and drops an extension that has
//! been silent too long; the **receive** task decodes frames and hands answers to the
//! hub. Broken frames are logged; one that names a call fails that call with
//! `protocol_error`. When the socket ends, the hub fails the extension's calls at once.
//!
//! Every text frame in and out, and the end of every socket, passes the trace tap
//! ([`crate::trace::Tap`]), which copies it only while someone runs `any trace`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use any_protocol::{
    DecodeError, ErrorBody, ErrorCode, ExtensionFrame, Hello, Ping, Reject, ServerFrame, VERSION,
    Welcome, decode, encode,
};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use crate::calls::{ConnId, Hub, Outbound};
use crate::trace::{Dir, Tap, unix_now};
use crate::{AppState, BODY_LIMIT, Config, Error};

/// How long a connection whose sending side ended may still read what the extension
/// sent before it went away.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// How much of a broken frame is quoted in the log.
const LOG_PREVIEW: usize = 300;

/// `GET /v1/extension` with an upgrade: hands the socket to [`connection`].
pub async fn upgrade(
    State(state): State<AppState>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    let ws = ws.map_err(|rejection| {
        Error::BadRequest(format!(
            "/v1/extension is the browser extension's WebSocket, not an HTTP endpoint: {}",
            rejection.body_text()
        ))
    })?;
    // Twice the limit, so that a result somewhat over it fails its call with `too_large`
    // (checked in `handle_frame`) instead of killing the socket.
    Ok(ws
        .max_message_size(2 * BODY_LIMIT)
        .max_frame_size(2 * BODY_LIMIT)
        .on_failed_upgrade(|e| tracing::warn!("an extension socket failed to upgrade: {e}"))
        .on_upgrade(move |socket| connection(socket, state)))
}

/// Runs one extension connection from `hello` to close.
async fn connection(socket: WebSocket, state: AppState) {
    let (mut sink, mut stream) = socket.split();
    let tap = state.trace.clone();
    let mut first = None;
    let hello = match handshake(&mut stream, &state.config, &mut first).await {
        Ok(hello) => hello,
        Err(reason) => {
            tracing::warn!("refused an extension connection: {reason}");
            state.hub.rejected(
                "GET /v1/extension".to_owned(),
                None,
                ErrorCode::ProtocolError,
                reason.clone(),
            );
            let refused: Arc<str> = Arc::from("refused");
            if let Some((t, text)) = &first {
                tap.frame_at(*t, &refused, Dir::Out, text);
            }
            let reject: Utf8Bytes = encode(&ServerFrame::Reject(Reject {
                reason: reason.clone(),
            }))
            .into();
            tap.frame(&refused, Dir::In, &reject);
            let _ = sink.send(Message::Text(reject)).await;
            let _ = sink.send(close(close_code::POLICY, &reason)).await;
            tap.closed(&refused, &reason);
            return;
        }
    };
    let (conn, name, outbound) = state.hub.register(hello);
    let name: Arc<str> = Arc::from(name);
    if let Some((t, text)) = &first {
        tap.frame_at(*t, &name, Dir::Out, text);
    }
    let welcome: Utf8Bytes = encode(&ServerFrame::Welcome(Welcome {
        server_version: crate::VERSION.to_owned(),
        heartbeat_ms: u64::try_from(state.config.heartbeat.as_millis()).unwrap_or(u64::MAX),
    }))
    .into();
    tap.frame(&name, Dir::In, &welcome);
    if let Err(e) = sink.send(Message::Text(welcome)).await {
        let why = format!("could not send welcome: {e}");
        tap.closed(&name, &why);
        state.hub.disconnect(conn, &why);
        return;
    }

    let started = Instant::now();
    let last_heard = Arc::new(AtomicU64::new(0));
    let mut send = tokio::spawn(send_loop(
        sink,
        outbound,
        state.config.clone(),
        started,
        last_heard.clone(),
        (tap.clone(), name.clone()),
    ));
    let mut receive = tokio::spawn(receive_loop(
        stream,
        state.hub.clone(),
        conn,
        started,
        last_heard,
        (tap.clone(), name.clone()),
    ));
    let why = tokio::select! {
        why = &mut send => {
            // Sending failed or the hub closed the socket. Frames the extension sent
            // before it went away may still wait unread (a `result` followed by its
            // close): let the receive side read up to the close, so that those answers
            // are delivered rather than lost, but not for longer than DRAIN_WAIT.
            if tokio::time::timeout(DRAIN_WAIT, &mut receive).await.is_err() {
                receive.abort();
            }
            why
        }
        why = &mut receive => { send.abort(); why }
    };
    let why = why.unwrap_or_else(|e| format!("socket task failed: {e}"));
    tracing::debug!("{name}: socket closed: {why}");
    tap.closed(&name, &why);
    state.hub.disconnect(conn, &why);
}

/// Waits for the first frame and checks it is a `hello` this server can speak with.
/// `Err` is the reason sent in `reject`. The first text frame and when it came are left
/// in `first`, for the trace.
async fn handshake(
    stream: &mut SplitStream<WebSocket>,
    config: &Config,
    first: &mut Option<(f64, Utf8Bytes)>,
) -> Result<Hello, String> {
    let text = loop {
        let message = tokio::time::timeout(config.hello_wait, stream.next())
            .await
            .map_err(|_| {
                format!(
                    "no hello within {} s of connecting",
                    config.hello_wait.as_secs_f64()
                )
            })?;
        match message {
            Some(Ok(Message::Text(text))) => break text,
            Some(Ok(Message::Binary(_))) => {
                return Err("frames must be JSON text, not binary".into());
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => {
                return Err("the socket closed before hello".into());
            }
            Some(Err(e)) => return Err(format!("socket error before hello: {e}")),
        }
    };
    *first = Some((unix_now(), text.clone()));
    match decode::<ExtensionFrame>(&text) {
        Ok(ExtensionFrame::Hello(hello)) if hello.protocol == VERSION => Ok(hello),
        Ok(ExtensionFrame::Hello(hello)) => Err(format!(
            "this any server speaks protocol {VERSION} but the extension speaks {}: \
             update the any server and the any extension to matching releases",
            hello.protocol
        )),
        Ok(_) => Err("the first frame must be hello".into()),
        Err(e @ DecodeError::WrongVersion { .. }) => Err(e.to_string()),
        Err(e) => Err(format!("the first frame must be a valid hello: {e}")),
    }
}

/// Writes queued frames and heartbeats; ends (with the reason) when the hub closes the
/// connection, the extension has been silent too long, or the socket fails.
async fn send_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
    config: Arc<Config>,
    started: Instant,
    last_heard: Arc<AtomicU64>,
    (tap, name): (Tap, Arc<str>),
) -> String {
    let mut heartbeat =
        tokio::time::interval_at((Instant::now() + config.heartbeat).into(), config.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    loop {
        let text: Utf8Bytes = tokio::select! {
            next = outbound.recv() => match next {
                Some(Outbound::Frame(text)) => text.into(),
                Some(Outbound::Close(reason)) => {
                    let _ = sink.send(close(close_code::AWAY, &reason)).await;
                    return reason;
                }
                None => return "the server dropped the connection".into(),
            },
            _ = heartbeat.tick() => {
                let heard = Duration::from_millis(last_heard.load(Ordering::Relaxed));
                let silent = started.elapsed().saturating_sub(heard);
                if silent > config.silence_limit {
                    let reason = format!("silent for {} s (no pong)", silent.as_secs());
                    let _ = sink.send(close(close_code::AWAY, &reason)).await;
                    return reason;
                }
                seq += 1;
                encode(&ServerFrame::Ping(Ping { seq })).into()
            }
        };
        // Frames queued meanwhile (several calls that arrived together) go out in the
        // same write: one wake-up of the browser's network service instead of several.
        let mut batch = vec![text];
        let mut closing = None;
        while let Ok(next) = outbound.try_recv() {
            match next {
                Outbound::Frame(text) => batch.push(text.into()),
                Outbound::Close(reason) => {
                    closing = Some(reason);
                    break;
                }
            }
        }
        for text in batch {
            tap.frame(&name, Dir::In, &text);
            if let Err(e) = sink.feed(Message::Text(text)).await {
                return format!("send failed: {e}");
            }
        }
        if let Err(e) = sink.flush().await {
            return format!("send failed: {e}");
        }
        if let Some(reason) = closing {
            let _ = sink.send(close(close_code::AWAY, &reason)).await;
            return reason;
        }
    }
}

/// Reads frames until the socket ends; returns why it ended.
async fn receive_loop(
    mut stream: SplitStream<WebSocket>,
    hub: Arc<Hub>,
    conn: ConnId,
    started: Instant,
    last_heard: Arc<AtomicU64>,
    (tap, name): (Tap, Arc<str>),
) -> String {
    while let Some(message) = stream.next().await {
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        last_heard.store(millis, Ordering::Relaxed);
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Binary(bytes)) => {
                tracing::warn!(
                    "ext-{conn} sent a binary frame of {} bytes: dropped (frames are JSON text)",
                    bytes.len()
                );
                continue;
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(frame)) => {
                return match frame {
                    Some(f) if !f.reason.is_empty() => {
                        format!("closed by the extension: {}", f.reason)
                    }
                    _ => "closed by the extension".into(),
                };
            }
            Err(e) => return format!("socket error: {e}"),
        };
        tap.frame(&name, Dir::Out, &text);
        if text.len() > DECODE_ASIDE_ABOVE {
            // `any serve` runs on one thread: a big result (validating 50 MiB of JSON
            // takes ~0.1 s) is decoded off it, so other calls keep moving. Awaited before
            // the next frame, so frames still act in order (an answer before a close).
            let hub = Arc::clone(&hub);
            let decoded =
                tokio::task::spawn_blocking(move || handle_frame(&hub, conn, &text)).await;
            if let Err(e) = decoded {
                tracing::error!("ext-{conn}: decoding a big frame failed: {e}");
            }
        } else {
            handle_frame(&hub, conn, &text);
        }
    }
    "the socket ended".into()
}

/// Frames longer than this are decoded on the blocking pool (see `receive_loop`).
const DECODE_ASIDE_ABOVE: usize = 1 << 20;

/// Acts on one text frame from a welcomed extension.
fn handle_frame(hub: &Hub, conn: ConnId, text: &str) {
    match decode::<ExtensionFrame>(text) {
        Ok(ExtensionFrame::Result(r)) if r.value.get().len() > BODY_LIMIT => {
            let message = format!(
                "the result is {} bytes; the limit is {BODY_LIMIT} bytes (64 MiB): return less from the method",
                r.value.get().len()
            );
            hub.answer(
                conn,
                &r.id,
                Err(ErrorBody::new(ErrorCode::TooLarge, message)),
            );
        }
        Ok(ExtensionFrame::Result(r)) => hub.answer(conn, &r.id, Ok(r.value)),
        Ok(ExtensionFrame::Error(e)) => hub.answer(conn, &e.id, Err(e.error)),
        Ok(ExtensionFrame::Progress(p)) => hub.progress(conn, &p.id, p.stage),
        Ok(ExtensionFrame::Pong(p)) => tracing::trace!("ext-{conn}: pong {}", p.seq),
        Ok(ExtensionFrame::Tabs(t)) => hub.tabs(conn, t),
        Ok(ExtensionFrame::Hello(_)) => tracing::warn!("ext-{conn} sent a second hello: ignored"),
        Err(e) => {
            tracing::warn!(
                "ext-{conn} sent a frame that does not decode ({e}): {}",
                preview(text)
            );
            if let Some(id) = e.call_id() {
                let message = format!("the extension sent a broken frame about this call: {e}");
                hub.protocol_error(conn, &id.to_owned(), message);
            }
        }
    }
}

fn close(code: u16, reason: &str) -> Message {
    // A close reason is limited to 123 bytes; cut on a character boundary.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }))
}

fn preview(text: &str) -> String {
    if text.len() <= LOG_PREVIEW {
        return text.to_owned();
    }
    let mut end = LOG_PREVIEW;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}
