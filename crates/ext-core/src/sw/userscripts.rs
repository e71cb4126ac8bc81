//! The server's hosted userscripts in the browser: `chrome.userScripts` registrations
//! in the page's MAIN world, kept equal to the enabled scripts of the latest `scripts`
//! frame, and ad-hoc scripts run with `chrome.userScripts.execute`.
//!
//! Runs in: the extension's service worker (wasm). The latest set is also kept in
//! `chrome.storage.local`, so a worker that restarts without a server re-applies it
//! (an extension loaded with `--load-extension` starts every browser run with no
//! registrations, so this restore is what keeps scripts alive). `chrome.userScripts`
//! exists only while the browser's per-extension "Allow User Scripts" switch is on
//! (Chrome 138+): without it nothing is registered, `hello` leaves out the
//! `user_scripts` capability, the popup and `run` say what to switch on, and the
//! scripts wait in storage until it is on. The decisions are in [`crate::hosted`].

use std::cell::RefCell;

use any_protocol::UserScript;
use serde_json::{Value, json};
use wasm_bindgen::JsValue;

use super::js::{self, get, settle};
use super::{chrome, error, log};
use crate::hosted::{self, HOW_TO_ALLOW, Registered};

/// The `hello` capability that says `chrome.userScripts` works here.
pub const CAPABILITY: &str = "user_scripts";

const STORAGE_KEY: &str = "hosted_scripts";

#[derive(Default)]
struct Hosted {
    scripts: Vec<UserScript>,
    /// Ids `getScripts` reported after the last sync.
    registered: Vec<String>,
    last_error: Option<String>,
    syncing: bool,
    /// Another sync was asked for while one ran.
    again: bool,
    /// Whether `chrome.userScripts` was there when last looked at.
    was_available: Option<bool>,
}

thread_local! {
    static HOSTED: RefCell<Hosted> = RefCell::new(Hosted::default());
}

fn with<R>(f: impl FnOnce(&mut Hosted) -> R) -> R {
    HOSTED.with(|h| f(&mut h.borrow_mut()))
}

/// Whether `chrome.userScripts` can be used now ("Allow User Scripts" is on).
pub fn available() -> bool {
    chrome::CHROME.with(|c| get(c, "userScripts").is_object())
}

/// What to tell a caller or the popup when it is not.
pub fn not_allowed() -> String {
    format!(
        "the browser does not let the any extension run userscripts: {HOW_TO_ALLOW} \
         (Chrome/Chromium 138+; older versions: switch on Developer mode in chrome://extensions)"
    )
}

/// A `scripts` frame arrived: remember the set (also across worker restarts) and apply it.
pub fn received(scripts: Vec<UserScript>) {
    let text = serde_json::to_string(&scripts).unwrap_or_else(|_| "[]".to_owned());
    with(|h| h.scripts = scripts);
    wasm_bindgen_futures::spawn_local(async move {
        let items = js::obj(&[(STORAGE_KEY, JsValue::from_str(&text))]);
        if let Err(e) = settle(chrome::storage_local_set(&items)).await {
            error(format!("could not keep the hosted userscripts: {e}"));
        }
    });
    schedule();
}

/// At start-up: the set the last server sent, applied again.
pub async fn restore() {
    if let Ok(items) = settle(chrome::storage_local_get(&STORAGE_KEY.into())).await
        && let Some(text) = js::get_string(&items, STORAGE_KEY)
        && let Ok(scripts) = serde_json::from_str::<Vec<UserScript>>(&text)
    {
        with(|h| {
            if h.scripts.is_empty() {
                h.scripts = scripts;
            }
        });
    }
    schedule();
}

/// Called every tick: notices the switch being turned on or off. Returns `true` when it
/// changed (so `hello` should be sent again).
pub fn watch_switch() -> bool {
    let now = available();
    let before = with(|h| h.was_available.replace(now));
    if before.is_some_and(|b| b != now) {
        log(format!(
            "\"Allow User Scripts\" is now {}",
            if now { "on" } else { "off" }
        ));
        schedule();
        return true;
    }
    false
}

fn schedule() {
    let start = with(|h| {
        if h.syncing {
            h.again = true;
            false
        } else {
            h.syncing = true;
            true
        }
    });
    if start {
        wasm_bindgen_futures::spawn_local(async {
            loop {
                sync().await;
                let again = with(|h| {
                    let again = h.again;
                    h.again = false;
                    if !again {
                        h.syncing = false;
                    }
                    again
                });
                if !again {
                    break;
                }
            }
        });
    }
}

async fn registered() -> js::JsResult<Vec<Registered>> {
    let list = settle(chrome::user_scripts_get()).await?;
    let text = js::to_json(&list).unwrap_or_else(|| "[]".to_owned());
    serde_json::from_str(&text).map_err(|e| js::JsError(format!("getScripts answered {text}: {e}")))
}

/// Makes the registrations equal to the enabled scripts.
async fn sync() {
    let scripts = with(|h| h.scripts.clone());
    if !available() {
        let wanted = scripts.iter().any(|s| s.enabled);
        let message = not_allowed();
        let new = with(|h| {
            h.registered.clear();
            let new = h.last_error.as_deref() != Some(message.as_str());
            h.last_error = wanted.then(|| message.clone());
            new
        });
        if wanted && new {
            error(format!(
                "{} hosted userscript(s) cannot run: {message}",
                scripts.len()
            ));
        }
        return;
    }
    let outcome: js::JsResult<(usize, usize)> = async {
        let plan = hosted::plan(&scripts, &registered().await?);
        if !plan.unregister.is_empty() {
            let ids: Vec<JsValue> = plan
                .unregister
                .iter()
                .map(|i| JsValue::from_str(i))
                .collect();
            let filter = js::obj(&[("ids", js::array(&ids).into())]);
            settle(chrome::user_scripts_unregister(&filter.into())).await?;
        }
        if !plan.register.is_empty() {
            let list: Vec<Value> = plan.register.iter().map(hosted::registration).collect();
            let list = js::from_json(&Value::from(list).to_string());
            settle(chrome::user_scripts_register(&list)).await?;
        }
        Ok((plan.unregister.len(), plan.register.len()))
    }
    .await;
    let now_registered = registered().await.unwrap_or_default();
    let ids: Vec<String> = now_registered.into_iter().map(|r| r.id).collect();
    match outcome {
        Ok((removed, added)) => {
            with(|h| {
                h.registered = ids;
                h.last_error = None;
            });
            if removed + added > 0 {
                log(format!(
                    "hosted userscripts: {added} registered, {removed} unregistered"
                ));
            }
        }
        Err(e) => {
            let message = format!("could not register the hosted userscripts: {e}");
            with(|h| {
                h.registered = ids;
                h.last_error = Some(message.clone());
            });
            error(message);
        }
    }
}

/// Waits (up to 2 s) until no sync is running, so that a call that follows a `scripts`
/// frame opens its page with the new registrations in place.
pub async fn settled() {
    let since = js::now();
    while with(|h| h.syncing) && js::now() - since < 2_000.0 {
        js::sleep(5).await;
    }
}

/// The popup's section: the switch, each script and whether it runs on `url`.
pub fn status(url: Option<&str>) -> Value {
    with(|h| {
        json!({
            "available": available(),
            "how_to_allow": HOW_TO_ALLOW,
            "last_error": h.last_error,
            "scripts": hosted::popup(&h.scripts, &h.registered, url),
        })
    })
}

/// Whether any enabled hosted script would run on `url` (for a `method_not_found` hint).
pub fn hosted_for(url: &str) -> bool {
    with(|h| {
        h.scripts
            .iter()
            .any(|s| s.enabled && any_userscript::runs_on(s, url))
    })
}
