//! What the extension knows about tabs: plain Rust, no browser.
//!
//! Runs in: the extension's service worker (compiled to wasm) and in native unit tests;
//! it touches no browser API.
//!
//! The service worker forwards the main-frame `webNavigation` events and `tabs.onRemoved`
//! for every tab; [`Tabs`] keeps each tab's navigation state so that a call can ask
//! "is the page loaded, did it fail, was the tab closed, did it navigate since?" without
//! a browser round trip. It also records which tabs this extension opened and which call
//! holds each one, and chooses the tab for a new call ([`Tabs::choose`]).

use std::collections::HashMap;

use any_protocol::{CallId, TabPolicy};
use serde::Serialize;

pub type TabId = i32;

/// The main frame's navigation, as the `webNavigation` events tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Nav {
    /// A navigation started (or the tab is new and nothing was heard yet).
    Loading,
    /// The new document is committed and loading.
    Committed,
    /// `onDOMContentLoaded`: the document is parsed; images, frames may still load.
    Interactive,
    /// `onCompleted`: the document and its resources finished loading.
    Complete,
    /// `onErrorOccurred`, e.g. `net::ERR_CONNECTION_REFUSED`.
    Failed(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Tab {
    pub nav: Nav,
    /// The main frame's URL as of the last event.
    pub url: String,
    /// Counts main-frame navigations; a change while a method runs means the page
    /// navigated away under it.
    pub nav_seq: u64,
    /// This extension opened the tab (only such tabs are reused).
    pub owned: bool,
    /// The call currently running in the tab.
    pub busy: Option<CallId>,
    pub closed: bool,
    /// The page a call asked for when this tab last served one, and the navigation it
    /// was at then: a tab that was redirected (`http:` → `https:`, `/` → `/home`) is
    /// still "at" the page it was opened for, as long as it has not navigated since.
    pub served: Option<(String, u64)>,
    /// The navigation the busy call's method (or script) runs in, once it runs: if the
    /// tab has navigated since when the call ends, the page navigated away under it, and
    /// the tab is no longer at the page the call asked for.
    pub ran_in: Option<u64>,
    /// A call found this method missing in the document at this navigation: the next
    /// call for it reloads the tab (a userscript installed since runs only in a new
    /// document) instead of failing the same way.
    pub missing: Option<(String, u64)>,
    /// Methods a probe found in this tab's current document (name, via the lane, at
    /// `nav_seq`): a later call to one of them skips the probe and invokes at once.
    pub found: Vec<(String, bool, u64)>,
    /// The window the tab is in and whether it is that window's active tab, as
    /// `tabs.onActivated` last said (`false` when unknown).
    pub window: Option<i32>,
    pub active: bool,
}

impl Tab {
    fn new(url: &str) -> Self {
        Tab {
            nav: Nav::Loading,
            url: url.to_owned(),
            nav_seq: 0,
            owned: false,
            busy: None,
            closed: false,
            served: None,
            ran_in: None,
            missing: None,
            found: Vec::new(),
            window: None,
            active: false,
        }
    }
}

/// The choice for a new call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Run in this idle, loaded tab (already claimed for the call).
    Reuse(TabId),
    /// Reload this idle tab, which is at the page but whose document lacked the method
    /// (already claimed for the call), and run there.
    Reload(TabId),
    /// Open a new tab at the page.
    Open,
}

#[derive(Debug, Default)]
pub struct Tabs {
    tabs: HashMap<TabId, Tab>,
}

impl Tabs {
    /// The tabs this extension opened, for the popup.
    pub fn owned(&self) -> Vec<(TabId, &Tab)> {
        let mut v: Vec<(TabId, &Tab)> = self
            .tabs
            .iter()
            .filter(|(_, t)| t.owned)
            .map(|(id, t)| (*id, t))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    pub fn get(&self, id: TabId) -> Option<&Tab> {
        self.tabs.get(&id)
    }

    fn entry(&mut self, id: TabId, url: &str) -> &mut Tab {
        self.tabs.entry(id).or_insert_with(|| Tab::new(url))
    }

    /// `webNavigation.onBeforeNavigate` for a main frame.
    pub fn before_navigate(&mut self, id: TabId, url: &str) {
        let t = self.entry(id, url);
        t.nav = Nav::Loading;
        t.url = url.to_owned();
        t.nav_seq += 1;
    }

    /// `webNavigation.onCommitted` for a main frame. A navigation that commits without a
    /// preceding `onBeforeNavigate` (e.g. browser-initiated history moves) still counts.
    pub fn committed(&mut self, id: TabId, url: &str) {
        let t = self.entry(id, url);
        if t.nav != Nav::Loading {
            t.nav_seq += 1;
        }
        t.nav = Nav::Committed;
        t.url = url.to_owned();
    }

    /// `webNavigation.onDOMContentLoaded` for a main frame.
    pub fn dom_ready(&mut self, id: TabId, url: &str) {
        let t = self.entry(id, url);
        if t.nav != Nav::Complete {
            t.nav = Nav::Interactive;
            t.url = url.to_owned();
        }
    }

    /// `webNavigation.onCompleted` for a main frame.
    pub fn completed(&mut self, id: TabId, url: &str) {
        let t = self.entry(id, url);
        t.nav = Nav::Complete;
        t.url = url.to_owned();
    }

    /// `webNavigation.onErrorOccurred` for a main frame.
    pub fn failed(&mut self, id: TabId, url: &str, error: &str) {
        let t = self.entry(id, url);
        t.nav = Nav::Failed(error.to_owned());
    }

    /// `tabs.onRemoved`. The entry stays, marked closed, until its call releases it, so
    /// the call can tell "closed" from "never heard of".
    pub fn removed(&mut self, id: TabId) {
        match self.tabs.get_mut(&id) {
            Some(t) if t.busy.is_some() => t.closed = true,
            _ => {
                self.tabs.remove(&id);
            }
        }
    }

    /// A tab this extension just opened for `call` at `url`.
    pub fn adopt(&mut self, id: TabId, url: &str, call: &str) {
        let t = self.entry(id, url);
        t.owned = true;
        t.busy = Some(call.to_owned());
    }

    /// A tab this extension opened before the worker restarted (ids are kept in
    /// `storage.session`), as `tabs.get` describes it now.
    pub fn restore(&mut self, id: TabId, url: &str, complete: bool) {
        let t = self.entry(id, url);
        t.owned = true;
        t.url = url.to_owned();
        if complete && t.nav == Nav::Loading {
            t.nav = Nav::Complete;
        }
    }

    /// The ids of the tabs this extension opened (to keep across worker restarts).
    pub fn owned_ids(&self) -> Vec<TabId> {
        self.owned()
            .into_iter()
            .filter(|(_, t)| !t.closed)
            .map(|(id, _)| id)
            .collect()
    }

    /// `tabs.onActivated`: `id` is now the active tab of `window` (and no other tab of
    /// that window is). Only tabs already tracked are recorded.
    pub fn activated(&mut self, id: TabId, window: i32) {
        self.set_active(id, Some(window));
    }

    /// The tab is now its window's active tab (just opened, activated or moved); `window`
    /// when known, else the window it was last seen in. Other tabs of that window are
    /// in the background from now on.
    pub fn set_active(&mut self, id: TabId, window: Option<i32>) {
        let window = window.or_else(|| self.tabs.get(&id).and_then(|t| t.window));
        for (tab_id, t) in self.tabs.iter_mut() {
            if *tab_id == id {
                t.window = window.or(t.window);
                t.active = true;
            } else if window.is_some() && t.window == window {
                t.active = false;
            }
        }
    }

    /// The tab is being moved to a new window of its own: in front there, and no longer
    /// part of the window it leaves.
    pub fn moving(&mut self, id: TabId) {
        if let Some(t) = self.tabs.get_mut(&id) {
            t.active = true;
            t.window = None;
        }
    }

    /// A window where a new tab can be opened in front without hiding a running call:
    /// its active tab is one this extension opened, and none of its tabs is busy. Tabs
    /// share windows this way, so windows only multiply with calls in flight at once
    /// (every extra window cost the browser CPU: 40 windows kept Chromium's window UI
    /// renderer at a full core while idle, 40 tabs in one window cost nothing).
    pub fn idle_window(&self) -> Option<i32> {
        let mut windows: Vec<i32> = self
            .tabs
            .values()
            .filter(|t| t.owned && t.active && !t.closed)
            .filter_map(|t| t.window)
            .filter(|w| {
                !self
                    .tabs
                    .values()
                    .any(|t| t.window == Some(*w) && (t.busy.is_some() || t.closed))
            })
            .collect();
        windows.sort_unstable();
        windows.first().copied()
    }

    /// Another tab of `id`'s window runs a call right now: bringing `id` to the front
    /// there would put that call's page in the background.
    pub fn window_busy_elsewhere(&self, id: TabId) -> bool {
        let Some(window) = self.tabs.get(&id).and_then(|t| t.window) else {
            return false;
        };
        self.tabs
            .iter()
            .any(|(other, t)| *other != id && t.window == Some(window) && t.busy.is_some())
    }

    /// A probe found `method` (directly, or through the lane) in the tab's current
    /// document.
    pub fn found(&mut self, id: TabId, method: &str) -> Option<bool> {
        let t = self.tabs.get(&id)?;
        if t.nav != Nav::Complete {
            return None;
        }
        t.found
            .iter()
            .find(|(m, _, seq)| m == method && *seq == t.nav_seq)
            .map(|(_, lane, _)| *lane)
    }

    /// Remembers that a probe found `method` in the tab's current document.
    pub fn remember_found(&mut self, id: TabId, method: &str, lane: bool) {
        if let Some(t) = self.tabs.get_mut(&id) {
            let seq = t.nav_seq;
            t.found.retain(|(m, _, s)| m != method && *s == seq);
            t.found.push((method.to_owned(), lane, seq));
        }
    }

    /// The busy call starts its method (or script) in the tab's current document.
    pub fn running(&mut self, id: TabId) {
        if let Some(t) = self.tabs.get_mut(&id) {
            t.ran_in = Some(t.nav_seq);
        }
    }

    /// The busy call ends with `method` not found in the tab's current document.
    pub fn method_missing(&mut self, id: TabId, method: &str) {
        if let Some(t) = self.tabs.get_mut(&id) {
            t.missing = Some((method.to_owned(), t.nav_seq));
        }
    }

    /// The tab is about to be reloaded for a call: a navigation to its own URL, counted
    /// now rather than when `onBeforeNavigate` says so, so that the call never takes the
    /// current document for the new one.
    pub fn reloading(&mut self, id: TabId) {
        if let Some(url) = self.tabs.get(&id).map(|t| t.url.clone()) {
            self.before_navigate(id, &url);
        }
    }

    /// The call, which asked for `page`, is done with the tab. The tab is still "at"
    /// `page` unless it navigated while the method ran (page code left the page) or the
    /// method was missing there (e.g. a redirect to a login page).
    pub fn release(&mut self, id: TabId, call: &str, page: &str) {
        if let Some(t) = self.tabs.get_mut(&id)
            && t.busy.as_deref() == Some(call)
        {
            t.busy = None;
            let left = t.ran_in.take().is_some_and(|seq| seq != t.nav_seq);
            let lacked = t.missing.as_ref().is_some_and(|(_, seq)| *seq == t.nav_seq);
            if matches!(t.nav, Nav::Complete | Nav::Interactive) && !left && !lacked {
                t.served = Some((normalize_url(page), t.nav_seq));
            }
            if t.closed {
                self.tabs.remove(&id);
            }
        }
    }

    /// Chooses (and, for a reuse, claims) the tab for `call` of `method`: by default an
    /// idle, loaded tab this extension opened that is exactly at `page`; if the only such
    /// tabs lacked `method` when a call last looked, one of them is reloaded; otherwise a
    /// new tab.
    pub fn choose(&mut self, page: &str, method: &str, policy: TabPolicy, call: &str) -> Choice {
        if policy == TabPolicy::New {
            return Choice::Open;
        }
        let want = normalize_url(page);
        // (lacks the method, id) of every candidate: ready ones sort first.
        let mut idle: Vec<(bool, TabId)> = self
            .tabs
            .iter()
            .filter(|(_, t)| {
                t.owned
                    && t.busy.is_none()
                    && !t.closed
                    && matches!(t.nav, Nav::Complete | Nav::Interactive)
            })
            .filter_map(|(id, t)| {
                let lacks = t
                    .missing
                    .as_ref()
                    .is_some_and(|(m, seq)| m == method && *seq == t.nav_seq);
                let exact = normalize_url(&t.url) == want;
                let served = t
                    .served
                    .as_ref()
                    .is_some_and(|(page, seq)| *page == want && *seq == t.nav_seq);
                // A reload reloads the tab's own URL: only a tab exactly at the page.
                (exact || (served && !lacks)).then_some((lacks, *id))
            })
            .collect();
        idle.sort_unstable();
        let Some(&(lacks, id)) = idle.first() else {
            return Choice::Open;
        };
        if let Some(t) = self.tabs.get_mut(&id) {
            t.busy = Some(call.to_owned());
        }
        if lacks {
            Choice::Reload(id)
        } else {
            Choice::Reuse(id)
        }
    }
}

/// Compares URLs the way Chrome reports them: scheme and host lower-case, an empty path
/// is `/`, the fragment is kept (it is part of "exactly at page").
pub fn normalize_url(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let scheme = scheme.to_ascii_lowercase();
    let mut authority = authority.to_ascii_lowercase();
    for (s, port) in [
        ("http", ":80"),
        ("https", ":443"),
        ("ws", ":80"),
        ("wss", ":443"),
    ] {
        if scheme == s && authority.ends_with(port) {
            authority.truncate(authority.len() - port.len());
        }
    }
    let tail = if tail.is_empty() || tail.starts_with(['?', '#']) {
        format!("/{tail}")
    } else {
        tail.to_owned()
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_chrome() {
        assert_eq!(normalize_url("https://Example.com"), "https://example.com/");
        assert_eq!(
            normalize_url("http://127.0.0.1:80/a?b"),
            "http://127.0.0.1/a?b"
        );
        assert_eq!(normalize_url("http://h:8000?x=1"), "http://h:8000/?x=1");
        assert_eq!(normalize_url("http://h:8000/A#f"), "http://h:8000/A#f");
        assert_eq!(normalize_url("about:blank"), "about:blank");
    }

    fn loaded(tabs: &mut Tabs, id: TabId, url: &str, call: &str) {
        tabs.adopt(id, url, call);
        tabs.before_navigate(id, url);
        tabs.committed(id, url);
        tabs.completed(id, url);
        tabs.release(id, call, url);
    }

    #[test]
    fn reuses_only_idle_owned_loaded_tabs_exactly_at_page() {
        let mut tabs = Tabs::default();
        loaded(&mut tabs, 7, "http://h:1/a.html", "c1");
        assert_eq!(
            tabs.choose("http://h:1/a.html", "m", TabPolicy::Reuse, "c2"),
            Choice::Reuse(7)
        );
        // Busy now: a parallel call to the same page gets a new tab.
        assert_eq!(
            tabs.choose("http://h:1/a.html", "m", TabPolicy::Reuse, "c3"),
            Choice::Open
        );
        tabs.release(7, "c2", "http://h:1/a.html");
        assert_eq!(
            tabs.choose("http://h:1/a.html?x", "m", TabPolicy::Reuse, "c4"),
            Choice::Open
        );
        assert_eq!(
            tabs.choose("http://h:1/a.html", "m", TabPolicy::New, "c5"),
            Choice::Open
        );
        // A tab the user opened is never taken.
        tabs.before_navigate(9, "http://h:1/b.html");
        tabs.completed(9, "http://h:1/b.html");
        assert_eq!(
            tabs.choose("http://h:1/b.html", "m", TabPolicy::Reuse, "c6"),
            Choice::Open
        );
    }

    #[test]
    fn a_parsed_page_whose_load_never_fired_is_reused() {
        let mut tabs = Tabs::default();
        tabs.adopt(5, "http://h:1/", "c1");
        tabs.before_navigate(5, "http://h:1/");
        tabs.dom_ready(5, "http://h:1/");
        tabs.release(5, "c1", "http://h:1/");
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c2"),
            Choice::Reuse(5)
        );
    }

    #[test]
    fn a_redirected_tab_is_reused_for_the_page_it_was_opened_for_until_it_navigates() {
        let mut tabs = Tabs::default();
        tabs.adopt(6, "http://h:1/", "c1");
        tabs.before_navigate(6, "http://h:1/");
        // A server redirect: the tab ends up elsewhere within the same navigation.
        tabs.committed(6, "http://h:1/home");
        tabs.completed(6, "http://h:1/home");
        tabs.release(6, "c1", "http://h:1/");
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c2"),
            Choice::Reuse(6)
        );
        tabs.release(6, "c2", "http://h:1/");
        // It navigated since: no longer "at" the page.
        tabs.before_navigate(6, "http://h:1/other");
        tabs.completed(6, "http://h:1/other");
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c3"),
            Choice::Open
        );
    }

    #[test]
    fn a_tab_that_navigated_away_under_its_call_is_not_reused_for_the_page() {
        let mut tabs = Tabs::default();
        loaded(&mut tabs, 7, "http://h:1/a", "c1");
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c2"),
            Choice::Reuse(7)
        );
        tabs.running(7);
        // The method sends the page elsewhere; that page has loaded by the time the call
        // ends (its failure waits a moment for the navigation events).
        tabs.before_navigate(7, "http://h:1/b");
        tabs.committed(7, "http://h:1/b");
        tabs.completed(7, "http://h:1/b");
        tabs.release(7, "c2", "http://h:1/a");
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c3"),
            Choice::Open
        );
        // It is reused for the page it is at.
        assert_eq!(
            tabs.choose("http://h:1/b", "m", TabPolicy::Reuse, "c4"),
            Choice::Reuse(7)
        );
        tabs.running(7);
        tabs.release(7, "c4", "http://h:1/b");
        assert_eq!(
            tabs.choose("http://h:1/b", "m", TabPolicy::Reuse, "c5"),
            Choice::Reuse(7)
        );
    }

    #[test]
    fn a_tab_whose_document_lacked_the_method_is_reloaded_for_it() {
        let mut tabs = Tabs::default();
        loaded(&mut tabs, 3, "http://h:1/a", "c1");
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c2"),
            Choice::Reuse(3)
        );
        tabs.method_missing(3, "m");
        tabs.release(3, "c2", "http://h:1/a");
        // Other methods still run in that document as it is.
        assert_eq!(
            tabs.choose("http://h:1/a", "n", TabPolicy::Reuse, "c3"),
            Choice::Reuse(3)
        );
        tabs.release(3, "c3", "http://h:1/a");
        // `m` gets a fresh document: the tab is reloaded, not reused as it is.
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c4"),
            Choice::Reload(3)
        );
        tabs.reloading(3);
        assert!(tabs.get(3).is_some_and(|t| t.nav == Nav::Loading));
        tabs.before_navigate(3, "http://h:1/a");
        tabs.committed(3, "http://h:1/a");
        tabs.completed(3, "http://h:1/a");
        tabs.running(3);
        tabs.release(3, "c4", "http://h:1/a");
        // Found there now: an ordinary reuse.
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c5"),
            Choice::Reuse(3)
        );
        tabs.release(3, "c5", "http://h:1/a");
        // A ready tab at the page is preferred to reloading one that lacked the method.
        loaded(&mut tabs, 4, "http://h:1/a", "c6");
        tabs.method_missing(3, "m");
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c7"),
            Choice::Reuse(4)
        );
    }

    #[test]
    fn a_redirect_to_a_page_without_the_method_is_not_the_page() {
        let mut tabs = Tabs::default();
        // Opened for /app, redirected (by the page) to /login, where `m` is missing.
        tabs.adopt(5, "http://h:1/app", "c1");
        tabs.before_navigate(5, "http://h:1/app");
        tabs.completed(5, "http://h:1/app");
        tabs.before_navigate(5, "http://h:1/login");
        tabs.completed(5, "http://h:1/login");
        tabs.method_missing(5, "m");
        tabs.release(5, "c1", "http://h:1/app");
        // The next call for /app opens the page afresh (the user may have logged in since).
        assert_eq!(
            tabs.choose("http://h:1/app", "m", TabPolicy::Reuse, "c2"),
            Choice::Open
        );
        // Once the user logs in in that tab and the site sends it back to /app, it is
        // at the page again.
        tabs.before_navigate(5, "http://h:1/app");
        tabs.completed(5, "http://h:1/app");
        assert_eq!(
            tabs.choose("http://h:1/app", "m", TabPolicy::Reuse, "c3"),
            Choice::Reuse(5)
        );
    }

    #[test]
    fn restored_tabs_are_owned_again() {
        let mut tabs = Tabs::default();
        tabs.restore(8, "http://h:1/", true);
        tabs.restore(9, "http://h:1/x", false);
        assert_eq!(tabs.owned_ids(), vec![8, 9]);
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c1"),
            Choice::Reuse(8)
        );
        assert_eq!(
            tabs.choose("http://h:1/x", "m", TabPolicy::Reuse, "c2"),
            Choice::Open,
            "still loading"
        );
    }

    #[test]
    fn failed_or_closed_tabs_are_not_reused() {
        let mut tabs = Tabs::default();
        loaded(&mut tabs, 1, "http://h:1/", "c1");
        tabs.failed(1, "http://h:1/", "net::ERR_CONNECTION_REFUSED");
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c2"),
            Choice::Open
        );
        loaded(&mut tabs, 2, "http://h:1/", "c3");
        tabs.removed(2);
        assert!(tabs.get(2).is_none());
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c4"),
            Choice::Open
        );
    }

    #[test]
    fn closing_a_busy_tab_is_visible_to_its_call() {
        let mut tabs = Tabs::default();
        tabs.adopt(3, "http://h:1/", "c1");
        tabs.removed(3);
        assert!(tabs.get(3).is_some_and(|t| t.closed));
        tabs.release(3, "c1", "http://h:1/");
        assert!(tabs.get(3).is_none());
    }

    #[test]
    fn navigation_counter_moves_on_each_main_frame_navigation() {
        let mut tabs = Tabs::default();
        tabs.adopt(4, "http://h:1/", "c1");
        tabs.before_navigate(4, "http://h:1/");
        tabs.committed(4, "http://h:1/");
        tabs.completed(4, "http://h:1/");
        let seq = tabs.get(4).map(|t| t.nav_seq);
        tabs.before_navigate(4, "http://h:1/other");
        assert_ne!(tabs.get(4).map(|t| t.nav_seq), seq);
        // A commit without onBeforeNavigate also counts.
        tabs.completed(4, "http://h:1/other");
        let seq = tabs.get(4).map(|t| t.nav_seq);
        tabs.committed(4, "http://h:1/back");
        assert_ne!(tabs.get(4).map(|t| t.nav_seq), seq);
    }

    #[test]
    fn a_found_method_is_known_until_the_document_changes() {
        let mut tabs = Tabs::default();
        tabs.adopt(5, "http://h:1/", "c1");
        tabs.completed(5, "http://h:1/");
        assert_eq!(tabs.found(5, "m"), None);
        tabs.remember_found(5, "m", false);
        tabs.remember_found(5, "viaLane", true);
        assert_eq!(tabs.found(5, "m"), Some(false));
        assert_eq!(tabs.found(5, "viaLane"), Some(true));
        assert_eq!(tabs.found(5, "other"), None);
        // A reload or navigation is a new document: probe again.
        tabs.before_navigate(5, "http://h:1/");
        assert_eq!(tabs.found(5, "m"), None);
        tabs.completed(5, "http://h:1/");
        assert_eq!(tabs.found(5, "m"), None);
        tabs.remember_found(5, "m", false);
        assert_eq!(tabs.found(5, "m"), Some(false));
        assert_eq!(
            tabs.get(5).map(|t| t.found.len()),
            Some(1),
            "stale entries dropped"
        );
    }

    #[test]
    fn activation_is_tracked_per_window() {
        let mut tabs = Tabs::default();
        tabs.adopt(6, "http://h:1/a", "c1");
        tabs.adopt(7, "http://h:1/b", "c2");
        tabs.set_active(6, Some(1));
        tabs.set_active(7, Some(2));
        assert!(tabs.get(6).is_some_and(|t| t.active));
        // The user opened another tab in window 1: tab 6 is in the background now.
        tabs.activated(99, 1);
        assert!(tabs.get(6).is_some_and(|t| !t.active));
        assert!(
            tabs.get(7).is_some_and(|t| t.active),
            "other windows are not affected"
        );
        tabs.activated(6, 1);
        assert!(tabs.get(6).is_some_and(|t| t.active));
    }

    #[test]
    fn new_tabs_share_a_window_unless_it_runs_a_call() {
        let mut tabs = Tabs::default();
        assert_eq!(tabs.idle_window(), None, "no window yet: open one");
        tabs.adopt(1, "http://h:1/a", "c1");
        tabs.set_active(1, Some(10));
        assert_eq!(tabs.idle_window(), None, "tab 1 runs c1");
        tabs.completed(1, "http://h:1/a");
        tabs.release(1, "c1", "http://h:1/a");
        assert_eq!(tabs.idle_window(), Some(10));
        // A second page opens in front in window 10; tab 1 goes to the background.
        tabs.adopt(2, "http://h:1/b", "c2");
        tabs.set_active(2, Some(10));
        assert!(
            tabs.get(1)
                .is_some_and(|t| !t.active && t.window == Some(10))
        );
        // While c2 runs, tab 1 must not come to the front in window 10.
        assert!(tabs.window_busy_elsewhere(1));
        assert_eq!(tabs.idle_window(), None);
        // A call for tab 1 while c2 runs: tab 1 moves out, and window 10 keeps tab 2.
        tabs.moving(1);
        assert!(tabs.get(1).is_some_and(|t| t.active && t.window.is_none()));
        assert!(!tabs.window_busy_elsewhere(1));
        tabs.set_active(1, Some(11));
        assert!(
            tabs.get(2)
                .is_some_and(|t| t.active && t.window == Some(10))
        );
        tabs.set_active(1, Some(10));
        tabs.release(2, "c2", "http://h:1/b");
        assert!(!tabs.window_busy_elsewhere(1));
        // The user brought a tab of their own to the front there: not ours to cover.
        tabs.activated(99, 10);
        assert_eq!(tabs.idle_window(), None);
    }
}
