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

use std::collections::{HashMap, HashSet};

use any_protocol::{CallId, TabPolicy};
use serde::Serialize;

pub type TabId = i32;

/// How many idle tabs this extension keeps open by default; beyond it, the least
/// recently used idle ones are closed ([`Tabs::excess`]).
pub const DEFAULT_MAX_TABS: usize = 10;

/// How many places new windows cascade over (see `sw/call.rs` `create_tab`).
pub const SLOTS: u32 = 8;

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
    /// The main frame's URL as of the last event (a redirect, `pushState`,
    /// `replaceState` and fragment changes included).
    pub url: String,
    /// The page (normalized) the tab's latest navigation was for: a server redirect
    /// (`http:` → `https:`, `/` → `/home`) leaves the tab "at" the page it was opened
    /// for, until it navigates or changes its URL in the document.
    pub at: String,
    /// Counts main-frame navigations (new documents); a change while a method runs
    /// means the page navigated away under it.
    pub nav_seq: u64,
    /// This extension opened the tab (only such tabs are reused).
    pub owned: bool,
    /// The calls running in the tab now (concurrent calls to one page share its tab).
    pub calls: Vec<CallId>,
    pub closed: bool,
    /// A call found this method missing in the document at this navigation: the next
    /// call for it reloads the tab (a userscript installed since runs only in a new
    /// document) instead of failing the same way.
    pub missing: Option<(String, u64)>,
    /// Methods the tab was reloaded for and not found since: they never cause another
    /// reload (no reload loops).
    pub reloaded_for: Vec<String>,
    /// Methods a probe found in this tab's current document (name, via the lane, at
    /// `nav_seq`): a later call to one of them skips the probe and invokes at once.
    pub found: Vec<(String, bool, u64)>,
    /// The window the tab is in and whether it is that window's active tab, as
    /// `tabs.onActivated` last said (`false` when unknown).
    pub window: Option<i32>,
    pub active: bool,
    /// A call timed out in it and the page is being checked: not chosen meanwhile.
    pub checking: bool,
    /// The page did not answer that check (a method that never yields,
    /// `while (true) {}`): never chosen again.
    pub unresponsive: bool,
    /// When a call last started or ended here (a counter, for least-recently-used).
    pub used: u64,
    /// The extension opened or reloaded the tab, and no document has loaded since: a
    /// download that starts now is the call's page turning out to be a file.
    pub opening: bool,
    /// The call's page turned out to be a download: what it was.
    pub download: Option<String>,
    /// Where the tab's window was placed among the extension's windows.
    pub slot: Option<u32>,
}

impl Tab {
    fn new(url: &str) -> Self {
        Tab {
            nav: Nav::Loading,
            url: url.to_owned(),
            at: normalize_url(url),
            nav_seq: 0,
            owned: false,
            calls: Vec::new(),
            closed: false,
            missing: None,
            reloaded_for: Vec::new(),
            found: Vec::new(),
            window: None,
            active: false,
            checking: false,
            unresponsive: false,
            used: 0,
            opening: false,
            download: None,
            slot: None,
        }
    }

    pub fn busy(&self) -> bool {
        !self.calls.is_empty()
    }

    fn loaded(&self) -> bool {
        matches!(self.nav, Nav::Complete | Nav::Interactive)
    }

    /// Is the tab at `page` (normalized)? Its current URL is, or its latest navigation
    /// was for it.
    fn is_at(&self, page: &str) -> bool {
        self.at == page || normalize_url(&self.url) == page
    }
}

/// The choice for a new call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Run in this loaded tab at the page (already claimed for the call); other calls
    /// may be running there too.
    Reuse(TabId),
    /// Run in this tab, which is still loading the page for another call (claimed).
    Join(TabId),
    /// Reload this idle tab, which is at the page but whose document lacked the method
    /// (already claimed for the call), and run there.
    Reload(TabId),
    /// Another call is opening a tab at the page right now: ask again shortly.
    Wait,
    /// Open a new tab at the page.
    Open,
}

#[derive(Debug, Default)]
pub struct Tabs {
    tabs: HashMap<TabId, Tab>,
    /// Pages (normalized) a call is opening a tab for right now: other calls for the
    /// same page wait for that tab instead of opening their own.
    opening: HashSet<String>,
    clock: u64,
}

impl Tabs {
    /// The tabs this extension opened, for the popup and the server's status.
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

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// `webNavigation.onBeforeNavigate` for a main frame: a new document for `url`.
    pub fn before_navigate(&mut self, id: TabId, url: &str) {
        let t = self.entry(id, url);
        t.nav = Nav::Loading;
        t.url = url.to_owned();
        t.at = normalize_url(url);
        t.nav_seq += 1;
    }

    /// `webNavigation.onCommitted` for a main frame. A navigation that commits without a
    /// preceding `onBeforeNavigate` (e.g. browser-initiated history moves) still counts,
    /// and is at its own URL; otherwise a URL that differs from the one the navigation
    /// started with is a server redirect, and the tab stays at the page it asked for.
    pub fn committed(&mut self, id: TabId, url: &str) {
        let t = self.entry(id, url);
        if t.nav != Nav::Loading {
            t.nav_seq += 1;
            t.at = normalize_url(url);
        }
        t.nav = Nav::Committed;
        t.url = url.to_owned();
    }

    /// `webNavigation.onHistoryStateUpdated` (`pushState`, `replaceState`) or
    /// `onReferenceFragmentUpdated` for a main frame: the same document, at a new URL.
    pub fn url_changed(&mut self, id: TabId, url: &str) {
        let t = self.entry(id, url);
        t.url = url.to_owned();
        t.at = normalize_url(url);
    }

    /// `webNavigation.onDOMContentLoaded` for a main frame.
    pub fn dom_ready(&mut self, id: TabId, url: &str) {
        let t = self.entry(id, url);
        t.opening = false;
        if t.nav != Nav::Complete {
            t.nav = Nav::Interactive;
            t.url = url.to_owned();
        }
    }

    /// `webNavigation.onCompleted` for a main frame.
    pub fn completed(&mut self, id: TabId, url: &str) {
        let t = self.entry(id, url);
        t.opening = false;
        t.nav = Nav::Complete;
        t.url = url.to_owned();
    }

    /// `webNavigation.onErrorOccurred` for a main frame.
    pub fn failed(&mut self, id: TabId, url: &str, error: &str) {
        let t = self.entry(id, url);
        t.nav = Nav::Failed(error.to_owned());
    }

    /// `tabs.onRemoved`. The entry stays, marked closed, until its calls release it, so
    /// they can tell "closed" from "never heard of".
    pub fn removed(&mut self, id: TabId) {
        match self.tabs.get_mut(&id) {
            Some(t) if t.busy() => t.closed = true,
            _ => {
                self.tabs.remove(&id);
            }
        }
    }

    /// A tab this extension just opened for `call` at `url`, in `window` (when known).
    /// Ends the opening [`Tabs::choose`] started for the page.
    pub fn adopt(&mut self, id: TabId, url: &str, call: &str) {
        let used = self.tick();
        let t = self.entry(id, url);
        t.owned = true;
        t.opening = t.nav == Nav::Loading;
        t.calls.push(call.to_owned());
        t.used = used;
    }

    /// `downloads.onCreated` for `url`: if a tab this extension is opening or reloading
    /// was navigating to `url`, that page is a download (`what` describes it); returns
    /// the tab. Downloads a page starts itself are not the extension's business.
    pub fn download_started(&mut self, url: &str, what: &str) -> Option<TabId> {
        let want = normalize_url(url);
        let (id, t) = self.tabs.iter_mut().find(|(_, t)| {
            t.owned && t.opening && (t.at == want || normalize_url(&t.url) == want)
        })?;
        t.download = Some(what.to_owned());
        t.opening = false;
        Some(*id)
    }

    /// The opening of a tab at `page` (begun by [`Tabs::choose`] returning
    /// [`Choice::Open`]) is over, whether a tab was adopted or not.
    pub fn opened(&mut self, page: &str) {
        self.opening.remove(&normalize_url(page));
    }

    /// A tab this extension opened before the worker restarted (ids are kept in
    /// `storage.session`), as `tabs.get` describes it now.
    pub fn restore(&mut self, id: TabId, url: &str, complete: bool) {
        let t = self.entry(id, url);
        t.owned = true;
        t.url = url.to_owned();
        t.at = normalize_url(url);
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
            t.reloaded_for.retain(|m| m != method);
        }
    }

    /// A call ended with `method` not found in the tab's current document.
    pub fn method_missing(&mut self, id: TabId, method: &str) {
        if let Some(t) = self.tabs.get_mut(&id) {
            t.missing = Some((method.to_owned(), t.nav_seq));
        }
    }

    /// The tab is about to be reloaded for a call of `method`: a navigation to its own
    /// URL, counted now rather than when `onBeforeNavigate` says so, so that the call
    /// never takes the current document for the new one.
    pub fn reloading(&mut self, id: TabId, method: &str) {
        if let Some(url) = self.tabs.get(&id).map(|t| t.url.clone()) {
            self.before_navigate(id, &url);
        }
        if let Some(t) = self.tabs.get_mut(&id) {
            t.reloaded_for.push(method.to_owned());
            t.opening = true;
        }
    }

    /// A call timed out in the tab: until [`Tabs::checked`], no call is given it.
    pub fn checking(&mut self, id: TabId) {
        if let Some(t) = self.tabs.get_mut(&id) {
            t.checking = true;
        }
    }

    /// [`Tabs::checking`] the tab `call` runs in.
    pub fn checking_call(&mut self, call: &str) {
        for t in self.tabs.values_mut() {
            if t.calls.iter().any(|c| c == call) {
                t.checking = true;
            }
        }
    }

    /// The check after a timeout: the page answered (`responsive`), or it did not, and
    /// the tab is never chosen again.
    pub fn checked(&mut self, id: TabId, responsive: bool) {
        if let Some(t) = self.tabs.get_mut(&id) {
            t.checking = false;
            t.unresponsive |= !responsive;
        }
    }

    /// The call is done with the tab.
    pub fn release(&mut self, id: TabId, call: &str) {
        let used = self.tick();
        if let Some(t) = self.tabs.get_mut(&id) {
            t.calls.retain(|c| c != call);
            t.used = used;
            if t.closed && !t.busy() {
                self.tabs.remove(&id);
            }
        }
    }

    /// Chooses (and, for a tab, claims) the tab for `call` of `method`. By default, a tab
    /// this extension opened that is at `page` (its current URL, or the page its latest
    /// navigation was for), whether or not other calls run there: loaded ones first,
    /// then one still loading the page for another call. If the only such tab lacked
    /// `method` when a call last looked, is idle and was not reloaded for it before, it
    /// is reloaded. If another call is opening a tab at the page, [`Choice::Wait`].
    /// Otherwise, and always for [`TabPolicy::New`], a new tab.
    pub fn choose(&mut self, page: &str, method: &str, policy: TabPolicy, call: &str) -> Choice {
        if policy == TabPolicy::New {
            return Choice::Open;
        }
        let want = normalize_url(page);
        // (lacks the method, still loading, least calls, id) of every candidate.
        let mut candidates: Vec<(bool, bool, usize, TabId)> = self
            .tabs
            .iter()
            .filter(|(_, t)| {
                t.owned
                    && !t.closed
                    && !t.unresponsive
                    && !t.checking
                    && !matches!(t.nav, Nav::Failed(_))
                    && t.is_at(&want)
            })
            .map(|(id, t)| {
                let lacks = t
                    .missing
                    .as_ref()
                    .is_some_and(|(m, seq)| m == method && *seq == t.nav_seq);
                (lacks, !t.loaded(), t.calls.len(), *id)
            })
            .collect();
        candidates.sort_unstable();
        let Some(&(lacks, loading, _, id)) = candidates.first() else {
            if self.opening.contains(&want) {
                return Choice::Wait;
            }
            self.opening.insert(want);
            return Choice::Open;
        };
        let used = self.tick();
        let Some(t) = self.tabs.get_mut(&id) else {
            return Choice::Open;
        };
        // A reload would end the other calls running there, and a second reload for the
        // same method would not find it either.
        let reload = lacks && !loading && !t.busy() && !t.reloaded_for.iter().any(|m| m == method);
        t.calls.push(call.to_owned());
        t.used = used;
        if reload {
            Choice::Reload(id)
        } else if loading {
            Choice::Join(id)
        } else {
            Choice::Reuse(id)
        }
    }

    /// The smallest window slot no open tab of this extension has (up to [`SLOTS`], then
    /// they wrap around).
    pub fn free_slot(&self) -> u32 {
        let used: HashSet<u32> = self
            .tabs
            .values()
            .filter(|t| t.owned && !t.closed)
            .filter_map(|t| t.slot)
            .collect();
        (0..SLOTS)
            .find(|s| !used.contains(s))
            .unwrap_or(u32::try_from(used.len()).unwrap_or(0) % SLOTS)
    }

    pub fn set_slot(&mut self, id: TabId, slot: u32) {
        if let Some(t) = self.tabs.get_mut(&id) {
            t.slot = Some(slot);
        }
    }

    /// The tabs this extension opened, as the server's status shows them.
    pub fn report(&self, max_tabs: usize) -> any_protocol::Tabs {
        let tabs = self
            .owned()
            .into_iter()
            .filter(|(_, t)| !t.closed)
            .map(|(id, t)| any_protocol::OwnedTab {
                id: id.into(),
                url: t.url.clone(),
                state: if t.unresponsive {
                    "unresponsive"
                } else {
                    match t.nav {
                        Nav::Complete | Nav::Interactive => "loaded",
                        Nav::Failed(_) => "failed",
                        Nav::Loading | Nav::Committed => "loading",
                    }
                }
                .to_owned(),
                calls: u32::try_from(t.calls.len()).unwrap_or(u32::MAX),
            })
            .collect();
        any_protocol::Tabs {
            tabs,
            max_tabs: u32::try_from(max_tabs).unwrap_or(u32::MAX),
        }
    }

    /// Idle tabs this extension opened beyond `max` of them, least recently used first:
    /// the tabs to close. Unresponsive tabs always count as beyond.
    pub fn excess(&self, max: usize) -> Vec<TabId> {
        let mut idle: Vec<(bool, u64, TabId)> = self
            .tabs
            .iter()
            .filter(|(_, t)| t.owned && !t.closed && !t.busy())
            .map(|(id, t)| (!t.unresponsive, t.used, *id))
            .collect();
        idle.sort_unstable();
        let open = self.tabs.values().filter(|t| t.owned && !t.closed).count();
        let over = open.saturating_sub(max);
        let mut out: Vec<TabId> = idle
            .iter()
            .filter(|(responsive, _, _)| !responsive)
            .map(|(_, _, id)| *id)
            .collect();
        for (_, _, id) in idle.iter().filter(|(responsive, _, _)| *responsive) {
            if out.len() >= over {
                break;
            }
            out.push(*id);
        }
        out
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

    /// A tab opened for `call` at `url` that loaded it, and the call released.
    fn loaded(tabs: &mut Tabs, id: TabId, url: &str, call: &str) {
        tabs.adopt(id, url, call);
        tabs.opened(url);
        tabs.before_navigate(id, url);
        tabs.committed(id, url);
        tabs.completed(id, url);
        tabs.release(id, call);
    }

    #[test]
    fn reuses_only_owned_loaded_tabs_at_the_page() {
        let mut tabs = Tabs::default();
        loaded(&mut tabs, 7, "http://h:1/a.html", "c1");
        assert_eq!(
            tabs.choose("http://h:1/a.html", "m", TabPolicy::Reuse, "c2"),
            Choice::Reuse(7)
        );
        // Busy now: a concurrent call to the same page shares the tab.
        assert_eq!(
            tabs.choose("http://h:1/a.html", "m", TabPolicy::Reuse, "c3"),
            Choice::Reuse(7)
        );
        assert_eq!(tabs.get(7).map(|t| t.calls.len()), Some(2));
        tabs.release(7, "c2");
        tabs.release(7, "c3");
        assert!(tabs.get(7).is_some_and(|t| !t.busy()));
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
    fn calls_for_a_page_being_opened_wait_for_its_tab_and_join_it() {
        let mut tabs = Tabs::default();
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c1"),
            Choice::Open
        );
        assert_eq!(
            tabs.choose("http://h:1", "m", TabPolicy::Reuse, "c2"),
            Choice::Wait,
            "the same page, written another way"
        );
        assert_eq!(
            tabs.choose("http://h:1/other", "m", TabPolicy::Reuse, "c3"),
            Choice::Open,
            "another page opens its own"
        );
        tabs.adopt(4, "http://h:1/", "c1");
        tabs.opened("http://h:1/");
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c2"),
            Choice::Join(4)
        );
        tabs.before_navigate(4, "http://h:1/");
        tabs.completed(4, "http://h:1/");
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c5"),
            Choice::Reuse(4)
        );
        assert_eq!(tabs.get(4).map(|t| t.calls.len()), Some(3));
        // An opening that failed lets the next call open.
        tabs.opened("http://h:1/other");
        assert_eq!(
            tabs.choose("http://h:1/other", "m", TabPolicy::Reuse, "c6"),
            Choice::Open
        );
    }

    #[test]
    fn a_page_that_is_a_download_is_told_apart_from_downloads_pages_start() {
        let mut tabs = Tabs::default();
        tabs.adopt(4, "http://h:1/report.csv", "c1");
        tabs.before_navigate(4, "http://h:1/report.csv");
        assert_eq!(
            tabs.download_started("http://h:1/other.csv", "text/csv"),
            None
        );
        assert_eq!(
            tabs.download_started("http://h:1/report.csv", "text/csv"),
            Some(4)
        );
        assert_eq!(
            tabs.get(4).and_then(|t| t.download.as_deref()),
            Some("text/csv")
        );
        // A loaded page that starts a download (an export button) keeps it.
        loaded(&mut tabs, 5, "http://h:1/app", "c2");
        tabs.before_navigate(5, "http://h:1/export.csv");
        assert_eq!(
            tabs.download_started("http://h:1/export.csv", "text/csv"),
            None
        );
    }

    #[test]
    fn a_parsed_page_whose_load_never_fired_is_reused() {
        let mut tabs = Tabs::default();
        tabs.adopt(5, "http://h:1/", "c1");
        tabs.before_navigate(5, "http://h:1/");
        tabs.dom_ready(5, "http://h:1/");
        tabs.release(5, "c1");
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c2"),
            Choice::Reuse(5)
        );
    }

    #[test]
    fn a_redirected_tab_is_at_the_page_it_was_opened_for_until_it_moves() {
        let mut tabs = Tabs::default();
        tabs.adopt(6, "http://h:1/", "c1");
        tabs.before_navigate(6, "http://h:1/");
        // A server redirect: the tab ends up elsewhere within the same navigation.
        tabs.committed(6, "http://h:1/home");
        tabs.completed(6, "http://h:1/home");
        tabs.release(6, "c1");
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c2"),
            Choice::Reuse(6)
        );
        tabs.release(6, "c2");
        assert_eq!(
            tabs.choose("http://h:1/home", "m", TabPolicy::Reuse, "c3"),
            Choice::Reuse(6),
            "and at the URL it is at"
        );
        tabs.release(6, "c3");
        // It navigated since: no longer "at" the page.
        tabs.before_navigate(6, "http://h:1/other");
        tabs.completed(6, "http://h:1/other");
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c4"),
            Choice::Open
        );
    }

    #[test]
    fn reuse_follows_push_state_replace_state_and_fragments() {
        let mut tabs = Tabs::default();
        loaded(&mut tabs, 7, "http://h:1/a", "c1");
        tabs.url_changed(7, "http://h:1/b");
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c2"),
            Choice::Open,
            "the tab left /a"
        );
        tabs.opened("http://h:1/a");
        assert_eq!(
            tabs.choose("http://h:1/b", "m", TabPolicy::Reuse, "c3"),
            Choice::Reuse(7)
        );
        tabs.release(7, "c3");
        tabs.url_changed(7, "http://h:1/b#done");
        assert_eq!(
            tabs.choose("http://h:1/b#done", "m", TabPolicy::Reuse, "c4"),
            Choice::Reuse(7)
        );
        assert_eq!(tabs.get(7).map(|t| t.nav_seq), Some(1), "the same document");
    }

    #[test]
    fn a_tab_that_navigated_away_under_its_call_is_at_its_new_page() {
        let mut tabs = Tabs::default();
        loaded(&mut tabs, 7, "http://h:1/a", "c1");
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c2"),
            Choice::Reuse(7)
        );
        // The method sends the page elsewhere.
        tabs.before_navigate(7, "http://h:1/b");
        tabs.committed(7, "http://h:1/b");
        tabs.completed(7, "http://h:1/b");
        tabs.release(7, "c2");
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c3"),
            Choice::Open
        );
        assert_eq!(
            tabs.choose("http://h:1/b", "m", TabPolicy::Reuse, "c4"),
            Choice::Reuse(7)
        );
    }

    #[test]
    fn a_tab_whose_document_lacked_the_method_is_reloaded_for_it_once() {
        let mut tabs = Tabs::default();
        loaded(&mut tabs, 3, "http://h:1/a", "c1");
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c2"),
            Choice::Reuse(3)
        );
        tabs.method_missing(3, "m");
        tabs.release(3, "c2");
        // Other methods still run in that document as it is.
        assert_eq!(
            tabs.choose("http://h:1/a", "n", TabPolicy::Reuse, "c3"),
            Choice::Reuse(3)
        );
        // While another call runs there, the tab is not reloaded under it.
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c4"),
            Choice::Reuse(3)
        );
        tabs.release(3, "c3");
        tabs.release(3, "c4");
        // `m` gets a fresh document: the tab is reloaded, not reused as it is.
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c5"),
            Choice::Reload(3)
        );
        tabs.reloading(3, "m");
        assert!(tabs.get(3).is_some_and(|t| t.nav == Nav::Loading));
        tabs.before_navigate(3, "http://h:1/a");
        tabs.completed(3, "http://h:1/a");
        // Still missing after the reload: the next call does not reload again.
        tabs.method_missing(3, "m");
        tabs.release(3, "c5");
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c6"),
            Choice::Reuse(3)
        );
        tabs.release(3, "c6");
        // Once found, a later absence may reload again.
        tabs.remember_found(3, "m", false);
        tabs.before_navigate(3, "http://h:1/a");
        tabs.completed(3, "http://h:1/a");
        tabs.method_missing(3, "m");
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c7"),
            Choice::Reload(3)
        );
        tabs.release(3, "c7");
        // A ready tab at the page is preferred to reloading one that lacked the method.
        loaded(&mut tabs, 4, "http://h:1/a", "c8");
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c9"),
            Choice::Reuse(4)
        );
    }

    #[test]
    fn a_redirect_by_the_page_to_a_login_page_is_not_the_page() {
        let mut tabs = Tabs::default();
        // Opened for /app, sent (by the page's code) to /login.
        tabs.adopt(5, "http://h:1/app", "c1");
        tabs.before_navigate(5, "http://h:1/app");
        tabs.completed(5, "http://h:1/app");
        tabs.before_navigate(5, "http://h:1/login");
        tabs.completed(5, "http://h:1/login");
        tabs.method_missing(5, "m");
        tabs.release(5, "c1");
        assert_eq!(
            tabs.choose("http://h:1/app", "m", TabPolicy::Reuse, "c2"),
            Choice::Open
        );
        tabs.opened("http://h:1/app");
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
            Choice::Join(9),
            "still loading"
        );
    }

    #[test]
    fn failed_closed_or_unresponsive_tabs_are_not_reused() {
        let mut tabs = Tabs::default();
        loaded(&mut tabs, 1, "http://h:1/", "c1");
        tabs.failed(1, "http://h:1/", "net::ERR_CONNECTION_REFUSED");
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c2"),
            Choice::Open
        );
        tabs.opened("http://h:1/");
        loaded(&mut tabs, 2, "http://h:1/", "c3");
        tabs.removed(2);
        assert!(tabs.get(2).is_none());
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c4"),
            Choice::Open
        );
        tabs.opened("http://h:1/");
        loaded(&mut tabs, 3, "http://h:1/", "c5");
        tabs.checking(3);
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c6"),
            Choice::Open,
            "not while it is being checked"
        );
        tabs.opened("http://h:1/");
        tabs.checked(3, true);
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c7"),
            Choice::Reuse(3)
        );
        tabs.release(3, "c7");
        tabs.checking(3);
        tabs.checked(3, false);
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c8"),
            Choice::Open
        );
        assert_eq!(tabs.excess(100), vec![3], "closed whatever the limit");
    }

    #[test]
    fn closing_a_busy_tab_is_visible_to_its_calls() {
        let mut tabs = Tabs::default();
        tabs.adopt(3, "http://h:1/", "c1");
        assert_eq!(
            tabs.choose("http://h:1/", "m", TabPolicy::Reuse, "c2"),
            Choice::Join(3)
        );
        tabs.removed(3);
        assert!(tabs.get(3).is_some_and(|t| t.closed));
        tabs.release(3, "c1");
        assert!(tabs.get(3).is_some_and(|t| t.closed), "c2 still holds it");
        tabs.release(3, "c2");
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
        // A URL change inside the document does not.
        let seq = tabs.get(4).map(|t| t.nav_seq);
        tabs.url_changed(4, "http://h:1/back#x");
        assert_eq!(tabs.get(4).map(|t| t.nav_seq), seq);
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
    fn windows_take_the_first_free_slot() {
        let mut tabs = Tabs::default();
        assert_eq!(tabs.free_slot(), 0);
        for id in 0..3 {
            tabs.adopt(id, "http://h:1/", "c");
            tabs.set_slot(id, tabs.free_slot());
        }
        assert_eq!(tabs.free_slot(), 3);
        // Its window closes with the tab.
        tabs.removed(1);
        assert_eq!(tabs.free_slot(), 1);
    }

    #[test]
    fn idle_tabs_beyond_the_limit_are_closed_least_recently_used_first() {
        let mut tabs = Tabs::default();
        for (id, page) in [
            (1, "http://h:1/a"),
            (2, "http://h:1/b"),
            (3, "http://h:1/c"),
        ] {
            loaded(&mut tabs, id, page, &format!("c{id}"));
        }
        assert_eq!(tabs.excess(3), Vec::<TabId>::new());
        // /a is used again: /b is now the least recently used.
        assert_eq!(
            tabs.choose("http://h:1/a", "m", TabPolicy::Reuse, "c4"),
            Choice::Reuse(1)
        );
        tabs.release(1, "c4");
        assert_eq!(tabs.excess(2), vec![2]);
        assert_eq!(tabs.excess(1), vec![2, 3]);
        // A busy tab is never closed, but counts.
        assert_eq!(
            tabs.choose("http://h:1/b", "m", TabPolicy::Reuse, "c5"),
            Choice::Reuse(2)
        );
        assert_eq!(tabs.excess(1), vec![3, 1]);
        let report = tabs.report(1);
        assert_eq!(report.max_tabs, 1);
        let rows: Vec<(i64, &str, &str, u32)> = report
            .tabs
            .iter()
            .map(|t| (t.id, t.url.as_str(), t.state.as_str(), t.calls))
            .collect();
        assert_eq!(
            rows,
            vec![
                (1, "http://h:1/a", "loaded", 0),
                (2, "http://h:1/b", "loaded", 1),
                (3, "http://h:1/c", "loaded", 0)
            ]
        );
    }
}
