// Defines globalThis.__any__.late LATE_MS after the load event (MAIN world): 2500, or
// the page's `?ms=` query.
const LATE_MS = Number(new URLSearchParams(location.search).get("ms") ?? 2500);
addEventListener("load", () => {
  const loadedAt = performance.now();
  setTimeout(() => {
    globalThis.__any__ = globalThis.__any__ || {};
    const definedAt = performance.now();
    globalThis.__any__.late = async () => ({
      definedAfterLoadMs: Math.round(definedAt - loadedAt),
      calledAfterLoadMs: Math.round(performance.now() - loadedAt),
    });
  }, LATE_MS);
});
