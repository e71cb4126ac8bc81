//! `fake-extension`: the fake any extension as a process, for tests in other languages.
//! Connects to `ws://127.0.0.1:<port>/v1/extension` (retrying for `--connect-timeout`),
//! prints `ready` on stdout once welcomed, answers calls by method name (see the
//! library's table), and exits when the socket closes: 0 after a normal close (for
//! example after the `disconnect` method), 1 when it could not connect or was rejected.
//!
//! With `--replay FILE` it plays a recorded session instead (`any trace --record`, or a
//! `--transcript`): see the library's `replay` module. It prints `ready` once welcomed
//! and `replayed` once every recorded step has been played, then stays connected.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use fake_extension::replay::{Recording, Replay};
use fake_extension::{Error, FakeExtension, Options};

/// A fake any browser extension that answers calls by their method name.
#[derive(Parser, Debug)]
#[command(
    name = "fake-extension",
    version,
    after_help = "Methods: echo, sleep {ms}, throw {name, message}, fail {code, message}, never, \
        late {ms}, duplicate, disconnect, progress, big {bytes}; anything else is method_not_found.\n\n\
        Examples:\n  fake-extension --port 8765 --label work --transcript /tmp/frames.jsonl\n  \
        any trace --record session.jsonl   # then, against a fresh server:\n  \
        fake-extension --port 8765 --replay session.jsonl"
)]
struct Args {
    /// The any server's port
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// The label to send in hello (the routing key of `"browser"` in calls)
    #[arg(long, default_value = "")]
    label: String,
    /// Write every frame in and out to this file, one JSON object per line: {t, dir, frame}
    #[arg(long, value_name = "FILE.jsonl")]
    transcript: Option<PathBuf>,
    /// The Origin header of the socket (the server accepts only the any extension's,
    /// unless started with --allow-origin)
    #[arg(long, default_value = any_protocol::EXTENSION_ORIGIN, value_name = "ORIGIN")]
    origin: String,
    /// Seconds to keep retrying while the server is not listening yet
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    connect_timeout: f64,
    /// Play the extension's side of a recorded session (`any trace --record` or
    /// `--transcript` JSON Lines) instead of answering calls by method name
    #[arg(long, value_name = "FILE.jsonl")]
    replay: Option<PathBuf>,
    /// With --replay: the recorded connection to play (default: the one of the first call)
    #[arg(long, value_name = "ext-N", requires = "replay")]
    conn: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let options = Options {
        url: format!("ws://127.0.0.1:{}/v1/extension", args.port),
        label: args.label,
        transcript: args.transcript,
        capabilities: Vec::new(),
        origin: Some(args.origin),
    };
    let patience =
        Duration::try_from_secs_f64(args.connect_timeout).unwrap_or(Duration::from_secs(5));
    if let Some(path) = &args.replay {
        return replay(&options, path, args.conn.as_deref(), patience).await;
    }
    let started = Instant::now();
    let fake = loop {
        match FakeExtension::connect(options.clone()).await {
            Ok(fake) => break fake,
            Err(Error::Connect { .. }) if started.elapsed() < patience => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                eprintln!("fake-extension: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    println!("ready");
    fake.closed().await;
    eprintln!("fake-extension: the socket closed");
    ExitCode::SUCCESS
}

/// `--replay FILE`: plays the recording, then stays connected until the socket closes.
async fn replay(
    options: &Options,
    path: &std::path::Path,
    conn: Option<&str>,
    patience: Duration,
) -> ExitCode {
    let recording = match Recording::load(path, conn) {
        Ok(recording) => recording,
        Err(e) => {
            eprintln!("fake-extension: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let replay = loop {
        match Replay::start(options, recording.clone()).await {
            Ok(replay) => break replay,
            Err(Error::Connect { .. }) if started.elapsed() < patience => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                eprintln!("fake-extension: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    println!("ready");
    let report = replay.played().await;
    if report.complete {
        println!("replayed");
        eprintln!(
            "fake-extension: replayed {} frame(s) of {} (calls {:?})",
            report.sent, recording.conn, report.ids
        );
    }
    let report = replay.closed().await;
    if !report.complete {
        eprintln!(
            "fake-extension: the socket closed before the replay ended ({} frame(s) sent)",
            report.sent
        );
    }
    eprintln!("fake-extension: the socket closed");
    ExitCode::SUCCESS
}
