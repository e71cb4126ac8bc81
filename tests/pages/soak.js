// The method of soak.html (MAIN world). Each run tells the page server its key
// (POST /ran?k=KEY, keepalive so it survives the page going away) before it answers,
// so the soak can check every call against the pages' own record: a call that
// succeeded ran exactly once, a failed one at most once.
globalThis.__any__ = globalThis.__any__ || {};
const documentId = Math.random().toString(36).slice(2) + Date.now().toString(36);
let runs = 0;

const soak = async ({ k, ms = 0 }) => {
  runs += 1;
  await fetch(`/ran?k=${encodeURIComponent(k)}`, { method: "POST", keepalive: true });
  if (ms) await new Promise((r) => setTimeout(r, ms));
  return { k, documentId, runs };
};
// Two names, called in turn: a document serves sequences of different methods.
globalThis.__any__.soak = soak;
globalThis.__any__.soakToo = soak;
