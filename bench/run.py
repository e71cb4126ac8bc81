#!/usr/bin/env python3
"""The any benchmark: the same Chromium driven by `any` and by Playwright, side by side.

Runs in its own process (CPython). Starts `any serve`, `any browser --headless` (the
Debian Chromium with the built extension) and a local page server; measures the figures
of issue 6 through the server's HTTP API (keep-alive `http.client`) and through the
Python client (`any_browser`); then starts the same Chromium again under Playwright for
Python and measures the same method calls on the same page. Prints one table: per
figure, median and p99 (or max) of each driver, the ratio any/Playwright, the spread
over repeats, and the goal. `--json FILE` also writes the raw numbers.

    python3 bench/run.py            # full run, a few minutes (includes 2-minute waits)
    python3 bench/run.py --quick    # seconds-to-a-minute smoke run, no long waits

Exit status 0 when every figure was measured (goals are reported, not asserted), 1 when
a figure could not be measured. Everything listens on / talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http.client
import http.server
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = Path(__file__).resolve().parent / "pages"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))

import any_e2e  # noqa: E402  (the e2e suite's process helpers)
import any_browser  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
# CPU profiles of the timed windows of figure 2, newest last.
PROFILES: list = []
# Figure 1 in a loop: calls per block of one driver.
LOOP_BLOCK = 10
# File names of the `any` executable (main() adds the one given by --any).
ANY_NAMES = {"any"}
# The `any` executable (main() sets --any).
TOKEN_BIN = [Path("any")]
# The flags `any browser` gives Chromium besides the anti-throttling ones (see
# crates/server/src/browser.rs); the "user-like" browser of figure 7 gets only these.
QUIET_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


# ---------------------------------------------------------------- small helpers


def pct(values, q):
    """The q-quantile (0..1) of `values`, nearest-rank."""
    s = sorted(values)
    if not s:
        raise ValueError("no samples")
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


def ms(seconds):
    return seconds * 1000.0


class Timings:
    """Samples (seconds) of one figure for one driver, grouped by repeat."""

    def __init__(self):
        self.repeats: list[list[float]] = []

    def add_repeat(self, samples):
        if not samples:
            raise RuntimeError("a repeat produced no samples")
        self.repeats.append(list(samples))

    @property
    def all(self):
        return [x for r in self.repeats for x in r]

    def median(self):
        return statistics.median(self.all)

    def p99(self):
        return pct(self.all, 0.99)

    def max(self):
        return max(self.all)

    def spread(self):
        """(min, max) of the per-repeat medians."""
        meds = [statistics.median(r) for r in self.repeats]
        return min(meds), max(meds)


class PageServer:
    """bench/pages over HTTP/1.1 on a free loopback port, in a thread."""

    def __init__(self):
        handler = type("H", (http.server.SimpleHTTPRequestHandler,), {
            "protocol_version": "HTTP/1.1",
            "__init__": lambda self, *a, **k: http.server.SimpleHTTPRequestHandler.__init__(
                self, *a, directory=str(PAGES), **k),
            "log_message": lambda self, *a: None,
            "end_headers": lambda self: (self.send_header("Cache-Control", "no-store"),
                                         http.server.SimpleHTTPRequestHandler.end_headers(self)),
        })
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, query=""):
        return f"http://127.0.0.1:{self.port}/bench.html{query}"

    def stop(self):
        self.httpd.shutdown()


TOKEN: dict = {}


def auth_headers(port):
    """The `Authorization: Bearer` header of the client API, with the token `any token`
    prints; none when this `any` has no tokens (an older build)."""
    if "value" not in TOKEN:
        try:
            r = subprocess.run([str(TOKEN_BIN[0]), "token", "--port", str(port)],
                               capture_output=True, text=True, timeout=10)
            TOKEN["value"] = r.stdout.strip() if r.returncode == 0 else ""
        except OSError:
            TOKEN["value"] = ""
    return {"Authorization": f"Bearer {TOKEN['value']}"} if TOKEN["value"] else {}


class Api:
    """`POST /v1/call` over one kept-alive HTTP/1.1 connection (the HTTP API figure)."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Content-Type": "application/json", **auth_headers(port)}

    def call(self, page, method, params=None, tab=None, timeout_ms=60_000):
        body = {"page": page, "method": method, "timeout_ms": timeout_ms}
        if params is not None:
            body["params"] = params
        if tab:
            body["tab"] = tab
        for attempt in (0, 1):
            try:
                self.conn.request("POST", "/v1/call", json.dumps(body), self.headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                if attempt:
                    raise
        answer = json.loads(raw)
        if resp.status != 200:
            raise RuntimeError(f"{method} on {page}: HTTP {resp.status} {raw[:300]!r}")
        return answer["result"]

    def get(self, path):
        """The JSON body of `GET path` (status 200 expected)."""
        self.conn.request("GET", path, headers=self.headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {resp.status} {raw[:300]!r}")
        return json.loads(raw)

    def close(self):
        self.conn.close()


def in_thread(fn):
    """fn() in a fresh thread (Playwright's sync API owns this thread's event loop)."""
    box = {}

    def run():
        try:
            box["v"] = fn()
        except BaseException as e:  # re-raised in the caller
            box["e"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box["v"]


def browser_tree(profile):
    """Pids of the Chromium started with `profile` and of all its descendants."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    tree = set(any_e2e._profile_processes(profile))
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sorted(tree)


def process_table():
    """{pid: (ppid, cmdline args, cpu seconds)} of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), args, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return table


def role(args):
    """What a process of the benchmark is, from its command line."""
    exe = os.path.basename(args[0].decode(errors="replace"))
    joined = b" ".join(args)
    if exe in ANY_NAMES:
        return f"any {args[1].decode()}" if len(args) > 1 else "any"
    if exe.startswith("node") or b"run-driver" in joined:
        return "playwright driver (node)"
    if b"--type=renderer" in joined:
        return "chromium extension renderer" if b"--extension-process" in joined \
            else "chromium page renderers"
    if b"--type=" in joined:
        return "chromium gpu/utility/zygote"
    return "chromium browser process"


class CpuProfile:
    """CPU seconds per (side, role) of this process's descendants over a window;
    `side` is "any" under an `any` process, else "playwright"."""

    def __init__(self):
        self.t0 = self._snap()
        self.self0 = os.times()

    @staticmethod
    def _snap():
        table = process_table()
        me = os.getpid()
        out = {}
        for pid, (ppid, args, cpu) in table.items():
            chain, p, side = [], pid, None
            while p in table and p != me and len(chain) < 20:
                chain.append(p)
                if os.path.basename(table[p][1][0].decode(errors="replace")) in ANY_NAMES:
                    side = "any"
                p = table[p][0]
            if p != me or pid == me:  # this process is counted below, as the callers'
                continue
            out[pid] = (side or "playwright", role(args), cpu)
        return out

    def stop(self):
        t1, self1 = self._snap(), os.times()
        groups = {}
        for pid, (side, r, cpu) in t1.items():
            before = self.t0.get(pid, (side, r, 0.0))[2]
            groups[(side, r)] = groups.get((side, r), 0.0) + cpu - before
        groups[("both", "python (this process, clients)")] = (
            self1.user - self.self0.user + self1.system - self.self0.system)
        return groups


def proc_cpu(pids):
    """Total user+system CPU seconds of `pids` (vanished ones count 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / CLK_TCK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def is_extension_process(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"--extension-process" in f.read()
    except OSError:
        return False


# ---------------------------------------------------------------- the any side


class AnySide:
    def __init__(self, opts, tmp, pages):
        self.opts, self.tmp, self.pages = opts, tmp, pages
        self.stack = any_e2e.Stack(opts.any, opts.extension, tmp)
        self.server = self.stack.server()
        self.browser = self.stack.browser(self.server.port)
        self.api: Api | None = None

    def start(self):
        self.server.start()
        t0 = time.monotonic()
        self.browser.start()
        self.server.wait_extension()
        self.cold_connect_s = time.monotonic() - t0
        self.api = Api(self.server.port)
        self.client = any_browser.Client(port=self.server.port, autostart=False, timeout=120)

    def stop(self):
        if self.api:
            self.api.close()
        self.stack.stop_all()


# ---------------------------------------------------------------- figures


def fig_latency(opts, any_side, pw, out):
    """Two orders of the same calls, both fair to every driver:
    - in a loop: blocks of BLOCK calls by one driver, the drivers' order rotating from
      block to block (a script calling in a loop; its processes stay awake);
    - one by one: the drivers take turns call by call, the order rotating every round,
      so that each driver's call follows each other driver's equally often (a call now
      and then: the other browser ran last). A fixed order is not fair: the driver that
      always follows a call in its own browser finds it awake (measured: any's ratio
      0.87-1.02 in a fixed order, 1.10-1.15 in a loop, in the same session)."""
    n = opts.calls
    page = any_side.pages.url("?latency")
    any_side.api.call(page, "small", {"n": -1})  # opens the tab
    pw.warm(page)
    drivers = (("any_http", lambda i: any_side.api.call(page, "small", {"n": i})),
               ("any_python", lambda i: any_side.client.call(page, "small", {"n": i})),
               ("playwright", lambda i: pw.call("small", {"n": i})))
    for key, block in (("latency", LOOP_BLOCK), ("latency_turns", 1)):
        timings = {name: Timings() for name, _ in drivers}
        for _ in range(opts.repeats):
            samples = {name: [] for name, _ in drivers}
            for r in range(max(1, n // block)):
                for k in range(len(drivers)):
                    name, fn = drivers[(r + k) % len(drivers)]
                    for j in range(block):
                        i = r * block + j
                        t = time.perf_counter()
                        got = fn(i)
                        samples[name].append(time.perf_counter() - t)
                        assert got["n"] == i, got
            for name, acc in samples.items():
                timings[name].add_repeat(acc)
        out[key] = timings


async def async_window(call, pages, secs):
    """Figure 2's window for an asyncio driver: calls/s of `call(k, n)` (a coroutine: call
    number n on page k) with one call in flight on each of `pages` pages for `secs`,
    after the same warm-up as `any_http_run`'s (one call on every page at once, twice).
    Leaves the window's CPU profile on PROFILES."""
    for _ in range(2):
        await asyncio.gather(*(call(k, 0) for k in range(pages)))
    counts = [0] * pages
    stop_at = time.perf_counter() + secs

    async def worker(k):
        while time.perf_counter() < stop_at:
            await call(k, counts[k])
            counts[k] += 1

    prof = CpuProfile()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(pages)))
    rate = sum(counts) / (time.perf_counter() - t0)
    PROFILES.append(prof.stop())
    return rate


def fig_throughput(opts, any_side, out):
    pages = [any_side.pages.url(f"?tp={k}") for k in range(8)]
    secs = opts.tp_seconds

    def any_http_run():
        apis = [Api(any_side.server.port) for _ in pages]
        # Warm up the way the timed window runs: one call on every page at once, twice.
        # The first time, this opens the 8 tabs and moves each to a window where it is in
        # front (two calls at once in one window would leave one page hidden, see
        # README); measured sequentially, that one-off setup of 7 windows fell inside
        # the first timed repeat (quick runs: 358-528 calls/s against ~1000 settled).
        # The asyncio drivers' windows warm up the same way (`async_window`).
        for _ in range(2):
            warm = [threading.Thread(target=api.call, args=(page, "small", {"n": 0}))
                    for api, page in zip(apis, pages)]
            for t in warm:
                t.start()
            for t in warm:
                t.join()
        counts = [0] * len(pages)
        stop_at = time.perf_counter() + secs

        def worker(k):
            while time.perf_counter() < stop_at:
                apis[k].call(pages[k], "small", {"n": counts[k]})
                counts[k] += 1

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(pages))]
        prof = CpuProfile()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rate = sum(counts) / (time.perf_counter() - t0)
        PROFILES.append(prof.stop())
        for api in apis:
            api.close()
        return rate

    def any_async_run():
        async def go():
            async with any_browser.AsyncClient(port=any_side.server.port, autostart=False,
                                               timeout=120) as c:
                return await async_window(
                    lambda k, n: c.call(pages[k], "small", {"n": n}), len(pages), secs)
        return in_thread(lambda: asyncio.run(go()))

    rates = {"any_http": [], "any_python": [], "playwright": []}
    profiles = {}
    pw_pages = PlaywrightPages(opts, pages)
    try:
        runs = (("any_http", any_http_run), ("any_python", any_async_run),
                ("playwright", lambda: pw_pages.window(secs)))
        # One untimed window per driver first. Throughput is a steady-state figure, and a
        # driver's first window after its 8 pages open was its slowest (runs of 3
        # repeats, calls/s: any_http 1051 / 831 against 1146-1218): the worker's and the
        # pages' code warming up, Chrome settling the new pages.
        for key, run in runs:
            run()
            PROFILES.pop()
        for r in range(opts.repeats):
            # The order rotates from repeat to repeat, like figure 1's.
            for k in range(len(runs)):
                key, run = runs[(r + k) % len(runs)]
                rate = run()
                cpu = PROFILES.pop()
                rates[key].append(rate)
                profiles[key] = {"calls": rate * secs, "cpu": cpu}
    finally:
        pw_pages.close()
    out["throughput"] = rates
    out["throughput_cpu"] = profiles


def fig_big(opts, any_side, pw, out):
    page = any_side.pages.url("?big")
    any_side.api.call(page, "small", {"n": 0})
    pw.warm(page)
    sizes = {"10MiB": 10 << 20, "50MiB": 50 << 20}
    res = {}
    for name, size in sizes.items():
        reps = opts.big_repeats if name == "10MiB" else 1
        a_http, a_py, p = Timings(), Timings(), Timings()
        for _ in range(reps):
            for timings, fn in ((a_http, lambda: any_side.api.call(page, "big", {"bytes": size})),
                                (a_py, lambda: any_side.client.call(page, "big", {"bytes": size})),
                                (p, lambda: pw.call("big", {"bytes": size}))):
                t = time.perf_counter()
                r = fn()
                timings.add_repeat([time.perf_counter() - t])
                assert len(r) == size, (name, len(r))
        res[name] = {"any_http": a_http, "any_python": a_py, "playwright": p}
    out["big"] = res


def fig_new_page(opts, any_side, pw, out):
    a_http, a_py, p = Timings(), Timings(), Timings()
    k = 0
    for _ in range(opts.repeats):
        sa, sb, sp = [], [], []
        for _ in range(opts.new_pages):
            k += 1
            url = any_side.pages.url(f"?new={k}")
            t = time.perf_counter()
            assert any_side.api.call(url, "small", {"n": k}, tab="new")["n"] == k
            sa.append(time.perf_counter() - t)
            k += 1
            url = any_side.pages.url(f"?new={k}")
            t = time.perf_counter()
            assert any_side.client.call(url, "small", {"n": k}, new_tab=True)["n"] == k
            sb.append(time.perf_counter() - t)
            url = any_side.pages.url(f"?pwnew={k}")
            sp.append(pw.new_page_call(url, k))
        a_http.add_repeat(sa)
        a_py.add_repeat(sb)
        p.add_repeat(sp)
    out["new_page"] = {"any_http": a_http, "any_python": a_py, "playwright": p}


def fig_rss(opts, any_side, out):
    """Server RSS idle and after N calls (8 callers in parallel over kept-alive HTTP)."""
    pid = any_side.server.proc.pid
    pages = [any_side.pages.url(f"?tp={k}") for k in range(8)]
    points = [(0, rss_kib(pid))]
    done = 0
    step = opts.rss_calls // 2
    for _ in range(2):
        apis = [Api(any_side.server.port) for _ in pages]

        def worker(k, count):
            for i in range(count):
                apis[k].call(pages[k], "small", {"n": i})

        per = step // len(pages)
        threads = [threading.Thread(target=worker, args=(k, per)) for k in range(len(pages))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for api in apis:
            api.close()
        done += per * len(pages)
        time.sleep(0.5)
        points.append((done, rss_kib(pid)))
    out["rss"] = points


def cpu_window(pids_fn, seconds):
    pids = pids_fn()
    c0 = proc_cpu(pids)
    time.sleep(seconds)
    return (proc_cpu(pids) - c0) / seconds


def fig_idle_cpu(opts, any_side, out, key):
    pids = browser_tree(any_side.browser.profile)
    ext = [p for p in pids if is_extension_process(p)]
    if not ext:
        raise RuntimeError("no --extension-process among the browser's processes")
    win = opts.cpu_window
    before = {pid: proc_cpu([pid]) for pid in pids}
    c_all0, c_ext0 = proc_cpu(pids), proc_cpu(ext)
    time.sleep(win)
    by_role = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                r = role(f.read().split(b"\0"))
        except OSError:
            continue
        by_role[r] = by_role.get(r, 0.0) + (proc_cpu([pid]) - before[pid]) / win
    out[key] = {"extension_process": (proc_cpu(ext) - c_ext0) / win,
                "browser_all": (proc_cpu(pids) - c_all0) / win, "window_s": win,
                "by_role": by_role, "windows_or_tabs": len(pids)}


def connect_trial(any_side, idle_s=0.0):
    """Stops nothing; starts the server and returns seconds from spawn to extension seen."""
    srv = any_side.server
    t0 = time.monotonic()
    srv.start()
    seen = srv.wait_extension(timeout=30, poll=0.005)
    return seen - t0


def fig_connect(opts, any_side, out, long_waits):
    """Server start → extension connected. `long_waits`: list of idle seconds before
    each extra trial (the browser sits that long without a server)."""
    trials = []
    for i in range(opts.connect_trials):
        any_side.api.close()
        any_side.server.stop()
        time.sleep(1.0 + (i % 4) * 0.37)  # land at different points of the 1 s retry
        trials.append(("short", connect_trial(any_side)))
    out.setdefault("connect", []).extend(trials)


def wasm_figures(opts, out):
    wasm = opts.extension / "wasm" / "any_ext_core_bg.wasm"
    glue = opts.extension / "wasm" / "any_ext_core.js"
    data = wasm.read_bytes()
    res = {"wasm_bytes": len(data), "wasm_gzip_bytes": len(gzip.compress(data, 9)),
           "glue_bytes": glue.stat().st_size}
    node = shutil.which("node")
    if node:
        script = ("const fs=require('fs');const b=fs.readFileSync(process.argv[1]);"
                  "const t=performance.now();WebAssembly.compile(b).then(()=>"
                  "console.log(performance.now()-t))")
        times = []
        for _ in range(5):
            r = subprocess.run([node, "-e", script, str(wasm)], capture_output=True, text=True,
                               timeout=30)
            times.append(float(r.stdout.strip()))
        res["node_compile_ms"] = statistics.median(times)
    out["wasm"] = res


# ---------------------------------------------------------------- figure 7


def fig_user_browser(opts, tmp, pages, out):
    """A browser as a user starts it: only the extension, no anti-throttling flags."""
    ext = tmp / "user-ext"
    shutil.copytree(opts.extension, ext)
    srv = any_e2e.Server(opts.any, any_e2e.free_port(), tmp / "user-serve.log")
    (ext / "config.json").write_text(json.dumps(
        {"server": f"ws://127.0.0.1:{srv.port}/v1/extension", "label": "user"}))
    profile = tmp / "user-profile"
    log = open(tmp / "user-chromium.log", "wb")
    proc = None
    try:
        srv.start()
        proc = subprocess.Popen([opts.chromium, *QUIET_FLAGS, f"--user-data-dir={profile}",
                                 f"--load-extension={ext}", "about:blank"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        srv.wait_extension()
        api = Api(srv.port)
        a, b = pages.url("?user=a"), pages.url("?user=b")
        res = {}
        t = time.perf_counter()
        r = api.call(a, "sleep", {"ms": 50})
        res["first call, new tab A"] = (time.perf_counter() - t, r)
        t = time.perf_counter()
        r = api.call(b, "sleep", {"ms": 50})
        res["new tab B (a window of its own)"] = (time.perf_counter() - t, r)
        seq = []
        for i in range(opts.user_calls):
            page = a if i % 2 == 0 else b
            t = time.perf_counter()
            r = api.call(page, "sleep", {"ms": 50})
            seq.append(time.perf_counter() - t)
            assert r["took"] < 900, r
        res["alternating A/B, reused tabs"] = (max(seq), {"median_s": statistics.median(seq)})
        # Two pages at once: both tabs are busy at the same time.
        results = {}

        def one(page, key):
            api2 = Api(srv.port)
            t0 = time.perf_counter()
            results[key] = (time.perf_counter() - t0, api2.call(page, "sleep", {"ms": 50}))
            results[key] = (time.perf_counter() - t0, results[key][1])
            api2.close()

        th = [threading.Thread(target=one, args=(p, k)) for p, k in ((a, "A"), (b, "B"))]
        for x in th:
            x.start()
        for x in th:
            x.join()
        res["A and B concurrently (slowest)"] = max(results.values(), key=lambda v: v[0])
        api.close()
        out["user_browser"] = res
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        srv.stop()
        log.close()


# ---------------------------------------------------------------- Playwright


def playwright_launch(opts):
    """How both of Playwright's browsers are launched: the Debian Chromium, headless."""
    return {"executable_path": opts.chromium, "headless": True,
            "args": ["--no-sandbox", "--disable-gpu"]}


class PlaywrightSide:
    """The same Chromium under Playwright (sync API for sequential figures)."""

    def __init__(self, opts):
        from playwright.sync_api import sync_playwright
        self.opts = opts
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(**playwright_launch(opts))
        self.context = self.browser.new_context()
        self.page = None

    def warm(self, url):
        if self.page is None:
            self.page = self.context.new_page()
        self.page.goto(url)
        self.page.evaluate("p => globalThis.__any__.small(p)", {"n": -1})

    def call(self, method, params):
        return self.page.evaluate(f"p => globalThis.__any__.{method}(p)", params)

    def new_page_call(self, url, n):
        t = time.perf_counter()
        page = self.context.new_page()
        page.goto(url)
        r = page.evaluate("p => globalThis.__any__.small(p)", {"n": n})
        took = time.perf_counter() - t
        assert r["n"] == n
        page.close()
        return took

    def stop(self):
        try:
            self.browser.close()
        finally:
            self.pw.stop()


class PlaywrightPages:
    """Figure 2's Playwright side: its own browser with 8 pages, driven with the async API
    from a thread of its own (the sync API owns the main thread's event loop), open from
    the first window to the last, like `any`'s 8 tabs."""

    def __init__(self, opts, urls):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.do(self.open(opts, urls))

    def do(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def open(self, opts, urls):
        from playwright.async_api import async_playwright
        self.pw = await async_playwright().start()
        self.browser = await self.pw.chromium.launch(**playwright_launch(opts))
        context = await self.browser.new_context()
        self.pages = []
        for u in urls:
            page = await context.new_page()
            await page.goto(u)
            self.pages.append(page)

    def window(self, secs):
        """Calls/s with one call in flight on each page for `secs` (`async_window`)."""
        def small(k, n):
            return self.pages[k].evaluate("p => globalThis.__any__.small(p)", {"n": n})

        return self.do(async_window(small, len(self.pages), secs))

    def close(self):
        async def shut():
            await self.browser.close()
            await self.pw.stop()

        self.do(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# ---------------------------------------------------------------- report


def fmt_ms(s):
    return f"{ms(s):.1f}"


def report(out, opts):
    lines = []
    add = lines.append
    add(f"any benchmark — {'quick' if opts.quick else 'full'} run, "
        f"{os.cpu_count()} cores, Chromium {out.get('chromium_version', '?')}")
    add("")
    hdr = f"{'figure':<44} {'driver':<11} {'median':>10} {'p99/max':>10} {'spread of medians':>20}"
    add(hdr)
    add("-" * len(hdr))

    def rows(title, group, unit="ms", tail="p99"):
        for drv in ("any_http", "any_python", "playwright"):
            t: Timings = group[drv]
            lo, hi = t.spread()
            tailv = t.p99() if tail == "p99" else t.max()
            add(f"{title:<44} {drv:<11} {fmt_ms(t.median()):>10} {fmt_ms(tailv):>10} "
                f"{fmt_ms(lo) + '–' + fmt_ms(hi):>20}")
            title = ""
        pw = group["playwright"]
        for drv in ("any_http", "any_python"):
            t = group[drv]
            tv = (t.p99() / pw.p99()) if tail == "p99" else (t.max() / pw.max())
            add(f"{'':<44} {'ratio ' + drv.split('_')[1]:<11} {t.median() / pw.median():>10.2f} "
                f"{tv:>10.2f}")

    if "latency" in out:
        rows(f"1 call on open page, in a loop, ms (n={opts.calls}×{opts.repeats})",
             out["latency"])
        rows("1 … one by one, drivers taking turns, ms", out["latency_turns"])
        add("   goal: median ratio ≤ 1.0, p99 ratio ≤ 1.5")
    if "throughput" in out:
        tp = out["throughput"]
        for drv in ("any_http", "any_python", "playwright"):
            v = tp[drv]
            add(f"{'2 throughput, 8 pages, calls/s' if drv == 'any_http' else '':<44} {drv:<11} "
                f"{statistics.median(v):>10.0f} {'':>10} {f'{min(v):.0f}–{max(v):.0f}':>20}")
        for drv in ("any_http", "any_python"):
            add(f"{'':<44} {'ratio ' + drv.split('_')[1]:<11} "
                f"{statistics.median(tp[drv]) / statistics.median(tp['playwright']):>10.2f}")
        add("   goal: ratio ≥ 1.0")
        add("   CPU per call in the last repeat (ms, by process; 2 cores = 2 ms of CPU per ms):")
        for drv, prof in out.get("throughput_cpu", {}).items():
            parts = sorted(prof["cpu"].items(), key=lambda kv: -kv[1])
            total = sum(v for (side, _), v in parts if side in ("both", drv.split("_")[0]))
            add(f"     {drv}: {1000 * total / prof['calls']:.2f} ms total = " + ", ".join(
                f"{r} {1000 * v / prof['calls']:.2f}" for (side, r), v in parts
                if v > 0 and side in ("both", drv.split("_")[0]) and 1000 * v / prof["calls"] >= 0.01))
    if "big" in out:
        rows("3 one 10 MiB result, ms", out["big"]["10MiB"], tail="max")
        rows("3 one 50 MiB result, ms", out["big"]["50MiB"], tail="max")
        add("   goal: 10 MiB ratio ≤ 1.5; 50 MiB works")
    if "new_page" in out:
        rows(f"4 new tab + load + call, ms (n={opts.new_pages}×{opts.repeats})",
             out["new_page"])
        add("   goal: median ratio ≤ 1.0")
    if "connect" in out:
        short = [s for k, s in out["connect"] if k == "short"]
        long_ = [s for k, s in out["connect"] if k != "short"]
        add(f"5 server start → extension connected: {len(short)} trials median "
            f"{fmt_ms(statistics.median(short))} ms, max {fmt_ms(max(short))} ms")
        for k, s in out["connect"]:
            if k != "short":
                add(f"   after {k} without a server: {fmt_ms(s)} ms")
        add(f"   max over all {len(short) + len(long_)} trials: "
            f"{fmt_ms(max(short + long_))} ms (goal ≤ 1200)")
        add(f"   cold: browser start → connected (server up): "
            f"{fmt_ms(out['cold_connect_s'])} ms")
    if "rss" in out:
        pts = ", ".join(f"{n} calls: {kib / 1024:.1f} MiB" for n, kib in out["rss"])
        add(f"6 server RSS: {pts}")
    if "wasm" in out:
        w = out["wasm"]
        add(f"6 wasm: {w['wasm_bytes'] / 1000:.0f} kB ({w['wasm_gzip_bytes'] / 1000:.0f} kB "
            f"gzipped), glue {w['glue_bytes'] / 1000:.0f} kB; compile (Node) "
            f"{w.get('node_compile_ms', float('nan')):.1f} ms")
    for key, title in (("cpu_connected", "idle, connected"),
                       ("cpu_disconnected", "idle, no server")):
        if key in out:
            c = out[key]
            add(f"6 CPU {title} over {c['window_s']:.0f} s: extension process "
                f"{c['extension_process'] * 100:.2f} %, whole browser "
                f"{c['browser_all'] * 100:.2f} % of one core (" + ", ".join(
                    f"{r} {v * 100:.1f} %" for r, v in sorted(c["by_role"].items())) + ")")
    if "user_browser" in out:
        add("7 user-like browser (no anti-throttling flags), method awaiting a 50 ms timer:")
        for k, (s, r) in out["user_browser"].items():
            add(f"   {k:<40} {fmt_ms(s):>8} ms  {json.dumps(r)}")
    return "\n".join(lines)


def jsonable(out):
    def conv(v):
        if isinstance(v, Timings):
            return {"repeats": v.repeats, "median": v.median(), "p99": v.p99(), "max": v.max()}
        if isinstance(v, dict):
            return {(k if isinstance(k, str) else " / ".join(map(str, k))): conv(x)
                    for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v
    return conv(out)


# ---------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts, no long waits")
    ap.add_argument("--any", type=Path, default=ROOT / "target" / "release" / "any")
    ap.add_argument("--extension", type=Path, default=ROOT / "dist" / "extension")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--json", type=Path, help="also write the raw numbers here")
    ap.add_argument("--only", default="", help="comma-separated figures (1..7) to run")
    ap.add_argument("--calls", type=int,
                    help="calls per driver and repeat of figure 1 (in blocks of 10 in a loop)")
    opts = ap.parse_args(argv)
    ANY_NAMES.add(opts.any.name)
    TOKEN_BIN[0] = opts.any
    q = opts.quick
    opts.calls = opts.calls or (30 if q else 300)
    opts.repeats = 1 if q else 3
    opts.tp_seconds = 1.0 if q else 5.0
    opts.big_repeats = 1 if q else 3
    opts.new_pages = 3 if q else 10
    opts.connect_trials = 3 if q else 18
    opts.long_idle_s = [] if q else [120.0, 125.0]
    opts.rss_calls = 400 if q else 10_000
    opts.cpu_window = 2.0 if q else 20.0
    opts.user_calls = 4 if q else 20
    only = {int(x) for x in opts.only.split(",") if x}
    want = (lambda f: not only or f in only)
    for path in (opts.any, opts.extension / "wasm" / "any_ext_core_bg.wasm"):
        if not path.exists():
            sys.exit(f"bench: {path} is missing; run ./build.sh build")

    out: dict = {}
    failures = []
    tmp = Path(tempfile.mkdtemp(prefix="any-bench-"))
    pages = PageServer()
    any_side = AnySide(opts, tmp, pages)
    pw = None

    def step(name, fn, *a):
        print(f"bench: {name} …", file=sys.stderr, flush=True)
        try:
            fn(*a)
        except Exception:
            failures.append(name)
            traceback.print_exc()

    try:
        print(f"bench: starting any ({tmp})", file=sys.stderr, flush=True)
        any_side.start()
        out["cold_connect_s"] = any_side.cold_connect_s
        print("bench: starting Playwright", file=sys.stderr, flush=True)
        pw = PlaywrightSide(opts)
        out["chromium_version"] = pw.browser.version
        if want(1):
            step("1 latency", fig_latency, opts, any_side, pw, out)
        if want(2):
            step("2 throughput", fig_throughput, opts, any_side, out)
        if want(3):
            step("3 big results", fig_big, opts, any_side, pw, out)
        if want(4):
            step("4 new page", fig_new_page, opts, any_side, pw, out)
        pw.stop()
        pw = None
        if want(6):
            step("6 rss", fig_rss, opts, any_side, out)
            step("6 wasm", wasm_figures, opts, out)
            step("6 cpu connected", fig_idle_cpu, opts, any_side, out, "cpu_connected")
        if want(5) or want(6):
            # From here the browser sits without a server.
            any_side.api.close()
            any_side.server.stop()
            idle = {"since": time.monotonic()}
            if want(6):
                step("6 cpu disconnected", fig_idle_cpu, opts, any_side, out, "cpu_disconnected")
            if want(7):
                step("7 user browser", fig_user_browser, opts, tmp, pages, out)
            if want(5):
                def long_trials():
                    for wait_s in opts.long_idle_s:
                        left = wait_s - (time.monotonic() - idle["since"])
                        if left > 0:
                            print(f"bench: browser idle without a server, {left:.0f} s more",
                                  file=sys.stderr, flush=True)
                            time.sleep(left)
                        s = connect_trial(any_side)
                        out.setdefault("connect", []).append(
                            (f"{time.monotonic() - idle['since'] - s:.0f} s", s))
                        any_side.server.stop()
                        idle["since"] = time.monotonic()
                    any_side.server.start()
                    any_side.server.wait_extension()
                    any_side.api = Api(any_side.server.port)
                step("5 connect after long idle", long_trials)
                step("5 connect", fig_connect, opts, any_side, out, [])
        elif want(7):
            step("7 user browser", fig_user_browser, opts, tmp, pages, out)
    except Exception:
        failures.append("setup")
        traceback.print_exc()
    finally:
        if pw:
            pw.stop()
        any_side.stop()
        pages.stop()

    text = report(out, opts)
    print(text)
    if opts.json:
        opts.json.write_text(json.dumps(jsonable(out), indent=1))
    if failures:
        print(f"bench: could not measure: {', '.join(failures)} (logs in {tmp})", file=sys.stderr)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
