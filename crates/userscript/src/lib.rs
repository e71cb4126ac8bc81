//! Userscripts hosted by any: the `==UserScript==` header and Chrome match patterns.
//!
//! Runs in: the `any serve` process (checking a script before it is stored) and the
//! extension's service worker, compiled to wasm (which hosted scripts apply to the tab
//! the popup is looking at). Pure functions over strings: no I/O, no browser.
//!
//! * [`parse`] reads a `.user.js` file into an [`any_protocol::UserScript`], or fails
//!   with a [`HeaderError`] naming the line;
//! * [`check_match_pattern`] applies Chrome's match-pattern rules, so a pattern Chrome
//!   would refuse at registration is refused when the script is added;
//! * [`runs_on`] says whether a script applies to a URL (`@match` minus
//!   `@exclude-match` and `@exclude`), as Chrome decides it.

mod header;
mod pattern;

pub use header::{HeaderError, parse};
pub use pattern::{check_match_pattern, glob_matches, pattern_matches, runs_on};
