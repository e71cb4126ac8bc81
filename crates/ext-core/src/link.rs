//! The connection to the server as a state machine: plain Rust, no browser.
//!
//! Runs in: the extension's service worker (compiled to wasm) and in native unit tests;
//! it touches no browser API.
//!
//! The service worker feeds it a tick every second and the socket's events; it answers
//! with [`Action`]s for the browser binding to carry out. All timing decisions live
//! here: the fixed 1 s retry, the connect watchdog, the hello deadline, the silence
//! limit while connected, and the stop after a `reject`.
//!
//! While disconnected, each retry first **probes** the server with a plain HTTP `fetch`
//! and opens the WebSocket only when something answers. Chromium throttles WebSocket
//! connects per process after failures (`WebSocketPerProcessThrottler`: a delay of
//! 1–5 s × 2^min(pending + failed/(succeeded+1), 16) / 65536), so after a minute of
//! refused WebSocket attempts every new one would sit in CONNECTING for seconds — past the
//! watchdog, forever. `fetch` is not throttled, and failed probes cost the WebSocket
//! nothing: the first WebSocket after the server starts connects at once.

use serde::Serialize;

/// How often the service worker ticks (and so retries a connection), in ms. Fixed, no
/// backoff: the user asked to be connected within about a second of the server starting.
pub const TICK_MS: u32 = 1_000;
/// A socket still CONNECTING after this long is closed and a new one opened.
pub const CONNECT_TIMEOUT_MS: f64 = 1_000.0;
/// An open socket whose `hello` got no `welcome`/`reject` within this long is closed.
pub const HELLO_TIMEOUT_MS: f64 = 5_000.0;
/// A connected socket that heard nothing for this many heartbeats is presumed dead.
pub const SILENT_HEARTBEATS: f64 = 3.0;

/// Where the link is. `sock` numbers each socket so that events of an old socket
/// are recognised and ignored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkState {
    /// No socket; the next tick probes the server.
    Disconnected,
    /// An HTTP probe `probe` of the server is under way since `since`.
    Probing { probe: u64, since: f64 },
    /// A socket is CONNECTING since `since`.
    Connecting { sock: u64, since: f64 },
    /// The socket is open and `hello` was sent; waiting for `welcome` or `reject`.
    Handshaking { sock: u64, since: f64 },
    /// Welcomed; calls may arrive.
    Connected { sock: u64, since: f64 },
    /// The server at `server` refused us; no retry until the configuration changes or
    /// the browser restarts.
    Rejected { server: String, reason: String },
}

/// What the browser binding must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `fetch` `url` (the server address with an `http` scheme); report with
    /// [`Link::probed`]: `Ok` for any HTTP answer, `Err` for a network error.
    Probe { probe: u64, url: String },
    /// Open a WebSocket to `url`, numbered `sock`.
    Open { sock: u64, url: String },
    /// Close socket `sock` (if it is still there) and forget it.
    Close { sock: u64, reason: String },
    /// Send the `hello` frame on socket `sock`.
    SendHello { sock: u64 },
    /// Call a cheap extension API so that Chrome does not stop the worker (and its
    /// 1 s retry) while there is no socket traffic.
    KeepAlive,
    /// Remember the rejection across worker restarts (until the browser restarts).
    PersistReject { server: String, reason: String },
    /// Forget a remembered rejection.
    ClearReject,
    /// Every call in flight lost its socket: stop working on them.
    AbandonCalls,
}

/// The link's state plus what the popup shows about it.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub state: LinkState,
    /// Why the last attempt or connection ended, e.g. "connection refused or closed (code 1006)".
    pub last_error: Option<String>,
    pub last_error_at: Option<f64>,
    /// When the last frame arrived on the current socket.
    #[serde(skip)]
    last_heard: f64,
    #[serde(skip)]
    heartbeat_ms: f64,
    #[serde(skip)]
    next_sock: u64,
    /// How many sockets were opened since the worker started.
    pub attempts: u64,
}

impl Default for Link {
    fn default() -> Self {
        Self::new()
    }
}

impl Link {
    pub fn new() -> Self {
        Link {
            state: LinkState::Disconnected,
            last_error: None,
            last_error_at: None,
            last_heard: 0.0,
            heartbeat_ms: any_protocol::HEARTBEAT_MS as f64,
            next_sock: 1,
            attempts: 0,
        }
    }

    /// Starts in the rejected state remembered from before a worker restart.
    pub fn restore_reject(&mut self, server: String, reason: String) {
        self.state = LinkState::Rejected { server, reason };
    }

    /// The socket currently in use, if any.
    pub fn current_sock(&self) -> Option<u64> {
        match self.state {
            LinkState::Connecting { sock, .. }
            | LinkState::Handshaking { sock, .. }
            | LinkState::Connected { sock, .. } => Some(sock),
            LinkState::Disconnected | LinkState::Probing { .. } | LinkState::Rejected { .. } => {
                None
            }
        }
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, LinkState::Connected { .. })
    }

    fn fail(&mut self, now: f64, why: String) {
        self.last_error = Some(why);
        self.last_error_at = Some(now);
    }

    fn open(&mut self, now: f64, server: &str) -> Action {
        let sock = self.next_sock;
        self.next_sock += 1;
        self.attempts += 1;
        self.state = LinkState::Connecting { sock, since: now };
        Action::Open {
            sock,
            url: server.to_owned(),
        }
    }

    fn probe(&mut self, now: f64, server: &str) -> Action {
        let probe = self.next_sock;
        self.next_sock += 1;
        self.state = LinkState::Probing { probe, since: now };
        Action::Probe {
            probe,
            url: http_url(server),
        }
    }

    /// Once a second (and at start-up): retry, watchdog, deadlines, keep-alive.
    pub fn tick(&mut self, now: f64, server: &str) -> Vec<Action> {
        match self.state.clone() {
            LinkState::Disconnected => vec![Action::KeepAlive, self.probe(now, server)],
            // A probe that did not settle within a tick is superseded.
            LinkState::Probing { since, .. } if now - since >= CONNECT_TIMEOUT_MS => {
                vec![Action::KeepAlive, self.probe(now, server)]
            }
            LinkState::Probing { .. } => vec![Action::KeepAlive],
            LinkState::Connecting { sock, since } if now - since >= CONNECT_TIMEOUT_MS => {
                let why = format!(
                    "{server} did not accept the connection within {CONNECT_TIMEOUT_MS} ms"
                );
                self.fail(now, why.clone());
                vec![
                    Action::KeepAlive,
                    Action::Close { sock, reason: why },
                    self.open(now, server),
                ]
            }
            LinkState::Connecting { .. } => vec![Action::KeepAlive],
            LinkState::Handshaking { sock, since } if now - since >= HELLO_TIMEOUT_MS => {
                let why = format!("{server} did not answer hello within {HELLO_TIMEOUT_MS} ms");
                self.fail(now, why.clone());
                self.state = LinkState::Disconnected;
                vec![Action::KeepAlive, Action::Close { sock, reason: why }]
            }
            LinkState::Handshaking { .. } => vec![Action::KeepAlive],
            LinkState::Connected { sock, .. }
                if now - self.last_heard >= SILENT_HEARTBEATS * self.heartbeat_ms =>
            {
                let why = format!(
                    "{server} sent nothing for {} ms (no heartbeat)",
                    now - self.last_heard
                );
                self.fail(now, why.clone());
                self.state = LinkState::Disconnected;
                vec![Action::Close { sock, reason: why }, Action::AbandonCalls]
            }
            LinkState::Connected { .. } | LinkState::Rejected { .. } => vec![],
        }
    }

    /// The probe's outcome: something answers HTTP there (open the WebSocket now), or not.
    pub fn probed(
        &mut self,
        probe: u64,
        now: f64,
        server: &str,
        outcome: Result<(), String>,
    ) -> Vec<Action> {
        match self.state {
            LinkState::Probing { probe: p, .. } if p == probe => match outcome {
                Ok(()) => vec![self.open(now, server)],
                Err(e) => {
                    self.fail(now, format!("nothing answers at {server} ({e}): is `any serve` running on that port?"));
                    self.state = LinkState::Disconnected;
                    vec![]
                }
            },
            _ => vec![],
        }
    }

    /// Socket `sock` opened: say hello.
    pub fn opened(&mut self, sock: u64, now: f64) -> Vec<Action> {
        match self.state {
            LinkState::Connecting { sock: g, .. } if g == sock => {
                self.state = LinkState::Handshaking { sock, since: now };
                self.last_heard = now;
                vec![Action::SendHello { sock }]
            }
            // A socket we gave up on opened after all.
            _ => vec![Action::Close {
                sock,
                reason: "superseded".to_owned(),
            }],
        }
    }

    /// Any frame arrived on socket `sock`.
    pub fn heard(&mut self, sock: u64, now: f64) {
        if self.current_sock() == Some(sock) {
            self.last_heard = now;
        }
    }

    /// The server accepted our hello.
    pub fn welcomed(&mut self, sock: u64, now: f64, heartbeat_ms: u64) -> Vec<Action> {
        match self.state {
            LinkState::Handshaking { sock: g, .. } if g == sock => {
                self.state = LinkState::Connected { sock, since: now };
                if heartbeat_ms > 0 {
                    self.heartbeat_ms = heartbeat_ms as f64;
                }
                self.last_error = None;
                vec![Action::ClearReject]
            }
            _ => vec![],
        }
    }

    /// The server refused us: stop retrying this address.
    pub fn rejected(&mut self, sock: u64, now: f64, server: &str, reason: &str) -> Vec<Action> {
        if self.current_sock() != Some(sock) {
            return vec![];
        }
        self.fail(now, format!("rejected by {server}: {reason}"));
        self.state = LinkState::Rejected {
            server: server.to_owned(),
            reason: reason.to_owned(),
        };
        vec![
            Action::Close {
                sock,
                reason: "rejected".to_owned(),
            },
            Action::PersistReject {
                server: server.to_owned(),
                reason: reason.to_owned(),
            },
            Action::AbandonCalls,
        ]
    }

    /// Socket `sock` closed (or failed to connect).
    pub fn closed(
        &mut self,
        sock: u64,
        now: f64,
        server: &str,
        code: u16,
        reason: &str,
    ) -> Vec<Action> {
        let was_connected = matches!(self.state, LinkState::Connected { sock: g, .. } if g == sock);
        match self.state {
            LinkState::Connecting { sock: g, .. } if g == sock => {
                self.fail(now, format!("the WebSocket to {server} failed (code {code}) although the address answers HTTP: is it the `any serve` extension socket (…/v1/extension)?"));
            }
            LinkState::Handshaking { sock: g, .. } | LinkState::Connected { sock: g, .. }
                if g == sock =>
            {
                let detail = if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                };
                self.fail(
                    now,
                    format!("connection to {server} closed (code {code}){detail}"),
                );
            }
            _ => return vec![],
        }
        self.state = LinkState::Disconnected;
        if was_connected {
            vec![Action::AbandonCalls]
        } else {
            vec![]
        }
    }

    /// The server address changed (or the user asked to retry): leave the rejected state,
    /// and drop a socket to the old address.
    pub fn reset(&mut self) -> Vec<Action> {
        let mut actions = vec![Action::ClearReject];
        if let Some(sock) = self.current_sock() {
            actions.push(Action::Close {
                sock,
                reason: "configuration changed".to_owned(),
            });
            actions.push(Action::AbandonCalls);
        }
        self.state = LinkState::Disconnected;
        actions
    }
}

/// The server address with an HTTP scheme, for the probe: `ws://h:p/x` → `http://h:p/x`.
pub fn http_url(server: &str) -> String {
    if let Some(rest) = server.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = server.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        server.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "ws://127.0.0.1:1/v1/extension";

    fn probe_of(actions: &[Action]) -> u64 {
        actions
            .iter()
            .find_map(|a| match a {
                Action::Probe { probe, .. } => Some(*probe),
                _ => None,
            })
            .expect("a Probe action")
    }

    fn sock_of(actions: &[Action]) -> u64 {
        actions
            .iter()
            .find_map(|a| match a {
                Action::Open { sock, .. } => Some(*sock),
                _ => None,
            })
            .expect("an Open action")
    }

    /// A tick whose probe finds the server up: the socket it opens.
    fn opened_sock(l: &mut Link, now: f64) -> u64 {
        let p = probe_of(&l.tick(now, S));
        sock_of(&l.probed(p, now, S, Ok(())))
    }

    #[test]
    fn probes_every_tick_while_nothing_answers() {
        let mut l = Link::new();
        let a = l.tick(0.0, S);
        assert!(
            a.contains(&Action::KeepAlive),
            "keeps the worker alive while disconnected"
        );
        assert!(a.contains(&Action::Probe {
            probe: probe_of(&a),
            url: "http://127.0.0.1:1/v1/extension".into()
        }));
        assert!(
            l.probed(probe_of(&a), 5.0, S, Err("Failed to fetch".into()))
                .is_empty(),
            "no WebSocket is opened"
        );
        assert!(
            l.last_error
                .as_deref()
                .unwrap_or("")
                .contains("nothing answers")
        );
        let b = l.tick(1000.0, S);
        assert_ne!(probe_of(&a), probe_of(&b));
        // A stale probe outcome changes nothing.
        assert!(l.probed(probe_of(&a), 1001.0, S, Ok(())).is_empty());
        // A probe that hangs is superseded at the next tick.
        let c = l.tick(2000.0, S);
        assert_ne!(probe_of(&b), probe_of(&c));
    }

    #[test]
    fn refused_websocket_goes_back_to_probing() {
        let mut l = Link::new();
        let g = opened_sock(&mut l, 0.0);
        assert!(l.closed(g, 5.0, S, 1006, "").is_empty());
        assert_eq!(l.state, LinkState::Disconnected);
        probe_of(&l.tick(1000.0, S));
    }

    #[test]
    fn watchdog_closes_a_stuck_socket() {
        let mut l = Link::new();
        let g1 = opened_sock(&mut l, 0.0);
        assert_eq!(l.tick(500.0, S), vec![Action::KeepAlive]);
        let a = l.tick(1000.0, S);
        assert!(matches!(a[1], Action::Close { sock, .. } if sock == g1));
        let g2 = sock_of(&a);
        // The stuck socket's late events are ignored.
        assert!(l.closed(g1, 1001.0, S, 1006, "").is_empty());
        assert_eq!(l.current_sock(), Some(g2));
        assert!(matches!(l.opened(g1, 1002.0)[0], Action::Close { .. }));
    }

    #[test]
    fn handshake_then_connected_then_server_restart() {
        let mut l = Link::new();
        let g = opened_sock(&mut l, 0.0);
        assert_eq!(l.opened(g, 10.0), vec![Action::SendHello { sock: g }]);
        assert_eq!(l.welcomed(g, 20.0, 20_000), vec![Action::ClearReject]);
        assert!(l.is_connected());
        assert!(
            l.tick(1000.0, S).is_empty(),
            "no keep-alive calls needed while connected"
        );
        assert_eq!(l.closed(g, 2000.0, S, 1006, ""), vec![Action::AbandonCalls]);
        opened_sock(&mut l, 3000.0);
    }

    #[test]
    fn silent_server_is_dropped() {
        let mut l = Link::new();
        let g = opened_sock(&mut l, 0.0);
        l.opened(g, 0.0);
        l.welcomed(g, 0.0, 20_000);
        l.heard(g, 30_000.0);
        assert!(l.tick(60_000.0, S).is_empty());
        let a = l.tick(90_000.0, S);
        assert!(matches!(a[0], Action::Close { .. }));
        assert_eq!(l.state, LinkState::Disconnected);
    }

    #[test]
    fn hello_without_answer_times_out() {
        let mut l = Link::new();
        let g = opened_sock(&mut l, 0.0);
        l.opened(g, 0.0);
        assert_eq!(l.tick(4000.0, S), vec![Action::KeepAlive]);
        assert!(matches!(l.tick(5000.0, S)[1], Action::Close { .. }));
        opened_sock(&mut l, 6000.0);
    }

    #[test]
    fn reject_stops_retrying_until_reset() {
        let mut l = Link::new();
        let g = opened_sock(&mut l, 0.0);
        l.opened(g, 0.0);
        let a = l.rejected(g, 1.0, S, "protocol 2 unsupported");
        assert!(a.contains(&Action::PersistReject {
            server: S.into(),
            reason: "protocol 2 unsupported".into()
        }));
        // The server closes after reject: that must not resume retrying.
        assert!(l.closed(g, 2.0, S, 1000, "").is_empty());
        for t in 1..10 {
            assert!(l.tick(f64::from(t) * 1000.0, S).is_empty());
        }
        assert!(l.reset().contains(&Action::ClearReject));
        opened_sock(&mut l, 20_000.0);
    }

    #[test]
    fn http_probe_address() {
        assert_eq!(http_url("wss://h/x"), "https://h/x");
        assert_eq!(
            http_url("ws://127.0.0.1:9/v1/extension"),
            "http://127.0.0.1:9/v1/extension"
        );
    }
}
