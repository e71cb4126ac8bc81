//! The persistent channel into a ready page: which tab has one, and the text it carries.
//! Plain Rust, no browser.
//!
//! Runs in: the extension's service worker (compiled to wasm) and in native unit tests;
//! it touches no browser API (the ports themselves are in `sw/channel.rs`).
//!
//! Why: a call by `chrome.scripting.executeScript` costs ~0.9 ms of browser round trip
//! per call (bench/README.md); a message on a `runtime.Port` ~0.5 ms. So once a
//! document has served a call and is asked again, the worker injects a small connector
//! into the page's ISOLATED world (`extension/isolated-world.js`), which opens a port to
//! the worker and relays each call to the MAIN world's `invoke` copy (installed by
//! `extension/page-world.js`) by synchronous DOM events on `document`, and the answers
//! back. One channel per document: a navigation ends it (the port closes), the next
//! document gets its own.
//!
//! Wire text (strings only: `CustomEvent.detail` crosses worlds only as a primitive):
//! a call is `"<n>\n<JSON [method, viaLane]>\n<params JSON>"`; an answer is
//! `"<n> ok\n<result JSON>"`, `"<n> error\n<error JSON>"`, `"<n> stashed\n"` (a result
//! over [`STASH_ABOVE`] characters, kept in the page for one `executeScript` to take:
//! ports JSON-encode their messages, so big results are cheaper that way) or
//! `"<n> missed\n"` (nothing in the MAIN world took the call: fall back to injection).

use std::collections::HashMap;

use crate::tabs::TabId;

/// Results longer than this (UTF-16 units of their JSON) are stashed in the page and
/// taken with one `executeScript` instead of crossing the port (10 MiB: 191 ms over a
/// port against 155 ms by injection, measured in the worker).
pub const STASH_ABOVE: usize = 1 << 20;

/// The prefix of the ports' names; the rest is `<key>/<tab>/<nav_seq>`.
const NAME_PREFIX: &str = "any.channel/";

/// Where a tab's channel is, for one document (`nav_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The connector was injected; its port has not arrived yet.
    Connecting { seq: u64 },
    /// The port is open: calls go over it. `port` tells this port from a later one.
    Open { seq: u64, port: u64 },
    /// This document cannot have one (the connector failed): calls keep injecting.
    Failed { seq: u64 },
}

impl State {
    fn seq(self) -> u64 {
        match self {
            State::Connecting { seq } | State::Open { seq, .. } | State::Failed { seq } => seq,
        }
    }
}

/// The channels of all tabs.
#[derive(Debug, Default)]
pub struct Channels {
    tabs: HashMap<TabId, State>,
    next_port: u64,
}

impl Channels {
    /// The open port of the tab's document `seq`, if any.
    pub fn open(&self, tab: TabId, seq: u64) -> Option<u64> {
        match self.tabs.get(&tab) {
            Some(&State::Open { seq: s, port }) if s == seq => Some(port),
            _ => None,
        }
    }

    /// Was a channel begun in the tab's document `seq` (whatever became of it)? Then
    /// `invoke`'s copy is there: a channel is only begun once `invokeInstalled` found it.
    pub fn begun(&self, tab: TabId, seq: u64) -> bool {
        self.tabs.get(&tab).is_some_and(|s| s.seq() == seq)
    }

    /// Should the worker connect to the tab's document `seq` now? Yes once per
    /// document: marks it connecting.
    pub fn begin(&mut self, tab: TabId, seq: u64) -> bool {
        if self.begun(tab, seq) {
            return false;
        }
        self.tabs.insert(tab, State::Connecting { seq });
        true
    }

    /// The connector could not connect (or the MAIN world did not answer it).
    pub fn failed(&mut self, tab: TabId, seq: u64) {
        if self.tabs.get(&tab).is_some_and(|s| s.seq() <= seq) {
            self.tabs.insert(tab, State::Failed { seq });
        }
    }

    /// A port arrived for the tab's document `seq`: its number, or `None` when the
    /// worker was not waiting for it (another document by now; the port is closed).
    pub fn connected(&mut self, tab: TabId, seq: u64) -> Option<u64> {
        if self.tabs.get(&tab) != Some(&State::Connecting { seq }) {
            return None;
        }
        self.next_port += 1;
        let port = self.next_port;
        self.tabs.insert(tab, State::Open { seq, port });
        Some(port)
    }

    /// Port `port` closed (document unloaded, tab gone, or the worker closed it).
    pub fn closed(&mut self, tab: TabId, port: u64) {
        if let Some(State::Open { seq, port: p }) = self.tabs.get(&tab).copied()
            && p == port
        {
            // The same document does not get a second one: it is most likely going away.
            self.tabs.insert(tab, State::Failed { seq });
        }
    }

    /// The tab was removed.
    pub fn forget(&mut self, tab: TabId) {
        self.tabs.remove(&tab);
    }

    pub fn state(&self, tab: TabId) -> Option<State> {
        self.tabs.get(&tab).copied()
    }
}

/// The port name the connector uses for the tab's document `seq`; `key` is the
/// worker's per-start key, so ports of an earlier worker's connectors never match.
pub fn port_name(key: &str, tab: TabId, seq: u64) -> String {
    format!("{NAME_PREFIX}{key}/{tab}/{seq}")
}

/// The tab and document of a port name made by [`port_name`] with this `key`.
pub fn parse_port_name(name: &str, key: &str) -> Option<(TabId, u64)> {
    let rest = name
        .strip_prefix(NAME_PREFIX)?
        .strip_prefix(key)?
        .strip_prefix('/')?;
    let (tab, seq) = rest.split_once('/')?;
    Some((tab.parse().ok()?, seq.parse().ok()?))
}

/// The text of call `n` on a channel.
pub fn call_text(n: u64, method: &str, via_lane: bool, params_json: &str) -> String {
    let head = serde_json::to_string(&(method, via_lane))
        .unwrap_or_else(|_| unreachable!("a string and a bool are JSON"));
    format!("{n}\n{head}\n{params_json}")
}

/// One answer on a channel.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The method's result, as JSON text.
    Value(&'a str),
    /// The page's error object, as JSON text (`{code, name, message, stack}`).
    Failed(&'a str),
    /// The result is kept in the page for one `executeScript` to take.
    Stashed,
    /// Nothing in the MAIN world took the call.
    Missed,
}

/// Reads an answer: its call number and what it says; `None` for text this worker
/// did not ask for.
pub fn parse_answer(text: &str) -> Option<(u64, Answer<'_>)> {
    let (head, payload) = text.split_once('\n')?;
    let (n, kind) = head.split_once(' ')?;
    let answer = match kind {
        "ok" => Answer::Value(payload),
        "error" => Answer::Failed(payload),
        "stashed" => Answer::Stashed,
        "missed" => Answer::Missed,
        _ => return None,
    };
    Some((n.parse().ok()?, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_connect_per_document() {
        let mut c = Channels::default();
        assert!(!c.begun(3, 1));
        assert!(c.begin(3, 1));
        assert!(c.begun(3, 1));
        assert!(!c.begun(3, 2));
        assert!(!c.begin(3, 1), "already connecting to this document");
        assert_eq!(c.open(3, 1), None);
        let port = c.connected(3, 1).expect("the worker waited for it");
        assert_eq!(c.open(3, 1), Some(port));
        assert_eq!(c.open(3, 2), None, "another document");
        assert!(!c.begin(3, 1), "open already");
        assert!(c.begin(3, 2), "a new document gets its own");
        assert_eq!(c.open(3, 1), None);
    }

    #[test]
    fn a_port_nobody_waits_for_is_refused() {
        let mut c = Channels::default();
        assert_eq!(c.connected(4, 1), None);
        assert!(c.begin(4, 2));
        assert_eq!(c.connected(4, 1), None, "an older document's connector");
        assert!(c.connected(4, 2).is_some());
        assert_eq!(
            c.connected(4, 2),
            None,
            "a second port for the same document"
        );
    }

    #[test]
    fn a_closed_or_failed_document_keeps_injecting() {
        let mut c = Channels::default();
        assert!(c.begin(5, 1));
        c.failed(5, 1);
        assert_eq!(c.state(5), Some(State::Failed { seq: 1 }));
        assert!(!c.begin(5, 1), "no retry in the same document");

        assert!(c.begin(5, 2));
        let port = c.connected(5, 2).expect("waited for");
        c.closed(5, port + 1);
        assert_eq!(
            c.open(5, 2),
            Some(port),
            "another port's close changes nothing"
        );
        c.closed(5, port);
        assert_eq!(c.open(5, 2), None);
        assert!(!c.begin(5, 2));
        c.failed(5, 1);
        assert_eq!(
            c.state(5),
            Some(State::Failed { seq: 2 }),
            "an older failure"
        );

        c.forget(5);
        assert_eq!(c.state(5), None);
    }

    #[test]
    fn port_names_round_trip_for_this_key_only() {
        let name = port_name("k1", 17, 4);
        assert_eq!(parse_port_name(&name, "k1"), Some((17, 4)));
        assert_eq!(parse_port_name(&name, "k2"), None);
        assert_eq!(parse_port_name("any.channel/k1/x/4", "k1"), None);
        assert_eq!(parse_port_name("other", "k1"), None);
    }

    #[test]
    fn call_text_keeps_params_raw_and_method_on_one_line() {
        let text = call_text(7, "we\nird\"", true, "{\n \"a\": 1}");
        let mut parts = text.splitn(3, '\n');
        assert_eq!(parts.next(), Some("7"));
        let head: (String, bool) = serde_json::from_str(parts.next().expect("head")).expect("JSON");
        assert_eq!(head, ("we\nird\"".to_owned(), true));
        assert_eq!(parts.next(), Some("{\n \"a\": 1}"));
    }

    #[test]
    fn answers_are_read_or_refused() {
        assert_eq!(
            parse_answer("3 ok\n{\"a\":\n1}"),
            Some((3, Answer::Value("{\"a\":\n1}")))
        );
        assert_eq!(parse_answer("4 error\n{}"), Some((4, Answer::Failed("{}"))));
        assert_eq!(parse_answer("5 stashed\n"), Some((5, Answer::Stashed)));
        assert_eq!(parse_answer("6 missed\n"), Some((6, Answer::Missed)));
        assert_eq!(parse_answer("6 other\n"), None);
        assert_eq!(parse_answer("x ok\n1"), None);
        assert_eq!(parse_answer("7 ok"), None);
        assert_eq!(parse_answer(""), None);
    }
}
