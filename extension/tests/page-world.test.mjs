// Runs in: Node (node --test), outside any browser. Checks the MAIN-world functions of
// ../page-world.js: the result encoding rules documented in ../README.md, the error
// envelope, and the postMessage lane against ../../clients/userscript/any-lane.js with a
// minimal window stand-in. Run by `cargo test -p any-ext-core` (tests/page_world.rs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { invoke, invokeInstalled, probe } from "../page-world.js";

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
  assert.deepEqual(await probe("viaLane", 50), { main: false, lane: true });
  assert.deepEqual(await probe("nobody", 50), { main: false, lane: false });
  assert.deepEqual(await invoke("viaLane", '{"a":1}', true), { ok: true, json: '{"got":{"a":1}}' });
  const t = await invoke("laneThrows", "{}", true);
  assert.equal(t.error.name, "TypeError");
  const b = await invoke("laneBad", "{}", true);
  assert.equal(b.error.code, "not_serializable");
  assert.match(b.error.message, /\$\.f is a function/);
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
