//! `fake-extension`: the fake any extension as a process, for tests in other languages.
//! Connects to `ws://127.0.0.1:<port>/v1/extension` (retrying for `--connect-timeout`),
//! prints `ready` on stdout once welcomed, answers calls by method name (see the
//! library's table), and exits when the socket closes: 0 after a normal close (for
//! example after the `disconnect` method), 1 when it could not connect or was rejected.
//!
//! With `--chaos SEED` it misbehaves at random (delays, drops, duplicates, late answers,
//! disconnects; see the library's `chaos` module) and reconnects after each disconnect,
//! until it is killed; it prints `ready` at each (re)connection.
//!
//! With `--replay FILE` it plays a recorded session instead (`any trace --record`, or a
//! `--transcript`): see the library's `replay` module. It prints `ready` once welcomed
//! and `replayed` once every recorded step has been played, then stays connected.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;
use fake_extension::chaos::{self, Chaos, ChaosArgs};
use fake_extension::replay::{Recording, Replay};
use fake_extension::{FakeExtension, Options, until_connected};

/// A fake any browser extension that answers calls by their method name.
#[derive(Parser, Debug)]
#[command(
    name = "fake-extension",
    version,
    after_help = "Methods: echo, sleep {ms}, throw {name, message}, fail {code, message}, never, \
        late {ms}, duplicate, disconnect, progress, big {bytes}; anything else is method_not_found.\n\n\
        Examples:\n  fake-extension --port 8765 --label work --transcript /tmp/frames.jsonl\n  \
        any trace --record session.jsonl   # then, against a fresh server:\n  \
        fake-extension --port 8765 --replay session.jsonl\n  \
        fake-extension --port 8765 --chaos 42 --p-drop 0.1   # misbehave at random"
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
    /// Misbehave at random, seeded: every call is answered by method name but may be
    /// delayed, dropped, answered twice or late, or close the socket (then reconnect)
    #[arg(long, value_name = "SEED", conflicts_with = "replay")]
    chaos: Option<u64>,
    #[command(flatten)]
    chaos_args: ChaosArgs,
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
    if let Some(seed) = args.chaos {
        return chaotic(options, Chaos::new(args.chaos_args.config(seed)), patience).await;
    }
    let connect = || FakeExtension::connect(options.clone());
    let fake = match until_connected(patience, Duration::from_millis(100), connect).await {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("fake-extension: {e}");
            return ExitCode::FAILURE;
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
    let connect = || Replay::start(options, recording.clone());
    let replay = match until_connected(patience, Duration::from_millis(100), connect).await {
        Ok(replay) => replay,
        Err(e) => {
            eprintln!("fake-extension: {e}");
            return ExitCode::FAILURE;
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

/// `--chaos SEED`: stays connected, misbehaving, until killed or unable to reconnect.
async fn chaotic(options: Options, chaos: Arc<Chaos>, patience: Duration) -> ExitCode {
    let (connected_tx, mut connected) = tokio::sync::mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(chaos::run(
        options,
        chaos,
        stop,
        connected_tx,
        Duration::from_millis(10),
        patience,
    ));
    while let Some(n) = connected.recv().await {
        if n > 0 {
            eprintln!("fake-extension: reconnected ({n} reconnects)");
        }
        println!("ready");
    }
    match run.await {
        Ok(Ok(_)) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("fake-extension: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("fake-extension: {e}");
            ExitCode::FAILURE
        }
    }
}
