// Methods of the strict-CSP page, loaded through the page's nonce. Runs in the page's
// MAIN world, under the page's CSP: eval and string-to-script sinks are blocked here.
globalThis.__any__ = globalThis.__any__ || {};

globalThis.__any__.cspInfo = async ({ word = "" } = {}) => {
  let evalBlocked = false;
  try {
    eval("1");
  } catch (e) {
    evalBlocked = e instanceof EvalError;
  }
  let trustedTypesEnforced = false;
  try {
    document.createElement("div").innerHTML = "<b>x</b>";
  } catch (e) {
    trustedTypesEnforced = e instanceof TypeError;
  }
  return { title: document.title, word, evalBlocked, trustedTypesEnforced };
};

globalThis.__any__.cspThrow = async () => {
  throw new RangeError("thrown under a strict CSP");
};

// Which way the call came in (see channel.js): over the extension's channel, or by
// executeScript.
globalThis.__any__.cspVia = ({ n } = {}) => ({
  n,
  via: window.event ? String(window.event.type).split("/")[0] : "injection",
});
