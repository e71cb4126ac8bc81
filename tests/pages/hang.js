// Methods of hang.html (MAIN world): one that blocks the page's only thread for good,
// and a counter that says which document answered.
globalThis.__any__ = globalThis.__any__ || {};
const documentId = Math.random().toString(36).slice(2) + Date.now().toString(36);
let counter = 0;

globalThis.__any__.spin = () => {
  for (;;) {
    // never yields: the page stops running anything else
  }
};

globalThis.__any__.count = () => ({ n: ++counter, documentId });
