// Runs in: Node (node --test), outside any browser. Checks the MAIN-world functions of
// ../page-world.js: the result encoding rules documented in ../README.md, the error
// envelope, the postMessage lane against ../../clients/userscript/any-lane.js with a
// minimal window stand-in, and the channel (invoke's MAIN-world end with the connector of
// ../isolated-world.js, over a stand-in document and runtime.Port). Run by
// `cargo test -p any-ext-core` (tests/page_world.rs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { invoke, invokeInstalled, probe, takeStashed } from "../page-world.js";
import { connect } from "../isolated-world.js";

// A page always has a document; the channel's ends meet on it.
globalThis.document = Object.assign(new EventTarget(), { contentType: "text/html" });

const call = async (fn, params = {}) => {
  globalThis.__any__ = { m: fn };
  return invoke("m", JSON.stringify(params), false);
};
const ok = async (fn, json) => assert.deepEqual(await call(fn), { ok: true, json });
const notSerializable = async (fn, fragment) => {
  const r = await call(fn);
  assert.equal(r.ok, false, JSON.stringify(r));
  assert.equal(r.error.code, "not_serializable");
  assert.ok(r.error.message.includes(fragment), `${r.error.message} should include ${fragment}`);
};

test("plain JSON passes unchanged", async () => {
  await ok(() => ({ a: [1, "x", true, null, { b: 2.5 }], "odd key": -0 }), '{"a":[1,"x",true,null,{"b":2.5}],"odd key":0}');
  await ok(async (p) => p, '{}');
  await ok(() => "s", '"s"');
  await ok(() => Object.assign(Object.create(null), { x: 1 }), '{"x":1}');
});

test("top-level undefined is null; undefined properties are absent", async () => {
  await ok(() => undefined, "null");
  await ok(() => ({ a: undefined, b: 1 }), '{"b":1}');
});

test("what JSON cannot hold fails with its path", async () => {
  await notSerializable(() => ({ items: [1, 2, 3, () => 1] }), "$.items[3] is a function");
  await notSerializable(() => [undefined], "$[0] is undefined");
  await notSerializable(() => [1, , 3], "$[1] is a hole");
  await notSerializable(() => ({ n: NaN }), "$.n is NaN");
  await notSerializable(() => ({ n: Infinity }), "$.n is Infinity");
  await notSerializable(() => ({ big: 10n }), "$.big is a BigInt");
  await notSerializable(() => ({ s: Symbol("q") }), "$.s is a Symbol");
  await notSerializable(() => ({ "a b": new Map() }), '$["a b"] is a Map');
  await notSerializable(() => new Set([1]), "$ is a Set");
  await notSerializable(() => ({ d: new Date(0) }), "$.d is a Date");
  await notSerializable(() => ({ r: /x/ }), "$.r is a RegExp");
  await notSerializable(() => ({ u: new Uint8Array(2) }), "$.u is binary data");
  await notSerializable(() => ({ e: new TypeError("t") }), "$.e is an Error");
  await notSerializable(() => ({ p: Promise.resolve(1) }), "$.p is a Promise");
  class Point { constructor() { this.x = 1; } }
  await notSerializable(() => ({ pt: new Point() }), "$.pt is an instance of Point");
  const a = { x: {} };
  a.x.back = a;
  await notSerializable(() => a, "$.x.back is a reference back");
});

test("shared (non-cyclic) references are fine; toJSON is honoured", async () => {
  const shared = { v: 1 };
  await ok(() => [shared, shared], '[{"v":1},{"v":1}]');
  class Money { toJSON() { return { cents: 5 }; } }
  await ok(() => ({ m: new Money() }), '{"m":{"cents":5}}');
});

test("throws and rejections keep name, message and stack", async () => {
  const r = await call(() => { throw new RangeError("bad range"); });
  assert.equal(r.ok, false);
  assert.equal(r.error.code, "page_error");
  assert.equal(r.error.name, "RangeError");
  assert.equal(r.error.message, "bad range");
  assert.match(r.error.stack, /RangeError: bad range/);
  const s = await call(() => Promise.reject("just a string"));
  assert.equal(s.error.code, "page_error");
  assert.match(s.error.message, /just a string/);
});

test("params arrive parsed; a vanished method is reported", async () => {
  assert.deepEqual(await call((p) => p.q * 2, { q: 21 }), { ok: true, json: "42" });
  globalThis.__any__ = {};
  const r = await invoke("gone", "{}", false);
  assert.equal(r.error.code, "method_not_found");
});

// A minimal window: postMessage delivers asynchronously to every listener, with source.
function fakeWindow() {
  const listeners = new Set();
  const win = {
    addEventListener: (type, f) => type === "message" && listeners.add(f),
    removeEventListener: (type, f) => listeners.delete(f),
    postMessage: (data) => setTimeout(() => listeners.forEach((f) => f({ data: structuredClone(data), source: win }))),
  };
  return win;
}

test("postMessage lane: probe finds a lane method, invoke calls it, no side answers itself", async () => {
  const win = fakeWindow();
  Object.assign(globalThis, { window: win, addEventListener: win.addEventListener, removeEventListener: win.removeEventListener, postMessage: win.postMessage });
  const { readFile } = await import("node:fs/promises");
  const lane = await readFile(new URL("../../clients/userscript/any-lane.js", import.meta.url), "utf8");
  (0, eval)(lane); // test harness only: the helper is a classic script
  globalThis.__any__ = {};
  globalThis.anyLane.serve({
    viaLane: async (p) => ({ got: p }),
    laneThrows: async () => { throw new TypeError("nope"); },
    laneBad: async () => ({ f: () => 1 }),
  });
  const page = { names: [], status: 0, contentType: "text/html" };
  assert.deepEqual(await probe("viaLane", 50), { main: false, lane: true, ...page });
  assert.deepEqual(await probe("nobody", 50), { main: false, lane: false, ...page });
  assert.deepEqual(await invoke("viaLane", '{"a":1}', true), { ok: true, json: '{"got":{"a":1}}' });
  const t = await invoke("laneThrows", "{}", true);
  assert.equal(t.error.name, "TypeError");
  const b = await invoke("laneBad", "{}", true);
  assert.equal(b.error.code, "not_serializable");
  assert.match(b.error.message, /\$\.f is a function/);
});

test("only __any__'s own functions are methods; the probe names them", async () => {
  globalThis.__any__ = { pageInfo: () => 1, echo: (p) => p, version: "1.0" };
  for (const inherited of ["constructor", "toString", "valueOf", "hasOwnProperty", "__proto__"]) {
    const r = await invoke(inherited, "{}", false);
    assert.equal(r.error?.code, "method_not_found", `${inherited}: ${JSON.stringify(r)}`);
    assert.equal((await probe(inherited, 0)).main, false, inherited);
  }
  const seen = await probe("pageinfo", 0);
  assert.deepEqual([seen.main, seen.names], [false, ["pageInfo", "echo"]]);
  assert.equal((await probe("pageInfo", 0)).main, true);
  // A hostile __any__ gives no names, not a throw.
  globalThis.__any__ = new Proxy({}, { ownKeys() { throw new Error("no"); } });
  assert.deepEqual((await probe("x", 0)).names, []);
});

test("invoke with a key leaves a copy that invokeInstalled uses; unknown keys say so", async () => {
  globalThis.__any__ = { add: async ({ a, b }) => a + b };
  assert.deepEqual(await invokeInstalled("any-test-key", "add", '{"a":1,"b":2}', false), { installed: false });
  assert.deepEqual(await invoke("add", '{"a":1,"b":2}', false, "any-test-key"), { ok: true, json: "3" });
  assert.deepEqual(await invokeInstalled("any-test-key", "add", '{"a":2,"b":2}', false), { ok: true, json: "4" });
  assert.ok(!Object.keys(globalThis).some((k) => k.includes("any-test-key")), "the copy is not enumerable");
  assert.deepEqual(await invokeInstalled("another-key", "add", "{}", false), { installed: false });
  const gone = await invokeInstalled("any-test-key", "missing", "{}", false);
  assert.equal(gone.error.code, "method_not_found");
  delete globalThis[Symbol.for("any-test-key")];
});

// The code crates/ext-core/src/sw/call.rs `execute` hands chrome.userScripts.execute for
// an ad-hoc script: the script as the body of an async function, passed to invoke's own
// source text, so that its outcome goes through the same encoder as a method's.
const adHoc = (script) =>
  `((script, invoke) => invoke("(script)", "null", false, undefined, script))(async function () {\n${script}\n},\n${invoke.toString()})\n//# sourceURL=any-script.js\n`;

test("an ad-hoc script runs through invoke's own encoder", async () => {
  const run = (script) => (0, eval)(adHoc(script));
  assert.deepEqual(await run("return { a: await Promise.resolve(1) };"), { ok: true, json: '{"a":1}' });
  assert.deepEqual(await run("// nothing returned"), { ok: true, json: "null" });
  const thrown = await run("throw new TypeError('bad input');");
  assert.equal(thrown.ok, false);
  assert.deepEqual([thrown.error.code, thrown.error.name, thrown.error.message], ["page_error", "TypeError", "bad input"]);
  assert.ok(thrown.error.stack.includes("any-script.js"), thrown.error.stack);
  const map = await run("return { when: new Map() };");
  assert.equal(map.error.code, "not_serializable");
  assert.ok(map.error.message.includes("$.when is a Map"), map.error.message);
  assert.equal(globalThis[Symbol.for("undefined")], undefined, "no copy of invoke is kept for scripts");
});

// The channel (crates/ext-core/src/channel.rs has the wire text). chrome.runtime.connect
// stand-in: records each port, its messages and its listeners.
const ports = [];
globalThis.chrome = {
  runtime: {
    connect: ({ name }) => {
      const port = {
        name,
        sent: [],
        onMessageListeners: [],
        onDisconnectListeners: [],
        postMessage(text) {
          this.sent.push(text);
        },
        onMessage: { addListener: (f) => port.onMessageListeners.push(f) },
        onDisconnect: { addListener: (f) => port.onDisconnectListeners.push(f) },
      };
      ports.push(port);
      return port;
    },
  },
};

// MutationObserver stand-in: records each observer; a test calls `callback` to stand for
// the document's children being replaced (document.open() does that).
const observers = [];
globalThis.MutationObserver = class {
  constructor(callback) {
    this.callback = callback;
    this.observing = null;
    observers.push(this);
  }
  observe(target, options) {
    this.observing = { target, options };
  }
  disconnect() {
    this.observing = null;
  }
};

// Delivers `text` from the worker and returns the next answer the page sends back.
const ask = async (port, text) => {
  const before = port.sent.length;
  for (const f of port.onMessageListeners) f(text);
  for (let i = 0; i < 100 && port.sent.length === before; i++) await new Promise((r) => setTimeout(r, 1));
  assert.equal(port.sent.length, before + 1, `one answer to ${JSON.stringify(text)}`);
  return port.sent.at(-1);
};

test("the channel: the connector relays calls to invoke's copy and the answers back", async () => {
  globalThis.__any__ = {
    add: async ({ a, b }) => a + b,
    boom: () => {
      throw new RangeError("out of range");
    },
    big: ({ n }) => "x".repeat(n),
    gone: () => undefined,
  };
  assert.equal(connect("any.channel/chan/1/1", "chan"), false, "no MAIN-world end yet: no port");
  assert.equal(ports.length, 0);
  await invoke("add", '{"a":1,"b":2}', false, "chan");
  assert.equal(connect("any.channel/other/1/1", "other"), false, "another key's end is not there");
  assert.equal(connect("any.channel/chan/1/1", "chan"), true);
  assert.equal(ports.length, 1);
  const port = ports[0];
  assert.equal(port.name, "any.channel/chan/1/1");

  assert.equal(await ask(port, '1\n["add",false]\n{"a":2,"b":3}'), "1 ok\n5");
  // Params stay raw after the second line, newlines and all.
  assert.equal(await ask(port, '2\n["add",false]\n{\n "a": 1,\n "b": 1\n}'), "2 ok\n2");
  const failed = await ask(port, '3\n["boom",false]\nnull');
  assert.ok(failed.startsWith("3 error\n"), failed);
  const error = JSON.parse(failed.slice("3 error\n".length));
  assert.deepEqual([error.code, error.name, error.message], ["page_error", "RangeError", "out of range"]);
  const missing = JSON.parse((await ask(port, '4\n["nothing",false]\n{}')).slice("4 error\n".length));
  assert.equal(missing.code, "method_not_found");

  // A result over 1 MiB of JSON stays in the page for one takeStashed.
  const n = (1 << 20) + 1;
  assert.equal(await ask(port, `5\n["big",false]\n{"n":${n}}`), "5 stashed\n");
  const stashed = takeStashed("chan/5");
  assert.equal(stashed.ok, true);
  assert.equal(stashed.json.length, n + 2);
  assert.equal(takeStashed("chan/5"), null, "taken once");
  assert.equal(await ask(port, `6\n["big",false]\n{"n":10}`), `6 ok\n"${"x".repeat(10)}"`);

  // document.open() clears the listeners of both ends: the connector says a new call was
  // missed (the worker injects it instead)...
  const page = globalThis.document;
  globalThis.document = new EventTarget();
  assert.equal(await ask(port, '7\n["add",false]\n{"a":1,"b":1}'), "7 missed\n");
  // ...and, once it sees the document's children replaced, listens for answers again: a
  // call that was running in the MAIN world at that moment still gets its answer through.
  assert.equal(observers.length, 1);
  assert.deepEqual(observers[0].observing, { target: page, options: { childList: true } });
  const sent = port.sent.length;
  observers[0].callback([]);
  document.dispatchEvent(new CustomEvent("any.answer/chan", { detail: "8 ok\n3" }));
  assert.deepEqual(port.sent.slice(sent), ["8 ok\n3"]);
  globalThis.document = page;

  // The full invoke injected again into the same document (the first call of another
  // method) adds no second end: a call over the channel runs once.
  let runs = 0;
  globalThis.__any__.once = () => ++runs;
  assert.deepEqual(await invoke("once", "{}", false, "chan"), { ok: true, json: "1" });
  assert.deepEqual(await invoke("once", "{}", false, "chan"), { ok: true, json: "2" });
  const answers = port.sent.length;
  for (const f of port.onMessageListeners) f('10\n["once",false]\n{}');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(port.sent.slice(answers), ["10 ok\n3"]);
  assert.equal(runs, 3, "each call ran once");

  // After the port closes, answers are no longer sent on it, and nothing is observed.
  for (const f of port.onDisconnectListeners) f(port);
  assert.equal(observers[0].observing, null);
  const before = port.sent.length;
  document.dispatchEvent(new CustomEvent("any.answer/chan", { detail: "9 ok\n1" }));
  assert.equal(port.sent.length, before);
  delete globalThis[Symbol.for("chan")];
});
