#!/usr/bin/env python3
"""Where the milliseconds of one call go: splits the per-call latency on an open page
into client+HTTP, server↔extension, and the browser's own round trip into the page (over
a runtime.Port, as the channel does; `executeScript` for comparison).

Runs in its own process (CPython). Starts `any serve`, the Debian Chromium with the
built extension, the same flags as `any browser --headless` plus a loopback-only
DevTools port, and bench/pages. Measures, for N calls of `small` through the HTTP API:
the caller's time, the server's own record of each call (`/v1/status` → recent →
duration_s, from the HTTP request to the extension's answer), and — attached to the
extension's service worker with Playwright over CDP — a runtime.Port round trip into the
page (a connector and MAIN-world end of its own, relaying by DOM events like the
channel's), `chrome.scripting.executeScript` of a trivial function and `chrome.tabs.get`
from inside the worker, a timeline of each call inside the worker (hooks on its
WebSocket and on executeScript), and a Chrome trace (every task of every thread) of N
calls back to back, read per call: the worker's and the page's tasks and the gaps
between them, against the caller's send and answer (both on CLOCK_MONOTONIC).

    python3 bench/profile.py [--calls 300]
"""

from __future__ import annotations

import argparse
import bisect
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the benchmark's helpers)

from any_e2e import Server, free_port  # noqa: E402

ANTI_THROTTLING = ["--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                   "--disable-backgrounding-occluded-windows"]

# Timed inside the service worker: N round trips of a Chrome API, median in ms.
SW_TIMING = """async ([what, tabId, n]) => {
  const once = {
    executeScript: () => chrome.scripting.executeScript({target: {tabId}, world: "MAIN",
      injectImmediately: true, func: (a) => ({ok: true, json: JSON.stringify(a)}), args: [{n: 1}]}),
    tabsGet: () => chrome.tabs.get(tabId),
  }[what];
  for (let i = 0; i < 20; i++) await once();
  const t = [];
  for (let i = 0; i < n; i++) { const t0 = performance.now(); await once(); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  return {median: t[Math.floor(t.length / 2)], p99: t[Math.floor(t.length * 0.99)]};
}"""


# Timed inside the service worker: N round trips over a runtime.Port into the page, the
# way the channel works (crates/ext-core/src/channel.rs), with a connector and a
# MAIN-world end of its own: ISOLATED-world relay by DOM events, a trivial method.
PORT_TIMING = """async ([tabId, n]) => {
  const key = "profile-" + Math.random();
  await chrome.scripting.executeScript({target: {tabId}, world: "MAIN", args: [key], func: (key) => {
    document.addEventListener("q-" + key, (e) => {
      const v = JSON.stringify({ok: true, json: JSON.stringify(JSON.parse(e.detail))});
      document.dispatchEvent(new CustomEvent("a-" + key, {detail: v}));
    });
  }});
  // The worker opens this port (tabs.connect), so the extension's own onConnect, which
  // takes only its channels' ports, never sees it; the messages travel the same way.
  await chrome.scripting.executeScript({target: {tabId}, world: "ISOLATED", args: [key], func: (key) => {
    chrome.runtime.onConnect.addListener((port) => {
      if (port.name !== key) return;
      document.addEventListener("a-" + key, (e) => port.postMessage(e.detail));
      port.onMessage.addListener((m) => document.dispatchEvent(new CustomEvent("q-" + key, {detail: m})));
    });
  }});
  const port = chrome.tabs.connect(tabId, {name: key, frameId: 0});
  const once = () => new Promise((resolve) => {
    port.onMessage.addListener(function answered(m) { port.onMessage.removeListener(answered); resolve(m); });
    port.postMessage(JSON.stringify({n: 1}));
  });
  for (let i = 0; i < 20; i++) await once();
  const t = [];
  for (let i = 0; i < n; i++) { const t0 = performance.now(); await once(); t.push(performance.now() - t0); }
  port.disconnect();
  t.sort((a, b) => a - b);
  return {median: t[Math.floor(t.length / 2)], p99: t[Math.floor(t.length * 0.99)]};
}"""


# Hooks in the worker's realm, installed over DevTools: the time of every WebSocket frame
# in (its event's timeStamp) and out, and of every chrome.scripting.executeScript (called,
# returned, settled). The wasm glue looks both up at each use, so the hooks see the
# extension's own calls. performance.now() is coarsened to 0.1 ms here: means over many
# calls, not medians.
SW_HOOK = """() => {
  globalThis.__anyProfile = [];
  const log = globalThis.__anyProfile;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const t0 = performance.now();
    if (!this.__anyProfileHooked) {
      this.__anyProfileHooked = true;
      this.addEventListener("message", (e) => log.push(["in", e.timeStamp, String(e.data).slice(0, 30)]));
    }
    const r = send.call(this, data);
    log.push(["out", t0, String(data).slice(0, 40), performance.now()]);
    return r;
  };
  const execute = chrome.scripting.executeScript;
  chrome.scripting.executeScript = function (injection) {
    const t0 = performance.now();
    const p = execute.call(chrome.scripting, injection);
    log.push(["es", t0, "", performance.now()]);
    p.then(() => log.push(["es_done", performance.now(), ""]));
    return p;
  };
}"""


def worker_timeline(events):
    """Per call, from the worker's hooks: frame in → result frame sent, and for the calls
    that injected (no channel yet): executeScript called → returned → settled. Returns
    (calls, calls that sent a progress frame, calls that injected, [(step, mean ms)])."""
    rows, cur = [], {}
    for kind, t, text, *end in events:
        if kind == "in" and '"type":"call"' in text:
            cur = {"in": t}
        elif kind == "es":
            cur["es"], cur["es_ret"] = t, end[0]
        elif kind == "es_done":
            cur["es_done"] = t
        elif kind == "out" and '"type":"progress"' in text:
            cur["progress"] = t
        elif kind == "out" and '"type":"result"' in text and "in" in cur:
            cur["out"], cur["sent"] = t, end[0]
            rows.append(cur)
            cur = {}
    injected = [r for r in rows if {"es", "es_done"} <= r.keys()]
    channel = [r for r in rows if "es" not in r]

    def mean(of, a, b):
        return statistics.mean(r[b] - r[a] for r in of) if of else float("nan")

    return len(rows), sum("progress" in r for r in rows), len(injected), [
        (f"call frame in → result sent, over the page's channel ({len(channel)} calls)",
         mean(channel, "in", "sent")),
        ("  of which the WebSocket send of the result", mean(channel, "out", "sent")),
        (f"call frame in → result sent, by executeScript ({len(injected)} calls)",
         mean(injected, "in", "sent")),
        ("  of which executeScript called → settled", mean(injected, "es", "es_done")),
    ]


def trace_segments(events, marks):
    """A call's path through the browser, from a Chrome trace of calls made back to back:
    per call (between the caller's send and its answer, on CLOCK_MONOTONIC like the
    trace's timestamps), the worker's task for the call frame, the page's task (the
    longest on its main thread) and the worker's task for the answer, and the gaps
    between them. Returns [(step, median µs)] and the number of calls read."""
    processes, threads = {}, {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "process_name":
            processes[e["pid"]] = e["args"]["name"]
        elif e.get("ph") == "M" and e.get("name") == "thread_name":
            threads[(e["pid"], e["tid"])] = e["args"]["name"]
    roles = {("Extension Renderer", "ServiceWorker thread"): "worker",
             ("Renderer", "CrRendererMain"): "page"}

    # (start, role, task) of every task over 20 µs on the worker's or a page's thread.
    tasks = sorted(((e["ts"], role, e) for e in events
                    if e.get("ph") == "X" and e.get("name") == "ThreadControllerImpl::RunTask"
                    and e.get("dur", 0) > 20
                    and (role := roles.get((processes.get(e["pid"]),
                                            threads.get((e["pid"], e["tid"])))))),
                   key=lambda t: t[0])
    starts = [start for start, _, _ in tasks]
    steps = {k: [] for k in SEGMENTS}
    for sent, answered in marks:
        a, b = sent * 1e6, answered * 1e6
        inside = tasks[bisect.bisect_left(starts, a):bisect.bisect_right(starts, b)]
        worker = [e for _, role, e in inside if role == "worker"]
        page = [e for _, role, e in inside if role == "page"]
        if not worker or not page:
            continue
        call_in = worker[0]
        in_page = max(page, key=lambda e: e["dur"])
        after = [e for e in worker if e["ts"] > in_page["ts"]]
        if not after or call_in["ts"] > in_page["ts"]:
            continue
        answer = max(after, key=lambda e: e["dur"])
        for key, value in zip(SEGMENTS, (
                call_in["ts"] - a, call_in["dur"],
                in_page["ts"] - call_in["ts"] - call_in["dur"], in_page["dur"],
                answer["ts"] - in_page["ts"] - in_page["dur"], answer["dur"],
                b - answer["ts"] - answer["dur"], b - a)):
            steps[key].append(value)
    n = len(steps[SEGMENTS[-1]])
    return [(k, statistics.median(v) if v else float("nan")) for k, v in steps.items()], n


SEGMENTS = (
    "sent → the worker's task for the call frame (HTTP, server, network service)",
    "  the worker's task: call frame → port message to the page",
    "  → the page's task (the browser process relays the port message)",
    "  the page's task: connector → method → answer on the port",
    "  → the worker's task for the answer (the browser process relays)",
    "  the worker's task: answer → WebSocket send",
    "  → the caller has the answer (network service, server, HTTP, Python)",
    "total (tracing slows the browser's side)",
)


def trace_calls(browser, port, page, n):
    """Traces `n` calls made back to back (Chrome's `toplevel` category: every task of
    every thread) and reads each call's path with `trace_segments`."""
    cdp = browser.new_browser_cdp_session()
    cdp.send("Tracing.start", {"traceConfig": {"includedCategories": ["toplevel"]},
                               "transferMode": "ReturnAsStream"})
    api = bench.Api(port)
    for i in range(20):
        api.call(page, "small", {"n": i})
    marks = []
    for i in range(n):
        t = time.monotonic()
        api.call(page, "small", {"n": i})
        marks.append((t, time.monotonic()))
    api.close()
    done = {}
    cdp.on("Tracing.tracingComplete", lambda event: done.update(event))
    cdp.send("Tracing.end")
    while not done:
        cdp.send("Browser.getVersion")  # lets the sync API deliver the event
        time.sleep(0.05)
    chunks = []
    while True:
        got = cdp.send("IO.read", {"handle": done["stream"], "size": 1 << 20})
        chunks.append(got["data"])
        if got.get("eof"):
            break
    cdp.send("IO.close", {"handle": done["stream"]})
    data = json.loads("".join(chunks))
    return trace_segments(data["traceEvents"] if isinstance(data, dict) else data, marks)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--any", type=Path, default=bench.ROOT / "target" / "release" / "any")
    ap.add_argument("--extension", type=Path, default=bench.ROOT / "dist" / "extension")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--calls", type=int, default=300)
    opts = ap.parse_args(argv)
    bench.TOKEN_BIN[0] = opts.any

    tmp = Path(tempfile.mkdtemp(prefix="any-profile-"))
    pages = bench.PageServer()
    srv = Server(opts.any, free_port(), tmp / "serve.log")
    ext = tmp / "ext"
    shutil.copytree(opts.extension, ext)
    (ext / "config.json").write_text(json.dumps(
        {"server": f"ws://127.0.0.1:{srv.port}/v1/extension"}))
    cdp = free_port()
    proc = None
    try:
        srv.start()
        proc = subprocess.Popen(
            [opts.chromium, *bench.QUIET_FLAGS, *ANTI_THROTTLING, f"--user-data-dir={tmp / 'p'}",
             f"--load-extension={ext}", "--remote-debugging-address=127.0.0.1",
             f"--remote-debugging-port={cdp}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        srv.wait_extension()
        api = bench.Api(srv.port)
        page = pages.url("?profile")
        api.call(page, "small", {"n": 0})
        client, server = [], []
        for i in range(opts.calls):
            t = time.perf_counter()
            api.call(page, "small", {"n": i})
            client.append(time.perf_counter() - t)
            status = api.get("/v1/status")
            server.append(status["recent"][0]["duration_s"])
        api.close()

        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            browser = p.chromium.connect_over_cdp(f"http://127.0.0.1:{cdp}")
            ctx = browser.contexts[0]
            workers = [w for w in ctx.service_workers if w.url.startswith("chrome-extension://")]
            if not workers:
                raise RuntimeError("the extension's service worker is not visible over CDP")
            sw = workers[0]
            tab = sw.evaluate("async (url) => (await chrome.tabs.query({url}))[0].id", page)
            # The extension's own record of each call (received → answered, Date.now()
            # resolution, so means over many calls), read through its popup page.
            ext_id = sw.url.split("/")[2]
            popup = ctx.new_page()
            popup.goto(f"chrome-extension://{ext_id}/popup.html")
            api = bench.Api(srv.port)
            ext_ms, srv_ms = [], []
            for _ in range(max(1, opts.calls // 20)):
                for i in range(20):
                    api.call(page, "small", {"n": i})
                st = popup.evaluate("chrome.runtime.sendMessage({type: 'status'})")
                ext_ms += [c["duration_ms"] for c in st["calls"]["history"][:20]]
                srv_ms += [c["duration_s"] * 1000 for c in api.get("/v1/status")["recent"][:20]]
            api.close()
            sw.evaluate(SW_HOOK)
            api = bench.Api(srv.port)
            for i in range(20):
                api.call(page, "small", {"n": i})
            sw.evaluate("() => { globalThis.__anyProfile.length = 0; }")
            for i in range(opts.calls):
                api.call(page, "small", {"n": i})
            api.close()
            timeline = worker_timeline(sw.evaluate("() => globalThis.__anyProfile"))
            es = sw.evaluate(SW_TIMING, ["executeScript", tab, opts.calls])
            tg = sw.evaluate(SW_TIMING, ["tabsGet", tab, opts.calls])
            pt = sw.evaluate(PORT_TIMING, [tab, opts.calls])
            segments, traced = trace_calls(browser, srv.port, page, opts.calls)
            browser.close()

        med = lambda xs: statistics.median(xs) * 1000  # noqa: E731
        c, s = med(client), med(server)
        rows = [
            ("caller → answer (HTTP API, keep-alive)", c),
            ("  of which the server's own record (request in → answer out)", s),
            ("  client + HTTP + JSON in Python (difference)", c - s),
            ("  runtime.Port round trip into the page inside the worker (the channel's way)",
             pt["median"]),
            ("  the rest: server → WebSocket → worker (wasm) → WebSocket → server (difference)",
             s - pt["median"]),
            (f"means over {len(ext_ms)} calls (DevTools attached): the server's record",
             statistics.mean(srv_ms)),
            ("  the extension's record (call frame in → answer sent)", statistics.mean(ext_ms)),
            ("  server + WebSocket both ways (difference)",
             statistics.mean(srv_ms) - statistics.mean(ext_ms)),
            ("for comparison: executeScript round trip (trivial func, MAIN world; first calls)",
             es["median"]),
            ("for comparison: chrome.tabs.get round trip (not on the path)", tg["median"]),
        ]
        print(f"per-call profile, {opts.calls} calls of `small` on an open page (medians, ms)")
        for name, v in rows:
            print(f"  {name:<86} {v:6.2f}")
        n, with_progress, _ = timeline[0], timeline[1], timeline[2]
        print(f"inside the worker, {n} calls (means, ms; {with_progress} sent a progress frame)")
        for name, v in timeline[3]:
            print(f"  {name:<86} {v:6.2f}")
        print(f"a call's path, from a Chrome trace ({traced} calls back to back, medians, µs)")
        for name, v in segments:
            print(f"  {name:<86} {v:6.0f}")
        print(f"  p99: caller {bench.pct(client, .99) * 1000:.2f}, server "
              f"{bench.pct(server, .99) * 1000:.2f}, port {pt['p99']:.2f}, "
              f"executeScript {es['p99']:.2f}")
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        srv.stop()
        pages.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
