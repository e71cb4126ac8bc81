// Methods the benchmark calls, defined the way a userscript defines them. Runs in the
// page's MAIN world; the any extension and Playwright's page.evaluate call the same ones.
globalThis.__any__ = globalThis.__any__ || {};
const api = globalThis.__any__;

// A small result: what most automation methods return.
api.small = async ({ n = 0 } = {}) => ({ n, title: document.title });

// A string of `bytes` ASCII characters (the big-result figures).
api.big = async ({ bytes = 0 } = {}) => "x".repeat(bytes);

// Awaits a `ms` timer and says how long it really took (timer throttling shows here).
api.sleep = async ({ ms = 50 } = {}) => {
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return { ms, took: Math.round(performance.now() - t0), visible: document.visibilityState };
};
