// Runs in: the web page's ISOLATED world (this extension's content-script world),
// injected by chrome.scripting.executeScript from the service worker
// (crates/ext-core/src/sw/channel.rs imports this module through the wasm glue; Chrome
// sends only the function's source text, so it is self-contained).
//
// Why: the persistent channel of a ready page (crates/ext-core/src/channel.rs). Only
// this world can open a runtime.Port to the worker; only the MAIN world can see the
// page's globalThis.__any__. So this connector relays: each message from the port is
// dispatched on document as a cancelable `any.call/<key>` event, which the MAIN world's
// end (installed by page-world.js `invoke`) takes synchronously; each `any.answer/<key>`
// event goes back on the port. Strings only: an event's detail crosses worlds only as a
// primitive. Nothing here decides anything.

// Why nothing ran in the MAIN world: the document's origin ("null" when the document is
// sandboxed, e.g. by `Content-Security-Policy: sandbox`, where the MAIN world runs no
// script but this world still does) and MIME type.
export function describe() {
  return { origin: String(self.origin), contentType: String(document.contentType) };
}

// Opens the port named `name` if the MAIN world's end for `key` is in this document.
// Returns whether it did.
export function connect(name, key) {
  const callEvent = `any.call/${key}`;
  const answerEvent = `any.answer/${key}`;
  const offer = (text) => !document.dispatchEvent(new CustomEvent(callEvent, { detail: text, cancelable: true }));
  if (!offer("hello")) return false;
  const port = chrome.runtime.connect({ name });
  const onAnswer = (event) => {
    if (typeof event.detail === "string") port.postMessage(event.detail);
  };
  document.addEventListener(answerEvent, onAnswer);
  // document.open() removes every listener of the document, in every world, and replaces
  // its children. A call running in the MAIN world at that moment still answers, so this
  // end listens again: an observer is not a listener, and it sees the children go
  // (adding the same listener twice is a no-op).
  const rearm = new MutationObserver(() => document.addEventListener(answerEvent, onAnswer));
  rearm.observe(document, { childList: true });
  port.onMessage.addListener((text) => {
    if (typeof text !== "string" || offer(text)) return;
    // Nobody took it (document.open() cleared the MAIN world's end): the worker injects
    // instead.
    port.postMessage(`${text.slice(0, text.indexOf("\n"))} missed\n`);
  });
  port.onDisconnect.addListener(() => {
    rearm.disconnect();
    document.removeEventListener(answerEvent, onAnswer);
  });
  return true;
}
