//! `any trace`: watches `GET /v1/trace` of a running server and prints every frame
//! between it and its extensions as it passes, one readable line each (or the raw JSON
//! Lines with `--json`), optionally recording the full frames to a file that
//! `fake-extension --replay` can play back. Runs in the `any trace` process, a plain
//! HTTP client of the server; it never starts a server.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::cli::{EXIT_FAILURE, stop_signal};
use crate::client::Client;

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Print each frame and event as one full JSON line (the stream as the server sends it)
    #[arg(long)]
    pub json: bool,
    /// Also write every frame and event, in full, to FILE as JSON Lines (replayable with
    /// `fake-extension --replay FILE`)
    #[arg(long, value_name = "FILE.jsonl")]
    pub record: Option<PathBuf>,
    /// How many characters of each frame the readable form shows before cutting it
    #[arg(long, default_value_t = 160, value_name = "CHARS")]
    pub width: usize,
}

/// Runs `any trace` until Ctrl-C, SIGTERM, or the server ends the stream.
pub async fn run(port: u16, args: TraceArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(port)?;
    let Some(mut response) = client.trace().await? else {
        eprintln!(
            "no any server is running on port {port}: nothing to trace \
             (`any serve --port {port}` starts one)"
        );
        return Ok(ExitCode::from(EXIT_FAILURE));
    };
    let mut record = match &args.record {
        None => None,
        Some(path) => {
            let file = File::create(path)
                .with_context(|| format!("could not create {}", path.display()))?;
            Some(BufWriter::new(file))
        }
    };
    let stop = stop_signal();
    tokio::pin!(stop);
    let mut pending: Vec<u8> = Vec::new();
    let mut frames = 0u64;
    let ended = loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk,
            () = &mut stop => break None,
        };
        match chunk {
            Ok(Some(bytes)) => pending.extend_from_slice(&bytes),
            Ok(None) => break Some("the server ended the trace (it is stopping)".to_owned()),
            Err(e) => break Some(format!("the trace stream broke: {e}")),
        }
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            if line.trim().is_empty() {
                continue;
            }
            if let Some(file) = &mut record {
                writeln!(file, "{line}")
                    .and_then(|()| file.flush())
                    .context("could not write the recording")?;
            }
            let seen: Seen = match serde_json::from_str(&line) {
                Ok(seen) => seen,
                Err(e) => {
                    eprintln!("any trace: a line that is not what any trace expects ({e}): {line}");
                    continue;
                }
            };
            if seen.frame.is_some() {
                frames += 1;
            }
            let starting = seen.event.as_deref() == Some("tracing");
            if starting {
                eprintln!("{}", describe_start(port, &seen, args.record.as_ref()));
            }
            if args.json {
                println!("{line}");
            } else if !starting {
                println!("{}", render(&seen, args.width));
            }
        }
    };
    if let Some(path) = &args.record {
        eprintln!(
            "any trace: recorded {frames} frame(s) to {}",
            path.display()
        );
    }
    match ended {
        None => Ok(ExitCode::SUCCESS),
        Some(why) => {
            eprintln!("any trace: {why}");
            Ok(ExitCode::from(EXIT_FAILURE))
        }
    }
}

/// One line of the stream (`trace::Line` on the server), read loosely: the frame stays
/// as the text that was sent, so it is shown with its keys in their order.
#[derive(Debug, Deserialize)]
pub struct Seen {
    #[serde(default)]
    t: f64,
    conn: Option<String>,
    dir: Option<String>,
    frame: Option<Box<RawValue>>,
    event: Option<String>,
    detail: Option<String>,
    count: Option<u64>,
    extensions: Option<Vec<Value>>,
}

/// The line on stderr that says the watch has begun (tests wait for it before calling).
fn describe_start(port: u16, first: &Seen, record: Option<&PathBuf>) -> String {
    let extensions: Vec<String> = first
        .extensions
        .as_ref()
        .map(|list| {
            list.iter()
                .map(|e| {
                    let label = e["label"].as_str().unwrap_or("");
                    let label = if label.is_empty() {
                        String::new()
                    } else {
                        format!(", label {label:?}")
                    };
                    format!(
                        "{} ({} {}{label})",
                        e["conn"].as_str().unwrap_or("?"),
                        e["browser"]["name"].as_str().unwrap_or("?"),
                        e["browser"]["version"].as_str().unwrap_or("?"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let connected = if extensions.is_empty() {
        "no extension connected yet".to_owned()
    } else {
        format!("connected: {}", extensions.join(", "))
    };
    let recording = record
        .map(|p| format!("; recording to {}", p.display()))
        .unwrap_or_default();
    format!(
        "any trace: tracing the frames of the any server on 127.0.0.1:{port} ({connected}){recording}; \
         <- to the extension, -> from it; Ctrl-C stops"
    )
}

/// One readable line for one line of the stream:
/// `11:58:26.123Z ext-1 <- call     c-1   {"v":1,...}`, the frame cut at `width`
/// characters with its full size after it.
pub fn render(line: &Seen, width: usize) -> String {
    let time = clock(line.t);
    let conn = line.conn.as_deref().unwrap_or("?");
    if let Some(frame) = &line.frame {
        let arrow = match line.dir.as_deref() {
            Some("in") => "<-",
            Some("out") => "->",
            _ => "??",
        };
        #[derive(Deserialize, Default)]
        struct Head {
            #[serde(rename = "type")]
            ty: Option<String>,
            id: Option<String>,
        }
        // A frame that was not JSON is recorded as a JSON string of its text.
        let (head, text) = match serde_json::from_str::<String>(frame.get()) {
            Ok(text) => (Head::default(), text),
            Err(_) => (
                serde_json::from_str::<Head>(frame.get()).unwrap_or_default(),
                frame.get().to_owned(),
            ),
        };
        let ty = head.ty.as_deref().unwrap_or("?");
        let id = head.id.as_deref().unwrap_or("");
        return format!(
            "{time} {conn} {arrow} {ty:<8} {id:<5} {}",
            cut(&text, width)
        );
    }
    match line.event.as_deref() {
        Some("closed") => format!(
            "{time} {conn} closed: {}",
            line.detail.as_deref().unwrap_or("")
        ),
        Some("missed") => format!(
            "{time} (missed {} frame(s) and event(s): this terminal read too slowly)",
            line.count.unwrap_or(0)
        ),
        other => format!("{time} {}", other.unwrap_or("?")),
    }
}

/// `text` on one line, at most `width` characters, with the full size when cut.
fn cut(text: &str, width: usize) -> String {
    let escaped: String = text
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if escaped.chars().count() <= width {
        return escaped;
    }
    let kept: String = escaped.chars().take(width).collect();
    format!("{kept}… ({} bytes)", text.len())
}

/// `HH:MM:SS.mmmZ` (UTC, like the server's log) of a Unix time in seconds.
fn clock(t: f64) -> String {
    let millis = (t.max(0.0) * 1000.0).round() as u64;
    let day = millis % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        day / 3_600_000,
        day / 60_000 % 60,
        day / 1000 % 60,
        day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seen(line: Value) -> Seen {
        serde_json::from_value(line).expect("a trace line")
    }

    #[test]
    fn a_frame_line_shows_time_connection_direction_type_and_id() {
        let line = json!({"t": 3723.0456, "conn": "ext-2", "dir": "in",
            "frame": {"v": 1, "type": "call", "id": "c-9", "method": "echo"}});

        let shown = render(&seen(line), 160);

        assert!(
            shown.starts_with("01:02:03.046Z ext-2 <- call     c-9   {"),
            "{shown}"
        );
        assert!(shown.contains("\"method\":\"echo\""), "{shown}");
        let out = json!({"t": 0.0, "conn": "ext-2", "dir": "out", "frame": {"v": 1, "type": "pong", "seq": 3}});
        assert!(render(&seen(out), 160).contains("ext-2 -> pong"));
    }

    #[test]
    fn a_frame_is_shown_as_it_was_sent() {
        let line = r#"{"t":1.5,"conn":"ext-1","dir":"out","frame":{"v":1,"type":"result","id":"c-2","value":{"z":1,"a":2}}}"#;

        let shown = render(&serde_json::from_str(line).expect("a line"), 160);

        assert!(
            shown.ends_with(
                r#"-> result   c-2   {"v":1,"type":"result","id":"c-2","value":{"z":1,"a":2}}"#
            ),
            "keys keep their order: {shown}"
        );
    }

    #[test]
    fn a_long_frame_is_cut_with_its_full_size() {
        let big = "x".repeat(10_000);
        let line = json!({"t": 0.0, "conn": "ext-1", "dir": "out",
            "frame": {"v": 1, "type": "result", "id": "c-1", "value": big}});

        let size = line["frame"].to_string().len();
        let shown = render(&seen(line), 50);

        assert!(shown.ends_with(&format!("… ({size} bytes)")), "{shown}");
        assert!(shown.chars().count() < 120, "one short line: {shown}");
    }

    #[test]
    fn a_frame_that_is_not_json_stays_on_one_line() {
        let line = json!({"t": 0.0, "conn": "ext-1", "dir": "out", "frame": "not json\nat all"});

        let shown = render(&seen(line), 160);

        assert!(shown.contains("ext-1 -> ?"), "{shown}");
        assert!(shown.contains("not json\\nat all"), "{shown}");
        assert!(!shown.contains('\n'));
    }

    #[test]
    fn events_say_what_happened() {
        let closed =
            json!({"t": 0.0, "event": "closed", "conn": "ext-3", "detail": "silent for 61 s"});
        assert_eq!(
            render(&seen(closed), 160),
            "00:00:00.000Z ext-3 closed: silent for 61 s"
        );
        let missed = json!({"t": 0.0, "event": "missed", "count": 12});
        assert!(render(&seen(missed), 160).contains("missed 12"));
    }
}
