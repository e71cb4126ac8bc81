// Runs in: the extension's service worker (a module worker, see manifest.json).
//
// A shim with no decisions: it loads the Rust/wasm core (crates/ext-core, built by
// ./build.sh into wasm/) and hands it every chrome.* event. Chrome only wakes a stopped
// worker for listeners registered synchronously at top level, so they are all here;
// events that arrive before the wasm is ready wait on `ready` and are delivered in order.
// No top-level await: a module service worker that uses it never starts.
import init, { start, on_event, on_message, on_connect } from "./wasm/any_ext_core.js";

const ready = init().then(() => start());
ready.catch((e) => console.error("any: the wasm core failed to start", e));

const forward = (kind) => (detail) => {
  ready.then(() => on_event(kind, detail ?? null), () => {});
};

chrome.runtime.onStartup.addListener(forward("startup"));
chrome.runtime.onInstalled.addListener(forward("installed"));
chrome.alarms.onAlarm.addListener(forward("alarm"));
chrome.tabs.onRemoved.addListener(forward("tab_removed"));
chrome.tabs.onActivated.addListener(forward("tab_activated"));
chrome.windows.onFocusChanged.addListener(forward("window_focused"));
chrome.webNavigation.onBeforeNavigate.addListener(forward("nav_before"));
chrome.webNavigation.onCommitted.addListener(forward("nav_committed"));
chrome.webNavigation.onDOMContentLoaded.addListener(forward("nav_dom_ready"));
chrome.webNavigation.onCompleted.addListener(forward("nav_completed"));
chrome.webNavigation.onHistoryStateUpdated.addListener(forward("nav_url_changed"));
chrome.webNavigation.onReferenceFragmentUpdated.addListener(forward("nav_url_changed"));
chrome.webNavigation.onErrorOccurred.addListener(forward("nav_error"));
chrome.downloads.onCreated.addListener(forward("download_created"));
chrome.storage.onChanged.addListener((changes, area) => forward("storage_changed")({ changes, area }));

// A page's channel connector (extension/isolated-world.js) opening its port.
chrome.runtime.onConnect.addListener((port) => {
  ready.then(() => on_connect(port), () => port.disconnect());
});

// The popup and the options page ask the core for its state and send settings.
chrome.runtime.onMessage.addListener((message, _sender, reply) => {
  ready
    .then(() => on_message(message))
    .then(reply, (e) => reply({ ok: false, error: String(e) }));
  return true; // the reply is asynchronous
});
