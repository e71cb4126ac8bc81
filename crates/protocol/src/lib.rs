//! The messages of `any`: pure serde data shared by every end.
//!
//! Two lanes use these types:
//!
//! * the **extension socket** (`WS /v1/extension`): [`ExtensionFrame`]s flow from the
//!   browser extension to the server, [`ServerFrame`]s the other way. Every frame is one
//!   JSON text message `{"v": 1, "type": "...", ...}`; [`encode`] and [`decode`] add and
//!   check the version and the type tag.
//! * the **client API** (HTTP JSON, see [`api`]): what programs send to the server and
//!   what they get back.
//!
//! This crate compiles natively (server, CLI, test peers) and to wasm (the extension's
//! service worker). It knows nothing of sockets, tasks or browsers.
//!
//! Opaque JSON (call params and results) is carried as [`Json`] (`Box<RawValue>`): the
//! server forwards those bytes without building a tree from them.

pub mod api;
mod codec;
mod error;

pub use codec::{DecodeError, Frame, decode, encode};
pub use error::{ErrorBody, ErrorCode};

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks; every frame carries it as `v`.
pub const VERSION: u32 = 1;

/// How often the server sends an application-level [`Ping`], in milliseconds.
///
/// A Chrome service worker is stopped after 30 s without extension events; WebSocket
/// protocol pings do not count, application messages do (Chrome 116+).
pub const HEARTBEAT_MS: u64 = 20_000;

/// The id of the any extension, fixed by the `"key"` in `extension/manifest.json`
/// (Chrome derives it from the key; `tests/extension_id.rs` checks the two agree).
pub const EXTENSION_ID: &str = "knhhpckbjemjphphdhibpcjmgbngnmig";

/// The `Origin` the any extension's pages and service worker send: the only origin the
/// server accepts on the extension socket unless `any serve --allow-origin` adds others.
pub const EXTENSION_ORIGIN: &str = "chrome-extension://knhhpckbjemjphphdhibpcjmgbngnmig";

/// Opaque JSON passed through unchanged (call params, call results).
pub type Json = Box<serde_json::value::RawValue>;

/// Identifies one call from the client's request to its single terminal answer.
pub type CallId = String;

/// Frames sent by the extension to the server.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExtensionFrame {
    /// First frame on every connection: who is speaking. Answered by
    /// [`ServerFrame::Welcome`] or [`ServerFrame::Reject`].
    Hello(Hello),
    /// A call reached a new stage. Informational; may be skipped.
    Progress(Progress),
    /// Terminal: the call's method returned this value.
    Result(CallResult),
    /// Terminal: the call failed.
    Error(CallError),
    /// Answer to [`ServerFrame::Ping`], echoing its `seq`.
    Pong(Pong),
    /// The tabs this extension opened for calls, sent after `welcome` and whenever they
    /// change (at most a few times a second). Informational: `any status` shows them.
    Tabs(Tabs),
}

/// Frames sent by the server to the extension.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The `hello` was accepted; calls may follow.
    Welcome(Welcome),
    /// The `hello` was refused (for example a protocol version mismatch). The server
    /// closes the socket after this frame; the extension shows `reason` to the user.
    Reject(Reject),
    /// Run `globalThis.__any__[method](params)` in a tab at `page`. Answered by exactly
    /// one [`ExtensionFrame::Result`] or [`ExtensionFrame::Error`] with the same `id`.
    Call(Call),
    /// The server has given up on a call (deadline or caller gone); stop working on it.
    /// Any answer that still arrives is dropped.
    Cancel(Cancel),
    /// Application-level heartbeat, every [`HEARTBEAT_MS`]; answered by `pong`.
    Ping(Ping),
    /// The complete set of userscripts the server hosts (`any scripts add`), sent after
    /// `welcome` and again on every change. Idempotent: the extension makes its
    /// `chrome.userScripts` registrations equal to the enabled ones. Not answered.
    Scripts(Scripts),
    /// Run an ad-hoc script (the body of an async function) in a tab at `page`, in the
    /// page's MAIN world (`chrome.userScripts.execute`). Only sent by a server started
    /// with `--allow-scripts`. Answered like [`ServerFrame::Call`]: exactly one
    /// [`ExtensionFrame::Result`] or [`ExtensionFrame::Error`] with the same `id`.
    Run(Run),
}

/// See [`ExtensionFrame::Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the extension speaks (the same as its frames' `v`).
    pub protocol: u32,
    /// The extension's own version (`manifest.json` `version`).
    pub extension_version: String,
    pub browser: BrowserInfo,
    /// A name the user gives this browser or profile, used to route calls
    /// (`"browser": "work"` in a call request). Empty when unset.
    #[serde(default)]
    pub label: String,
    /// Optional features this extension supports, e.g. `"post_message_lane"`.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// The browser an extension runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserInfo {
    /// For example `"Chromium"` or `"Chrome"`.
    pub name: String,
    /// For example `"156.0.8078.73"`.
    pub version: String,
}

/// See [`ServerFrame::Welcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The server's version (`any --version`).
    pub server_version: String,
    /// The server pings this often; an extension that hears nothing for much longer may
    /// assume the connection is dead and reconnect.
    pub heartbeat_ms: u64,
}

/// See [`ServerFrame::Reject`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// Human-readable, says what to do, e.g. "this server speaks protocol 1 but the
    /// extension speaks 2: update the any server".
    pub reason: String,
}

/// Which tab a call runs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TabPolicy {
    /// Reuse an idle tab this extension opened that is exactly at `page`; open one when
    /// there is none.
    #[default]
    Reuse,
    /// Always open a new tab.
    New,
}

/// See [`ServerFrame::Call`].
#[derive(Debug, Serialize, Deserialize)]
pub struct Call {
    pub id: CallId,
    /// The absolute URL to run the method on.
    pub page: String,
    /// The name of the function on `globalThis.__any__`.
    pub method: String,
    /// Passed as the method's single argument.
    pub params: Json,
    /// The server fails the call after this long; the extension should give up too.
    pub timeout_ms: u64,
    #[serde(default)]
    pub tab: TabPolicy,
}

/// See [`ServerFrame::Run`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: CallId,
    /// The absolute URL to run the script on.
    pub page: String,
    /// The body of an async function; its return value is the result, encoded by the
    /// same rules as a method's.
    pub script: String,
    /// The server fails the call after this long; the extension should give up too.
    pub timeout_ms: u64,
    #[serde(default)]
    pub tab: TabPolicy,
}

/// See [`ServerFrame::Scripts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scripts {
    /// Every hosted userscript, enabled or not, ordered by name.
    pub scripts: Vec<UserScript>,
}

/// When a userscript runs in a page (`@run-at`); the names are `chrome.userScripts`'
/// `runAt` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunAt {
    /// `@run-at document-start`: before the page's own scripts.
    DocumentStart,
    /// `@run-at document-end`: once the DOM is parsed.
    DocumentEnd,
    /// `@run-at document-idle` (the default): after `document-end`, when the browser is idle.
    #[default]
    DocumentIdle,
}

impl RunAt {
    /// The wire (and `chrome.userScripts`) name, e.g. `"document_start"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunAt::DocumentStart => "document_start",
            RunAt::DocumentEnd => "document_end",
            RunAt::DocumentIdle => "document_idle",
        }
    }
}

/// One userscript hosted by the server, as parsed from its `==UserScript==` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserScript {
    /// `@name`: unique among the hosted scripts; also the `chrome.userScripts` id.
    pub name: String,
    /// `@version`, empty when absent.
    #[serde(default)]
    pub version: String,
    /// `@description`, empty when absent.
    #[serde(default)]
    pub description: String,
    /// `@match` patterns (Chrome match-pattern syntax), at least one.
    pub matches: Vec<String>,
    /// `@exclude-match` patterns.
    #[serde(default)]
    pub exclude_matches: Vec<String>,
    /// `@exclude` globs (`*` and `?` wildcards over the whole URL).
    #[serde(default)]
    pub exclude_globs: Vec<String>,
    #[serde(default)]
    pub run_at: RunAt,
    /// `@noframes`: the script runs in the top frame only, not in frames too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub noframes: bool,
    /// Disabled scripts are kept (and listed) but not registered in the browser.
    pub enabled: bool,
    /// The whole file, header included; runs in the page's MAIN world.
    pub code: String,
}

/// See [`ServerFrame::Cancel`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    pub id: CallId,
    /// Why the server gave up, for the extension's log.
    #[serde(default)]
    pub reason: String,
}

/// See [`ServerFrame::Ping`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    pub seq: u64,
}

/// See [`ExtensionFrame::Tabs`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tabs {
    pub tabs: Vec<OwnedTab>,
    /// Idle tabs beyond this many are closed, least recently used first.
    pub max_tabs: u32,
}

/// One tab the extension opened, in [`Tabs`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedTab {
    /// The browser's tab id.
    pub id: i64,
    /// The tab's current URL.
    pub url: String,
    /// `loading`, `loaded`, `failed` (its page did not load) or `unresponsive` (a
    /// method never yielded; the tab is being closed).
    pub state: String,
    /// Calls running in it now.
    pub calls: u32,
}

/// See [`ExtensionFrame::Pong`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    pub seq: u64,
}

/// See [`ExtensionFrame::Progress`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub id: CallId,
    pub stage: Stage,
}

/// See [`ExtensionFrame::Result`].
#[derive(Debug, Serialize, Deserialize)]
pub struct CallResult {
    pub id: CallId,
    /// The method's return value, encoded by the page-side rules (see the extension's
    /// documentation); `undefined` arrives as `null`.
    pub value: Json,
}

/// See [`ExtensionFrame::Error`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    pub id: CallId,
    pub error: ErrorBody,
}

/// How far a call got. The server sets `queued` and `dispatched`; the extension reports
/// the others in [`Progress`] frames, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Accepted by the server, waiting for an extension to connect.
    Queued,
    /// Sent to an extension, no progress reported yet.
    Dispatched,
    /// The extension has a tab for the call (opened or reused).
    TabOpened,
    /// The tab is navigating to `page`.
    Navigating,
    /// The page finished loading.
    PageLoaded,
    /// The page has loaded but defines no `globalThis.__any__` methods yet: the call
    /// waits for them (userscripts may add them late) until its deadline.
    WaitingForMethods,
    /// `globalThis.__any__[method]` exists in the page.
    MethodFound,
    /// The method was invoked and its promise is being awaited.
    MethodCalled,
}

impl Stage {
    /// The wire name, e.g. `"page_loaded"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Dispatched => "dispatched",
            Stage::TabOpened => "tab_opened",
            Stage::Navigating => "navigating",
            Stage::PageLoaded => "page_loaded",
            Stage::WaitingForMethods => "waiting_for_methods",
            Stage::MethodFound => "method_found",
            Stage::MethodCalled => "method_called",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
