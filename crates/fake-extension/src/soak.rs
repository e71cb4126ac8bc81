//! The soak: many calls through a real `any serve` process to a chaotic fake extension
//! (see [`crate::chaos`]), then proof that every call ended in exactly one terminal
//! outcome, the one the fake's transcript says it must have, and that the server's
//! memory stayed flat.
//!
//! Runs in the driver's process (the `soak` binary, or the server's CI test): it starts
//! `any serve` on a free loopback port as a child process (so its RSS can be read from
//! `/proc`), keeps the chaotic fake connected in-process, and sends the calls over HTTP
//! with a fixed number of callers.
//!
//! What is checked ([`verify`]), each as a counted violation, so the check can fail:
//! - every request got exactly one HTTP answer, carrying a call id no other answer had;
//! - a result is exactly the params of that request (the fake echoes; a crossed wire
//!   would show another request's `n`), and the fake's first terminal frame for that id
//!   was that result;
//! - an error from the fake reached the caller only if it was the first terminal frame;
//! - a call the fake answered in good time was delivered; one it dropped, answered late
//!   or never got ended in `timeout`; one whose connection closed before the answer
//!   ended in `extension_disconnected`;
//! - every call id the fake received was answered to a caller;
//! - the answers the server logged as dropped (late, duplicate) are exactly the fake's
//!   terminal frames that were not delivered;
//! - no call is left in the server's table (`/v1/status`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::chaos::{self, Chaos, ChaosConfig, Decision};
use crate::{Direction, Options};

/// How a soak runs.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// The `any` binary to start as the server.
    pub any: PathBuf,
    pub calls: usize,
    /// Callers sending at once.
    pub concurrency: usize,
    /// Each call's `timeout_ms`.
    pub timeout_ms: u64,
    pub chaos: ChaosConfig,
    /// The server's log (its stderr) goes here.
    pub server_log: PathBuf,
}

/// What a soak measured.
#[derive(Debug, Default)]
pub struct Tally {
    pub calls: usize,
    /// Terminal outcomes the callers got: `ok` or the error code.
    pub outcomes: BTreeMap<String, usize>,
    /// What chaos did, by decision.
    pub decisions: BTreeMap<&'static str, usize>,
    /// Terminal frames the fake sent that no caller got (late, duplicate).
    pub undelivered_answers: usize,
    /// Answers the server logged as dropped.
    pub server_dropped: usize,
    pub reconnects: usize,
    pub wall: Duration,
    /// Server RSS in kB: after connecting, after half the calls, at the end.
    pub rss_kb: [u64; 3],
    /// Every broken rule, described; empty when the run is good.
    pub violations: Vec<String>,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.wall.as_secs_f64();
        writeln!(
            f,
            "soak: {} calls in {secs:.1} s ({:.0} calls/s)",
            self.calls,
            self.calls as f64 / secs.max(1e-9)
        )?;
        let list = |m: &mut dyn Iterator<Item = (String, usize)>| {
            m.map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "  outcomes: {}",
            list(&mut self.outcomes.iter().map(|(k, v)| (k.clone(), *v)))
        )?;
        writeln!(
            f,
            "  chaos: {}",
            list(&mut self.decisions.iter().map(|(k, v)| ((*k).to_owned(), *v)))
        )?;
        writeln!(
            f,
            "  late/duplicate answers: {} sent and not delivered, {} logged as dropped by the server",
            self.undelivered_answers, self.server_dropped
        )?;
        writeln!(f, "  reconnects: {}", self.reconnects)?;
        let [a, b, c] = self.rss_kb;
        writeln!(
            f,
            "  server RSS: {a} kB after connecting, {b} kB after half the calls, {c} kB at the end"
        )?;
        if self.violations.is_empty() {
            write!(f, "  every call ended exactly once, as the transcript says")
        } else {
            writeln!(f, "  {} VIOLATIONS:", self.violations.len())?;
            for v in self.violations.iter().take(20) {
                writeln!(f, "    {v}")?;
            }
            Ok(())
        }
    }
}

/// What one request got.
struct Answer {
    /// The request's number, also its params' `n`.
    n: usize,
    status: u16,
    body: Value,
}

/// Runs the soak; `Err` only when it could not run at all (violations are in the tally).
pub async fn run(options: &SoakOptions) -> anyhow::Result<Tally> {
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(&options.any, port, &options.server_log).await?;
    let pid = server.id().context("the server has no pid")?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(options.concurrency)
        .build()?;
    wait_healthy(&http, &base, &mut server).await?;
    let token = token(&options.any).await;

    let chaos = Chaos::new(options.chaos);
    let stop = Arc::new(AtomicBool::new(false));
    let (connected_tx, mut connected) = mpsc::unbounded_channel();
    let fake = tokio::spawn(chaos::run(
        Options::port(port),
        chaos.clone(),
        stop.clone(),
        connected_tx,
        Duration::from_millis(10),
        Duration::from_secs(10),
    ));
    tokio::time::timeout(Duration::from_secs(10), connected.recv())
        .await
        .context("the fake extension did not connect within 10 s")?;

    let mut tally = Tally {
        calls: options.calls,
        ..Tally::default()
    };
    tally.rss_kb[0] = rss_kb(pid)?;
    let started = Instant::now();
    let half = options.calls / 2;
    let mut answers = drive(&http, &base, token.as_deref(), options, 0..half).await;
    tally.rss_kb[1] = rss_kb(pid)?;
    answers.extend(drive(&http, &base, token.as_deref(), options, half..options.calls).await);
    tally.wall = started.elapsed();

    // Late answers come up to `late_by_ms` after a deadline: let them reach the server.
    tokio::time::sleep(Duration::from_millis(options.chaos.late_by_ms + 300)).await;
    tally.rss_kb[2] = rss_kb(pid)?;
    let status = get_status(&http, &base, token.as_deref()).await;
    stop.store(true, Ordering::SeqCst);
    let connections = fake.await?.context("the fake extension failed")?;
    tally.reconnects = connections.len().saturating_sub(1);
    // Once the server has seen the last close, it has read (and logged) every frame.
    let deadline = Instant::now() + Duration::from_secs(5);
    while extensions(&http, &base).await != Some(0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = server.start_kill();
    let _ = server.wait().await;

    let log = std::fs::read_to_string(&options.server_log).unwrap_or_default();
    tally.server_dropped = log
        .lines()
        .filter(|l| {
            [
                "late result",
                "late error",
                "duplicate result",
                "duplicate error",
            ]
            .iter()
            .any(|p| l.contains(p))
                || l.contains("for an unknown call id")
        })
        .count();
    match status {
        Ok(status) => {
            let left = status["calls"].as_array().map_or(0, Vec::len);
            if left != 0 {
                tally
                    .violations
                    .push(format!("{left} calls left in the server's table: {status}"));
            }
        }
        Err(e) => tally.violations.push(format!("GET /v1/status failed: {e}")),
    }
    let frames: Vec<Vec<crate::Entry>> =
        connections.iter().map(|c| c.transcript.entries()).collect();
    verify(&answers, &frames, &chaos.decisions(), &mut tally);
    Ok(tally)
}

/// Sends the calls numbered `range` with `options.concurrency` callers.
async fn drive(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    options: &SoakOptions,
    range: std::ops::Range<usize>,
) -> Vec<Answer> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let mut callers = Vec::new();
    for _ in 0..options.concurrency.max(1) {
        let (http, next, end) = (http.clone(), next.clone(), range.end);
        let url = format!("{base}/v1/call");
        let token = token.map(str::to_owned);
        let timeout_ms = options.timeout_ms;
        callers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= end {
                    return got;
                }
                let body = json!({
                    "page": "https://soak.test/",
                    "method": "echo",
                    "params": {"n": n, "pad": "soak"},
                    "timeout_ms": timeout_ms,
                });
                let mut request = http
                    .post(&url)
                    .json(&body)
                    .timeout(Duration::from_millis(timeout_ms + 30_000));
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                let answer = match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = response
                            .json::<Value>()
                            .await
                            .unwrap_or_else(|e| json!({"unreadable": e.to_string()}));
                        Answer { n, status, body }
                    }
                    Err(e) => Answer {
                        n,
                        status: 0,
                        body: json!({"transport": e.to_string()}),
                    },
                };
                got.push(answer);
            }
        }));
    }
    let mut answers = Vec::new();
    for caller in callers {
        answers.extend(caller.await.unwrap_or_default());
    }
    answers
}

/// What the fake saw of one call.
#[derive(Default)]
struct Seen {
    connection: usize,
    /// Unix seconds the call frame arrived, and its `timeout_ms`.
    received: f64,
    timeout_ms: f64,
    /// Terminal frames sent for it: (unix seconds, frame).
    terminals: Vec<(f64, Value)>,
    /// Whether its connection closed after it arrived (the last frame of the connection).
    closed_at: Option<f64>,
}

/// Checks the callers' answers against the fake's transcripts; fills the tally.
fn verify(
    answers: &[Answer],
    connections: &[Vec<crate::Entry>],
    decisions: &BTreeMap<String, (Decision, usize)>,
    tally: &mut Tally,
) {
    let v = &mut tally.violations;
    for (decision, _) in decisions.values() {
        *tally.decisions.entry(decision.name()).or_default() += 1;
    }

    // The fake's view, per call id.
    let mut seen: HashMap<String, Seen> = HashMap::new();
    for (k, entries) in connections.iter().enumerate() {
        let end = entries.last().map(|e| e.t);
        for e in entries {
            let Some(id) = e.id() else { continue };
            match (e.dir, e.ty()) {
                (Direction::In, Some("call")) => {
                    let s = seen.entry(id.to_owned()).or_default();
                    s.connection = k;
                    s.received = e.t;
                    s.timeout_ms = e.frame["timeout_ms"].as_f64().unwrap_or(0.0);
                    // The last connection is closed by the driver, after every call ended.
                    s.closed_at = if k + 1 < connections.len() { end } else { None };
                }
                (Direction::Out, Some("result" | "error")) => {
                    seen.entry(id.to_owned())
                        .or_default()
                        .terminals
                        .push((e.t, e.frame.clone()));
                }
                _ => {}
            }
        }
    }

    // Exactly one answer per request, each with its own call id.
    let mut per_id: HashMap<String, usize> = HashMap::new();
    let mut delivered_from_fake = 0usize;
    let sent: usize = seen.values().map(|s| s.terminals.len()).sum();
    if answers.len() != tally.calls {
        v.push(format!(
            "{} requests, {} answers",
            tally.calls,
            answers.len()
        ));
    }
    for a in answers {
        let outcome = if a.status == 200 {
            "ok".to_owned()
        } else {
            a.body["error"]["code"]
                .as_str()
                .map_or_else(|| format!("HTTP {} {}", a.status, a.body), str::to_owned)
        };
        *tally.outcomes.entry(outcome.clone()).or_default() += 1;
        let Some(id) = a.body["id"].as_str() else {
            v.push(format!(
                "request {} got no call id: {} {}",
                a.n, a.status, a.body
            ));
            continue;
        };
        *per_id.entry(id.to_owned()).or_default() += 1;
        let fake = seen.get(id);
        let first = fake.and_then(|s| s.terminals.first());
        match outcome.as_str() {
            "ok" => {
                if a.body["result"] != json!({"n": a.n, "pad": "soak"}) {
                    v.push(format!(
                        "request {} ({id}) got another call's result: {}",
                        a.n, a.body
                    ));
                }
                match first {
                    Some((_, frame))
                        if frame["type"] == "result" && frame["value"] == a.body["result"] =>
                    {
                        delivered_from_fake += 1;
                    }
                    _ => v.push(format!(
                        "{id}: delivered a result that was not the fake's first answer"
                    )),
                }
            }
            "timeout" => {
                if let (Some(s), Some((t, _))) = (fake, first) {
                    // Answered well inside the deadline, yet timed out: an answer was lost.
                    if (t - s.received) * 1000.0 < s.timeout_ms - 100.0 {
                        v.push(format!(
                            "{id}: answered after {:.0} ms of {} ms but the caller got timeout",
                            (t - s.received) * 1000.0,
                            s.timeout_ms
                        ));
                    }
                }
            }
            "extension_disconnected" => match fake {
                Some(s) if s.closed_at.is_some() => {
                    if let (Some((t, _)), Some(closed)) = (first, s.closed_at)
                        && *t < closed
                    {
                        v.push(format!("{id}: answered before its connection closed, yet extension_disconnected"));
                    }
                }
                Some(_) => v.push(format!(
                    "{id}: extension_disconnected on a connection that stayed open"
                )),
                None => {
                    // Sent to a socket that was closing: never reached the fake. Allowed.
                }
            },
            "page_error" => {
                // Only the chaos duplicate sends page_error, always second.
                v.push(format!(
                    "{id}: the caller got the duplicate's second answer: {}",
                    a.body
                ));
            }
            other => v.push(format!("{id}: unexpected outcome {other}: {}", a.body)),
        }
    }
    for (id, count) in &per_id {
        if *count != 1 {
            v.push(format!("{id} was answered to {count} callers"));
        }
    }
    for id in seen.keys() {
        if !per_id.contains_key(id) {
            v.push(format!(
                "{id} reached the fake but no caller got an answer for it"
            ));
        }
    }
    tally.undelivered_answers = sent - delivered_from_fake;
    if tally.undelivered_answers != tally.server_dropped {
        v.push(format!(
            "the fake sent {} answers that were not delivered, the server logged {} as dropped",
            tally.undelivered_answers, tally.server_dropped
        ));
    }
}

async fn start_server(any: &Path, port: u16, log: &Path) -> anyhow::Result<Child> {
    let log_file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    Command::new(any)
        .args(["serve", "--port", &port.to_string(), "--connect-wait", "10"])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} serve", any.display()))
}

async fn wait_healthy(
    http: &reqwest::Client,
    base: &str,
    server: &mut Child,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(status) = server.try_wait()? {
            bail!("any serve exited with {status}");
        }
        if let Ok(r) = http.get(format!("{base}/v1/health")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("any serve did not answer /v1/health within 15 s")
}

/// How many extensions `/v1/health` says are connected.
async fn extensions(http: &reqwest::Client, base: &str) -> Option<u64> {
    let health: Value = http
        .get(format!("{base}/v1/health"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    health["extensions"].as_u64()
}

/// The user's client token (`any token`), if this `any` has one.
async fn token(any: &Path) -> Option<String> {
    let out = Command::new(any).arg("token").output().await.ok()?;
    let token = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !token.is_empty()).then_some(token)
}

async fn get_status(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
) -> anyhow::Result<Value> {
    let mut request = http.get(format!("{base}/v1/status"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Ok(request.send().await?.error_for_status()?.json().await?)
}

/// The resident set size of process `pid`, in kB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Entry;

    fn entry(t: f64, dir: Direction, frame: Value) -> Entry {
        Entry { t, dir, frame }
    }

    fn call(id: &str, t: f64) -> Entry {
        entry(
            t,
            Direction::In,
            json!({"type": "call", "id": id, "timeout_ms": 1000}),
        )
    }

    fn result(id: &str, t: f64, n: usize) -> Entry {
        entry(
            t,
            Direction::Out,
            json!({"type": "result", "id": id, "value": {"n": n, "pad": "soak"}}),
        )
    }

    fn ok(n: usize, id: &str) -> Answer {
        Answer {
            n,
            status: 200,
            body: json!({"id": id, "result": {"n": n, "pad": "soak"}}),
        }
    }

    fn check(answers: &[Answer], frames: Vec<Entry>, server_dropped: usize) -> Vec<String> {
        let mut tally = Tally {
            calls: answers.len(),
            server_dropped,
            ..Tally::default()
        };
        verify(answers, &[frames], &BTreeMap::new(), &mut tally);
        tally.violations
    }

    #[test]
    fn a_good_run_passes() {
        let frames = vec![call("c-1", 0.0), result("c-1", 0.01, 0), call("c-2", 0.0)];
        let timeout = Answer {
            n: 1,
            status: 504,
            body: json!({"id": "c-2", "error": {"code": "timeout"}}),
        };
        assert_eq!(
            check(&[ok(0, "c-1"), timeout], frames, 0),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_checks_can_fail() {
        // One call delivered to two callers.
        let frames = vec![call("c-1", 0.0), result("c-1", 0.01, 0)];
        let v = check(&[ok(0, "c-1"), ok(0, "c-1")], frames.clone(), 0);
        assert!(
            v.iter().any(|v| v.contains("answered to 2 callers")),
            "{v:?}"
        );
        // Another request's result (request 1 got request 0's).
        let crossed = Answer {
            n: 1,
            status: 200,
            body: json!({"id": "c-1", "result": {"n": 0, "pad": "soak"}}),
        };
        let v = check(&[crossed], frames.clone(), 0);
        assert!(
            v.iter().any(|v| v.contains("another call's result")),
            "{v:?}"
        );
        // An answer sent in time, but the caller got timeout.
        let lost = Answer {
            n: 0,
            status: 504,
            body: json!({"id": "c-1", "error": {"code": "timeout"}}),
        };
        let v = check(&[lost], frames.clone(), 0);
        assert!(v.iter().any(|v| v.contains("caller got timeout")), "{v:?}");
        // A call the fake got that no caller heard of.
        let v = check(&[], frames.clone(), 0);
        assert!(
            v.iter().any(|v| v.contains("no caller got an answer")),
            "{v:?}"
        );
        // A duplicate the server did not count as dropped.
        let mut twice = frames.clone();
        twice.push(result("c-1", 0.02, 0));
        let v = check(&[ok(0, "c-1")], twice, 0);
        assert!(v.iter().any(|v| v.contains("logged 0 as dropped")), "{v:?}");
        // The second answer delivered instead of the first.
        let second = Answer {
            n: 0,
            status: 422,
            body: json!({"id": "c-1", "error": {"code": "page_error"}}),
        };
        let v = check(&[second], frames, 1);
        assert!(
            v.iter().any(|v| v.contains("duplicate's second answer")),
            "{v:?}"
        );
    }
}
