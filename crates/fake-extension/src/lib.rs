//! A fake `any` browser extension: connects to `ws://…/v1/extension`, says `hello`,
//! answers `ping`, and answers each `call` by its **method name** (see [`behave`]),
//! recording every frame in and out — with direction and timestamp — in a transcript.
//!
//! Runs as a native process (the `fake-extension` binary, used by the Python tests) or
//! inside a Rust test (the server's integration tests). It is a test peer: it does what
//! the method name says, including misbehaving on purpose (`late`, `duplicate`,
//! `disconnect`, `never`), so the server's handling of each can be proven.
//!
//! | method | behaviour |
//! |---|---|
//! | `echo` | result = params |
//! | `sleep` | waits `params.ms`, then result = params |
//! | `throw` | `page_error` with name `params.name` (default "Error"), message `params.message`, a stack |
//! | `fail` | error with `code` = `params.code` (sent verbatim, so an unknown code makes a broken frame), message `params.message` |
//! | `never` | never answers |
//! | `late` | answers (result = params) after `params.ms`, even if cancelled |
//! | `duplicate` | answers twice |
//! | `disconnect` | closes the socket without answering |
//! | `progress` | progress tab_opened, page_loaded, method_found, method_called, then result = params |
//! | `big` | result = a string of `params.bytes` characters |
//! | `big_then_disconnect` | like `big`, then closes the socket at once |
//! | anything else | `method_not_found` |
//!
//! An ad-hoc script (`run` frame) is answered with `{"ran": <the script>}`; a `scripts`
//! frame is only recorded (see [`Transcript::scripts`]). With [`Options::capabilities`]
//! the fake announces capabilities such as `user_scripts` in its `hello`.
//!
//! [`replay`] plays a recorded session (`any trace --record`) instead of answering by
//! method name, to reproduce what a real extension did.

pub mod chaos;
pub mod replay;
pub mod soak;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use any_protocol::{
    BrowserInfo, Call, CallError, CallResult, ErrorBody, ErrorCode, ExtensionFrame, Hello, Pong,
    Progress, Run, ServerFrame, Stage, VERSION, decode, encode,
};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// The browser name the fake reports in `hello`.
pub const BROWSER_NAME: &str = "FakeBrowser";

/// How to connect.
#[derive(Debug, Clone)]
pub struct Options {
    /// For example `ws://127.0.0.1:8765/v1/extension`.
    pub url: String,
    /// The label sent in `hello` (routing key); empty for none.
    pub label: String,
    /// Also append every transcript entry, as one JSON line, to this file.
    pub transcript: Option<PathBuf>,
    /// The `Origin` header of the socket: the real extension's by default (the server
    /// accepts no other); `None` sends none.
    pub origin: Option<String>,
    /// The `capabilities` of the `hello`, e.g. `user_scripts`.
    pub capabilities: Vec<String>,
}

impl Options {
    /// The extension socket of a server on `127.0.0.1:port`.
    pub fn port(port: u16) -> Self {
        Options {
            url: format!("ws://127.0.0.1:{port}/v1/extension"),
            label: String::new(),
            transcript: None,
            origin: Some(any_protocol::EXTENSION_ORIGIN.to_owned()),
            capabilities: Vec::new(),
        }
    }

    pub fn label(mut self, label: &str) -> Self {
        self.label = label.to_owned();
        self
    }

    pub fn capability(mut self, capability: &str) -> Self {
        self.capabilities.push(capability.to_owned());
        self
    }
}

/// Why the fake could not get connected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the server rejected the hello: {0}")]
    Rejected(String),
    #[error("the server did not answer hello with welcome: {0}")]
    Handshake(String),
    #[error("could not write the transcript {path}: {reason}")]
    Transcript { path: PathBuf, reason: String },
}

/// Which way a frame went, from the fake extension's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Server → fake extension.
    In,
    /// Fake extension → server.
    Out,
}

/// One line of the transcript.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Seconds since the Unix epoch.
    pub t: f64,
    pub dir: Direction,
    /// The frame as JSON; a string holding the raw text if it was not JSON.
    pub frame: Value,
}

impl Entry {
    /// The frame's `type`, if it has one.
    pub fn ty(&self) -> Option<&str> {
        self.frame.get("type").and_then(Value::as_str)
    }

    /// The frame's `id`, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.frame.get("id").and_then(Value::as_str)
    }
}

/// Every frame in and out, shared between the socket tasks and the test.
#[derive(Clone)]
pub struct Transcript {
    entries: Arc<Mutex<Vec<Entry>>>,
    file: Option<Arc<Mutex<BufWriter<File>>>>,
}

impl Transcript {
    fn new(path: Option<&PathBuf>) -> Result<Self, Error> {
        let file = match path {
            None => None,
            Some(path) => {
                let file = File::create(path).map_err(|e| Error::Transcript {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                Some(Arc::new(Mutex::new(BufWriter::new(file))))
            }
        };
        Ok(Transcript {
            entries: Arc::default(),
            file,
        })
    }

    fn record(&self, dir: Direction, text: &str) {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let frame = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        let entry = Entry { t, dir, frame };
        if let Some(file) = &self.file {
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            // A transcript that cannot be written must not stop the peer; report it once per frame.
            if let Err(e) = serde_json::to_writer(&mut *file, &entry)
                .map_err(std::io::Error::from)
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.flush())
            {
                eprintln!("fake-extension: could not write the transcript: {e}");
            }
        }
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
    }

    /// A copy of every entry so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The entries about call `id`, in order.
    pub fn for_call(&self, id: &str) -> Vec<Entry> {
        self.entries()
            .into_iter()
            .filter(|e| e.id() == Some(id))
            .collect()
    }

    /// The `scripts` frames the server sent, oldest first (each the full set).
    pub fn scripts(&self) -> Vec<Vec<any_protocol::UserScript>> {
        self.entries()
            .into_iter()
            .filter(|e| e.dir == Direction::In && e.ty() == Some("scripts"))
            .filter_map(|e| e.frame.get("scripts").cloned())
            .filter_map(|s| serde_json::from_value(s).ok())
            .collect()
    }

    /// How many frames of type `ty` went in direction `dir` about call `id`.
    pub fn count(&self, id: &str, dir: Direction, ty: &str) -> usize {
        self.for_call(id)
            .iter()
            .filter(|e| e.dir == dir && e.ty() == Some(ty))
            .count()
    }
}

/// What the writer task sends.
enum Out {
    Text(String),
    Close,
}

/// A connected, welcomed fake extension.
pub struct FakeExtension {
    transcript: Transcript,
    out: mpsc::UnboundedSender<Out>,
    closed: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl FakeExtension {
    /// Connects, sends `hello`, and returns once `welcome` arrives.
    pub async fn connect(options: Options) -> Result<Self, Error> {
        let hello = hello_frame(&options);
        Self::connect_inner(options, &hello, None).await
    }

    /// Like [`FakeExtension::connect`] with a hello frame of the caller's own text
    /// (e.g. a wrong version); `Err(Rejected)` if the server sends `reject`.
    pub async fn connect_with_hello(options: Options, hello: &str) -> Result<Self, Error> {
        Self::connect_inner(options, hello, None).await
    }

    /// Like [`FakeExtension::connect`], with every call perturbed by `chaos` (see
    /// [`chaos`]); `connection` numbers this connection in chaos's record.
    pub async fn connect_chaos(
        options: Options,
        chaos: Arc<chaos::Chaos>,
        connection: usize,
    ) -> Result<Self, Error> {
        let hello = hello_frame(&options);
        Self::connect_inner(options, &hello, Some((chaos, connection))).await
    }

    async fn connect_inner(
        options: Options,
        hello: &str,
        chaos: Option<(Arc<chaos::Chaos>, usize)>,
    ) -> Result<Self, Error> {
        let transcript = Transcript::new(options.transcript.as_ref())?;
        let (mut sink, mut stream) = handshake(&options, hello, Some(&transcript)).await?;

        let (out, mut out_rx) = mpsc::unbounded_channel::<Out>();
        let (closed_tx, closed) = watch::channel(false);
        let writer_transcript = transcript.clone();
        let reader_transcript = transcript.clone();
        let answers = out.clone();
        let task = tokio::spawn(async move {
            let writer = async move {
                while let Some(item) = out_rx.recv().await {
                    match item {
                        Out::Text(text) => {
                            writer_transcript.record(Direction::Out, &text);
                            if sink.send(Message::text(text)).await.is_err() {
                                break;
                            }
                        }
                        Out::Close => {
                            let _ = sink.close().await;
                            break;
                        }
                    }
                }
            };
            let reader = async move {
                while let Some(Ok(message)) = stream.next().await {
                    let text = match message {
                        Message::Text(text) => text.to_string(),
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    reader_transcript.record(Direction::In, &text);
                    match decode::<ServerFrame>(&text) {
                        Ok(ServerFrame::Ping(p)) => {
                            let _ = answers.send(Out::Text(encode(&ExtensionFrame::Pong(Pong {
                                seq: p.seq,
                            }))));
                        }
                        Ok(ServerFrame::Call(call)) => {
                            match &chaos {
                                None => drop(tokio::spawn(behave(call, answers.clone()))),
                                Some((chaos, connection)) => drop(tokio::spawn(
                                    chaos.clone().perturb(call, answers.clone(), *connection),
                                )),
                            }
                        }
                        Ok(ServerFrame::Run(run)) => {
                            let _ = answers.send(Out::Text(ran(&run)));
                        }
                        // Recorded above; the fake keeps going (that is what `late` tests).
                        Ok(
                            ServerFrame::Cancel(_)
                            | ServerFrame::Welcome(_)
                            | ServerFrame::Reject(_)
                            | ServerFrame::Scripts(_),
                        ) => {}
                        Err(e) => {
                            eprintln!("fake-extension: undecodable frame from the server: {e}")
                        }
                    }
                }
            };
            tokio::select! {
                () = writer => {}
                () = reader => {}
            }
            let _ = closed_tx.send(true);
        });
        Ok(FakeExtension {
            transcript,
            out,
            closed,
            task,
        })
    }

    /// The record of every frame in and out.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Sends `text` as one frame, as is (for malformed-frame tests).
    pub fn send_raw(&self, text: &str) {
        let _ = self.out.send(Out::Text(text.to_owned()));
    }

    /// Waits until the connection has ended (closed by either side).
    pub async fn closed(&self) {
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|c| *c).await;
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Closes the socket and waits until it has ended.
    pub async fn close(self) {
        let _ = self.out.send(Out::Close);
        let _ = self.task.await;
    }
}

/// The `hello` frame the fake sends: this crate's version, the fake browser, the label
/// and capabilities of `options`.
fn hello_frame(options: &Options) -> String {
    encode(&ExtensionFrame::Hello(Hello {
        protocol: VERSION,
        extension_version: env!("CARGO_PKG_VERSION").to_owned(),
        browser: BrowserInfo {
            name: BROWSER_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        label: options.label.clone(),
        capabilities: options.capabilities.clone(),
    }))
}

/// The answer to an ad-hoc script: the fake runs nothing and returns
/// `{"ran": <script>}`, so a test sees exactly what reached the extension.
fn ran(run: &Run) -> String {
    let value = serde_json::json!({ "ran": run.script }).to_string();
    let value = serde_json::value::RawValue::from_string(value)
        .unwrap_or_else(|_| unreachable!("serde_json output is JSON"));
    encode(&ExtensionFrame::Result(CallResult {
        id: run.id.clone(),
        value,
    }))
}

/// Calls `connect` until it succeeds, fails with anything but [`Error::Connect`] (nothing
/// listening yet), or `patience` has passed since the first try; waits `pause` between
/// tries. For peers started before the server they connect to.
pub async fn until_connected<T, F, Fut>(
    patience: Duration,
    pause: Duration,
    mut connect: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let started = tokio::time::Instant::now();
    loop {
        match connect().await {
            Err(Error::Connect { .. }) if started.elapsed() < patience => {
                tokio::time::sleep(pause).await;
            }
            other => return other,
        }
    }
}

/// The two halves of an extension socket.
type SocketSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;
type SocketStream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

/// Opens the extension socket, sends `hello` and waits (10 s at most) for `welcome`;
/// records both directions in `transcript` when given.
async fn handshake(
    options: &Options,
    hello: &str,
    transcript: Option<&Transcript>,
) -> Result<(SocketSink, SocketStream), Error> {
    let record = |direction, text: &str| {
        if let Some(transcript) = transcript {
            transcript.record(direction, text);
        }
    };
    let request = socket_request(options)?;
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .map_err(|e| Error::Connect {
            url: options.url.clone(),
            reason: e.to_string(),
        })?;
    let (mut sink, mut stream) = socket.split();
    record(Direction::Out, hello);
    sink.send(Message::text(hello))
        .await
        .map_err(|e| Error::Handshake(format!("could not send hello: {e}")))?;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .map_err(|_| Error::Handshake("no answer within 10 s".into()))?;
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return Err(Error::Handshake(format!(
                    "the server closed the socket: {frame:?}"
                )));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(Error::Handshake(e.to_string())),
            None => return Err(Error::Handshake("the socket ended".into())),
        };
        record(Direction::In, &text);
        match decode::<ServerFrame>(&text) {
            Ok(ServerFrame::Welcome(_)) => return Ok((sink, stream)),
            Ok(ServerFrame::Reject(r)) => return Err(Error::Rejected(r.reason)),
            Ok(other) => {
                return Err(Error::Handshake(format!("expected welcome, got {other:?}")));
            }
            Err(e) => return Err(Error::Handshake(e.to_string())),
        }
    }
}

/// The WebSocket handshake request for `options`: its URL, with its `Origin`.
fn socket_request(
    options: &Options,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let invalid = |reason: String| Error::Connect {
        url: options.url.clone(),
        reason,
    };
    let mut request = options
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| invalid(e.to_string()))?;
    if let Some(origin) = &options.origin {
        let value = origin
            .parse()
            .map_err(|_| invalid(format!("{origin:?} is not a valid Origin header")))?;
        request.headers_mut().insert("origin", value);
    }
    Ok(request)
}

/// Answers one call according to its method name (the table in the crate docs).
async fn behave(call: Call, out: mpsc::UnboundedSender<Out>) {
    let params: Value = serde_json::from_str(call.params.get()).unwrap_or(Value::Null);
    let ms =
        |key: &str| Duration::from_millis(params.get(key).and_then(Value::as_u64).unwrap_or(0));
    let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
    let id = call.id.clone();
    let send = |frame: ExtensionFrame| {
        let _ = out.send(Out::Text(encode(&frame)));
    };
    let result = |value: &str| {
        let value = serde_json::value::RawValue::from_string(value.to_owned())
            .unwrap_or_else(|_| unreachable!("the fake only sends JSON it made"));
        ExtensionFrame::Result(CallResult {
            id: id.clone(),
            value,
        })
    };
    match call.method.as_str() {
        "echo" => send(result(call.params.get())),
        "sleep" | "late" => {
            tokio::time::sleep(ms("ms")).await;
            send(result(call.params.get()));
        }
        "throw" => {
            let name = text("name").unwrap_or_else(|| "Error".to_owned());
            let message = text("message").unwrap_or_default();
            let stack = format!(
                "{name}: {message}\n    at {} ({}:1:1)",
                call.method, call.page
            );
            let error = ErrorBody {
                code: ErrorCode::PageError,
                name,
                message,
                stack: Some(stack),
                stage: Some(Stage::MethodCalled),
            };
            send(ExtensionFrame::Error(CallError {
                id: id.clone(),
                error,
            }));
        }
        "fail" => {
            // Sent verbatim: a code outside the protocol's set makes a broken frame on purpose.
            let code = params.get("code").cloned().unwrap_or(Value::Null);
            let frame = serde_json::json!({
                "v": VERSION, "type": "error", "id": id,
                "error": {"code": code, "name": code.as_str().unwrap_or("Error"), "message": text("message").unwrap_or_default()}
            });
            let _ = out.send(Out::Text(frame.to_string()));
        }
        "never" => {}
        "duplicate" => {
            send(result(call.params.get()));
            send(result(call.params.get()));
        }
        "disconnect" => {
            let _ = out.send(Out::Close);
        }
        "progress" => {
            for stage in [
                Stage::TabOpened,
                Stage::PageLoaded,
                Stage::MethodFound,
                Stage::MethodCalled,
            ] {
                send(ExtensionFrame::Progress(Progress {
                    id: id.clone(),
                    stage,
                }));
            }
            send(result(call.params.get()));
        }
        "big" | "big_then_disconnect" => {
            let bytes = params.get("bytes").and_then(Value::as_u64).unwrap_or(0);
            let big = format!("\"{}\"", "x".repeat(usize::try_from(bytes).unwrap_or(0)));
            send(result(&big));
            if call.method == "big_then_disconnect" {
                let _ = out.send(Out::Close);
            }
        }
        other => {
            let message = format!(
                "globalThis.__any__.{other} does not exist on {} (fake extension)",
                call.page
            );
            let error = ErrorBody::new(ErrorCode::MethodNotFound, message).at(Stage::PageLoaded);
            send(ExtensionFrame::Error(CallError {
                id: id.clone(),
                error,
            }));
        }
    }
}
