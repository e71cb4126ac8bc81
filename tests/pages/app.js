// Methods of app.html (tests/test_real_pages.py), defined the way a userscript would.
// Runs in the page's MAIN world.
//
// Every method that changes something appends to the page's own record, so a test can
// check that each call ran its method exactly once, in the document it expected, from
// the page's side as well as from the answers. `record` only reads it.
globalThis.__any__ = globalThis.__any__ || {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const documentId = Math.random().toString(36).slice(2) + Date.now().toString(36);
const record = [];
const note = (method, extra = {}) => record.push({ method, ...extra, url: location.href });
let counter = 0;

// The app's state arrives late, like data from a backend.
let todos = null;
const render = () => {
  const list = document.getElementById("todos");
  list.replaceChildren(...(todos ?? []).map((text) => Object.assign(document.createElement("li"), { textContent: text })));
};
setTimeout(() => {
  todos = [];
  render();
}, 300);

const api = globalThis.__any__;

// Counts calls; `ms` keeps the call running that long after counting.
api.count = async ({ ms = 0 } = {}) => {
  const n = ++counter;
  note("count", { n });
  if (ms) await sleep(ms);
  return { n, documentId };
};

api.ping = () => {
  note("ping");
  return "pong";
};

// Waits for the app's state, adds a todo and answers with the list's length.
api.addTodo = async ({ text }) => {
  while (todos === null) await sleep(20);
  todos.push(text);
  render();
  note("addTodo", { text });
  return { length: todos.length, rendered: document.querySelectorAll("#todos li").length };
};

// A route change inside the app, as a router does it.
api.route = ({ path, replace = false }) => {
  if (replace) history.replaceState({}, "", path);
  else history.pushState({}, "", path);
  note("route", { path });
  return location.href;
};

api.fragment = ({ hash }) => {
  location.hash = hash;
  note("fragment", { hash });
  return location.href;
};

// Reads, changes nothing.
api.record = () => ({ documentId, url: location.href, record: record.slice() });

// How long a `ms` timer really takes here, and whether the page is hidden (background
// tabs and occluded windows run their timers at most once a second).
api.timer = async ({ ms = 100 } = {}) => {
  const started = performance.now();
  await sleep(ms);
  note("timer", { n: ms });
  return { tookMs: Math.round(performance.now() - started), hidden: document.hidden, documentId };
};

// Keys typed into this page (a person's typing must never land here).
addEventListener("keydown", (event) => note("keydown", { text: event.key }));
