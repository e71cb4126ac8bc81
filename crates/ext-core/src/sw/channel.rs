//! The persistent channel's browser side: connecting a ready page, the ports that come
//! back, and calls over them.
//!
//! Runs in: the extension's service worker (wasm). The decisions (once per document,
//! which port belongs to which tab, the wire text) are [`crate::channel`]'s; the
//! connector is `extension/isolated-world.js`, the MAIN world's end is installed by
//! `extension/page-world.js` `invoke`. `chrome.runtime.onConnect` only fires for this
//! extension's own contexts (web pages would need `externally_connectable`, which the
//! manifest does not declare), and a port is taken only when its name carries this
//! worker's key and the tab and document the worker is connecting to.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;

use js_sys::{Function, JsString, Promise};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::chrome::{self, Port};
use super::js::{self, get, get_i32, obj, settle};
use super::log;
use crate::channel::{self, Channels};
use crate::tabs::TabId;

/// An open port and the calls waiting for an answer on it.
struct Open {
    tab: TabId,
    port: Port,
    next: u64,
    /// Call number → the `resolve` of the promise its caller awaits.
    waiting: HashMap<u64, Function>,
    _on_message: Closure<dyn FnMut(JsValue)>,
    _on_disconnect: Closure<dyn FnMut(JsValue)>,
}

#[derive(Default)]
struct State {
    channels: Channels,
    /// By the port number [`Channels::connected`] gave.
    open: HashMap<u64, Open>,
}

thread_local! {
    /// The key under which `invoke` keeps its copy and its channel end in each page
    /// (see page-world.js): new with every start of the worker, so pages never run an
    /// older copy and an older worker's connectors never match.
    static KEY: String = format!("any.invoke/{}", js_sys::Math::random().to_bits());
    static STATE: RefCell<State> = RefCell::new(State::default());
}

pub fn key() -> String {
    KEY.with(String::clone)
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

/// Connects to the tab's document `seq` in the background, once per document.
pub fn connect(tab: TabId, seq: u64) {
    if !with(|s| s.channels.begin(tab, seq)) {
        return;
    }
    wasm_bindgen_futures::spawn_local(async move {
        let key = key();
        let name = channel::port_name(&key, tab, seq);
        let injection = obj(&[
            ("target", obj(&[("tabId", tab.into())]).into()),
            ("world", "ISOLATED".into()),
            ("injectImmediately", true.into()),
            ("func", chrome::CONNECT.with(Function::clone).into()),
            ("args", js::array(&[name.into(), key.into()]).into()),
        ]);
        let connected = settle(chrome::execute_script(&injection))
            .await
            .map(|r| js::items(&r).first().map(|r| get(r, "result").as_bool()));
        if !matches!(connected, Ok(Some(Some(true)))) {
            // Calls in this document keep injecting; its next document tries again.
            with(|s| s.channels.failed(tab, seq));
            if let Err(e) = connected {
                log(format!("no channel into tab {tab}: {e}"));
            }
        }
    });
}

/// `chrome.runtime.onConnect`: a connector's port.
#[wasm_bindgen]
pub fn on_connect(port: JsValue) {
    let port: Port = port.unchecked_into();
    let sender = port.sender();
    let tab = get_i32(&get(&sender, "tab"), "id");
    let expected = channel::parse_port_name(&port.name(), &key());
    let number = match expected {
        Some((t, seq)) if tab == Some(t) && get_i32(&sender, "frameId") == Some(0) => {
            with(|s| s.channels.connected(t, seq))
        }
        _ => None,
    };
    let (Some(number), Some(tab)) = (number, tab) else {
        let _ = port.disconnect();
        return;
    };
    let on_message = Closure::<dyn FnMut(JsValue)>::new(move |text: JsValue| {
        answered(number, &text);
    });
    let on_disconnect = Closure::<dyn FnMut(JsValue)>::new(move |_port: JsValue| {
        closed(number);
    });
    port.on_message()
        .add_listener(on_message.as_ref().unchecked_ref());
    port.on_disconnect()
        .add_listener(on_disconnect.as_ref().unchecked_ref());
    with(|s| {
        s.open.insert(
            number,
            Open {
                tab,
                port,
                next: 0,
                waiting: HashMap::new(),
                _on_message: on_message,
                _on_disconnect: on_disconnect,
            },
        )
    });
}

/// An answer arrived on port `number`: hands it to the call waiting for it.
fn answered(number: u64, text: &JsValue) {
    let Some(text) = text.dyn_ref::<JsString>() else {
        return;
    };
    // Only the call number is read here (a result may be up to a MiB).
    let head = text.slice(0, text.index_of(" ", 0).max(0) as u32);
    let Some(n) = String::from(head).parse::<u64>().ok() else {
        return;
    };
    let resolve = with(|s| s.open.get_mut(&number).and_then(|o| o.waiting.remove(&n)));
    if let Some(resolve) = resolve {
        let _ = resolve.call1(&JsValue::UNDEFINED, text);
    }
}

/// Port `number` closed: the calls waiting on it get [`Reply::Closed`].
fn closed(number: u64) {
    let open = with(|s| {
        let open = s.open.remove(&number)?;
        s.channels.closed(open.tab, number);
        Some(open)
    });
    if let Some(open) = open {
        open.release();
        // `open` holds the closure running now; wasm-bindgen defers freeing it until
        // the call returns.
    }
}

impl Open {
    /// Ends the calls still waiting on this port with [`Reply::Closed`].
    fn release(&self) {
        for resolve in self.waiting.values() {
            let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::NULL);
        }
    }
}

/// Has the tab's document `seq` got `invoke`'s copy (a channel was begun there)?
pub fn has_copy(tab: TabId, seq: u64) -> bool {
    with(|s| s.channels.begun(tab, seq))
}

/// The tab was removed: its port (if any) closes by itself.
pub fn forget(tab: TabId) {
    with(|s| s.channels.forget(tab));
}

/// Nothing takes calls in the tab's document `seq` any more (its page cleared the
/// listeners): its channel is closed, and calls there inject.
pub fn failed(tab: TabId, seq: u64) {
    let open = with(|s| {
        let open = s.channels.open(tab, seq).and_then(|n| s.open.remove(&n));
        s.channels.failed(tab, seq);
        open
    });
    if let Some(open) = open {
        // A port's own disconnect() does not fire its onDisconnect.
        let _ = open.port.disconnect();
        open.release();
    }
}

/// What came back for a call on a channel.
pub enum Reply {
    /// The answer's text ([`crate::channel::parse_answer`] reads it).
    Answer(String),
    /// The port closed first: the document went away under the call.
    Closed,
}

/// Sends the call over the open channel of the tab's document `seq`; `None` when there
/// is none (then the caller injects). Dropping the future forgets the call.
pub fn ask(
    tab: TabId,
    seq: u64,
    method: &str,
    via_lane: bool,
    params_json: &str,
) -> Option<impl Future<Output = Reply> + use<>> {
    let mut resolver = None;
    let promise = Promise::new(&mut |resolve, _reject| resolver = Some(resolve));
    let resolve = resolver?;
    let (number, n) = with(|s| {
        let number = s.channels.open(tab, seq)?;
        let open = s.open.get_mut(&number)?;
        let n = open.next;
        open.next += 1;
        let text = channel::call_text(n, method, via_lane, params_json);
        open.port.post_message(&text).ok()?;
        open.waiting.insert(n, resolve);
        Some((number, n))
    })?;
    let waiting = Waiting { number, n };
    Some(async move {
        let value = JsFuture::from(promise).await;
        drop(waiting);
        match value.ok().and_then(|v| v.as_string()) {
            Some(text) => Reply::Answer(text),
            None => Reply::Closed,
        }
    })
}

/// Removes a call from its port's waiting list when its caller stops waiting.
struct Waiting {
    number: u64,
    n: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        with(|s| {
            if let Some(open) = s.open.get_mut(&self.number) {
                open.waiting.remove(&self.n);
            }
        });
    }
}
