//! The flow of one call: choose or open the tab, wait for readiness, invoke, answer.
//!
//! Runs in: the extension's service worker (wasm). The page side is the plain
//! JavaScript of `extension/page-world.js`, run by `chrome.scripting.executeScript` in
//! the page's MAIN world (exempt from the page's CSP; no eval, no inline script), or —
//! in a document that already answered by injection — reached over the document's
//! channel (`super::channel`). Every
//! decision (which tab, when ready, when to give up, what an outcome means) comes from
//! [`crate::tabs`], [`crate::wait`], [`crate::page`] and [`crate::channel`]; every await is raced against a
//! watcher so that a cancel, the deadline, a closed tab or a page navigating away ends
//! the call instead of hanging it.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;

use any_protocol::{
    Call, CallError, CallResult, ErrorBody, ErrorCode, ExtensionFrame, Json, Progress, Run, Stage,
};
use futures_util::future::{Either, select};
use js_sys::Function;
use wasm_bindgen::JsValue;

use super::channel::{self as port, Reply};
use super::js::{self, JsResult, array, get, now, obj, settle, sleep};
use super::tick::tick;
use super::{chrome, error, send, userscripts, with};
use crate::calls::Outcome;
use crate::channel::{self, Answer};
use crate::page;
use crate::tabs::{Choice, TabId};
use crate::wait::{self, Next, POLL_MS, Probe, Stop, Wait};

/// At most this many of a page's method names are read (and named in an error).
const MAX_NAMES: usize = 50;
/// Where the extension's windows start, and how far each is moved right of the last.
const CASCADE_LEFT: u32 = 20;
const CASCADE_PX: u32 = 60;

thread_local! {
    /// A [`dialog_guard`] runs.
    static GUARDING: Cell<bool> = const { Cell::new(false) };
    /// A window is being opened (see [`open_tab`]).
    static WINDOW_OPENING: Cell<bool> = const { Cell::new(false) };
    /// The browser runs headless (its user agent says `HeadlessChrome`): no desktop.
    static HEADLESS: bool = js::get_string(&chrome::NAVIGATOR.with(JsValue::clone), "userAgent")
        .is_some_and(|ua| ua.contains("HeadlessChrome"));
}

/// How long the MAIN-world probe waits for a postMessage-lane helper to say it serves
/// the method (only when `globalThis.__any__[method]` is absent).
const LANE_ASK_MS: u32 = 50;
/// After a failed injection, how long to wait for `tabs.onRemoved` / `webNavigation`
/// events that explain it.
const EVENTS_GRACE_MS: u32 = 100;

/// Runs one call to its single terminal answer (or to silence, when cancelled).
pub async fn run(call: Call) {
    run_job(call, None).await;
}

/// Runs an ad-hoc script like a call: same tab choice, readiness wait (without the
/// method probe), watchers, envelope and answer; the page side runs it with
/// `chrome.userScripts.execute`, in the MAIN world, through the same encoder as methods.
pub async fn run_script(run: Run) {
    let call = Call {
        id: run.id,
        page: run.page,
        method: SCRIPT_METHOD.to_owned(),
        params: serde_json::value::RawValue::from_string("null".to_owned())
            .unwrap_or_else(|_| unreachable!("null is JSON")),
        timeout_ms: run.timeout_ms,
        tab: run.tab,
    };
    if !userscripts::available() {
        if with(|a| a.calls.begin(&call.id, &call.page, &call.method, now())) == Some(Ok(())) {
            let body = ErrorBody::new(
                ErrorCode::ScriptsDisabled,
                format!("cannot run the script: {}", userscripts::not_allowed()),
            )
            .at(Stage::Dispatched);
            if with(|a| a.calls.fail(&call.id, now(), &body)) == Some(true) {
                send(&ExtensionFrame::Error(CallError {
                    id: call.id,
                    error: body,
                }));
            }
        }
        return;
    }
    run_job(call, Some(run.script)).await;
}

/// How an ad-hoc script is named where a method name would be (popup, messages).
const SCRIPT_METHOD: &str = "(script)";

async fn run_job(call: Call, script: Option<String>) {
    let started = now();
    // Frames arrive in order: hosted userscripts the server sent before this call are
    // registered before its page loads.
    userscripts::settled().await;
    if let Some(Err(e)) = with(|a| a.calls.begin(&call.id, &call.page, &call.method, started)) {
        error(e);
        return;
    }
    let mut held: Option<TabId> = None;
    let mut called = false;
    let outcome = flow(&call, script.as_deref(), started, &mut held, &mut called).await;
    if let Some(tab) = held {
        let missing = script.is_none()
            && matches!(&outcome, Err(Stop::Fail(e)) if e.code == ErrorCode::MethodNotFound);
        // A method that outlived its deadline may have stopped the page itself
        // (`while (true) {}`): such a tab is closed, not reused. (The server's cancel at
        // the deadline may arrive before the extension's own deadline fires.)
        let timed_out = called
            && matches!(
                &outcome,
                Err(Stop::Cancelled)
                    | Err(Stop::Fail(ErrorBody {
                        code: ErrorCode::Timeout,
                        ..
                    }))
            );
        with(|a| {
            if missing {
                a.tabs.method_missing(tab, &call.method);
            }
            if timed_out {
                a.tabs.checking(tab);
            }
            a.tabs.release(tab, &call.id);
        });
        if timed_out {
            wasm_bindgen_futures::spawn_local(check_responsive(tab));
        }
        super::close_excess_tabs();
        super::tabs_changed();
    }
    let end = now();
    match outcome {
        Ok(value) => {
            if with(|a| a.calls.finish(&call.id, end, Outcome::Ok)) == Some(true) {
                send(&ExtensionFrame::Result(CallResult { id: call.id, value }));
            }
        }
        Err(Stop::Fail(mut e)) => {
            if e.code == ErrorCode::MethodNotFound
                && script.is_none()
                && !userscripts::available()
                && userscripts::hosted_for(&call.page)
            {
                e.message.push_str(&format!(
                    " (any hosts userscripts for this page, but {})",
                    userscripts::not_allowed()
                ));
            }
            if with(|a| a.calls.fail(&call.id, end, &e)) == Some(true) {
                send(&ExtensionFrame::Error(CallError {
                    id: call.id,
                    error: e,
                }));
            }
        }
        Err(Stop::Cancelled) => {
            let reason = "cancelled by the server or the connection dropped".to_owned();
            with(|a| a.calls.finish(&call.id, end, Outcome::Abandoned { reason }));
        }
    }
}

/// Reports a stage once, in order.
fn progress(id: &str, stage: Stage) {
    if with(|a| a.calls.stage(id, stage)) == Some(true) {
        send(&ExtensionFrame::Progress(Progress {
            id: id.to_owned(),
            stage,
        }));
    }
}

/// Sends a stage already recorded in the call book, unless the call has ended or was
/// cancelled.
fn report(id: &str, stage: Stage) {
    if with(|a| a.calls.is_cancelled(id)) == Some(false) {
        send(&ExtensionFrame::Progress(Progress {
            id: id.to_owned(),
            stage,
        }));
    }
}

/// Awaits `work` while `check` (looked at on every beat of the shared watch tick, see
/// [`tick`]) has no reason to stop.
async fn watched<T>(
    work: impl Future<Output = T>,
    check: impl Fn() -> Option<Stop>,
) -> Result<T, Stop> {
    let watcher = async {
        loop {
            tick().await;
            if let Some(stop) = check() {
                return stop;
            }
        }
    };
    match select(pin!(work), pin!(watcher)).await {
        Either::Left((value, _)) => Ok(value),
        Either::Right((stop, _)) => Err(stop),
    }
}

/// `script`: an ad-hoc script to run instead of `call.method` (no probe, no method).
async fn flow(
    call: &Call,
    script: Option<&str>,
    started: f64,
    held: &mut Option<TabId>,
    called: &mut bool,
) -> Result<Json, Stop> {
    let id = call.id.as_str();
    let choice = choose(call, started).await?;
    super::tabs_changed();
    let stage = match choice {
        Choice::Reuse(tab) | Choice::Reload(tab) => {
            *held = Some(tab);
            // Background tabs run their timers at most once a second, so the call's tab
            // must be its window's active tab. Each page has a window of its own, so it
            // normally is, and nothing happens here (activating on every call cut the
            // throughput with 8 busy pages from ~500 to ~80 calls/s). If the person
            // brought another tab to the front in that window, the page comes back to the
            // front: activating a tab leaves the person's keyboard focus and window order
            // alone. Not awaited: the switch takes ~50 ms to settle, and the method may
            // start meanwhile (its timers are not throttled once the tab is in front).
            if with(|a| a.tabs.get(tab).is_some_and(|t| t.active)) != Some(true) {
                with(|a| a.tabs.set_active(tab, None));
                let props = obj(&[("active", true.into())]);
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = settle(chrome::tabs_update(tab, &props)).await;
                });
            }
            if matches!(choice, Choice::Reload(_)) {
                // The method was missing in this document when a call last looked: a new
                // one (a userscript installed since runs only in new documents).
                with(|a| a.tabs.reloading(tab, &call.method));
                settle(chrome::tabs_reload(tab)).await.map_err(|e| {
                    Stop::Fail(
                        ErrorBody::new(
                            ErrorCode::NavigationFailed,
                            format!("could not reload the tab at {}: {e}", call.page),
                        )
                        .at(Stage::TabOpened),
                    )
                })?;
                progress(id, Stage::TabOpened);
                progress(id, Stage::Navigating);
                Stage::Navigating
            } else {
                Stage::TabOpened
            }
        }
        Choice::Join(tab) => {
            // Another call is loading the page in this tab: wait for it like that call.
            *held = Some(tab);
            progress(id, Stage::TabOpened);
            progress(id, Stage::Navigating);
            Stage::Navigating
        }
        Choice::Open => {
            let tab = open_tab(call).await?;
            *held = Some(tab);
            progress(id, Stage::TabOpened);
            progress(id, Stage::Navigating);
            Stage::Navigating
        }
        Choice::Wait => unreachable!("choose() waits"),
    };
    let Some(tab) = *held else {
        return Err(Stop::Fail(
            ErrorBody::new(ErrorCode::TabClosed, "no tab").at(stage),
        ));
    };

    let mut wait = Wait::new(&call.page, &call.method, started, call.timeout_ms, stage);
    if matches!(choice, Choice::Reuse(_)) {
        wait = wait.reusing();
    }
    // Known ready: this document already had the method when a probe last looked, so
    // invoke at once (one injection per call instead of two). If the page removed the
    // method since, the invocation says so (`method_not_found`).
    let known = match choice {
        Choice::Reuse(_) if script.is_none() => with(|a| a.tabs.found(tab, &call.method)).flatten(),
        _ => None,
    };
    // On that fast path the stages tab_opened .. method_found pass within microseconds:
    // only method_called is reported (one progress frame per call instead of four).
    if known.is_none() && matches!(choice, Choice::Reuse(_)) {
        progress(id, Stage::TabOpened);
    }
    let lane = if let Some(lane) = known {
        lane
    } else {
        loop {
            let next = with(|a| {
                let c = a.calls.is_cancelled(id);
                wait.poll(now(), a.tabs.get(tab), c)
            })
            .unwrap_or(Next::Stop(Stop::Cancelled));
            match next {
                Next::Sleep => sleep(POLL_MS).await,
                Next::PageLoaded => progress(id, Stage::PageLoaded),
                Next::WaitingForMethods => progress(id, Stage::WaitingForMethods),
                // A script needs the page loaded, not a method.
                Next::Probe if script.is_some() => break false,
                Next::Probe => {
                    let snapshot = wait.clone();
                    let seq = nav_seq(tab);
                    let outcome = watched(probe(tab, &call.method), || {
                        with(|a| {
                            wait::running(
                                now(),
                                a.tabs.get(tab),
                                a.calls.is_cancelled(id),
                                &snapshot,
                                seq,
                            )
                        })
                        .flatten()
                    })
                    .await;
                    let outcome = match outcome {
                        // The page navigated or reloaded under the probe: wait for it again.
                        Err(Stop::Fail(e))
                            if e.code == ErrorCode::TabClosed && !tab_closed(tab) =>
                        {
                            continue;
                        }
                        Err(stop) => return Err(stop),
                        Ok(outcome) => outcome,
                    };
                    let url = with(|a| a.tabs.get(tab).map(|t| t.url.clone()))
                        .flatten()
                        .unwrap_or_else(|| call.page.clone());
                    match wait.probed(now(), outcome.map_err(|e| e.0), &url) {
                        Next::Found { lane } => break lane,
                        Next::Stop(stop) => return Err(stop),
                        Next::WaitingForMethods => progress(id, Stage::WaitingForMethods),
                        _ => sleep(POLL_MS).await,
                    }
                }
                Next::Found { lane } => break lane,
                Next::Stop(stop) => return Err(stop),
            }
        }
    };
    if known.is_none() && script.is_none() {
        with(|a| a.tabs.remember_found(tab, &call.method, lane));
        progress(id, Stage::MethodFound);
    }

    let seq = nav_seq(tab);
    // method_called is recorded now (the extension's own errors carry it) but reported
    // to the server only when the method still runs at a watcher's look POLL_MS or more
    // after this (no timer of its own): for a call answered sooner, its result says that
    // the method ran. This spares one WebSocket frame per call (worker → network service →
    // server) while the injection is in flight — under the 8-page load a call takes
    // ~8 ms, so a shorter delay would still send most of them; see bench/README.md.
    with(|a| a.calls.stage(id, Stage::MethodCalled));
    *called = true;
    wait.stage = Stage::MethodCalled;
    let called = now();
    let reported = Cell::new(false);
    let params = call.params.get().to_owned();
    // A method found just now in a document that already has `invoke`'s copy (it has a
    // channel, or had one) is called like a known one: over the channel, or by
    // `invokeInstalled`, not by injecting the whole `invoke` again.
    let installed = known.is_some() || port::has_copy(tab, seq);
    let work = async {
        match script {
            Some(script) => execute(tab, script).await.map(|e| Envelope::of(&e)),
            None => invoke(tab, seq, &call.method, params, lane, installed).await,
        }
    };
    let invoked = watched(work, || {
        if !reported.get() && now() - called >= f64::from(POLL_MS) {
            reported.set(true);
            report(id, Stage::MethodCalled);
        }
        with(|a| wait::running(now(), a.tabs.get(tab), a.calls.is_cancelled(id), &wait, seq))
            .flatten()
    })
    .await?;
    // executeScript may settle (and a channel close) just as the frame goes away, before
    // the tab and navigation events arrive: give them a moment, then the watcher's
    // verdict wins.
    if matches!(invoked, Err(_) | Ok(Envelope::Missing)) {
        sleep(EVENTS_GRACE_MS).await;
    }
    if let Some(stop) =
        with(|a| wait::running(now(), a.tabs.get(tab), a.calls.is_cancelled(id), &wait, seq))
            .flatten()
        && !matches!(&stop, Stop::Fail(e) if e.code == ErrorCode::Timeout)
    {
        return Err(stop);
    }
    match invoked {
        Err(e) => Err(Stop::Fail(page::injection_failed(
            &e.0,
            &call.page,
            Stage::MethodCalled,
        ))),
        Ok(envelope) => read_envelope(envelope, &call.method),
    }
}

/// The tab choice for the call: while another call is opening a tab at the same page,
/// waits for that tab (its calls share it) rather than opening a second one.
async fn choose(call: &Call, started: f64) -> Result<Choice, Stop> {
    let deadline = started + call.timeout_ms as f64;
    loop {
        let choice = with(|a| a.tabs.choose(&call.page, &call.method, call.tab, &call.id))
            .unwrap_or(Choice::Open);
        if choice != Choice::Wait {
            return Ok(choice);
        }
        if with(|a| a.calls.is_cancelled(&call.id)) != Some(false) {
            return Err(Stop::Cancelled);
        }
        if now() >= deadline {
            return Err(Stop::Fail(
                ErrorBody::new(
                    ErrorCode::Timeout,
                    format!(
                        "the call did not finish within {} ms: another call was still opening {} in a new tab",
                        call.timeout_ms, call.page
                    ),
                )
                .at(Stage::Dispatched),
            ));
        }
        sleep(POLL_MS).await;
    }
}

/// After a call timed out while its method ran: does the page still run its own code?
/// A page that does not answer a trivial injection within [`RESPONSIVE_MS`] (a method
/// that never yields keeps its renderer busy for good) is marked unresponsive and
/// closed, so no later call lands in it.
async fn check_responsive(tab: TabId) {
    if tab_closed(tab) {
        return;
    }
    let responsive = if answers_within(tab, RESPONSIVE_MS).await {
        true
    } else if window_focused(tab).await {
        // A page whose window has the person's focus may be showing them a dialog
        // (Chrome shows dialogs only there, and dismisses the others): theirs to answer.
        super::log(format!(
            "tab {tab} did not answer {RESPONSIVE_MS} ms after a call timed out in it; its \
             window has the focus, so it may be showing a dialog: left open"
        ));
        true
    } else {
        super::log(format!(
            "tab {tab} did not answer {RESPONSIVE_MS} ms after a call timed out in it: closing it"
        ));
        false
    };
    with(|a| a.tabs.checked(tab, responsive));
    super::close_excess_tabs();
    super::tabs_changed();
}

/// Keeps a dialog from holding a call: Chrome shows a page's `alert`, `confirm` and
/// `prompt` only when the page is in front of the focused window and dismisses all others
/// at once. The extension's windows are never focused by it, but the focus can land on
/// one (the person clicks into it, or closes the window they worked in). So while one of
/// its windows has the focus, once a [`GUARD_MS`]: if a call runs in its tab and the page
/// does not answer a trivial injection within [`GUARD_MS`] / 2, the tab is switched out
/// and back, and Chrome dismisses the dialog as it does the others (`confirm` gives
/// `false`). The window keeps the focus; a tab switch inside it changes nothing else.
/// Started by the focus moving to one of the extension's windows; at most one runs.
pub async fn dialog_guard() {
    if GUARDING.with(|g| g.replace(true)) {
        return;
    }
    loop {
        let Some(window) = super::focused_window().await.filter(|w| super::is_ours(*w)) else {
            break;
        };
        sleep(GUARD_MS).await;
        let busy = with(|a| {
            a.tabs
                .owned()
                .into_iter()
                .find(|(_, t)| t.window == Some(window) && t.busy() && !t.closed)
                .map(|(id, _)| id)
        })
        .flatten();
        let Some(tab) = busy else {
            continue;
        };
        if answers_within(tab, GUARD_MS / 2).await {
            continue;
        }
        super::log(format!(
            "tab {tab} stopped answering in the focused window, most likely showing a \
             dialog: switching it out and back to dismiss the dialog"
        ));
        let props = obj(&[
            ("windowId", window.into()),
            ("url", "about:blank".into()),
            ("active", true.into()),
        ]);
        if let Ok(blank) = settle(chrome::tabs_create(&props)).await {
            sleep(POLL_MS * 5).await;
            if let Some(blank) = js::get_i32(&blank, "id") {
                let _ = settle(chrome::tabs_remove(blank)).await;
            }
            let _ = settle(chrome::tabs_update(tab, &obj(&[("active", true.into())]))).await;
        }
    }
    GUARDING.with(|g| g.set(false));
}

/// Does the page run a trivial injection within `ms`? A page whose only thread is stuck
/// (a method that never yields, a dialog waiting for an answer) does not.
async fn answers_within(tab: TabId, ms: u32) -> bool {
    let func = chrome::PROBE.with(Function::clone);
    let args = ["".into(), 0.into()];
    let check = in_page(tab, &func, &args);
    matches!(select(pin!(check), pin!(sleep(ms))).await, Either::Left(_))
}

/// How often [`dialog_guard`] looks.
const GUARD_MS: u32 = 1_000;

/// Is the tab's window the focused one (the person is looking at it)?
async fn window_focused(tab: TabId) -> bool {
    let window = with(|a| a.tabs.get(tab).and_then(|t| t.window)).flatten();
    window.is_some() && super::focused_window().await == window
}

/// How long a page may take to answer the check after a call timed out in it.
const RESPONSIVE_MS: u32 = 1_000;

fn nav_seq(tab: TabId) -> u64 {
    with(|a| a.tabs.get(tab).map(|t| t.nav_seq))
        .flatten()
        .unwrap_or(0)
}

fn tab_closed(tab: TabId) -> bool {
    with(|a| a.tabs.get(tab).is_none_or(|t| t.closed)).unwrap_or(true)
}

/// Opens a tab at the page, in a window of its own, created with `focused: false`.
///
/// Why a window per page: Chrome runs the timers of background tabs at most once a second
/// (a 50 ms `sleep` takes 1000 ms), and in a person's browser no flag turns that off, so a
/// page must stay in front in its window; sharing windows meant moving a tab out when two
/// pages of one window were called at once. And on a person's desktop, opening a tab in
/// an existing window (`tabs.create` into it) raised that window over theirs and took the
/// keyboard focus, and moving a tab into a new window set their window always-on-top for
/// a moment (measured under Xvfb and openbox). A new unfocused window does neither.
/// Windows stay few: idle tabs beyond the limit are closed, and Chromium closes a window
/// with its last tab (what windows cost: bench/README.md, "How `any` opens and keeps its
/// tabs").
/// Where windows cannot be created (no window system), a tab in the current window.
async fn open_tab(call: &Call) -> Result<TabId, Stop> {
    // One window at a time where a person may be at the desktop: to keep an unfocused
    // new window below the focused one, Chromium on X11 sets the focused window
    // always-on-top for a moment, and windows created at the same moment left the
    // person's window always-on-top for good (measured under Xvfb and openbox; one after
    // another, it is restored each time). A headless browser has no desktop, and its
    // windows open at once.
    let one_at_a_time = !HEADLESS.with(|h| *h);
    while one_at_a_time && WINDOW_OPENING.get() {
        sleep(POLL_MS / 4).await;
    }
    WINDOW_OPENING.set(true);
    let slot = with(|a| a.tabs.free_slot()).unwrap_or(0);
    let left = CASCADE_LEFT + CASCADE_PX * slot;
    let record = super::opening_window(&call.page).await;
    let opened = create_tab(call, left).await;
    with(|a| {
        if let Ok((tab, window)) = opened {
            a.tabs.adopt(tab, &call.page, &call.id);
            a.tabs.set_active(tab, window);
            a.tabs.set_slot(tab, slot);
        }
        a.tabs.opened(&call.page);
    });
    WINDOW_OPENING.set(false);
    super::opened_window(record);
    let (tab, _) = opened?;
    // A browser where no window had the focus may give it to the new one (seen in a
    // long-running headless browser), before the tab was known as the extension's.
    wasm_bindgen_futures::spawn_local(dialog_guard());
    Ok(tab)
}

/// Creates the tab, the only one of a new window that does not take the focus, at `left`:
/// [`CASCADE_PX`] steps (by the window's free slot) to the right of the others, because
/// windows at the same place cover each other, and a page whose window is fully covered
/// counts as hidden (its timers run at most once a second). The tab's id and window.
async fn create_tab(call: &Call, left: u32) -> Result<(TabId, Option<i32>), Stop> {
    let url = call.page.as_str();
    let props = obj(&[
        ("url", url.into()),
        ("focused", false.into()),
        ("left", left.into()),
    ]);
    let created = settle(chrome::windows_create(&props)).await;
    let (created, window) = match created {
        Ok(w) => (
            js::items(&get(&w, "tabs")).first().cloned(),
            js::get_i32(&w, "id"),
        ),
        Err(_) => (None, None),
    };
    let created = match created {
        Some(tab) => Ok(tab),
        None => {
            let props = obj(&[("url", url.into()), ("active", true.into())]);
            settle(chrome::tabs_create(&props)).await
        }
    };
    let created = created.map_err(|e| {
        let hint = if call.page.starts_with("file:") {
            " Turn on \"Allow access to file URLs\" for the any extension in chrome://extensions."
        } else {
            ""
        };
        Stop::Fail(
            ErrorBody::new(
                ErrorCode::NavigationFailed,
                format!("could not open a tab at {}: {e}.{hint}", call.page),
            )
            .at(Stage::Dispatched),
        )
    })?;
    let Some(tab) = js::get_i32(&created, "id") else {
        return Err(Stop::Fail(
            ErrorBody::new(ErrorCode::NavigationFailed, "the new tab has no id")
                .at(Stage::Dispatched),
        ));
    };
    Ok((tab, window.or_else(|| js::get_i32(&created, "windowId"))))
}

/// Runs `func(args)` in the tab's MAIN world and returns its value.
async fn in_page(tab: TabId, func: &Function, args: &[JsValue]) -> JsResult<JsValue> {
    let injection = obj(&[
        ("target", obj(&[("tabId", tab.into())]).into()),
        ("world", "MAIN".into()),
        ("injectImmediately", true.into()),
        ("func", func.into()),
        ("args", array(args).into()),
    ]);
    let results = settle(chrome::execute_script(&injection)).await?;
    Ok(js::items(&results)
        .first()
        .map_or(JsValue::UNDEFINED, |r| get(r, "result")))
}

async fn probe(tab: TabId, method: &str) -> JsResult<Probe> {
    let func = chrome::PROBE.with(Function::clone);
    let seen = in_page(tab, &func, &[method.into(), LANE_ASK_MS.into()]).await?;
    if !seen.is_object() {
        return describe(tab).await;
    }
    Ok(Probe {
        main: get(&seen, "main").as_bool() == Some(true),
        lane: get(&seen, "lane").as_bool() == Some(true),
        names: js::items(&get(&seen, "names"))
            .iter()
            .filter_map(JsValue::as_string)
            .take(MAX_NAMES)
            .collect(),
        status: get(&seen, "status").as_f64().map_or(0, |s| s as u16),
        content_type: js::get_string(&seen, "contentType").unwrap_or_default(),
        ..Probe::default()
    })
}

/// Nothing ran in the tab's MAIN world: what its ISOLATED world (where the extension's
/// own scripts still run) sees of the document — a sandboxed document has the opaque
/// origin `"null"`.
async fn describe(tab: TabId) -> JsResult<Probe> {
    let injection = obj(&[
        ("target", obj(&[("tabId", tab.into())]).into()),
        ("world", "ISOLATED".into()),
        ("injectImmediately", true.into()),
        ("func", chrome::DESCRIBE.with(Function::clone).into()),
    ]);
    let results = settle(chrome::execute_script(&injection)).await?;
    let seen = js::items(&results)
        .first()
        .map_or(JsValue::UNDEFINED, |r| get(r, "result"));
    Ok(Probe {
        blocked: true,
        sandboxed: js::get_string(&seen, "origin").as_deref() == Some("null"),
        content_type: js::get_string(&seen, "contentType").unwrap_or_default(),
        ..Probe::default()
    })
}

/// Invokes the method. `installed`: this document already ran `invoke` with this
/// worker's key, so the call goes over the document's channel when it has one, else by
/// injecting the few-line `invokeInstalled` (the whole `invoke` is only injected when the
/// copy is missing). The second call by injection into a document connects its channel
/// (in the background), so one-call documents (`tab: "new"`) never pay for one.
async fn invoke(
    tab: TabId,
    seq: u64,
    method: &str,
    params_json: String,
    lane: bool,
    installed: bool,
) -> JsResult<Envelope> {
    if installed && let Some(answered) = over_channel(tab, seq, method, lane, &params_json).await {
        return answered;
    }
    let key = port::key();
    if installed {
        let func = chrome::INVOKE_INSTALLED.with(Function::clone);
        let args = [
            key.as_str().into(),
            method.into(),
            params_json.as_str().into(),
            lane.into(),
        ];
        let envelope = in_page(tab, &func, &args).await?;
        if get(&envelope, "installed").as_bool() != Some(false) {
            port::connect(tab, seq);
            return Ok(Envelope::of(&envelope));
        }
    }
    let func = chrome::INVOKE.with(Function::clone);
    let envelope = in_page(
        tab,
        &func,
        &[method.into(), params_json.into(), lane.into(), key.into()],
    )
    .await?;
    Ok(Envelope::of(&envelope))
}

/// The call over the document's open channel; `None` when it has none or nothing in the
/// page took the call (then the caller injects, as before the channel).
async fn over_channel(
    tab: TabId,
    seq: u64,
    method: &str,
    lane: bool,
    params_json: &str,
) -> Option<JsResult<Envelope>> {
    let text = match port::ask(tab, seq, method, lane, params_json)?.await {
        Reply::Answer(text) => text,
        Reply::Closed => return Some(Ok(Envelope::Missing)),
    };
    match channel::parse_answer(&text) {
        Some((_, Answer::Value(json))) => Some(Ok(Envelope::Value(json.to_owned()))),
        Some((_, Answer::Failed(error))) => Some(Ok(Envelope::Failed(error.to_owned()))),
        Some((n, Answer::Stashed)) => {
            let func = chrome::TAKE_STASHED.with(Function::clone);
            let stash = format!("{}/{n}", port::key());
            Some(
                in_page(tab, &func, &[stash.into()])
                    .await
                    .map(|e| Envelope::of(&e)),
            )
        }
        Some((_, Answer::Missed)) | None => {
            port::failed(tab, seq);
            None
        }
    }
}

/// Runs an ad-hoc script in the tab's MAIN world with `chrome.userScripts.execute` (a
/// code string that the page's CSP does not apply to). The code is the script as the
/// body of an async function, handed to page-world.js's `invoke` (its source text), so
/// the result is encoded exactly like a method's. The script's first line is line 2 of
/// the code, and stacks name it `any-script.js`.
async fn execute(tab: TabId, script: &str) -> JsResult<JsValue> {
    let invoke = chrome::INVOKE.with(|f| String::from(f.to_string()));
    let code = format!(
        "((script, invoke) => invoke({SCRIPT_METHOD:?}, \"null\", false, undefined, script))(async function () {{\n\
         {script}\n}},\n{invoke})\n//# sourceURL=any-script.js\n"
    );
    let envelope = in_page_code(tab, &[code]).await?;
    if envelope.is_object() {
        return Ok(envelope);
    }
    // Nothing came back: a sandboxed document runs no script at all, or the code did not
    // compile.
    if describe(tab).await.is_ok_and(|seen| seen.sandboxed) {
        let message = "no script can run in the page: the document is sandboxed by its \
                       Content-Security-Policy (`sandbox` without `allow-scripts`)";
        return Ok(js::from_json(
            &serde_json::json!({"ok": false, "error": {
                "code": "not_scriptable", "name": "NotScriptable", "message": message
            }})
            .to_string(),
        ));
    }
    // So the code did not compile. Compile the script alone (not run)
    // with an error listener in front, to say where.
    let key = format!("any.syntax/{}", js_sys::Math::random().to_bits());
    let listen = format!(
        "(() => {{ const k = Symbol.for({key:?}); globalThis[k] = null; \
         addEventListener(\"error\", (e) => {{ globalThis[k] = {{message: String(e.message), line: e.lineno, column: e.colno}}; }}, {{once: true}}); }})()"
    );
    let compile = format!("(async function () {{\n{script}\n}})\n//# sourceURL=any-script.js\n");
    let read = format!(
        "(() => {{ const k = Symbol.for({key:?}); const e = globalThis[k]; delete globalThis[k]; return e; }})()"
    );
    let seen = in_page_code(tab, &[listen, compile, read]).await?;
    let message = match (
        js::get_string(&seen, "message"),
        get(&seen, "line").as_f64(),
    ) {
        (Some(message), Some(line)) => format!(
            "the script is not valid JavaScript: {} (line {}, column {})",
            message.trim_start_matches("Uncaught "),
            (line as i64 - 1).max(1),
            get(&seen, "column").as_f64().unwrap_or(0.0)
        ),
        _ => {
            "the script did not run: it is not valid JavaScript (see the page's console)".to_owned()
        }
    };
    Ok(js::from_json(
        &serde_json::json!({"ok": false, "error": {
            "code": "page_error", "name": "SyntaxError", "message": message, "stack": ""
        }})
        .to_string(),
    ))
}

/// Runs code strings in the tab's MAIN world (`chrome.userScripts.execute`); the value
/// of the last one.
async fn in_page_code(tab: TabId, code: &[String]) -> JsResult<JsValue> {
    let js: Vec<JsValue> = code
        .iter()
        .map(|c| obj(&[("code", c.as_str().into())]).into())
        .collect();
    let injection = obj(&[
        ("target", obj(&[("tabId", tab.into())]).into()),
        ("world", "MAIN".into()),
        ("injectImmediately", true.into()),
        ("js", array(&js).into()),
    ]);
    let results = settle(chrome::user_scripts_execute(&injection)).await?;
    Ok(js::items(&results)
        .first()
        .map_or(JsValue::UNDEFINED, |r| get(r, "result")))
}

/// What the page answered for a method or script.
enum Envelope {
    /// `{ok: true, json}`: the result as JSON text.
    Value(String),
    /// `{ok: false, error}`: the page's error object as JSON text.
    Failed(String),
    /// No envelope: the frame went away.
    Missing,
}

impl Envelope {
    /// Reads the `{ok, json | error}` object an injection returned.
    fn of(envelope: &JsValue) -> Envelope {
        match get(envelope, "ok").as_bool() {
            Some(true) => Envelope::Value(
                get(envelope, "json")
                    .as_string()
                    .unwrap_or_else(|| "null".to_owned()),
            ),
            Some(false) => Envelope::Failed(
                js::to_json(&get(envelope, "error")).unwrap_or_else(|| "null".to_owned()),
            ),
            None => Envelope::Missing,
        }
    }
}

/// The value, the page's error, or — no envelope — the frame went away.
fn read_envelope(envelope: Envelope, method: &str) -> Result<Json, Stop> {
    match envelope {
        Envelope::Value(text) => serde_json::value::RawValue::from_string(text).map_err(|e| {
            Stop::Fail(
                ErrorBody::new(
                    ErrorCode::NotSerializable,
                    format!("the page's encoding of the result is not JSON: {e}"),
                )
                .at(Stage::MethodCalled),
            )
        }),
        Envelope::Failed(error) => Err(Stop::Fail(page::page_error(&error, method))),
        Envelope::Missing => Err(Stop::Fail(page::no_envelope(method))),
    }
}
