// Defines globalThis.__any__.late LATE_MS after the load event (MAIN world).
const LATE_MS = 2500;
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
