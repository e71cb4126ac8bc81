//! Typed bindings of the `chrome.*` APIs and the page-world functions the worker uses.
//!
//! Runs in: the extension's service worker (wasm). Every binding is `catch`: a Chrome
//! API that throws synchronously (bad arguments, missing permission) becomes a
//! `JsValue` error instead of a wasm trap. Promise-returning APIs are awaited with
//! [`super::js::settle`].

use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = ["chrome", "tabs"], js_name = create)]
    pub fn tabs_create(props: &Object) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "tabs"], js_name = update)]
    pub fn tabs_update(tab_id: i32, props: &Object) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "downloads"], js_name = cancel)]
    pub fn downloads_cancel(id: i32) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "downloads"], js_name = removeFile)]
    pub fn downloads_remove_file(id: i32) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "downloads"], js_name = erase)]
    pub fn downloads_erase(query: &Object) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "tabs"], js_name = remove)]
    pub fn tabs_remove(tab_id: i32) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "tabs"], js_name = reload)]
    pub fn tabs_reload(tab_id: i32) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "windows"], js_name = create)]
    pub fn windows_create(props: &Object) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "windows"], js_name = get)]
    pub fn windows_get_with(window_id: i32, query: &Object) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "windows"], js_name = getLastFocused)]
    pub fn windows_get_last_focused() -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "windows"], js_name = getAll)]
    pub fn windows_get_all(query: &Object) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "tabs"], js_name = get)]
    pub fn tabs_get(tab_id: i32) -> Result<Promise, JsValue>;

    #[wasm_bindgen(catch, js_namespace = ["chrome", "scripting"], js_name = executeScript)]
    pub fn execute_script(injection: &Object) -> Result<Promise, JsValue>;

    // chrome.userScripts exists only while the browser's "Allow User Scripts" switch for
    // this extension is on (Chrome 138+); otherwise these throw a TypeError (caught).
    #[wasm_bindgen(catch, js_namespace = ["chrome", "userScripts"], js_name = getScripts)]
    pub fn user_scripts_get() -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "userScripts"], js_name = register)]
    pub fn user_scripts_register(scripts: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "userScripts"], js_name = unregister)]
    pub fn user_scripts_unregister(filter: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "userScripts"], js_name = execute)]
    pub fn user_scripts_execute(injection: &Object) -> Result<Promise, JsValue>;

    /// The `chrome` namespace itself, to see whether `chrome.userScripts` is there.
    #[wasm_bindgen(thread_local_v2, js_name = chrome)]
    pub static CHROME: JsValue;

    #[wasm_bindgen(catch, js_namespace = ["chrome", "storage", "local"], js_name = get)]
    pub fn storage_local_get(keys: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "storage", "local"], js_name = set)]
    pub fn storage_local_set(items: &Object) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "storage", "local"], js_name = remove)]
    pub fn storage_local_remove(keys: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "storage", "session"], js_name = get)]
    pub fn storage_session_get(keys: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "storage", "session"], js_name = set)]
    pub fn storage_session_set(items: &Object) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "storage", "session"], js_name = remove)]
    pub fn storage_session_remove(keys: &JsValue) -> Result<Promise, JsValue>;

    #[wasm_bindgen(catch, js_namespace = ["chrome", "alarms"], js_name = create)]
    pub fn alarms_create(name: &str, info: &Object) -> Result<Promise, JsValue>;

    #[wasm_bindgen(catch, js_namespace = ["chrome", "runtime"], js_name = getPlatformInfo)]
    pub fn runtime_get_platform_info() -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "runtime"], js_name = getManifest)]
    pub fn runtime_get_manifest() -> Result<Object, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "runtime"], js_name = reload)]
    pub fn runtime_reload() -> Result<(), JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["chrome", "runtime"], js_name = getURL)]
    pub fn runtime_get_url(path: &str) -> Result<String, JsValue>;

    /// The worker's global `fetch` (the extension's own `config.json`, the server probe).
    #[wasm_bindgen(catch, js_name = fetch)]
    pub fn fetch(url: &str, init: &Object) -> Result<Promise, JsValue>;

    /// `AbortSignal.timeout(ms)`: bounds the server probe.
    #[wasm_bindgen(catch, js_namespace = AbortSignal, js_name = timeout)]
    pub fn abort_signal_timeout(ms: u32) -> Result<JsValue, JsValue>;

    /// The worker's `navigator` (user agent, `userAgentData`).
    #[wasm_bindgen(thread_local_v2, js_name = navigator)]
    pub static NAVIGATOR: JsValue;
}

// The functions executeScript runs in the page's MAIN world. Imported by the glue from
// the extension root (`dist/extension/wasm/any_ext_core.js` → `../page-world.js`).
#[wasm_bindgen(raw_module = "../page-world.js")]
extern "C" {
    #[wasm_bindgen(thread_local_v2, js_name = probe)]
    pub static PROBE: Function;
    #[wasm_bindgen(thread_local_v2, js_name = invoke)]
    pub static INVOKE: Function;
    #[wasm_bindgen(thread_local_v2, js_name = invokeInstalled)]
    pub static INVOKE_INSTALLED: Function;
    #[wasm_bindgen(thread_local_v2, js_name = takeStashed)]
    pub static TAKE_STASHED: Function;
}

// The channel's connector, run by executeScript in the page's ISOLATED world.
#[wasm_bindgen(raw_module = "../isolated-world.js")]
extern "C" {
    #[wasm_bindgen(thread_local_v2, js_name = connect)]
    pub static CONNECT: Function;
    #[wasm_bindgen(thread_local_v2, js_name = describe)]
    pub static DESCRIBE: Function;
}

// A `chrome.runtime.Port` (from `chrome.runtime.onConnect`) and its events.
#[wasm_bindgen]
extern "C" {
    pub type Port;
    #[wasm_bindgen(method, getter)]
    pub fn name(this: &Port) -> String;
    #[wasm_bindgen(method, getter)]
    pub fn sender(this: &Port) -> JsValue;
    #[wasm_bindgen(method, catch, js_name = postMessage)]
    pub fn post_message(this: &Port, message: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    pub fn disconnect(this: &Port) -> Result<(), JsValue>;
    #[wasm_bindgen(method, getter, js_name = onMessage)]
    pub fn on_message(this: &Port) -> PortEvent;
    #[wasm_bindgen(method, getter, js_name = onDisconnect)]
    pub fn on_disconnect(this: &Port) -> PortEvent;

    pub type PortEvent;
    #[wasm_bindgen(method, js_name = addListener)]
    pub fn add_listener(this: &PortEvent, listener: &Function);
}
