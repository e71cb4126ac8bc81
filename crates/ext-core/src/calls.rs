//! Call bookkeeping and the black box the popup shows: plain Rust, no browser.
//!
//! Runs in: the extension's service worker (compiled to wasm) and in native unit tests;
//! it touches no browser API.
//!
//! [`Calls`] holds the calls in flight (so a `cancel` or a lost socket reaches them),
//! guarantees each call ends exactly once ([`Calls::finish`] answers `true` only the
//! first time), and keeps the last [`HISTORY`] finished calls and the last [`HISTORY`]
//! errors and log lines for the popup.

use std::collections::{HashMap, VecDeque};

use any_protocol::{CallId, ErrorBody, Stage};
use serde::Serialize;

/// How many finished calls, errors and log lines are kept.
pub const HISTORY: usize = 20;
/// How many socket frames the transcript keeps, and how much of each.
pub const FRAMES: usize = 50;
pub const FRAME_CHARS: usize = 300;

#[derive(Debug, Clone, Serialize)]
pub struct InFlight {
    pub id: CallId,
    pub page: String,
    pub method: String,
    pub started: f64,
    pub stage: Stage,
    #[serde(skip)]
    pub cancelled: bool,
}

/// How a call ended, for the popup.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error {
        code: String,
        message: String,
    },
    /// The server cancelled it or the socket went away; nothing was answered.
    Abandoned {
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    pub id: CallId,
    pub page: String,
    pub method: String,
    pub started: f64,
    pub duration_ms: f64,
    pub stage: Stage,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// One line of the black box.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub at: f64,
    pub text: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Calls {
    #[serde(serialize_with = "in_flight_list")]
    in_flight: HashMap<CallId, InFlight>,
    history: VecDeque<Finished>,
    errors: VecDeque<Line>,
    log: VecDeque<Line>,
    /// The last [`FRAMES`] frames in (`<-`) and out (`->`), each cut to [`FRAME_CHARS`]:
    /// when the socket is silent or odd, this shows exactly what was said.
    frames: VecDeque<Line>,
}

fn in_flight_list<S: serde::Serializer>(
    m: &HashMap<CallId, InFlight>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut v: Vec<&InFlight> = m.values().collect();
    v.sort_by(|a, b| a.started.total_cmp(&b.started));
    s.collect_seq(v)
}

fn push(ring: &mut VecDeque<Line>, at: f64, text: String) {
    if ring.len() == HISTORY {
        ring.pop_front();
    }
    ring.push_back(Line { at, text });
}

impl Calls {
    /// Registers a new call. `Err` when the id is already running (a server bug; the
    /// duplicate is refused rather than run twice).
    pub fn begin(&mut self, id: &str, page: &str, method: &str, now: f64) -> Result<(), String> {
        if self.in_flight.contains_key(id) {
            return Err(format!(
                "call {id} is already running; the duplicate was ignored"
            ));
        }
        self.in_flight.insert(
            id.to_owned(),
            InFlight {
                id: id.to_owned(),
                page: page.to_owned(),
                method: method.to_owned(),
                started: now,
                stage: Stage::Dispatched,
                cancelled: false,
            },
        );
        Ok(())
    }

    /// Records a stage. `true` when it is new for this call (and should be reported).
    pub fn stage(&mut self, id: &str, stage: Stage) -> bool {
        match self.in_flight.get_mut(id) {
            Some(c) if !c.cancelled && stage > c.stage => {
                c.stage = stage;
                true
            }
            _ => false,
        }
    }

    pub fn is_cancelled(&self, id: &str) -> bool {
        self.in_flight.get(id).is_none_or(|c| c.cancelled)
    }

    /// The server gave up on `id`. `false` when no such call runs.
    pub fn cancel(&mut self, id: &str) -> bool {
        match self.in_flight.get_mut(id) {
            Some(c) => {
                c.cancelled = true;
                true
            }
            None => false,
        }
    }

    /// The socket is gone: every running call is abandoned.
    pub fn cancel_all(&mut self) -> usize {
        self.in_flight
            .values_mut()
            .map(|c| c.cancelled = true)
            .count()
    }

    /// Ends a call. `true` exactly once per call: only then may an answer be sent.
    pub fn finish(&mut self, id: &str, now: f64, outcome: Outcome) -> bool {
        let Some(c) = self.in_flight.remove(id) else {
            return false;
        };
        if let Outcome::Error { code, message } = &outcome {
            push(
                &mut self.errors,
                now,
                format!("{} {} on {}: {code}: {message}", c.id, c.method, c.page),
            );
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Finished {
            id: c.id,
            page: c.page,
            method: c.method,
            started: c.started,
            duration_ms: (now - c.started).max(0.0),
            stage: c.stage,
            outcome,
        });
        true
    }

    /// Ends a call with an error body.
    pub fn fail(&mut self, id: &str, now: f64, error: &ErrorBody) -> bool {
        self.finish(
            id,
            now,
            Outcome::Error {
                code: error.code.as_str().to_owned(),
                message: error.message.clone(),
            },
        )
    }

    /// The stage a call reached (for error bodies).
    pub fn stage_of(&self, id: &str) -> Option<Stage> {
        self.in_flight.get(id).map(|c| c.stage)
    }

    /// Records an error that belongs to no call (connection, protocol, storage).
    pub fn error(&mut self, now: f64, text: String) {
        push(&mut self.errors, now, text);
    }

    /// Records a line in the black box.
    pub fn log(&mut self, now: f64, text: String) {
        push(&mut self.log, now, text);
    }

    /// Records a frame: `incoming` from the server, else to it.
    pub fn frame(&mut self, now: f64, incoming: bool, text: &str) {
        if self.frames.len() == FRAMES {
            self.frames.pop_front();
        }
        let arrow = if incoming { "<-" } else { "->" };
        let mut cut: String = text.chars().take(FRAME_CHARS).collect();
        if cut.len() < text.len() {
            cut.push_str(&format!("… ({} bytes)", text.len()));
        }
        self.frames.push_back(Line {
            at: now,
            text: format!("{arrow} {cut}"),
        });
    }

    pub fn running(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use any_protocol::ErrorCode;

    #[test]
    fn each_call_finishes_exactly_once() {
        let mut c = Calls::default();
        c.begin("c1", "http://h/", "m", 0.0).expect("new call");
        assert!(c.begin("c1", "http://h/", "m", 0.0).is_err());
        assert!(c.stage("c1", Stage::TabOpened));
        assert!(!c.stage("c1", Stage::TabOpened), "a stage is reported once");
        assert!(c.finish("c1", 12.0, Outcome::Ok));
        assert!(!c.finish("c1", 13.0, Outcome::Ok));
        assert!(!c.fail("c1", 13.0, &ErrorBody::new(ErrorCode::Timeout, "late")));
        assert_eq!(c.history.len(), 1);
        assert_eq!(c.history[0].duration_ms, 12.0);
    }

    #[test]
    fn cancel_marks_the_call_and_stops_progress() {
        let mut c = Calls::default();
        c.begin("c1", "p", "m", 0.0).expect("new call");
        c.begin("c2", "p", "m", 0.0).expect("new call");
        assert!(!c.is_cancelled("c1"));
        assert!(c.cancel("c1"));
        assert!(!c.cancel("nope"));
        assert!(c.is_cancelled("c1"));
        assert!(!c.stage("c1", Stage::PageLoaded));
        assert_eq!(c.cancel_all(), 2);
        assert!(c.is_cancelled("c2"));
    }

    #[test]
    fn history_and_errors_are_bounded() {
        let mut c = Calls::default();
        for i in 0..30 {
            let id = format!("c{i}");
            c.begin(&id, "p", "m", 0.0).expect("new call");
            c.fail(&id, 1.0, &ErrorBody::new(ErrorCode::MethodNotFound, "x"));
        }
        assert_eq!(c.history.len(), HISTORY);
        assert_eq!(c.errors.len(), HISTORY);
        assert_eq!(c.history.back().map(|f| f.id.as_str()), Some("c29"));
        let json = serde_json::to_value(&c).expect("serializes");
        assert_eq!(json["history"][0]["outcome"], "error");
        assert_eq!(json["history"][0]["code"], "method_not_found");
    }

    #[test]
    fn frame_transcript_is_bounded_and_cut() {
        let mut c = Calls::default();
        for i in 0..60 {
            c.frame(f64::from(i), i % 2 == 0, &"x".repeat(1000));
        }
        assert_eq!(c.frames.len(), FRAMES);
        let last = &c.frames.back().expect("a frame").text;
        assert!(
            last.starts_with("-> xxx") && last.ends_with("(1000 bytes)"),
            "{last}"
        );
    }
}
