//! When a call may run its method, and when it must give up: plain Rust, no browser.
//!
//! Runs in: the extension's service worker (compiled to wasm) and in native unit tests;
//! it touches no browser API.
//!
//! A call waits for real readiness: the main frame's navigation completed **and**
//! `globalThis.__any__[method]` answers a MAIN-world probe (directly, or through the
//! postMessage lane). Userscripts may register their methods seconds after load, so
//! while the page has no `__any__` methods at all the probe is retried until the call's
//! deadline; once it has others but not this one (a typo, a script that serves other
//! methods), the call fails [`METHOD_MISSING_MS`] after load, naming what is there.
//! While the method runs, [`running`] watches for the tab closing, the page navigating
//! away, a cancel and the deadline, so nothing ever hangs.

use any_protocol::{ErrorBody, ErrorCode, Stage};

use crate::tabs::{Nav, Tab};

/// A page whose document is parsed but whose `load` has not fired after this long (a
/// hanging image, a long poll) counts as loaded, so its methods can still be called.
pub const LOAD_GRACE_MS: f64 = 5_000.0;
/// How long after the page loaded a missing method is waited for when the page already
/// has other `__any__` methods, or answered with an HTTP error status.
pub const METHOD_MISSING_MS: f64 = 2_000.0;
/// A missing method is reported this long before the call's deadline, so the caller
/// gets `method_not_found` rather than a bare `timeout`.
pub const DEADLINE_MARGIN_MS: f64 = 300.0;
/// How often the in-memory tab state is looked at while waiting.
pub const POLL_MS: u32 = 20;
/// How often the MAIN-world probe runs while the method is missing.
pub const PROBE_INTERVAL_MS: f64 = 100.0;
/// How long a navigation that was aborted (`net::ERR_ABORTED`, which is also how a page
/// that turns out to be a download ends) waits for the download to be reported.
pub const ABORT_GRACE_MS: f64 = 500.0;

/// Why a call stops without a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The server cancelled it (or the socket is gone): answer nothing.
    Cancelled,
    /// Answer with this error.
    Fail(ErrorBody),
}

/// What the call should do next while waiting for readiness.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Sleep [`POLL_MS`] and ask again.
    Sleep,
    /// The page just finished loading: report `page_loaded`, then ask again.
    PageLoaded,
    /// Run the MAIN-world probe and report its outcome with [`Wait::probed`].
    Probe,
    /// The page has no `__any__` methods yet: report `waiting_for_methods` (once), then
    /// ask again.
    WaitingForMethods,
    /// The method is there (`lane`: only through the postMessage lane).
    Found {
        lane: bool,
    },
    Stop(Stop),
}

/// What the MAIN-world probe saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// `method` is an own property of `globalThis.__any__` and a function.
    pub main: bool,
    /// A postMessage-lane helper said it serves the method.
    pub lane: bool,
    /// The own methods of `globalThis.__any__`.
    pub names: Vec<String>,
    /// The document's HTTP status (`0`: not known, e.g. not over HTTP).
    pub status: u16,
    /// The document's MIME type (`document.contentType`), e.g. `text/html`.
    pub content_type: String,
    /// Nothing ran in the page's MAIN world (the probe had no answer); the fields below
    /// are then what the ISOLATED world saw.
    pub blocked: bool,
    /// The document is sandboxed (its origin is opaque) and runs no script.
    pub sandboxed: bool,
}

impl Probe {
    /// A document type userscripts define methods in (HTML, XHTML, SVG, XML), or not
    /// known yet.
    fn is_web_page(&self) -> bool {
        let t = self.content_type.as_str();
        t.is_empty() || t == "text/html" || t.ends_with("+xml") || t.ends_with("/xml")
    }
}

/// The readiness wait of one call.
#[derive(Debug, Clone)]
pub struct Wait {
    page: String,
    method: String,
    timeout_ms: f64,
    deadline: f64,
    pub stage: Stage,
    loaded_at: Option<f64>,
    interactive_at: Option<f64>,
    next_probe: f64,
    last_probe_error: Option<String>,
    /// What the last probe that ran saw.
    seen: Probe,
    waiting_reported: bool,
    aborted_at: Option<f64>,
}

impl Wait {
    pub fn new(page: &str, method: &str, started: f64, timeout_ms: u64, stage: Stage) -> Self {
        let timeout_ms = timeout_ms as f64;
        Wait {
            page: page.to_owned(),
            method: method.to_owned(),
            timeout_ms,
            deadline: started + timeout_ms,
            stage,
            loaded_at: None,
            interactive_at: None,
            next_probe: 0.0,
            last_probe_error: None,
            seen: Probe::default(),
            waiting_reported: false,
            aborted_at: None,
        }
    }

    /// The call reuses a tab that already served a call: a parsed document there is
    /// ready without the [`LOAD_GRACE_MS`] wait.
    pub fn reusing(mut self) -> Self {
        self.interactive_at = Some(f64::NEG_INFINITY);
        self
    }

    pub fn deadline(&self) -> f64 {
        self.deadline
    }

    /// When to stop waiting for the method: soon when the page shows it will not come
    /// (other methods are there, or an HTTP error page), else just before the deadline.
    fn method_deadline(&self, loaded_at: f64) -> f64 {
        let last = self.deadline - DEADLINE_MARGIN_MS;
        let settled =
            !self.seen.names.is_empty() || self.seen.status >= 400 || !self.seen.is_web_page();
        if settled {
            (loaded_at + METHOD_MISSING_MS).min(last).max(loaded_at)
        } else {
            last.max(loaded_at)
        }
    }

    /// Looks at the call's state; `tab` is the tracked tab (`None`: unknown or gone).
    pub fn poll(&mut self, now: f64, tab: Option<&Tab>, cancelled: bool) -> Next {
        if let Some(what) = tab.and_then(|t| t.download.as_deref())
            && !cancelled
        {
            return Next::Stop(Stop::Fail(
                ErrorBody::new(
                    ErrorCode::NavigationFailed,
                    format!(
                        "{} is a download ({what}), not a page: the browser started to save it \
                         instead of showing it. any cancelled that download and removed what had \
                         arrived, so nothing is left in the browser's downloads.",
                        self.page
                    ),
                )
                .at(self.stage),
            ));
        }
        if let Some(stop) = common_stops(
            now,
            tab,
            cancelled,
            self.deadline,
            self.timeout_ms,
            self.stage,
            &self.page,
        ) {
            return Next::Stop(stop);
        }
        let Some(tab) = tab else { return Next::Sleep };
        if let Nav::Failed(error) = &tab.nav {
            if error.contains("ERR_ABORTED")
                && now - *self.aborted_at.get_or_insert(now) < ABORT_GRACE_MS
            {
                return Next::Sleep;
            }
            return Next::Stop(Stop::Fail(
                ErrorBody::new(
                    ErrorCode::NavigationFailed,
                    format!("could not load {}: {error}", self.page),
                )
                .at(self.stage),
            ));
        }
        if tab.nav == Nav::Interactive {
            self.interactive_at.get_or_insert(now);
        }
        let parsed_long_ago = self
            .interactive_at
            .is_some_and(|t| now - t >= LOAD_GRACE_MS);
        match self.loaded_at {
            None if tab.nav == Nav::Complete
                || (tab.nav == Nav::Interactive && parsed_long_ago) =>
            {
                self.loaded_at = Some(now);
                self.stage = Stage::PageLoaded;
                self.next_probe = now;
                Next::PageLoaded
            }
            None => Next::Sleep,
            Some(_) if now >= self.next_probe => Next::Probe,
            Some(_) => Next::Sleep,
        }
    }

    /// The probe's outcome (`Err`: the probe could not run, e.g. an error page or a URL
    /// extensions may not script).
    pub fn probed(&mut self, now: f64, outcome: Result<Probe, String>, url: &str) -> Next {
        match outcome {
            Ok(Probe { main: true, .. }) => return Next::Found { lane: false },
            Ok(Probe { lane: true, .. }) => return Next::Found { lane: true },
            Ok(Probe {
                blocked: true,
                sandboxed: true,
                ..
            }) => {
                let message = format!(
                    "no script can run in {url}: the document is sandboxed by its \
                     Content-Security-Policy (`sandbox` without `allow-scripts`), so it can have \
                     no globalThis.__any__ methods"
                );
                return Next::Stop(Stop::Fail(
                    ErrorBody::new(ErrorCode::NotScriptable, message).at(self.stage),
                ));
            }
            Ok(Probe { blocked: true, .. }) => {
                self.last_probe_error = Some("no script ran in the page's main world".into());
            }
            Ok(seen) => {
                self.last_probe_error = None;
                self.seen = seen;
            }
            Err(e) if cannot_script(&e) => {
                let hint = if url.starts_with("file:") {
                    " Turn on \"Allow access to file URLs\" for the any extension in chrome://extensions."
                } else {
                    " Browsers do not let extensions run code on their own pages (chrome://, the web store)."
                };
                let message = format!("the extension may not run code on {url}: {e}.{hint}");
                return Next::Stop(Stop::Fail(
                    ErrorBody::new(ErrorCode::NotScriptable, message).at(self.stage),
                ));
            }
            Err(e) => self.last_probe_error = Some(e),
        }
        let loaded_at = self.loaded_at.unwrap_or(now);
        if now >= self.method_deadline(loaded_at) {
            let waited = (now - loaded_at).round();
            return Next::Stop(Stop::Fail(
                ErrorBody::new(ErrorCode::MethodNotFound, self.missing_message(url, waited))
                    .at(self.stage),
            ));
        }
        self.next_probe = now + PROBE_INTERVAL_MS;
        if self.seen.names.is_empty() && !self.waiting_reported {
            self.waiting_reported = true;
            self.stage = Stage::WaitingForMethods;
            return Next::WaitingForMethods;
        }
        Next::Sleep
    }

    /// Why the method is not there, and what to do.
    fn missing_message(&self, url: &str, waited: f64) -> String {
        let m = &self.method;
        let mut status = match self.seen.status {
            s if s >= 400 => format!(" (the page answered HTTP {s})"),
            _ => String::new(),
        };
        if !self.seen.is_web_page() {
            status.push_str(&format!(
                " (it is not a web page: it is {}, shown by the browser itself)",
                self.seen.content_type
            ));
        }
        let mut message = if self.seen.names.is_empty() {
            format!(
                "globalThis.__any__.{m} does not exist on {url}{status}: the page defined no \
                 globalThis.__any__ methods at all within {waited} ms after it loaded. Is the userscript \
                 that defines it installed and enabled for this page, and does it set \
                 globalThis.__any__.{m} in the page's main world (or serve it through the postMessage lane)?"
            )
        } else {
            let names = self.seen.names.join(", ");
            let hint = match did_you_mean(m, &self.seen.names) {
                Some(near) => format!(" Did you mean {near}?"),
                None => String::new(),
            };
            format!(
                "globalThis.__any__.{m} does not exist on {url}{status}; its methods are: {names}.{hint}"
            )
        };
        message.push_str(&format!(
            " If a userscript that defines {m} was installed since the page loaded, call again: \
             the next call of {m} loads the page afresh (once)."
        ));
        if let Some(e) = &self.last_probe_error {
            message.push_str(&format!(" The extension could not look into the page: {e}"));
        }
        message
    }
}

/// The name in `names` closest to `method`, if one is close: the same but for case, or
/// within an edit distance of a third of its length (at least 1, at most 3).
pub fn did_you_mean<'a>(method: &str, names: &'a [String]) -> Option<&'a str> {
    if let Some(same) = names.iter().find(|n| n.eq_ignore_ascii_case(method)) {
        return Some(same);
    }
    let limit = (method.chars().count() / 3).clamp(1, 3);
    names
        .iter()
        .map(|n| (edit_distance(method, n), n))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n.as_str())
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A probe failure that retrying cannot fix: the browser forbids scripting this page.
fn cannot_script(chrome_message: &str) -> bool {
    chrome_message.contains("Cannot access") || chrome_message.contains("must request permission")
}

/// Checks that apply in every phase: cancel, closed tab, deadline.
fn common_stops(
    now: f64,
    tab: Option<&Tab>,
    cancelled: bool,
    deadline: f64,
    timeout_ms: f64,
    stage: Stage,
    page: &str,
) -> Option<Stop> {
    if cancelled {
        return Some(Stop::Cancelled);
    }
    if tab.is_some_and(|t| t.closed) {
        return Some(Stop::Fail(
            ErrorBody::new(
                ErrorCode::TabClosed,
                format!("the tab running the call on {page} was closed"),
            )
            .at(stage),
        ));
    }
    if now >= deadline {
        return Some(Stop::Fail(
            ErrorBody::new(
                ErrorCode::Timeout,
                format!(
                    "the call did not finish within {timeout_ms} ms; it had reached stage {stage}"
                ),
            )
            .at(stage),
        ));
    }
    None
}

/// Watches a running probe or method: `Some` when the call must stop. `nav_seq` is the
/// tab's navigation counter when it started; errors carry `wait.stage`.
pub fn running(
    now: f64,
    tab: Option<&Tab>,
    cancelled: bool,
    wait: &Wait,
    nav_seq: u64,
) -> Option<Stop> {
    if let Some(stop) = common_stops(
        now,
        tab,
        cancelled,
        wait.deadline,
        wait.timeout_ms,
        wait.stage,
        &wait.page,
    ) {
        return Some(stop);
    }
    match tab {
        None => Some(Stop::Fail(
            ErrorBody::new(
                ErrorCode::TabClosed,
                format!("the tab running {} was closed", wait.method),
            )
            .at(wait.stage),
        )),
        Some(t) if t.nav_seq != nav_seq => Some(Stop::Fail(
            ErrorBody::new(
                ErrorCode::TabClosed,
                format!(
                    "the page navigated away (to {}) while {} was running, so its result was lost; \
                     page code must not change the URL during a call",
                    t.url, wait.method
                ),
            )
            .at(wait.stage),
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabs::Tabs;

    const PAGE: &str = "http://h:1/";

    fn tracked(f: impl FnOnce(&mut Tabs)) -> Tabs {
        let mut tabs = Tabs::default();
        tabs.adopt(1, PAGE, "c");
        tabs.before_navigate(1, PAGE);
        f(&mut tabs);
        tabs
    }

    fn fail_code(n: &Next) -> Option<ErrorCode> {
        match n {
            Next::Stop(Stop::Fail(e)) => Some(e.code),
            _ => None,
        }
    }

    #[test]
    fn waits_for_load_then_probes_until_found() {
        let mut w = Wait::new(PAGE, "m", 0.0, 30_000, Stage::Navigating);
        let mut tabs = tracked(|_| {});
        assert_eq!(w.poll(10.0, tabs.get(1), false), Next::Sleep);
        tabs.completed(1, PAGE);
        assert_eq!(w.poll(20.0, tabs.get(1), false), Next::PageLoaded);
        assert_eq!(w.poll(20.0, tabs.get(1), false), Next::Probe);
        assert_eq!(
            w.probed(22.0, Ok(Probe::default()), PAGE),
            Next::WaitingForMethods,
            "no methods at all yet: said once"
        );
        assert_eq!(w.stage, Stage::WaitingForMethods);
        assert_eq!(
            w.poll(50.0, tabs.get(1), false),
            Next::Sleep,
            "probes are spaced"
        );
        assert_eq!(w.poll(130.0, tabs.get(1), false), Next::Probe);
        assert_eq!(
            w.probed(
                3000.0,
                Ok(Probe {
                    main: true,
                    ..Probe::default()
                }),
                PAGE
            ),
            Next::Found { lane: false }
        );
    }

    #[test]
    fn a_page_whose_load_never_fires_counts_as_loaded_after_the_grace() {
        let mut w = Wait::new(PAGE, "m", 0.0, 30_000, Stage::Navigating);
        let tabs = tracked(|t| t.dom_ready(1, PAGE));
        assert_eq!(w.poll(100.0, tabs.get(1), false), Next::Sleep);
        assert_eq!(w.poll(5_000.0, tabs.get(1), false), Next::Sleep);
        assert_eq!(w.poll(5_100.0, tabs.get(1), false), Next::PageLoaded);
        let mut w = Wait::new(PAGE, "m", 0.0, 30_000, Stage::TabOpened).reusing();
        assert_eq!(
            w.poll(1.0, tabs.get(1), false),
            Next::PageLoaded,
            "a reused tab needs no grace"
        );
    }

    #[test]
    fn lane_only_method_is_found() {
        let mut w = Wait::new(PAGE, "m", 0.0, 30_000, Stage::Navigating);
        assert_eq!(
            w.probed(
                1.0,
                Ok(Probe {
                    lane: true,
                    ..Probe::default()
                }),
                PAGE
            ),
            Next::Found { lane: true }
        );
    }

    #[test]
    fn a_page_that_is_a_download_fails_naming_it() {
        let mut w = Wait::new("http://h:1/r.csv", "m", 0.0, 30_000, Stage::Navigating);
        let mut tabs = Tabs::default();
        tabs.adopt(1, "http://h:1/r.csv", "c");
        tabs.before_navigate(1, "http://h:1/r.csv");
        tabs.failed(1, "http://h:1/r.csv", "net::ERR_ABORTED");
        assert_eq!(
            w.poll(10.0, tabs.get(1), false),
            Next::Sleep,
            "a download may follow"
        );
        tabs.download_started("http://h:1/r.csv", "text/csv");
        tabs.removed(1);
        let Next::Stop(Stop::Fail(e)) = w.poll(20.0, tabs.get(1), false) else {
            panic!("expected a failure")
        };
        assert_eq!(e.code, ErrorCode::NavigationFailed);
        assert!(
            e.message.contains("is a download (text/csv)"),
            "{}",
            e.message
        );
        // An abort with no download is reported once the grace is over.
        let mut w = Wait::new(PAGE, "m", 0.0, 30_000, Stage::Navigating);
        let tabs = tracked(|t| t.failed(1, PAGE, "net::ERR_ABORTED"));
        assert_eq!(w.poll(10.0, tabs.get(1), false), Next::Sleep);
        assert_eq!(
            fail_code(&w.poll(10.0 + ABORT_GRACE_MS, tabs.get(1), false)),
            Some(ErrorCode::NavigationFailed)
        );
    }

    #[test]
    fn navigation_error_is_reported_with_the_net_error() {
        let mut w = Wait::new(PAGE, "m", 0.0, 30_000, Stage::Navigating);
        let tabs = tracked(|t| t.failed(1, PAGE, "net::ERR_CONNECTION_REFUSED"));
        let n = w.poll(5.0, tabs.get(1), false);
        assert_eq!(fail_code(&n), Some(ErrorCode::NavigationFailed));
        let Next::Stop(Stop::Fail(e)) = n else {
            unreachable!()
        };
        assert!(e.message.contains("net::ERR_CONNECTION_REFUSED"));
        assert_eq!(e.stage, Some(Stage::Navigating));
    }

    #[test]
    fn a_page_without_methods_is_waited_for_until_the_deadline() {
        let mut w = Wait::new(PAGE, "pageInfo", 0.0, 30_000, Stage::Navigating);
        let tabs = tracked(|t| t.completed(1, PAGE));
        w.poll(100.0, tabs.get(1), false);
        assert_eq!(
            w.probed(200.0, Ok(Probe::default()), PAGE),
            Next::WaitingForMethods
        );
        assert_eq!(w.probed(15_000.0, Ok(Probe::default()), PAGE), Next::Sleep);
        let late = Probe {
            main: true,
            names: vec!["pageInfo".into()],
            ..Probe::default()
        };
        assert_eq!(
            w.clone().probed(29_000.0, Ok(late), PAGE),
            Next::Found { lane: false },
            "a method that comes 29 s after load is still found"
        );
        assert_eq!(
            w.probed(
                29_000.0,
                Err("Frame with ID 0 is showing error page".into()),
                PAGE
            ),
            Next::Sleep
        );
        let n = w.probed(29_800.0, Ok(Probe::default()), PAGE);
        let Next::Stop(Stop::Fail(e)) = n else {
            panic!("expected failure, got {n:?}")
        };
        assert_eq!(e.code, ErrorCode::MethodNotFound);
        assert!(e.message.contains("userscript"), "{}", e.message);
        assert!(
            e.message.contains("no globalThis.__any__ methods"),
            "{}",
            e.message
        );
        assert_eq!(e.stage, Some(Stage::WaitingForMethods));
    }

    #[test]
    fn a_method_missing_among_others_fails_soon_naming_them() {
        let mut w = Wait::new(PAGE, "pageinfo", 0.0, 60_000, Stage::Navigating);
        let tabs = tracked(|t| t.completed(1, PAGE));
        w.poll(100.0, tabs.get(1), false);
        let seen = Probe {
            names: vec!["echo".into(), "pageInfo".into()],
            ..Probe::default()
        };
        assert_eq!(w.probed(200.0, Ok(seen.clone()), PAGE), Next::Sleep);
        assert_eq!(w.stage, Stage::PageLoaded);
        let n = w.probed(100.0 + METHOD_MISSING_MS, Ok(seen), PAGE);
        let Next::Stop(Stop::Fail(e)) = n else {
            panic!("expected failure, got {n:?}")
        };
        assert_eq!(e.code, ErrorCode::MethodNotFound);
        assert!(
            e.message.contains("its methods are: echo, pageInfo."),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("Did you mean pageInfo?"),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_http_error_page_without_methods_fails_soon_naming_the_status() {
        let mut w = Wait::new(PAGE, "m", 0.0, 60_000, Stage::Navigating);
        let tabs = tracked(|t| t.completed(1, PAGE));
        w.poll(0.0, tabs.get(1), false);
        let seen = Probe {
            status: 404,
            ..Probe::default()
        };
        w.probed(10.0, Ok(seen.clone()), PAGE);
        let n = w.probed(METHOD_MISSING_MS, Ok(seen), PAGE);
        let Next::Stop(Stop::Fail(e)) = n else {
            panic!("expected failure, got {n:?}")
        };
        assert!(e.message.contains("HTTP 404"), "{}", e.message);
    }

    #[test]
    fn a_sandboxed_document_fails_at_once_naming_its_csp() {
        let mut w = Wait::new(PAGE, "m", 0.0, 60_000, Stage::Navigating);
        let tabs = tracked(|t| t.completed(1, PAGE));
        w.poll(0.0, tabs.get(1), false);
        let blocked = Probe {
            blocked: true,
            ..Probe::default()
        };
        assert_eq!(
            w.probed(10.0, Ok(blocked), PAGE),
            Next::WaitingForMethods,
            "nothing ran, for no known reason: keep looking"
        );
        let sandboxed = Probe {
            blocked: true,
            sandboxed: true,
            content_type: "text/html".into(),
            ..Probe::default()
        };
        let Next::Stop(Stop::Fail(e)) = w.probed(20.0, Ok(sandboxed), PAGE) else {
            panic!("expected a failure")
        };
        assert_eq!(e.code, ErrorCode::NotScriptable);
        assert!(
            e.message
                .contains("sandboxed by its Content-Security-Policy"),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_image_or_pdf_fails_soon_naming_its_type() {
        let mut w = Wait::new(PAGE, "m", 0.0, 60_000, Stage::Navigating);
        let tabs = tracked(|t| t.completed(1, PAGE));
        w.poll(0.0, tabs.get(1), false);
        let pdf = Probe {
            content_type: "application/pdf".into(),
            ..Probe::default()
        };
        assert_eq!(
            w.probed(10.0, Ok(pdf.clone()), PAGE),
            Next::WaitingForMethods
        );
        let Next::Stop(Stop::Fail(e)) = w.probed(METHOD_MISSING_MS, Ok(pdf), PAGE) else {
            panic!("expected a failure")
        };
        assert_eq!(e.code, ErrorCode::MethodNotFound);
        assert!(
            e.message
                .contains("it is not a web page: it is application/pdf"),
            "{}",
            e.message
        );
    }

    #[test]
    fn did_you_mean_finds_near_names_only() {
        let names: Vec<String> = ["pageInfo", "addTodo", "count"].map(String::from).to_vec();
        assert_eq!(did_you_mean("pageinfo", &names), Some("pageInfo"));
        assert_eq!(did_you_mean("addTodos", &names), Some("addTodo"));
        assert_eq!(did_you_mean("cont", &names), Some("count"));
        assert_eq!(did_you_mean("screenshot", &names), None);
        assert_eq!(did_you_mean("x", &names), None);
    }

    #[test]
    fn a_page_the_extension_may_not_script_fails_at_once() {
        let mut w = Wait::new("file:///tmp/a.html", "m", 0.0, 30_000, Stage::Navigating);
        let n = w.probed(
            10.0,
            Err("Cannot access contents of url \"file:///tmp/a.html\". Extension manifest must request permission to access this host.".into()),
            "file:///tmp/a.html",
        );
        let Next::Stop(Stop::Fail(e)) = n else {
            panic!("expected failure, got {n:?}")
        };
        assert_eq!(e.code, ErrorCode::NotScriptable);
        assert!(
            e.message.contains("Allow access to file URLs"),
            "{}",
            e.message
        );
    }

    #[test]
    fn short_deadline_still_gets_method_not_found_first() {
        let mut w = Wait::new(PAGE, "m", 0.0, 2_000, Stage::Navigating);
        let tabs = tracked(|t| t.completed(1, PAGE));
        w.poll(100.0, tabs.get(1), false);
        let n = w.probed(1_750.0, Ok(Probe::default()), PAGE);
        assert_eq!(fail_code(&n), Some(ErrorCode::MethodNotFound));
    }

    #[test]
    fn deadline_cancel_and_close_stop_the_wait() {
        let tabs = tracked(|_| {});
        let mut w = Wait::new(PAGE, "m", 0.0, 1_000, Stage::Navigating);
        assert_eq!(
            fail_code(&w.poll(1_000.0, tabs.get(1), false)),
            Some(ErrorCode::Timeout)
        );
        assert_eq!(w.poll(10.0, tabs.get(1), true), Next::Stop(Stop::Cancelled));
        let closed = tracked(|t| t.removed(1));
        assert_eq!(
            fail_code(&w.poll(10.0, closed.get(1), false)),
            Some(ErrorCode::TabClosed)
        );
    }

    #[test]
    fn running_method_stops_on_navigation_away() {
        let mut tabs = tracked(|t| t.completed(1, PAGE));
        let mut w = Wait::new(PAGE, "m", 0.0, 30_000, Stage::Navigating);
        w.stage = Stage::MethodCalled;
        let seq = tabs.get(1).map(|t| t.nav_seq).unwrap_or_default();
        assert_eq!(running(5.0, tabs.get(1), false, &w, seq), None);
        tabs.before_navigate(1, "http://h:1/elsewhere");
        let Some(Stop::Fail(e)) = running(6.0, tabs.get(1), false, &w, seq) else {
            panic!("expected a stop")
        };
        assert_eq!(e.code, ErrorCode::TabClosed);
        assert!(e.message.contains("navigated away"));
        assert_eq!(
            running(6.0, tabs.get(1), true, &w, seq),
            Some(Stop::Cancelled)
        );
        assert!(
            matches!(running(40_000.0, tabs.get(1), false, &w, 0), Some(Stop::Fail(e)) if e.code == ErrorCode::Timeout)
        );
    }
}
