//! The service worker's browser binding: entry points, state, socket, timers.
//!
//! Runs in: the extension's service worker (wasm), called by `extension/background.js`:
//! [`start`] once the wasm is initialised, [`on_event`] for every `chrome.*` event the
//! shim registered at top level, [`on_message`] for the popup and options page. The
//! decisions are made by the plain-Rust modules of this crate; this module carries
//! them out (opens and closes sockets, sends frames, reads storage).

mod call;
mod channel;
mod chrome;
mod js;
mod tick;
mod userscripts;

use std::cell::RefCell;

use any_protocol::{
    BrowserInfo, CallError, ErrorBody, ErrorCode, ExtensionFrame, Hello, Pong, ServerFrame, Stage,
    VERSION, decode, encode,
};
use js_sys::Promise;
use serde_json::json;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::calls::Calls;
use crate::config::{self, Config, ConfigLayer};
use crate::link::{Action, Link, LinkState, TICK_MS};
use crate::tabs::Tabs;
use js::{JsResultExt, get, get_i32, get_string, now, obj, settle};

/// Capabilities announced in `hello`.
const CAPABILITIES: &[&str] = &["post_message_lane"];
/// The `chrome.alarms` backstop: wakes a stopped worker (which restarts the wasm and
/// the connect loop) and, while it runs, keeps it from being stopped.
const ALARM: &str = "any-keepalive";
const ALARM_PERIOD_MINUTES: f64 = 0.5;
/// How long the connect loop waits for the start-up reads (config, storage).
const SETUP_WAIT_MS: f64 = 3_000.0;
/// A server probe that takes longer than this counts as "nothing answers".
const PROBE_TIMEOUT_MS: u32 = 900;

/// The open socket and the handlers that must live as long as it.
struct Socket {
    sock: u64,
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    fn shut(self, reason: &str) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let reason: String = reason.chars().take(60).collect();
        let _ = self.ws.close_with_code_and_reason(1000, &reason);
    }
}

struct App {
    link: Link,
    socket: Option<Socket>,
    stored: ConfigLayer,
    file: ConfigLayer,
    file_error: Option<String>,
    config: Config,
    config_loaded: bool,
    setup_done: bool,
    tabs: Tabs,
    calls: Calls,
    started_at: f64,
    version: String,
    extension_id: String,
    browser: BrowserInfo,
}

thread_local! {
    static APP: RefCell<Option<App>> = const { RefCell::new(None) };
    /// When the worker started; read by the panic hook, which cannot borrow `APP`.
    static STARTED: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

/// Only restart after a panic if the worker ran this long (no restart loops).
const PANIC_RESTART_AFTER_MS: f64 = 10_000.0;

/// A panic aborts the wasm instance: every later call into it would fail. Log it, keep
/// the message for the popup (`storage.local`), and reload the extension so that a
/// fresh worker reconnects — unless the worker had only just started (then Chrome stops
/// the silent worker after 30 s and the alarm starts a fresh one).
fn on_panic(info: &std::panic::PanicHookInfo<'_>) {
    console_error_panic_hook::hook(info);
    let message = format!("the extension's core crashed and was restarted: {info}");
    // storage.local: an extension reload clears storage.session.
    let _ = chrome::storage_local_set(&obj(&[("last_panic", JsValue::from_str(&message))]));
    if now() - STARTED.with(std::cell::Cell::get) > PANIC_RESTART_AFTER_MS {
        let _ = chrome::runtime_reload();
    }
}

/// Runs `f` on the state. Never called re-entrantly: nothing inside calls back into JS
/// code that could dispatch an event synchronously.
fn with<R>(f: impl FnOnce(&mut App) -> R) -> Option<R> {
    APP.with(|cell| cell.borrow_mut().as_mut().map(f))
}

fn log(text: String) {
    web_sys::console::log_1(&JsValue::from_str(&format!("any: {text}")));
    with(|a| a.calls.log(now(), text));
}

/// Logs loudly and keeps the error for the popup.
fn error(text: String) {
    web_sys::console::error_1(&JsValue::from_str(&format!("any: {text}")));
    with(|a| a.calls.error(now(), text));
}

/// Called by the shim once the wasm is ready: sets up state, starts the connect loop.
#[wasm_bindgen]
pub fn start() {
    std::panic::set_hook(Box::new(on_panic));
    STARTED.with(|s| s.set(now()));
    let fresh = APP.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_some() {
            return false;
        }
        let manifest = chrome::runtime_get_manifest()
            .ok()
            .map(JsValue::from)
            .unwrap_or(JsValue::NULL);
        let extension_id = chrome::runtime_get_url("")
            .ok()
            .and_then(|u| {
                u.strip_prefix("chrome-extension://")
                    .map(|s| s.trim_end_matches('/').to_owned())
            })
            .unwrap_or_default();
        *slot = Some(App {
            link: Link::new(),
            socket: None,
            stored: ConfigLayer::default(),
            file: ConfigLayer::default(),
            file_error: None,
            config: config::resolve(&ConfigLayer::default(), &ConfigLayer::default()),
            config_loaded: false,
            setup_done: false,
            tabs: Tabs::default(),
            calls: Calls::default(),
            started_at: now(),
            version: get_string(&manifest, "version").unwrap_or_default(),
            extension_id,
            browser: BrowserInfo {
                name: String::new(),
                version: String::new(),
            },
        });
        true
    });
    if !fresh {
        return;
    }
    wasm_bindgen_futures::spawn_local(async {
        setup().await;
        with(|a| a.setup_done = true);
    });
    // The connect loop runs in its own task: whatever happens to the setup, the worker
    // keeps retrying. It waits for the setup (the configured address) for a moment only.
    wasm_bindgen_futures::spawn_local(async {
        let since = now();
        while with(|a| a.setup_done) == Some(false) && now() - since < SETUP_WAIT_MS {
            js::sleep(10).await;
        }
        if with(|a| a.setup_done) != Some(true) {
            error(format!(
                "start-up did not finish within {SETUP_WAIT_MS} ms; connecting with the configuration known so far"
            ));
        }
        loop {
            // "Allow User Scripts" switched: reconnect (when idle) so that `hello` tells
            // the server the new capabilities.
            if userscripts::watch_switch() {
                let actions = with(|a| {
                    (a.link.is_connected() && a.calls.running() == 0).then(|| a.link.reset())
                });
                apply(actions.flatten().unwrap_or_default());
            }
            let actions = with(|a| {
                let server = a.config.server.clone();
                a.link.tick(now(), &server)
            });
            apply(actions.unwrap_or_default());
            js::sleep(TICK_MS).await;
        }
    });
}

/// Alarm, browser name, configuration, remembered rejection and tabs.
async fn setup() {
    let alarm = obj(&[("periodInMinutes", ALARM_PERIOD_MINUTES.into())]);
    if let Err(e) = settle(chrome::alarms_create(ALARM, &alarm)).await {
        error(format!("could not create the keep-alive alarm: {e}"));
    }
    let browser = browser_info().await;
    with(|a| a.browser = browser);
    load_config().await;
    restore_reject().await;
    restore_owned_tabs().await;
    wasm_bindgen_futures::spawn_local(call::dialog_guard());
    wasm_bindgen_futures::spawn_local(userscripts::restore());
    log(format!(
        "worker started; server {}",
        with(|a| a.config.server.clone()).unwrap_or_default()
    ));
}

/// Names the browser: `navigator.userAgentData` brands with full versions
/// (`getHighEntropyValues(["fullVersionList"])`) when available, else the user agent.
async fn browser_info() -> BrowserInfo {
    let nav = chrome::NAVIGATOR.with(JsValue::clone);
    let ua = get_string(&nav, "userAgent").unwrap_or_default();
    let data = get(&nav, "userAgentData");
    let mut brands = get(&data, "brands");
    if let Ok(f) = get(&data, "getHighEntropyValues").dyn_into::<js_sys::Function>() {
        let hints = js::array(&["fullVersionList".into()]);
        let high = f
            .call1(&data, &hints)
            .map(|p| p.unchecked_into::<Promise>());
        if let Ok(values) = settle(high).await {
            let full = get(&values, "fullVersionList");
            if full.is_object() {
                brands = full;
            }
        }
    }
    let brands: Vec<(String, String)> = js::items(&brands)
        .into_iter()
        .filter_map(|b| Some((get_string(&b, "brand")?, get_string(&b, "version")?)))
        .collect();
    crate::page::browser_info(&brands, &ua)
}

/// Reads `config.json` (the defaults `any browser` wrote) and the user's stored values.
async fn load_config() {
    let url = chrome::runtime_get_url("config.json").unwrap_or_default();
    let (file, file_error) = match fetch_text(&url).await {
        Ok(Some(text)) => match ConfigLayer::from_json(&text) {
            Ok(layer) => (layer, None),
            Err(e) => (ConfigLayer::default(), Some(e)),
        },
        Ok(None) => (ConfigLayer::default(), None),
        Err(e) => (
            ConfigLayer::default(),
            Some(format!("could not read config.json: {e}")),
        ),
    };
    if let Some(e) = &file_error {
        error(e.clone());
    }
    let stored = read_stored().await;
    with(|a| {
        a.file = file;
        a.file_error = file_error;
        a.stored = stored;
        a.config = config::resolve(&a.stored, &a.file);
        a.config_loaded = true;
    });
}

/// `Ok(None)`: the file does not exist.
async fn fetch_text(url: &str) -> js::JsResult<Option<String>> {
    let Ok(response) = settle(chrome::fetch(url, &obj(&[]))).await else {
        // A missing extension file is a network error for fetch.
        return Ok(None);
    };
    let response: web_sys::Response = response.dyn_into().context("fetch gave no Response")?;
    if !response.ok() {
        return Ok(None);
    }
    let text = settle(response.text()).await?;
    Ok(text.as_string())
}

async fn read_stored() -> ConfigLayer {
    match settle(chrome::storage_local_get(
        &js::array(&["server".into(), "label".into(), "max_tabs".into()]).into(),
    ))
    .await
    {
        Ok(items) => ConfigLayer {
            server: get_string(&items, "server"),
            label: get_string(&items, "label"),
            max_tabs: get(&items, "max_tabs")
                .as_f64()
                .filter(|n| *n >= 1.0)
                .map(|n| n as usize),
        },
        Err(e) => {
            error(format!("could not read the stored settings: {e}"));
            ConfigLayer::default()
        }
    }
}

/// A rejection is remembered in `storage.session` (cleared when the browser restarts) so
/// that a restarted worker does not knock on the same door again.
async fn restore_reject() {
    if let Ok(items) = settle(chrome::storage_local_get(&"last_panic".into())).await
        && let Some(panic) = get_string(&items, "last_panic")
    {
        error(panic);
        let _ = settle(chrome::storage_local_remove(&"last_panic".into())).await;
    }
    let Ok(items) = settle(chrome::storage_session_get(&"rejected".into())).await else {
        return;
    };
    let rejected = get(&items, "rejected");
    let (Some(server), Some(reason)) = (
        get_string(&rejected, "server"),
        get_string(&rejected, "reason"),
    ) else {
        return;
    };
    with(|a| {
        if a.config.server == server {
            a.link.restore_reject(server, reason);
        }
    });
}

/// Keeps the tabs this extension opened, and their windows, in `storage.local`, so that a
/// restarted worker — also after the extension itself was reloaded, which empties
/// `storage.session` — still reuses them and closes them beyond the limit instead of
/// leaving them open for good (and never takes over the user's tabs). Windows being
/// opened right now are kept too (see [`opening_window`]).
pub(crate) fn save_owned_tabs() {
    // Until the records of the worker before are read, writing would overwrite them.
    if !RESTORED.with(std::cell::Cell::get) {
        return;
    }
    wasm_bindgen_futures::spawn_local(write_tab_records());
}

async fn write_tab_records() {
    if let Err(e) = settle(chrome::storage_local_set(&tab_records())).await {
        error(format!("could not remember the extension's tabs: {e}"));
    }
}

/// What [`save_owned_tabs`] writes: `{owned_tabs: [{tab, window}], opening_windows:
/// [{url}]}`.
fn tab_records() -> js_sys::Object {
    let owned = with(|a| {
        a.tabs
            .owned_ids()
            .into_iter()
            .map(|id| (id, a.tabs.get(id).and_then(|t| t.window)))
            .collect::<Vec<_>>()
    })
    .unwrap_or_default();
    let owned: js_sys::Array = owned
        .into_iter()
        .map(|(tab, window)| -> JsValue {
            obj(&[("tab", tab.into()), ("window", window.unwrap_or(-1).into())]).into()
        })
        .collect();
    let opening: js_sys::Array = OPENING.with(|o| {
        o.borrow()
            .iter()
            .map(|(_, url)| -> JsValue { obj(&[("url", url.as_str().into())]).into() })
            .collect()
    });
    obj(&[
        (OWNED_TABS_KEY, owned.into()),
        (OPENING_WINDOWS_KEY, opening.into()),
    ])
}

/// Where [`save_owned_tabs`] keeps them.
const OWNED_TABS_KEY: &str = "owned_tabs";
const OPENING_WINDOWS_KEY: &str = "opening_windows";

thread_local! {
    /// Windows being opened: (record number, page).
    static OPENING: RefCell<Vec<(u64, String)>> = const { RefCell::new(Vec::new()) };
    static NEXT_OPENING: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// [`restore_owned_tabs`] has read the records of the worker before.
    static RESTORED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A window for `page` is about to be created: recorded (and written before it is), so
/// that if the extension is reloaded before the tab is recorded, the next worker still
/// finds the window and does not leave it open for good. Returns the record's number for
/// [`opened_window`].
pub(crate) async fn opening_window(page: &str) -> u64 {
    let n = NEXT_OPENING.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    OPENING.with(|o| o.borrow_mut().push((n, page.to_owned())));
    if RESTORED.with(std::cell::Cell::get) {
        write_tab_records().await;
    }
    n
}

/// Is `window` one the extension opened (for one of its tabs)?
pub(crate) fn is_ours(window: i32) -> bool {
    with(|a| a.tabs.owned().iter().any(|(_, t)| t.window == Some(window))).unwrap_or(false)
}

/// The browser window that has the keyboard focus, if any.
pub(crate) async fn focused_window() -> Option<i32> {
    let w = settle(chrome::windows_get_last_focused()).await.ok()?;
    if get(&w, "focused").as_bool() == Some(true) {
        get_i32(&w, "id")
    } else {
        None
    }
}

/// The window of record `n` was created (and its tab recorded) or could not be.
pub(crate) fn opened_window(n: u64) {
    OPENING.with(|o| o.borrow_mut().retain(|(m, _)| *m != n));
    save_owned_tabs();
}

/// Closes the idle tabs this extension opened beyond the configured limit, least
/// recently used first, and unresponsive ones (see [`crate::tabs::Tabs::excess`]).
/// Chrome closes a window when its last tab goes.
pub(crate) fn close_excess_tabs() {
    let excess = with(|a| a.tabs.excess(a.config.max_tabs)).unwrap_or_default();
    if excess.is_empty() {
        return;
    }
    with(|a| {
        for id in &excess {
            a.tabs.removed(*id);
        }
    });
    save_owned_tabs();
    for id in excess {
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = settle(chrome::tabs_remove(id)).await {
                log(format!("could not close idle tab {id}: {e}"));
            }
        });
    }
}

/// Takes back the tabs [`save_owned_tabs`] kept: each one still there, in the window it
/// had, as that window's only tab (the extension gives each page a window of its own).
/// After a browser restart the kept ids name nothing (Chromium numbers tabs and windows
/// afresh from a random base each run), so a tab of the user's is never taken.
async fn restore_owned_tabs() {
    let keys = js::array(&[OWNED_TABS_KEY.into(), OPENING_WINDOWS_KEY.into()]);
    let Ok(items) = settle(chrome::storage_local_get(&keys.into())).await else {
        RESTORED.with(|r| r.set(true));
        save_owned_tabs();
        return;
    };
    let mut restored = 0;
    for kept in js::items(&get(&items, OWNED_TABS_KEY)) {
        let (Some(id), Some(window)) = (get_i32(&kept, "tab"), get_i32(&kept, "window")) else {
            continue;
        };
        // A tab that is gone since makes tabs.get reject: it is simply not restored.
        let Ok(tab) = settle(chrome::tabs_get(id)).await else {
            continue;
        };
        let populated = obj(&[("populate", true.into())]);
        let alone = settle(chrome::windows_get_with(window, &populated))
            .await
            .is_ok_and(|w| js::items(&get(&w, "tabs")).len() == 1);
        if get_i32(&tab, "windowId") != Some(window) || !alone {
            continue;
        }
        let url = get_string(&tab, "url").unwrap_or_default();
        let complete = get_string(&tab, "status").as_deref() == Some("complete");
        with(|a| {
            a.tabs.restore(id, &url, complete);
            a.tabs.set_active(id, Some(window));
        });
        restored += 1;
    }
    restored += adopt_opened_windows(&js::items(&get(&items, OPENING_WINDOWS_KEY))).await;
    // From here on this worker's records, which now hold the ones read, replace them.
    RESTORED.with(|r| r.set(true));
    if restored > 0 {
        log(format!(
            "took back {restored} tab(s) opened before the worker restarted"
        ));
    }
    save_owned_tabs();
    close_excess_tabs();
}

/// Windows an earlier worker was opening when it stopped (`opening`: `{url}` records): a
/// window with a single tab at that page that no record names yet is that window.
/// Returns how many were taken back.
async fn adopt_opened_windows(opening: &[JsValue]) -> usize {
    if opening.is_empty() {
        return 0;
    }
    let populated = obj(&[("populate", true.into())]);
    let Ok(windows) = settle(chrome::windows_get_all(&populated)).await else {
        return 0;
    };
    let mut wanted: Vec<String> = opening
        .iter()
        .filter_map(|o| get_string(o, "url"))
        .map(|url| crate::tabs::normalize_url(&url))
        .collect();
    let mut adopted = 0;
    for window in js::items(&windows) {
        let tabs = js::items(&get(&window, "tabs"));
        let ([tab], Some(window_id)) = (tabs.as_slice(), get_i32(&window, "id")) else {
            continue;
        };
        let Some(id) = get_i32(tab, "id") else {
            continue;
        };
        let url = get_string(tab, "pendingUrl")
            .filter(|u| !u.is_empty())
            .or_else(|| get_string(tab, "url"))
            .unwrap_or_default();
        let key = crate::tabs::normalize_url(&url);
        let known = with(|a| a.tabs.get(id).is_some_and(|t| t.owned)).unwrap_or(true);
        let Some(at) = wanted.iter().position(|w| *w == key) else {
            continue;
        };
        if known {
            continue;
        }
        wanted.remove(at);
        let complete = get_string(tab, "status").as_deref() == Some("complete");
        with(|a| {
            a.tabs.restore(id, &url, complete);
            a.tabs.set_active(id, Some(window_id));
        });
        adopted += 1;
    }
    adopted
}

/// Carries out the link's decisions.
fn apply(actions: Vec<Action>) {
    for action in actions {
        match action {
            Action::Probe { probe, url } => wasm_bindgen_futures::spawn_local(async move {
                let outcome = probe_server(&url).await;
                let actions = with(|a| {
                    let server = a.config.server.clone();
                    a.link.probed(probe, now(), &server, outcome)
                });
                apply(actions.unwrap_or_default());
            }),
            Action::Open { sock, url } => open(sock, &url),
            Action::Close { sock, reason } => {
                let socket = with(|a| {
                    if a.socket.as_ref().is_some_and(|s| s.sock == sock) {
                        a.socket.take()
                    } else {
                        None
                    }
                });
                if let Some(socket) = socket.flatten() {
                    socket.shut(&reason);
                }
            }
            Action::SendHello { sock } => {
                let hello = with(|a| {
                    ExtensionFrame::Hello(Hello {
                        protocol: VERSION,
                        extension_version: a.version.clone(),
                        browser: a.browser.clone(),
                        label: a.config.label.clone(),
                        capabilities: CAPABILITIES
                            .iter()
                            .copied()
                            .chain(userscripts::available().then_some(userscripts::CAPABILITY))
                            .map(str::to_owned)
                            .collect(),
                    })
                });
                if let Some(hello) = hello {
                    send_on(sock, &hello);
                }
            }
            Action::KeepAlive => {
                // Any extension API call resets Chrome's 30 s idle timer (Chrome 110+).
                wasm_bindgen_futures::spawn_local(async {
                    let _ = settle(chrome::runtime_get_platform_info()).await;
                });
            }
            Action::PersistReject { server, reason } => {
                error(format!(
                    "the server at {server} rejected this extension: {reason}"
                ));
                let value = obj(&[(
                    "rejected",
                    obj(&[("server", server.into()), ("reason", reason.into())]).into(),
                )]);
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = settle(chrome::storage_session_set(&value)).await;
                });
            }
            Action::ClearReject => wasm_bindgen_futures::spawn_local(async {
                let _ = settle(chrome::storage_session_remove(&"rejected".into())).await;
            }),
            Action::AbandonCalls => {
                let n = with(|a| a.calls.cancel_all()).unwrap_or(0);
                if n > 0 {
                    error(format!(
                        "the connection dropped with {n} call(s) running; they were abandoned"
                    ));
                }
            }
        }
    }
}

/// Does anything answer HTTP at `url`? Any response counts (the extension socket answers
/// a plain GET with an error status); only a network error or the timeout say no.
async fn probe_server(url: &str) -> Result<(), String> {
    let signal = chrome::abort_signal_timeout(PROBE_TIMEOUT_MS).unwrap_or(JsValue::UNDEFINED);
    let init = obj(&[
        ("cache", "no-store".into()),
        ("credentials", "omit".into()),
        ("signal", signal),
    ]);
    settle(chrome::fetch(url, &init))
        .await
        .map(|_| ())
        .map_err(|e| e.0)
}

/// Opens socket number `sock`; its events feed the link.
fn open(sock: u64, url: &str) {
    let ws = match WebSocket::new(url) {
        Ok(ws) => ws,
        Err(e) => {
            let why = js::describe(&e);
            error(format!("cannot open a WebSocket to {url}: {why}"));
            let actions = with(|a| {
                let server = a.config.server.clone();
                a.link.closed(sock, now(), &server, 0, &why)
            });
            apply(actions.unwrap_or_default());
            return;
        }
    };
    let on_open = Closure::<dyn FnMut()>::new(move || {
        let actions = with(|a| a.link.opened(sock, now()));
        apply(actions.unwrap_or_default());
    });
    let on_message =
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            match event.data().as_string() {
                Some(text) => received(sock, &text),
                None => error("the server sent a binary frame; frames are JSON text".to_owned()),
            }
        });
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
        let actions = with(|a| {
            a.socket.take_if(|s| s.sock == sock);
            let server = a.config.server.clone();
            let was = matches!(a.link.state, LinkState::Connected { .. });
            let actions = a
                .link
                .closed(sock, now(), &server, event.code(), &event.reason());
            (was && a.link.current_sock().is_none(), actions)
        });
        if let Some((was_connected, actions)) = actions {
            if was_connected {
                log(format!(
                    "disconnected (code {}); retrying every second",
                    event.code()
                ));
            }
            apply(actions);
        }
    });
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let old = with(|a| {
        a.socket.replace(Socket {
            sock,
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    });
    if let Some(old) = old.flatten() {
        old.shut("superseded");
    }
}

/// Sends on socket `sock` if it is the current one and OPEN; otherwise fails loudly.
fn send_on(sock: u64, frame: &ExtensionFrame) -> bool {
    let text = encode(frame);
    let outcome = with(|a| match &a.socket {
        Some(s) if s.sock == sock && s.ws.ready_state() == WebSocket::OPEN => {
            a.calls.frame(now(), false, &text);
            s.ws.send_with_str(&text).js().map_err(|e| e.0)
        }
        Some(s) if s.sock == sock => Err(format!(
            "the socket is not open (readyState {})",
            s.ws.ready_state()
        )),
        _ => Err("the connection it belonged to is gone".to_owned()),
    });
    match outcome {
        Some(Ok(())) => true,
        Some(Err(why)) => {
            error(format!("not sent ({}): {why}", frame_kind(frame)));
            false
        }
        None => false,
    }
}

/// Sends on whatever socket is connected now.
fn send(frame: &ExtensionFrame) -> bool {
    match with(|a| a.link.current_sock()).flatten() {
        Some(sock) => send_on(sock, frame),
        None => {
            error(format!("not sent ({}): not connected", frame_kind(frame)));
            false
        }
    }
}

fn frame_kind(frame: &ExtensionFrame) -> String {
    match frame {
        ExtensionFrame::Hello(_) => "hello".to_owned(),
        ExtensionFrame::Progress(p) => format!("progress {} of {}", p.stage, p.id),
        ExtensionFrame::Result(r) => format!("result of {}", r.id),
        ExtensionFrame::Error(e) => format!("error of {}", e.id),
        ExtensionFrame::Pong(_) => "pong".to_owned(),
        ExtensionFrame::Tabs(t) => format!("tabs ({})", t.tabs.len()),
    }
}

thread_local! {
    /// The tabs report last sent on the current connection, and whether one is due.
    static TABS_SENT: RefCell<(Option<any_protocol::Tabs>, bool)> = const { RefCell::new((None, false)) };
}

/// How long tab changes are gathered before one `tabs` frame reports them.
const TABS_REPORT_MS: u32 = 250;

/// The tabs this extension opened may have changed: the server hears of it within
/// [`TABS_REPORT_MS`], in one frame, and only if the report differs from the last.
pub(crate) fn tabs_changed() {
    let due = TABS_SENT.with(|t| std::mem::replace(&mut t.borrow_mut().1, true));
    if due {
        return;
    }
    wasm_bindgen_futures::spawn_local(async {
        js::sleep(TABS_REPORT_MS).await;
        TABS_SENT.with(|t| t.borrow_mut().1 = false);
        let Some((report, connected)) =
            with(|a| (a.tabs.report(a.config.max_tabs), a.link.is_connected()))
        else {
            return;
        };
        let fresh = TABS_SENT.with(|t| t.borrow().0.as_ref() != Some(&report));
        if connected && fresh && send(&ExtensionFrame::Tabs(report.clone())) {
            TABS_SENT.with(|t| t.borrow_mut().0 = Some(report));
        }
    });
}

/// One text frame from the server on socket `sock`.
fn received(sock: u64, text: &str) {
    if with(|a| a.link.current_sock() == Some(sock)) != Some(true) {
        return;
    }
    with(|a| {
        a.link.heard(sock, now());
        a.calls.frame(now(), true, text);
    });
    match decode::<ServerFrame>(text) {
        Ok(ServerFrame::Welcome(w)) => {
            let actions = with(|a| a.link.welcomed(sock, now(), w.heartbeat_ms));
            log(format!("connected (server {})", w.server_version));
            apply(actions.unwrap_or_default());
            // A new connection hears the whole report.
            TABS_SENT.with(|t| t.borrow_mut().0 = None);
            tabs_changed();
        }
        Ok(ServerFrame::Reject(r)) => {
            let actions = with(|a| {
                let server = a.config.server.clone();
                a.link.rejected(sock, now(), &server, &r.reason)
            });
            apply(actions.unwrap_or_default());
        }
        Ok(ServerFrame::Ping(p)) => {
            send_on(sock, &ExtensionFrame::Pong(Pong { seq: p.seq }));
        }
        Ok(ServerFrame::Call(c)) => wasm_bindgen_futures::spawn_local(call::run(c)),
        Ok(ServerFrame::Scripts(s)) => userscripts::received(s.scripts),
        Ok(ServerFrame::Run(r)) => wasm_bindgen_futures::spawn_local(call::run_script(r)),
        Ok(ServerFrame::Cancel(c)) => {
            // A method still running at its deadline may have stopped its page: no
            // other call is given that tab until it is checked (the call's own end, at
            // the next watch tick, starts the check; a call arriving meanwhile must
            // not land there).
            with(|a| {
                if a.calls.stage_of(&c.id) == Some(Stage::MethodCalled) {
                    a.tabs.checking_call(&c.id);
                }
            });
            if with(|a| a.calls.cancel(&c.id)) == Some(true) {
                log(format!(
                    "call {} cancelled by the server: {}",
                    c.id, c.reason
                ));
            }
        }
        Err(e) => {
            error(format!(
                "the server sent a frame this extension cannot read: {e}"
            ));
            if let Some(id) = e.call_id() {
                let body = ErrorBody::new(
                    ErrorCode::ProtocolError,
                    format!("the extension could not read the call: {e}"),
                );
                send_on(
                    sock,
                    &ExtensionFrame::Error(CallError {
                        id: id.to_owned(),
                        error: body,
                    }),
                );
            }
        }
    }
}

/// Every `chrome.*` event the shim registered arrives here, in order.
#[wasm_bindgen]
pub fn on_event(kind: &str, detail: JsValue) {
    let main_frame = || get_i32(&detail, "frameId") == Some(0);
    let tab = get_i32(&detail, "tabId").unwrap_or(-1);
    let url = get_string(&detail, "url").unwrap_or_default();
    match kind {
        "nav_before" if main_frame() => _ = with(|a| a.tabs.before_navigate(tab, &url)),
        "nav_committed" if main_frame() => _ = with(|a| a.tabs.committed(tab, &url)),
        "nav_dom_ready" if main_frame() => _ = with(|a| a.tabs.dom_ready(tab, &url)),
        "nav_url_changed" if main_frame() => _ = with(|a| a.tabs.url_changed(tab, &url)),
        "nav_completed" if main_frame() => _ = with(|a| a.tabs.completed(tab, &url)),
        "nav_error" if main_frame() => {
            let e = get_string(&detail, "error").unwrap_or_else(|| "unknown error".to_owned());
            with(|a| a.tabs.failed(tab, &url, &e));
        }
        "nav_before" | "nav_committed" | "nav_dom_ready" | "nav_url_changed" | "nav_completed"
        | "nav_error" => {}
        "tab_removed" => {
            let id = detail.as_f64().map_or(-1, |n| n as i32);
            let owned = with(|a| {
                let owned = a.tabs.get(id).is_some_and(|t| t.owned);
                a.tabs.removed(id);
                owned
            });
            channel::forget(id);
            if owned == Some(true) {
                save_owned_tabs();
            }
        }
        "download_created" => {
            let url = get_string(&detail, "finalUrl")
                .filter(|u| !u.is_empty())
                .or_else(|| get_string(&detail, "url"))
                .unwrap_or_default();
            let mime = get_string(&detail, "mime").filter(|m| !m.is_empty());
            let what = mime.unwrap_or_else(|| "a file".to_owned());
            let claimed = with(|a| a.tabs.download_started(&url, &what)).flatten();
            if let (Some(tab), Some(id)) = (claimed, get_i32(&detail, "id")) {
                log(format!(
                    "{url}, opened in tab {tab} for a call, is a download: cancelling it"
                ));
                wasm_bindgen_futures::spawn_local(discard_download(id));
            }
        }
        // Its window id is not trusted: on Linux, WINDOW_ID_NONE also comes right after
        // a window got the focus; the guard asks windows.getLastFocused itself.
        "window_focused" => wasm_bindgen_futures::spawn_local(call::dialog_guard()),
        "tab_activated" => {
            if let Some(window) = get_i32(&detail, "windowId") {
                with(|a| a.tabs.activated(tab, window));
            }
        }
        "storage_changed" => {
            if get_string(&detail, "area").as_deref() == Some("local") {
                wasm_bindgen_futures::spawn_local(reload_stored());
            }
        }
        "startup" | "installed" | "alarm" => {
            // Waking the worker is the point: start() has (re)started the connect loop.
            if kind != "alarm" {
                log(format!("runtime event: {kind}"));
            }
        }
        other => error(format!("unknown event {other:?} from background.js")),
    }
    if kind.starts_with("nav_") || kind.starts_with("tab_") {
        tabs_changed();
    }
}

/// Cancels a download the extension caused by opening a call's page, and removes what
/// arrived of it and its entry in the browser's list (a page that is a file is not what
/// the call asked for, and the person's downloads are theirs).
async fn discard_download(id: i32) {
    let _ = settle(chrome::downloads_cancel(id)).await;
    // A small file may have finished before the cancel: then its file is deleted.
    let _ = settle(chrome::downloads_remove_file(id)).await;
    let query = obj(&[("id", id.into())]);
    if let Err(e) = settle(chrome::downloads_erase(&query)).await {
        log(format!("could not erase download {id}: {e}"));
    }
}

/// The user changed the stored server or label: resolve again, reconnect if it matters.
async fn reload_stored() {
    let stored = read_stored().await;
    let actions = with(|a| {
        let old = a.config.clone();
        a.stored = stored;
        a.config = config::resolve(&a.stored, &a.file);
        if a.config.server != old.server || a.config.label != old.label {
            Some((a.config.server.clone(), a.link.reset()))
        } else {
            None
        }
    });
    close_excess_tabs();
    tabs_changed();
    if let Some(Some((server, actions))) = actions {
        log(format!("settings changed; connecting to {server}"));
        apply(actions);
    }
}

/// Requests from the popup and options page: `{type: "status"}`,
/// `{type: "set_config", server?, label?, max_tabs?}` (strings as typed), `{type: "retry"}`.
#[wasm_bindgen]
pub fn on_message(message: JsValue) -> Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let reply = match get_string(&message, "type").as_deref() {
            Some("status") => status(get_string(&message, "url").as_deref()),
            Some("set_config") => set_config(&message).await,
            Some("retry") => {
                let actions = with(|a| a.link.reset()).unwrap_or_default();
                apply(actions);
                json!({"ok": true})
            }
            other => json!({"ok": false, "error": format!("unknown request {other:?}")}),
        };
        Ok(js::from_json(&reply.to_string()))
    })
}

async fn set_config(message: &JsValue) -> serde_json::Value {
    let mut items = Vec::new();
    if let Some(server) = get_string(message, "server") {
        if let Err(e) = config::validate_server(&server) {
            return json!({"ok": false, "error": e});
        }
        items.push(("server", JsValue::from_str(server.trim())));
    }
    if let Some(label) = get_string(message, "label") {
        if let Err(e) = config::validate_label(&label) {
            return json!({"ok": false, "error": e});
        }
        items.push(("label", JsValue::from_str(label.trim())));
    }
    if let Some(max_tabs) = get_string(message, "max_tabs") {
        match config::validate_max_tabs(&max_tabs) {
            // 0: the default again.
            Ok(n) => items.push(("max_tabs", JsValue::from(n.unwrap_or(0) as u32))),
            Err(e) => return json!({"ok": false, "error": e}),
        }
    }
    // storage.onChanged then brings the new values in (one path for every change).
    match settle(chrome::storage_local_set(&obj(&items))).await {
        Ok(_) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": format!("could not save: {e}")}),
    }
}

/// Everything the popup shows.
fn status(tab_url: Option<&str>) -> serde_json::Value {
    with(|a| {
        json!({
            "ok": true,
            "now": now(),
            "extension_id": a.extension_id,
            "version": a.version,
            "browser": a.browser,
            "started_at": a.started_at,
            "connected": a.link.is_connected(),
            "link": a.link,
            "config": a.config,
            "config_loaded": a.config_loaded,
            "config_file_error": a.file_error,
            "calls": a.calls,
            "hosted": userscripts::status(tab_url),
            "tabs": a.tabs.owned().into_iter().map(|(id, t)| json!({"id": id, "tab": t})).collect::<Vec<_>>(),
        })
    })
    .unwrap_or_else(|| json!({"ok": false, "error": "the worker is still starting"}))
}
