//! The task table: every call from acceptance to its single terminal outcome, and the
//! connected extensions it can be routed to. Runs inside `any serve`.
//!
//! A call lives in the table while it is **queued** (waiting for an extension),
//! **dispatched** (sent, no progress yet) or **running** (with the last stage the
//! extension reported). It leaves the table exactly once, through [`Hub::finish`], as
//! **completed** or **failed**; that removal is what hands the outcome to the waiting
//! HTTP request, so a second answer finds nothing to deliver to and is logged and
//! dropped. The deadline, the connect wait and disconnects are all enforced here, by the
//! server, never left to the extension.
//!
//! Routing: a call with a `browser` label goes to the most recently connected
//! extension whose label equals it; a call without one goes to the most recently
//! connected extension of all (the browser the user started last).
//!
//! The lock is a `std::sync::Mutex` held only for table edits, never across an `.await`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use any_protocol::api::{CallStatus, ExtensionStatus, FinishedCall, Rejected, Status};
use any_protocol::{
    Call, CallId, Cancel, ErrorBody, ErrorCode, Hello, Json, Run, ServerFrame, Stage, TabPolicy,
    encode,
};
use tokio::sync::{mpsc, oneshot, watch};

/// What a call ends in: the method's result or the error.
pub type Outcome = Result<Json, ErrorBody>;

/// How many finished calls are remembered to explain late or duplicate answers.
const FINISHED_MEMORY: usize = 4096;

/// How many of them `/v1/status` lists, newest first.
const RECENT_IN_STATUS: usize = 50;

/// How many refused connections and requests `/v1/status` lists, newest first.
const REJECTED_MEMORY: usize = 20;

/// A call as accepted from the client, validated.
#[derive(Debug)]
pub struct NewCall {
    pub page: String,
    pub method: String,
    pub params: Json,
    pub timeout: Duration,
    pub browser: Option<String>,
    pub tab: TabPolicy,
    /// An ad-hoc script to run instead of `method` (sent as a `run` frame).
    pub script: Option<String>,
}

/// What the socket task of one extension is told to send.
#[derive(Debug)]
pub enum Outbound {
    /// One encoded [`ServerFrame`].
    Frame(String),
    /// Close the socket, saying why.
    Close(String),
}

/// The server's handle on one connected extension.
pub type ConnId = u64;

/// The task table and the set of connected extensions.
pub struct Hub {
    inner: Mutex<Inner>,
    /// Bumped whenever an extension is welcomed, so queued calls look again.
    connected: watch::Sender<u64>,
    connect_wait: Duration,
    listen: SocketAddr,
}

#[derive(Default)]
struct Inner {
    next_call: u64,
    next_conn: ConnId,
    /// Ordered by connection order: the last entry is the newest.
    extensions: BTreeMap<ConnId, Extension>,
    calls: HashMap<CallId, Task>,
    /// Recently finished calls, to tell a late or duplicate answer from an unknown id.
    finished: HashMap<CallId, FinishedCall>,
    finished_order: VecDeque<CallId>,
    /// Refused connections and requests, newest last.
    rejected: VecDeque<Rejected>,
    shutting_down: bool,
    /// The latest `scripts` frame (the hosted userscripts), sent to every extension after
    /// `welcome` and to all of them when it changes.
    scripts_frame: Option<String>,
}

struct Extension {
    name: String,
    hello: Hello,
    since: SystemTime,
    tx: mpsc::UnboundedSender<Outbound>,
    calls: HashSet<CallId>,
    /// The tabs it last said it opened.
    tabs: any_protocol::Tabs,
}

impl Extension {
    fn describe(&self) -> String {
        let b = &self.hello.browser;
        if self.hello.label.is_empty() {
            format!("{} ({} {})", self.name, b.name, b.version)
        } else {
            format!(
                "{} ({} {}, label {:?})",
                self.name, b.name, b.version, self.hello.label
            )
        }
    }
}

struct Task {
    page: String,
    method: String,
    /// Taken when the call is dispatched.
    params: Option<Json>,
    tab: TabPolicy,
    /// Taken when the call is dispatched; `Some` for an ad-hoc script.
    script: Option<String>,
    accepted: Instant,
    deadline: Instant,
    state: TaskState,
    /// The name (`ext-N`) of the connection it was dispatched to, kept for the record.
    conn_name: Option<String>,
    reply: oneshot::Sender<Outcome>,
}

/// The non-terminal states of a call. Completed and failed calls are not in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Queued,
    Dispatched { conn: ConnId },
    Running { conn: ConnId, stage: Stage },
}

impl TaskState {
    pub fn stage(self) -> Stage {
        match self {
            TaskState::Queued => Stage::Queued,
            TaskState::Dispatched { .. } => Stage::Dispatched,
            TaskState::Running { stage, .. } => stage,
        }
    }

    pub fn conn(self) -> Option<ConnId> {
        match self {
            TaskState::Queued => None,
            TaskState::Dispatched { conn } | TaskState::Running { conn, .. } => Some(conn),
        }
    }
}

/// Why the server itself ends a call (as opposed to the extension answering it).
enum ServerReason {
    /// The answer arrived from the extension: nothing to tell it.
    Answered,
    /// The server gave up: tell the extension to stop with this reason.
    Cancel(String),
}

/// The result of trying to hand a queued call to an extension.
enum Dispatch {
    Sent,
    NoMatch,
    /// The call is no longer in the table (already finished).
    Gone,
}

impl Hub {
    pub fn new(connect_wait: Duration, listen: SocketAddr) -> Self {
        let (connected, _) = watch::channel(0);
        Hub {
            inner: Mutex::new(Inner::default()),
            connected,
            connect_wait,
            listen,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one call to its terminal outcome: queue, wait for an extension, dispatch,
    /// wait for the answer or the deadline. Returns the call's id and outcome.
    ///
    /// If the returned future is dropped (the HTTP client went away), the call is failed
    /// and the extension told to cancel it.
    pub async fn call(self: &Arc<Self>, new: NewCall) -> (CallId, Outcome) {
        let accepted = Instant::now();
        let deadline = accepted + new.timeout;
        let label = new.browser.clone();
        let what = format!("{} on {}", new.method, new.page);
        let (id, rx) = self.insert(new, accepted, deadline);
        let guard = AbandonGuard {
            hub: self.clone(),
            id: Some(id.clone()),
        };
        // One info line per call, when it ends (`finish`); the steps before are debug.
        match &label {
            Some(label) => tracing::debug!(call = %id, "queued: {what} (browser {label:?})"),
            None => tracing::debug!(call = %id, "queued: {what}"),
        }

        // Wait (bounded) for an extension that matches, then dispatch.
        let wait_until = deadline.min(accepted + self.connect_wait);
        let mut connected = self.connected.subscribe();
        loop {
            connected.borrow_and_update();
            match self.try_dispatch(&id, label.as_deref()) {
                Dispatch::Sent | Dispatch::Gone => break,
                Dispatch::NoMatch => {}
            }
            let changed = tokio::time::timeout_at(wait_until.into(), connected.changed()).await;
            if changed.is_err() || self.lock().shutting_down {
                let body = if Instant::now() >= deadline {
                    self.timeout_body(body_ms(accepted, deadline), Stage::Queued)
                } else {
                    self.no_extension_body(label.as_deref())
                };
                self.finish(&id, Err(body), ServerReason::Cancel("no extension".into()));
                break;
            }
        }

        // Wait for the answer; at the deadline the server fails the call itself.
        let mut rx = rx;
        let outcome = match tokio::time::timeout_at(deadline.into(), &mut rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(internal_lost(&id)),
            Err(_) => {
                let stage = self.stage_of(&id).unwrap_or(Stage::Dispatched);
                let body = self.timeout_body(body_ms(accepted, deadline), stage);
                let reason = format!(
                    "the server's deadline of {} ms passed",
                    body_ms(accepted, deadline)
                );
                self.finish(&id, Err(body), ServerReason::Cancel(reason));
                // Whichever of the answer and the deadline removed the task won.
                rx.await.unwrap_or_else(|_| Err(internal_lost(&id)))
            }
        };
        guard.disarm();
        (id, outcome)
    }

    fn insert(
        &self,
        new: NewCall,
        accepted: Instant,
        deadline: Instant,
    ) -> (CallId, oneshot::Receiver<Outcome>) {
        let (reply, rx) = oneshot::channel();
        let mut inner = self.lock();
        inner.next_call += 1;
        let id = format!("c-{}", inner.next_call);
        let task = Task {
            page: new.page,
            method: new.method,
            params: Some(new.params),
            tab: new.tab,
            script: new.script,
            accepted,
            deadline,
            state: TaskState::Queued,
            conn_name: None,
            reply,
        };
        inner.calls.insert(id.clone(), task);
        (id, rx)
    }

    /// Sends a queued call to the extension its label routes to, if one is connected.
    fn try_dispatch(&self, id: &CallId, label: Option<&str>) -> Dispatch {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(task) = inner.calls.get_mut(id) else {
            return Dispatch::Gone;
        };
        if task.state != TaskState::Queued {
            return Dispatch::Gone;
        }
        let chosen = inner
            .extensions
            .iter_mut()
            .rev()
            .find(|(_, ext)| label.is_none_or(|l| ext.hello.label == l));
        let Some((&conn, ext)) = chosen else {
            return Dispatch::NoMatch;
        };
        let remaining = task.deadline.saturating_duration_since(Instant::now());
        let timeout_ms = u64::try_from(remaining.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let frame = match task.script.take() {
            Some(script) => ServerFrame::Run(Run {
                id: id.clone(),
                page: task.page.clone(),
                script,
                timeout_ms,
                tab: task.tab,
            }),
            None => ServerFrame::Call(Call {
                id: id.clone(),
                page: task.page.clone(),
                method: task.method.clone(),
                params: task.params.take().unwrap_or_else(empty_params),
                timeout_ms,
                tab: task.tab,
            }),
        };
        if ext.tx.send(Outbound::Frame(encode(&frame))).is_err() {
            // The socket task has ended; its disconnect will remove the extension.
            let body = ErrorBody::new(
                ErrorCode::ExtensionDisconnected,
                format!(
                    "the extension {} disconnected as the call was sent to it",
                    ext.describe()
                ),
            )
            .at(Stage::Queued);
            drop(guard);
            self.finish(id, Err(body), ServerReason::Answered);
            return Dispatch::Gone;
        }
        tracing::debug!(call = %id, "dispatched to {}", ext.describe());
        task.state = TaskState::Dispatched { conn };
        task.conn_name = Some(ext.name.clone());
        ext.calls.insert(id.clone());
        Dispatch::Sent
    }

    fn stage_of(&self, id: &CallId) -> Option<Stage> {
        self.lock().calls.get(id).map(|t| t.state.stage())
    }

    /// Ends a call: removes it from the table and hands `outcome` to its caller. Returns
    /// `false` (and does nothing) when the call had already ended, which is what makes
    /// every call end exactly once.
    fn finish(&self, id: &CallId, outcome: Outcome, reason: ServerReason) -> bool {
        let mut inner = self.lock();
        let Some(task) = inner.calls.remove(id) else {
            return false;
        };
        let conn = task.state.conn();
        if let Some(ext) = conn.and_then(|c| inner.extensions.get_mut(&c)) {
            ext.calls.remove(id);
            if let ServerReason::Cancel(why) = &reason {
                let cancel = ServerFrame::Cancel(Cancel {
                    id: id.clone(),
                    reason: why.clone(),
                });
                let _ = ext.tx.send(Outbound::Frame(encode(&cancel)));
            }
        }
        let elapsed = task.accepted.elapsed();
        let what = format!(
            "{} on {} ({})",
            task.method,
            task.page,
            task.conn_name.as_deref().unwrap_or("no extension")
        );
        inner.remember(FinishedCall {
            id: id.clone(),
            page: task.page,
            method: task.method,
            conn: task.conn_name,
            ended_at: unix_now(),
            duration_s: elapsed.as_secs_f64(),
            error: outcome.as_ref().err().cloned(),
            dropped_answers: 0,
        });
        drop(inner);
        let ms = elapsed.as_secs_f64() * 1000.0;
        match &outcome {
            Ok(_) => tracing::info!(call = %id, "{what}: completed in {ms:.1} ms"),
            Err(e) => tracing::info!(
                call = %id,
                "{what}: failed in {ms:.1} ms with {} ({}): {}",
                e.code,
                e.name,
                e.message
            ),
        }
        // The caller may have gone (dropped its receiver); the outcome is logged above.
        let _ = task.reply.send(outcome);
        true
    }

    /// Registers a welcomed extension; returns its id, its name (`ext-N`) and the
    /// queue of frames its socket task must send.
    pub fn register(&self, hello: Hello) -> (ConnId, String, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.lock();
        inner.next_conn += 1;
        let conn = inner.next_conn;
        let name = format!("ext-{conn}");
        let ext = Extension {
            name: name.clone(),
            hello,
            since: SystemTime::now(),
            tx,
            calls: HashSet::new(),
            tabs: any_protocol::Tabs::default(),
        };
        tracing::info!(
            "extension {} connected (extension {}, capabilities {:?})",
            ext.describe(),
            ext.hello.extension_version,
            ext.hello.capabilities
        );
        if inner.shutting_down {
            let _ = ext
                .tx
                .send(Outbound::Close("the server is shutting down".into()));
        }
        // Queued before anything else, so it follows `welcome` on the socket.
        if let Some(frame) = &inner.scripts_frame {
            let _ = ext.tx.send(Outbound::Frame(frame.clone()));
        }
        inner.extensions.insert(conn, ext);
        drop(inner);
        self.connected.send_modify(|n| *n += 1);
        (conn, name, rx)
    }

    /// Forgets a disconnected extension and fails, at once, every call it was running.
    pub fn disconnect(&self, conn: ConnId, why: &str) {
        let Some(ext) = self.lock().extensions.remove(&conn) else {
            return;
        };
        let who = ext.describe();
        tracing::info!("extension {who} disconnected: {why}");
        for id in ext.calls {
            let stage = self.stage_of(&id).unwrap_or(Stage::Dispatched);
            let body = ErrorBody::new(
                ErrorCode::ExtensionDisconnected,
                format!("the extension {who} disconnected before answering ({why})"),
            )
            .at(stage);
            self.finish(&id, Err(body), ServerReason::Answered);
        }
    }

    /// A `progress` frame from `conn`.
    /// The extension's report of the tabs it opened (shown by `status`).
    pub fn tabs(&self, conn: ConnId, tabs: any_protocol::Tabs) {
        if let Some(ext) = self.lock().extensions.get_mut(&conn) {
            ext.tabs = tabs;
        }
    }

    pub fn progress(&self, conn: ConnId, id: &CallId, stage: Stage) {
        let mut inner = self.lock();
        match inner.calls.get_mut(id) {
            Some(task) if task.state.conn() == Some(conn) => {
                tracing::debug!(call = %id, "stage {stage}");
                task.state = TaskState::Running { conn, stage };
            }
            Some(_) => {
                tracing::warn!(call = %id, "progress from ext-{conn}, which is not running this call: dropped")
            }
            None => {
                tracing::debug!(call = %id, "progress for a call that is not in flight: dropped")
            }
        }
    }

    /// A terminal answer (`result` or `error`) from `conn`. Delivered if the call is in
    /// flight on that connection; otherwise logged and dropped.
    pub fn answer(&self, conn: ConnId, id: &CallId, outcome: Outcome) {
        let kind = if outcome.is_ok() { "result" } else { "error" };
        let outcome = {
            let mut inner = self.lock();
            match inner.calls.get(id) {
                Some(task) if task.state.conn() == Some(conn) => {
                    // Errors without a stage get the one the server saw last.
                    let stage = task.state.stage();
                    outcome.map_err(|e| if e.stage.is_some() { e } else { e.at(stage) })
                }
                Some(_) => {
                    tracing::warn!(call = %id, "{kind} from ext-{conn}, which is not running this call: dropped");
                    return;
                }
                None => {
                    match inner.finished.get_mut(id) {
                        Some(record) if record.error.is_none() => {
                            record.dropped_answers += 1;
                            tracing::warn!(
                                call = %id,
                                "duplicate {kind} from ext-{conn}: the call was already completed; dropped"
                            )
                        }
                        Some(record) => {
                            record.dropped_answers += 1;
                            let code = record
                                .error
                                .as_ref()
                                .map_or(ErrorCode::ProtocolError, |e| e.code);
                            tracing::warn!(
                                call = %id,
                                "late {kind} from ext-{conn}: the call had already failed with {code}; dropped"
                            )
                        }
                        None => {
                            tracing::warn!(call = %id, "{kind} from ext-{conn} for an unknown call id: dropped")
                        }
                    }
                    return;
                }
            }
        };
        self.finish(id, outcome, ServerReason::Answered);
    }

    /// Fails a call because `conn` sent a broken frame about it.
    pub fn protocol_error(&self, conn: ConnId, id: &CallId, message: String) {
        let stage = {
            let inner = self.lock();
            match inner.calls.get(id) {
                Some(task) if task.state.conn() == Some(conn) => task.state.stage(),
                _ => return,
            }
        };
        let body = ErrorBody::new(ErrorCode::ProtocolError, message).at(stage);
        self.finish(
            id,
            Err(body),
            ServerReason::Cancel("the extension sent a broken frame".into()),
        );
    }

    /// Closes every extension socket (failing their calls) and fails queued calls.
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        inner.shutting_down = true;
        for ext in inner.extensions.values() {
            let _ = ext
                .tx
                .send(Outbound::Close("the server is shutting down".into()));
        }
        drop(inner);
        // Wake queued calls so they fail now rather than at the end of the wait.
        self.connected.send_modify(|n| *n += 1);
    }

    /// Records a refused connection or request for `/v1/status` (the log has it too).
    pub fn rejected(
        &self,
        request: String,
        origin: Option<String>,
        code: ErrorCode,
        reason: String,
    ) {
        let mut inner = self.lock();
        if inner.rejected.len() >= REJECTED_MEMORY {
            inner.rejected.pop_front();
        }
        inner.rejected.push_back(Rejected {
            at: unix_now(),
            request,
            origin,
            code,
            reason,
        });
    }

    /// Makes `frame` (an encoded `scripts` frame) the current set of hosted userscripts
    /// and sends it to every connected extension.
    pub fn publish_scripts(&self, frame: String) {
        let mut inner = self.lock();
        for ext in inner.extensions.values() {
            let _ = ext.tx.send(Outbound::Frame(frame.clone()));
        }
        inner.scripts_frame = Some(frame);
    }

    /// The connected extensions that did not announce `capability` in their `hello`,
    /// described (`ext-1 (Chromium 156…)`).
    pub fn extensions_without(&self, capability: &str) -> Vec<String> {
        self.lock()
            .extensions
            .values()
            .filter(|e| !e.hello.capabilities.iter().any(|c| c == capability))
            .map(Extension::describe)
            .collect()
    }

    /// How many extensions are connected and welcomed.
    pub fn extension_count(&self) -> usize {
        self.lock().extensions.len()
    }

    /// The state of one call still in flight (for tests and logs).
    pub fn state_of(&self, id: &CallId) -> Option<TaskState> {
        self.lock().calls.get(id).map(|t| t.state)
    }

    /// The `/v1/status` body.
    pub fn status(&self) -> Status {
        let inner = self.lock();
        let extensions = inner
            .extensions
            .values()
            .map(|ext| ExtensionStatus {
                conn: ext.name.clone(),
                label: ext.hello.label.clone(),
                browser: ext.hello.browser.clone(),
                extension_version: ext.hello.extension_version.clone(),
                connected_since: ext
                    .since
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0),
                calls_in_flight: ext.calls.len(),
                tabs: ext.tabs.tabs.clone(),
                max_tabs: ext.tabs.max_tabs,
            })
            .collect();
        let mut calls: Vec<(Instant, CallStatus)> = inner
            .calls
            .iter()
            .map(|(id, task)| {
                let conn = task
                    .state
                    .conn()
                    .and_then(|c| inner.extensions.get(&c))
                    .map(|e| e.name.clone());
                let status = CallStatus {
                    id: id.clone(),
                    page: task.page.clone(),
                    method: task.method.clone(),
                    stage: task.state.stage(),
                    conn,
                    age_s: task.accepted.elapsed().as_secs_f64(),
                };
                (task.accepted, status)
            })
            .collect();
        calls.sort_by_key(|(accepted, _)| *accepted);
        Status {
            version: crate::VERSION.to_owned(),
            listen: self.listen.to_string(),
            pid: std::process::id(),
            extensions,
            calls: calls.into_iter().map(|(_, c)| c).collect(),
            recent: inner
                .finished_order
                .iter()
                .rev()
                .take(RECENT_IN_STATUS)
                .filter_map(|id| inner.finished.get(id).cloned())
                .collect(),
            rejected: inner.rejected.iter().rev().cloned().collect(),
        }
    }

    fn no_extension_body(&self, label: Option<&str>) -> ErrorBody {
        let wait = fmt_secs(self.connect_wait);
        let inner = self.lock();
        let message = if inner.shutting_down {
            "the any server is shutting down".to_owned()
        } else {
            match label {
                None => format!(
                    "no browser with the any extension is connected to {} after waiting {wait}: \
                     is the extension installed and enabled, and pointed at this port? \
                     (`any browser --port {}` starts one)",
                    self.listen,
                    self.listen.port()
                ),
                Some(label) => {
                    let labels: Vec<String> = inner
                        .extensions
                        .values()
                        .map(|e| format!("{:?}", e.hello.label))
                        .collect();
                    let connected = if labels.is_empty() {
                        "none".to_owned()
                    } else {
                        labels.join(", ")
                    };
                    format!(
                        "no browser labelled {label:?} is connected to {} after waiting {wait} \
                         (connected labels: {connected}): set that label in the extension's \
                         options, or leave out `browser` to use any connected browser",
                        self.listen
                    )
                }
            }
        };
        ErrorBody::new(ErrorCode::NoExtension, message).at(Stage::Queued)
    }

    fn timeout_body(&self, timeout_ms: u128, stage: Stage) -> ErrorBody {
        let message = match stage {
            Stage::Queued => format!(
                "the call did not finish within {timeout_ms} ms; it was still queued, waiting for an extension"
            ),
            stage => format!(
                "the call did not finish within {timeout_ms} ms; it had reached stage {stage}"
            ),
        };
        ErrorBody::new(ErrorCode::Timeout, message).at(stage)
    }
}

impl Inner {
    fn remember(&mut self, finished: FinishedCall) {
        if self.finished_order.len() >= FINISHED_MEMORY
            && let Some(old) = self.finished_order.pop_front()
        {
            self.finished.remove(&old);
        }
        self.finished_order.push_back(finished.id.clone());
        self.finished.insert(finished.id.clone(), finished);
    }
}

/// Fails the call if the future running it is dropped before it ends (the HTTP client
/// closed its connection): the extension is told to cancel, the table stays clean.
struct AbandonGuard {
    hub: Arc<Hub>,
    id: Option<CallId>,
}

impl AbandonGuard {
    fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            // Nobody reads this outcome; it is what the log says about the call.
            let body = ErrorBody::new(ErrorCode::BadRequest, "the caller closed its connection");
            self.hub.finish(
                &id,
                Err(body),
                ServerReason::Cancel("the caller went away".into()),
            );
        }
    }
}

fn body_ms(accepted: Instant, deadline: Instant) -> u128 {
    deadline.saturating_duration_since(accepted).as_millis()
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// `{}`, the params of a call that gave none.
pub(crate) fn empty_params() -> Json {
    serde_json::value::RawValue::from_string("{}".to_owned())
        .unwrap_or_else(|_| unreachable!("`{{}}` is JSON"))
}

/// The reply channel closed without an outcome: cannot happen while `finish` is the only
/// way out of the table, but answer clearly rather than panic if it ever does.
fn internal_lost(id: &CallId) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::ProtocolError,
        format!("the server lost track of call {id}; please report this"),
    )
}

/// Seconds since the Unix epoch.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
