// Runs in: the web page's MAIN world, injected by chrome.scripting.executeScript from
// the service worker (the ISOLATED world's connector is extension/isolated-world.js) (crates/ext-core/src/sw/call.rs imports this module through the
// wasm glue). Chrome sends only each function's source text into the page, so every
// function here is self-contained: no imports, no outer variables, no helpers shared
// between them. The injection is exempt from the page's CSP; nothing here uses eval,
// new Function or inline <script>, so strict-CSP / Trusted Types pages work.
//
// Why MAIN: userscripts define globalThis.__any__ in the page's own world; the
// extension's isolated world cannot see it. Why plain JS: page CSP forbids compiling
// wasm there. The functions only observe and report; all decisions are in Rust.
//
// probe and invoke always return a plain object: executeScript turns a throw into null.

// Is globalThis.__any__[method] there (an own property that is a function)? If not,
// does a postMessage-lane helper (a userscript in another world,
// clients/userscript/any-lane.js) serve it? Returns {main: boolean, lane: boolean,
// names: [the own methods of __any__], status: the document's HTTP status or 0,
// contentType: the document's MIME type}.
export async function probe(method, laneWaitMs) {
  const api = globalThis.__any__;
  let names = [];
  try {
    if (api != null && (typeof api === "object" || typeof api === "function")) {
      names = Object.getOwnPropertyNames(api).filter((k) => typeof api[k] === "function");
    }
  } catch (_) {
    // A hostile __any__ (a throwing getter or proxy): no names.
  }
  let status = 0;
  try {
    status = performance.getEntriesByType("navigation")[0]?.responseStatus ?? 0;
  } catch (_) {}
  const contentType = String(document.contentType);
  if (names.includes(method)) return { main: true, lane: false, names, status, contentType };
  const id = `any-probe-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  const lane = await new Promise((resolve) => {
    const done = (has) => {
      clearTimeout(timer);
      removeEventListener("message", onMessage);
      resolve(has);
    };
    const onMessage = (event) => {
      const d = event.data;
      if (event.source !== window || d == null || d.__any__ !== "response" || d.id !== id) return;
      done(d.has === true);
    };
    const timer = setTimeout(() => done(false), laneWaitMs);
    addEventListener("message", onMessage);
    postMessage({ __any__: "request", id, op: "has", method }, "*");
  });
  return { main: false, lane, names, status, contentType };
}

// Calls globalThis.__any__[method](params) (or, with viaLane, asks the postMessage-lane
// helper to), awaits it, and encodes the outcome:
//   {ok: true, json: "<JSON text>"}                          the result
//   {ok: false, error: {code, name, message, stack}}        code: page_error |
//                                                            not_serializable | method_not_found
// The encoding rules are documented in extension/README.md ("What a method may return").
//
// With `key` (a string), the function that does all this is also kept in the page, as a
// non-enumerable property of globalThis under Symbol.for(key), so that later calls in
// the same document can use `invokeInstalled`: this file's functions are sent to the page
// as source text and compiled on every injection, and compiling this one cost ~1 ms of
// the page's CPU per call (see bench/README.md). `key` changes with every start of the
// service worker, so a page never runs an older worker's copy.
//
// With `script` (a function; only from an ad-hoc script run by chrome.userScripts.execute,
// see crates/ext-core/src/sw/call.rs `execute`), that function is called instead of a
// method, and its outcome is encoded the same way.
export async function invoke(method, paramsJson, viaLane, key, script) {
  const run = async (method, paramsJson, viaLane, script) => {
    const pageError = (e) => {
      try {
        if (e !== null && typeof e === "object" && "message" in e) {
          return {
            code: "page_error",
            name: String(e.name ?? "Error"),
            message: String(e.message),
            stack: typeof e.stack === "string" ? e.stack : "",
          };
        }
        return { code: "page_error", name: "Error", message: `the method threw a non-Error value: ${String(e)}`, stack: "" };
      } catch (_) {
        return { code: "page_error", name: "Error", message: "the method threw a value that cannot be described", stack: "" };
      }
    };

    // BEGIN encode (kept identical in clients/userscript/any-lane.js; a Rust test checks it)
    const encode = (value) => {
      const fail = (path, what) => {
        throw { notSerializable: `the result cannot be sent as JSON: ${path} is ${what}` };
      };
      const describe = (v) => {
        if (typeof Node !== "undefined" && v instanceof Node) {
          return `a DOM node (${v.nodeName}); return its data (e.g. textContent) instead`;
        }
        if (typeof Window !== "undefined" && v instanceof Window) return "a Window";
        if (v instanceof Promise) return "a Promise; await it inside the method";
        if (v instanceof Date) return "a Date; return date.toISOString() or date.getTime() instead";
        if (v instanceof Map) return "a Map; return Object.fromEntries(map) or [...map] instead";
        if (v instanceof Set) return "a Set; return [...set] instead";
        if (v instanceof RegExp) return "a RegExp; return regexp.source instead";
        if (v instanceof Error) return `an Error (${v.name}: ${v.message}); throw it, or return its message`;
        if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return "binary data (ArrayBuffer or typed array); return Array.from(...) instead";
        const name = Object.getPrototypeOf(v)?.constructor?.name;
        return `an instance of ${name || "a class"}; return a plain object instead`;
      };
      const key = (k) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`);
      const ancestors = new Set();
      const walk = (v, path) => {
        switch (typeof v) {
          case "string":
          case "boolean":
            return v;
          case "number":
            return Number.isFinite(v) ? v : fail(path, `${v} (JSON has no NaN or Infinity)`);
          case "bigint":
            return fail(path, `a BigInt (${v}n); return it as a string instead`);
          case "symbol":
            return fail(path, `a Symbol (${String(v)})`);
          case "function":
            return fail(path, `a function${v.name ? ` (${v.name})` : ""}`);
          case "undefined":
            return fail(path, "undefined");
        }
        if (v === null) return null;
        if (ancestors.has(v)) return fail(path, "a reference back to one of its own ancestors (a cycle)");
        ancestors.add(v);
        let out;
        if (Array.isArray(v)) {
          out = [];
          for (let i = 0; i < v.length; i++) {
            if (!(i in v)) fail(`${path}[${i}]`, "a hole in a sparse array");
            out.push(walk(v[i], `${path}[${i}]`));
          }
        } else {
          const proto = Object.getPrototypeOf(v);
          const plain =
            proto === null ||
            (Object.getPrototypeOf(proto) === null && Object.prototype.toString.call(v) === "[object Object]");
          if (typeof v.toJSON === "function" && !(v instanceof Date)) {
            out = walk(v.toJSON(), path);
          } else if (!plain) {
            fail(path, describe(v));
          } else {
            out = {};
            for (const k of Object.keys(v)) {
              const item = v[k];
              if (item === undefined) continue; // like JSON.stringify: an undefined property is absent
              out[k] = walk(item, path + key(k));
            }
          }
        }
        ancestors.delete(v);
        return out;
      };
      try {
        return { ok: true, json: JSON.stringify(value === undefined ? null : walk(value, "$")) };
      } catch (e) {
        if (e && typeof e.notSerializable === "string") {
          return { ok: false, error: { code: "not_serializable", name: "NotSerializable", message: e.notSerializable } };
        }
        const why = e instanceof RangeError ? "it is nested too deeply" : String(e);
        return { ok: false, error: { code: "not_serializable", name: "NotSerializable", message: `the result cannot be sent as JSON: ${why}` } };
      }
    };
    // END encode

    let params;
    try {
      params = JSON.parse(paramsJson);
    } catch (e) {
      return { ok: false, error: { code: "page_error", name: "SyntaxError", message: `params are not JSON: ${e}`, stack: "" } };
    }

    if (typeof script === "function") {
      let value;
      try {
        value = await script();
      } catch (e) {
        return { ok: false, error: pageError(e) };
      }
      return encode(value);
    }

    if (!viaLane) {
      const api = globalThis.__any__;
      // Only __any__'s own properties are methods (not toString, constructor, ...).
      if (api == null || !Object.prototype.hasOwnProperty.call(api, method) || typeof api[method] !== "function") {
        return {
          ok: false,
          error: { code: "method_not_found", name: "MethodNotFound", message: `globalThis.__any__.${method} disappeared before it could be called` },
        };
      }
      let value;
      try {
        value = await api[method](params);
      } catch (e) {
        return { ok: false, error: pageError(e) };
      }
      return encode(value);
    }

    // The postMessage lane: the helper encodes with the same rules and answers once.
    const id = `any-call-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    return await new Promise((resolve) => {
      const onMessage = (event) => {
        const d = event.data;
        if (event.source !== window || d == null || d.__any__ !== "response" || d.id !== id) return;
        removeEventListener("message", onMessage);
        if (d.ok === true && typeof d.json === "string") resolve({ ok: true, json: d.json });
        else if (d.ok === false && d.error != null && typeof d.error === "object") resolve({ ok: false, error: d.error });
        else resolve({ ok: false, error: { code: "page_error", name: "Error", message: "the postMessage-lane helper sent a malformed answer", stack: "" } });
      };
      addEventListener("message", onMessage);
      postMessage({ __any__: "request", id, op: "call", method, params }, "*");
    });
  };
  // Installed at most once per document: a second `invoke` in the same document (the
  // first call of another method, or a worker that lost track) uses the copy and the
  // channel end already there. Two ends would each take every channel call and run it.
  if (typeof key === "string" && typeof globalThis[Symbol.for(key)] === "function") {
    return globalThis[Symbol.for(key)](method, paramsJson, viaLane);
  }
  let kept = false;
  if (typeof key === "string") {
    try {
      Object.defineProperty(globalThis, Symbol.for(key), { value: run, configurable: true });
      kept = true;
    } catch (_) {
      // A frozen global: every call then injects the whole function, with no channel.
    }
  }
  if (kept) {
    // The channel's MAIN-world end (crates/ext-core/src/channel.rs has the wire text):
    // the ISOLATED-world connector (extension/isolated-world.js) dispatches each call as
    // a cancelable `any.call/<key>` event on document; taking it (preventDefault, seen by
    // the connector as dispatchEvent returning false) says this end is here, and the
    // answer comes back as an `any.answer/<key>` event. "hello" only asks whether it is.
    const stashAbove = 1 << 20; // channel.rs STASH_ABOVE
    const answer = (text) => document.dispatchEvent(new CustomEvent(`any.answer/${key}`, { detail: text }));
    document.addEventListener(`any.call/${key}`, (event) => {
      const text = event.detail;
      if (typeof text !== "string") return;
      event.preventDefault();
      if (text === "hello") return;
      const first = text.indexOf("\n");
      const second = text.indexOf("\n", first + 1);
      const n = text.slice(0, first);
      let method, lane;
      try {
        [method, lane] = JSON.parse(text.slice(first + 1, second));
      } catch (e) {
        answer(`${n} error\n${JSON.stringify({ code: "page_error", name: "Error", message: `unreadable call: ${e}`, stack: "" })}`);
        return;
      }
      run(method, text.slice(second + 1), lane === true).then(
        (envelope) => {
          if (envelope.ok !== true) {
            answer(`${n} error\n${JSON.stringify(envelope.error)}`);
          } else if (envelope.json.length <= stashAbove) {
            answer(`${n} ok\n${envelope.json}`);
          } else {
            Object.defineProperty(globalThis, Symbol.for(`${key}/${n}`), { value: envelope, configurable: true });
            answer(`${n} stashed\n`);
          }
        },
        (e) => answer(`${n} error\n${JSON.stringify({ code: "page_error", name: "Error", message: String(e), stack: "" })}`),
      );
    });
  }
  return run(method, paramsJson, viaLane, script);
}

// Takes a result the channel stashed (a big one, see above) out of the page: invoke's
// envelope, or {installed: false} when it is gone (the document changed).
export function takeStashed(stashKey) {
  const k = Symbol.for(stashKey);
  const envelope = globalThis[k];
  delete globalThis[k];
  return envelope ?? null;
}

// The fast path of a call in a document where `invoke` ran before: a few lines to
// compile instead of the whole encoder. Returns invoke's envelope, or {installed: false}
// when the document has no copy under Symbol.for(key) (then the worker uses `invoke`).
export async function invokeInstalled(key, method, paramsJson, viaLane) {
  const run = globalThis[Symbol.for(key)];
  if (typeof run !== "function") return { installed: false };
  return run(method, paramsJson, viaLane);
}
