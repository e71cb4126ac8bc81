//! The client API: the JSON bodies of `any`'s HTTP endpoints under `/v1`.
//!
//! Every answer to `POST /v1/call` is either [`CallSuccess`] (HTTP 200) or
//! [`CallFailure`] (the status of [`crate::ErrorCode::http_status`]); every other
//! endpoint answers failures with [`CallFailure`] too, so a client needs one error shape.

use serde::{Deserialize, Serialize};

use crate::{CallId, ErrorBody, Json, Stage, TabPolicy};

/// The default deadline of a call when the request gives none.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// `POST /v1/call`. Unknown fields are refused so that a typo (`"timeout"` for
/// `"timeout_ms"`) is an error rather than silently ignored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// The absolute URL (`http:`, `https:` or `file:`) to run the method on.
    pub page: String,
    /// The name of the function on `globalThis.__any__`.
    pub method: String,
    /// Any JSON; `{}` when absent or `null`.
    #[serde(default)]
    pub params: Option<Json>,
    /// Defaults to [`DEFAULT_TIMEOUT_MS`].
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Route to the extension with this label; any extension when absent.
    #[serde(default)]
    pub browser: Option<String>,
    #[serde(default)]
    pub tab: Option<TabPolicy>,
}

/// HTTP 200 answer of `POST /v1/call`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallSuccess {
    pub v: u32,
    pub id: CallId,
    pub result: Json,
}

/// Every non-2xx answer of the client API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallFailure {
    pub v: u32,
    /// The call's id; absent when the request never became a call (e.g. bad JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<CallId>,
    pub error: ErrorBody,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
    /// The server's version.
    pub version: String,
    /// How many extensions are connected and welcomed.
    pub extensions: usize,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    /// The address the server listens on, e.g. `127.0.0.1:8765`.
    pub listen: String,
    /// The process id, so that `any stop` can tell what it stops.
    pub pid: u32,
    pub extensions: Vec<ExtensionStatus>,
    /// Calls not yet answered, oldest first.
    pub calls: Vec<CallStatus>,
    /// The most recently finished calls, newest first (the server keeps a few dozen):
    /// the black-box record of what happened. Absent from older servers.
    #[serde(default)]
    pub recent: Vec<FinishedCall>,
    /// The most recently refused connections and requests, newest first (the server
    /// keeps a few dozen): an extension with the wrong protocol version, a web page
    /// trying the extension socket, a request without the token. Absent from older servers.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

/// One refused connection or request in [`Status::rejected`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    /// When, in seconds since the Unix epoch.
    pub at: f64,
    /// What was asked, e.g. `"GET /v1/extension"` or `"POST /v1/call"`.
    pub request: String,
    /// The request's `Origin` header, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The error code it was refused with (`forbidden`, `unauthorized`, or
    /// `protocol_error` for an extension whose `hello` was answered with `reject`).
    pub code: crate::ErrorCode,
    /// Why, as told to the peer.
    pub reason: String,
}

/// One connected extension in [`Status`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtensionStatus {
    /// The server's name for this connection, e.g. `"ext-3"`.
    pub conn: String,
    pub label: String,
    pub browser: crate::BrowserInfo,
    pub extension_version: String,
    /// Seconds since the Unix epoch.
    pub connected_since: f64,
    /// Calls currently running in this extension.
    pub calls_in_flight: usize,
    /// The tabs it opened for calls, as it last reported them.
    #[serde(default)]
    pub tabs: Vec<crate::OwnedTab>,
    /// Its limit of idle tabs (0: not reported yet).
    #[serde(default)]
    pub max_tabs: u32,
}

/// One unanswered call in [`Status`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallStatus {
    pub id: CallId,
    pub page: String,
    pub method: String,
    /// `queued`, `dispatched`, or the last stage the extension reported.
    pub stage: Stage,
    /// The connection running it, when dispatched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<String>,
    /// Seconds since the call was accepted.
    pub age_s: f64,
}

/// One finished call in [`Status::recent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedCall {
    pub id: CallId,
    pub page: String,
    pub method: String,
    /// The connection that ran it, if it was dispatched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<String>,
    /// When it ended, in seconds since the Unix epoch.
    pub ended_at: f64,
    /// From acceptance to its end, in seconds.
    pub duration_s: f64,
    /// Absent when the call completed with a result; the error it failed with otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// Answers that arrived after the call had ended (late or duplicate), logged and dropped.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_answers: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `POST /v1/run`: an ad-hoc script, refused with `scripts_disabled` unless the server
/// runs with `--allow-scripts`. Answered like `POST /v1/call` ([`CallSuccess`] or
/// [`CallFailure`]).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The absolute URL (`http:`, `https:` or `file:`) to run the script on.
    pub page: String,
    /// The body of an async function, run in the page's MAIN world; what it returns is
    /// the result (same encoding rules as a method's).
    pub script: String,
    /// Defaults to [`DEFAULT_TIMEOUT_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Route to the extension with this label; any extension when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tab: Option<TabPolicy>,
}

/// `POST /v1/scripts`: add a userscript, or replace the one with the same `@name`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddScript {
    /// The whole `.user.js` file, starting with its `==UserScript==` header.
    pub source: String,
}

/// One hosted userscript in [`ScriptList`] and [`ScriptChange`] (its code left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptInfo {
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub matches: Vec<String>,
    #[serde(default)]
    pub exclude_matches: Vec<String>,
    #[serde(default)]
    pub exclude_globs: Vec<String>,
    pub run_at: crate::RunAt,
    pub enabled: bool,
    /// Where the server keeps it; empty when the server keeps scripts in memory only.
    #[serde(default)]
    pub file: String,
}

/// `GET /v1/scripts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptList {
    /// Ordered by name.
    pub scripts: Vec<ScriptInfo>,
    /// What keeps the scripts from running, e.g. a connected browser whose "Allow User
    /// Scripts" switch is off. Empty when nothing does.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The answer of `POST /v1/scripts`, `DELETE /v1/scripts/{name}` and
/// `POST /v1/scripts/{name}/enable|disable`: the script as it is now (as it was, for a
/// removal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptChange {
    pub script: ScriptInfo,
    /// As in [`ScriptList::warnings`].
    #[serde(default)]
    pub warnings: Vec<String>,
}
