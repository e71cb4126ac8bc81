// Methods of the plain page (and of par.html), defined the way a userscript would:
// a page-world script that sets globalThis.__any__.<method>. Runs in the page's MAIN world.
globalThis.__any__ = globalThis.__any__ || {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A random id per document, so that a test can tell tabs (documents) apart.
const tabId = Math.random().toString(36).slice(2) + Date.now().toString(36);

globalThis.__any__.echo = async (params) => params;

globalThis.__any__.pageInfo = async ({ delay = 0 } = {}) => {
  await sleep(delay);
  return { title: document.title, url: location.href, readyState: document.readyState };
};

globalThis.__any__.tabInfo = async () => ({ tabId, url: location.href });

// Sleeps `ms`, then says which call (`n`) ran where; used by the parallel test.
globalThis.__any__.work = async ({ n, ms = 200 } = {}) => {
  const started = performance.now();
  await sleep(ms);
  return { n, url: location.href, tabId, sleptMs: Math.round(performance.now() - started) };
};
