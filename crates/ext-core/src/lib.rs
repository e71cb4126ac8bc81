//! The any extension's service worker, in Rust, compiled to wasm.
//!
//! Runs in: the extension's **service worker** (loaded by `extension/background.js`).
//! Nothing here runs in web pages: page CSP forbids compiling wasm there, so the code
//! that runs inside pages is the plain JavaScript of `extension/page-world.js`.
//!
//! The decisions are plain Rust, compiled and unit-tested natively
//! (`cargo test --release -p any-ext-core`):
//!
//! * [`config`] — where to connect and under which label;
//! * [`link`] — the connection state machine (1 s retry, watchdog, hello, reject);
//! * [`tabs`] — tab tracking and the tab-reuse choice;
//! * [`wait`] — readiness and give-up decisions of a call;
//! * [`calls`] — call bookkeeping (exactly one answer per call) and the popup's black box;
//! * [`channel`] — the persistent channel into ready pages (one per document) and its
//!   wire text;
//! * [`page`] — reading the page's envelopes, naming the browser;
//! * [`hosted`] — the server's hosted userscripts vs. the browser's `chrome.userScripts`
//!   registrations, and the popup's view of them.
//!
//! `sw` (wasm32 only) is the thin browser binding: typed `chrome.*` externs, the
//! WebSocket, timers, and the async flow of a call, carrying out those decisions.
#![deny(clippy::unwrap_used)]

pub mod calls;
pub mod channel;
pub mod config;
pub mod hosted;
pub mod link;
pub mod page;
pub mod tabs;
pub mod wait;

#[cfg(target_arch = "wasm32")]
mod sw;
