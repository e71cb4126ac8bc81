//! The flow of one call: choose or open the tab, wait for readiness, invoke, answer.
//!
//! Runs in: the extension's service worker (wasm). The page side is the plain
//! JavaScript of `extension/page-world.js`, run by `chrome.scripting.executeScript` in
//! the page's MAIN world (exempt from the page's CSP; no eval, no inline script). Every
//! decision (which tab, when ready, when to give up, what an outcome means) comes from
//! [`crate::tabs`], [`crate::wait`] and [`crate::page`]; every await is raced against a
//! watcher so that a cancel, the deadline, a closed tab or a page navigating away ends
//! the call instead of hanging it.

use std::future::Future;
use std::pin::pin;

use any_protocol::{
    Call, CallError, CallResult, ErrorBody, ErrorCode, ExtensionFrame, Json, Progress, Stage,
};
use futures_util::future::{Either, select};
use js_sys::Function;
use wasm_bindgen::JsValue;

use super::js::{self, JsResult, array, get, now, obj, settle, sleep};
use super::{chrome, error, send, with};
use crate::calls::Outcome;
use crate::page;
use crate::tabs::{Choice, TabId};
use crate::wait::{self, Next, POLL_MS, Probe, Stop, Wait};

/// How long the MAIN-world probe waits for a postMessage-lane helper to say it serves
/// the method (only when `globalThis.__any__[method]` is absent).
const LANE_ASK_MS: u32 = 50;
/// After a failed injection, how long to wait for `tabs.onRemoved` / `webNavigation`
/// events that explain it.
const EVENTS_GRACE_MS: u32 = 100;

/// Runs one call to its single terminal answer (or to silence, when cancelled).
pub async fn run(call: Call) {
    let started = now();
    if let Some(Err(e)) = with(|a| a.calls.begin(&call.id, &call.page, &call.method, started)) {
        error(e);
        return;
    }
    let mut held: Option<TabId> = None;
    let outcome = flow(&call, started, &mut held).await;
    if let Some(tab) = held {
        with(|a| a.tabs.release(tab, &call.id, &call.page));
    }
    let end = now();
    match outcome {
        Ok(value) => {
            if with(|a| a.calls.finish(&call.id, end, Outcome::Ok)) == Some(true) {
                send(&ExtensionFrame::Result(CallResult { id: call.id, value }));
            }
        }
        Err(Stop::Fail(e)) => {
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

/// Awaits `work` while `check` (looked at every [`POLL_MS`]) has no reason to stop.
async fn watched<T>(
    work: impl Future<Output = T>,
    check: impl Fn() -> Option<Stop>,
) -> Result<T, Stop> {
    let watcher = async {
        loop {
            sleep(POLL_MS).await;
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

async fn flow(call: &Call, started: f64, held: &mut Option<TabId>) -> Result<Json, Stop> {
    let id = call.id.as_str();
    let choice = with(|a| a.tabs.choose(&call.page, call.tab, id)).unwrap_or(Choice::Open);
    let stage = match choice {
        Choice::Reuse(tab) => {
            *held = Some(tab);
            // Tabs open alone in their own window (see `open_tab`), so this one is
            // normally its window's active tab already (tracked from tabs.onActivated).
            // If the user switched tabs in that window, bring it back to the front:
            // background tabs run their timers at most once a second. (Activating on
            // every call cut the throughput with 8 busy pages from ~500 to ~80 calls/s.)
            if with(|a| a.tabs.get(tab).is_some_and(|t| t.active)) != Some(true) {
                let _ = settle(chrome::tabs_update(tab, &obj(&[("active", true.into())]))).await;
                with(|a| a.tabs.set_active(tab, None));
            }
            Stage::TabOpened
        }
        Choice::Open => {
            let tab = open_tab(call).await?;
            *held = Some(tab);
            progress(id, Stage::TabOpened);
            progress(id, Stage::Navigating);
            Stage::Navigating
        }
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
        Choice::Reuse(_) => with(|a| a.tabs.found(tab, &call.method)).flatten(),
        Choice::Open => None,
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
                        _ => sleep(POLL_MS).await,
                    }
                }
                Next::Found { lane } => break lane,
                Next::Stop(stop) => return Err(stop),
            }
        }
    };
    if known.is_none() {
        with(|a| a.tabs.remember_found(tab, &call.method, lane));
        progress(id, Stage::MethodFound);
    }

    let seq = nav_seq(tab);
    progress(id, Stage::MethodCalled);
    wait.stage = Stage::MethodCalled;
    let params = call.params.get().to_owned();
    let invoked = watched(
        invoke(tab, &call.method, params, lane, known.is_some()),
        || {
            with(|a| wait::running(now(), a.tabs.get(tab), a.calls.is_cancelled(id), &wait, seq))
                .flatten()
        },
    )
    .await?;
    // executeScript may settle just as the frame goes away, before the tab and navigation
    // events arrive: give them a moment, then the watcher's verdict wins.
    if invoked.is_err() {
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
        Ok(envelope) => read_envelope(&envelope, &call.method),
    }
}

fn nav_seq(tab: TabId) -> u64 {
    with(|a| a.tabs.get(tab).map(|t| t.nav_seq))
        .flatten()
        .unwrap_or(0)
}

fn tab_closed(tab: TabId) -> bool {
    with(|a| a.tabs.get(tab).is_none_or(|t| t.closed)).unwrap_or(true)
}

/// Opens a tab at the page, alone in a new, unfocused window. Chrome runs the timers
/// of background tabs at most once a second (a 50 ms `sleep` takes 1000 ms), and in a
/// user's browser no flag turns that off; a tab that is the only one of its window is
/// always its window's active tab, so it runs at full speed even while other calls run
/// in other such tabs, and no call ever has to switch tabs. `focused: false` leaves the
/// keyboard focus with the user's window. Where windows cannot be created (no window
/// system), an active tab in the current window is the fallback.
async fn open_tab(call: &Call) -> Result<TabId, Stop> {
    let url = call.page.as_str();
    let window = obj(&[("url", url.into()), ("focused", false.into())]);
    let (created, window) = match settle(chrome::windows_create(&window)).await {
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
        Stop::Fail(
            ErrorBody::new(
                ErrorCode::NavigationFailed,
                format!("could not open a tab at {}: {e}", call.page),
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
    with(|a| {
        a.tabs.adopt(tab, &call.page, &call.id);
        a.tabs.set_active(tab, window);
    });
    super::save_owned_tabs();
    Ok(tab)
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
    Ok(Probe {
        main: get(&seen, "main").as_bool() == Some(true),
        lane: get(&seen, "lane").as_bool() == Some(true),
    })
}

thread_local! {
    /// The key under which `invoke` keeps its copy in each page (see page-world.js):
    /// new with every start of the worker, so pages never run an older copy.
    static PAGE_KEY: String = format!("any.invoke/{}", js_sys::Math::random().to_bits());
}

/// Invokes the method. `installed`: this document already ran `invoke` with this
/// worker's key, so the few-line `invokeInstalled` suffices (the whole `invoke` is
/// only injected when the copy is missing).
async fn invoke(
    tab: TabId,
    method: &str,
    params_json: String,
    lane: bool,
    installed: bool,
) -> JsResult<JsValue> {
    let key = PAGE_KEY.with(String::clone);
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
            return Ok(envelope);
        }
    }
    let func = chrome::INVOKE.with(Function::clone);
    in_page(
        tab,
        &func,
        &[method.into(), params_json.into(), lane.into(), key.into()],
    )
    .await
}

/// `{ok: true, json}` → the value; `{ok: false, error}` → the page's error; anything
/// else → the frame went away.
fn read_envelope(envelope: &JsValue, method: &str) -> Result<Json, Stop> {
    match get(envelope, "ok").as_bool() {
        Some(true) => {
            let text = get(envelope, "json")
                .as_string()
                .unwrap_or_else(|| "null".to_owned());
            serde_json::value::RawValue::from_string(text).map_err(|e| {
                Stop::Fail(
                    ErrorBody::new(
                        ErrorCode::NotSerializable,
                        format!("the page's encoding of the result is not JSON: {e}"),
                    )
                    .at(Stage::MethodCalled),
                )
            })
        }
        Some(false) => {
            let error = js::to_json(&get(envelope, "error")).unwrap_or_else(|| "null".to_owned());
            Err(Stop::Fail(page::page_error(&error, method)))
        }
        None => Err(Stop::Fail(page::no_envelope(method))),
    }
}
