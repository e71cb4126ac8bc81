// ==UserScript==
// @name         any-lane
// @description  postMessage-lane helper for any: serve globalThis.__any__-style methods from a userscript's own world
// @grant        none
// ==/UserScript==
//
// Runs in: a userscript's own world (a userscript manager's sandbox, an isolated world,
// Chrome's USER_SCRIPT world) — or any world of the page. Paste it at the top of your
// userscript or `@require` it, then call
//
//   anyLane.serve({ myMethod: async (params) => ({ ... }) });
//
// Use it when your userscript cannot set globalThis.__any__ in the page's MAIN world.
// The any extension looks for globalThis.__any__[method] first; when it is absent it asks
// over window.postMessage whether a helper serves the method, then calls it the same way.
// Protocol (documented in clients/userscript/README.md): messages are plain objects
// tagged __any__: "request" (from the extension's page side) or "response" (from here);
// this helper only ever reads requests and only ever writes responses, so it never
// answers itself. Results are encoded with exactly the rules the extension uses for
// MAIN-world methods (extension/README.md, "What a method may return").
(function () {
  "use strict";
  if (globalThis.anyLane && globalThis.anyLane.version === 1) return;
  const methods = Object.create(null);
  const pageWindow = typeof unsafeWindow !== "undefined" ? unsafeWindow : window;

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

  // Only requests from this very window (not from frames) with a string id are served.
  const isRequest = (event) => {
    const d = event.data;
    return (
      (event.source === window || event.source === pageWindow) &&
      d != null &&
      typeof d === "object" &&
      d.__any__ === "request" &&
      typeof d.id === "string" &&
      typeof d.method === "string"
    );
  };
  const reply = (message) => pageWindow.postMessage(message, "*");

  addEventListener("message", async (event) => {
    if (!isRequest(event)) return;
    const { id, op, method, params } = event.data;
    const fn = methods[method];
    // Not ours: stay silent, another helper (or none) may serve it.
    if (typeof fn !== "function") return;
    if (op === "has") {
      reply({ __any__: "response", id, op: "has", has: true });
    } else if (op === "call") {
      let answer;
      try {
        answer = encode(await fn(params));
      } catch (e) {
        answer = { ok: false, error: pageError(e) };
      }
      reply({ __any__: "response", id, op: "call", ...answer });
    }
  });

  globalThis.anyLane = {
    version: 1,
    /** Serves each function of `table` as a method: `serve({name: async (params) => value})`. */
    serve(table) {
      for (const [name, fn] of Object.entries(table)) {
        if (typeof fn !== "function") throw new TypeError(`anyLane.serve: ${name} is not a function`);
        methods[name] = fn;
      }
    },
    /** Stops serving `name`. */
    unserve(name) {
      delete methods[name];
    },
  };
})();
