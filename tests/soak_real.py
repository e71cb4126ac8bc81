"""The soak of the real chain: many calls through a real `any serve` to the built
extension in real headless Chromium, across many pages, while faults are injected —
tabs closed and reloaded mid-call, the extension reloaded, the server restarted — and
then proof, from the pages' own record, that every call ended in exactly one outcome,
that a call that succeeded ran its method exactly once, and a failed one at most once.

    python3 tests/soak_real.py                  # the full run: 10,000 calls
    python3 tests/soak_real.py --calls 400      # what CI runs (tests/test_soak_real.py)

Runs in its own process (the driver): it starts the page server, `any serve` and
`any browser --headless` (with a DevTools port, through which the faults are made), sends
the calls over HTTP from worker threads, and stops everything it started. Each call
carries a unique key; `tests/pages/soak.js` reports every run of its method to the page
server (`POST /ran?k=KEY`) before it answers. Exit status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import sys
import tempfile
import threading
import time
import urllib.error
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from any_e2e import ROOT, PageHandler, Stack, http_json  # noqa: E402
from cdp import Cdp  # noqa: E402

WORKER_URL_PREFIX = "chrome-extension://"
# The extension's default limit of idle tabs (crates/ext-core/src/tabs.rs).
MAX_TABS = 10
# Each fault, as often as its weight says.
FAULTS = {"close_tab": 3, "reload_tab": 3, "reload_extension": 1, "restart_server": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000, help="calls in all (default 10000)")
    parser.add_argument("--pages", type=int, default=16, help="distinct pages (default 16)")
    parser.add_argument("--workers", type=int, default=8, help="callers at once (default 8)")
    parser.add_argument("--fault-every", type=float, default=1.0,
                        help="seconds between injected faults; 0 for none (default 1)")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"which faults to inject (default {','.join(FAULTS)})")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--any", default=str(ROOT / "target" / "release" / "any"))
    parser.add_argument("--extension", default=str(ROOT / "dist" / "extension"))
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    summary = soak(args)
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0 if not summary["violations"] else 1


def soak(args) -> dict:
    rng = random.Random(args.seed)
    # The token, logs and scripts of this run stay in a data directory of its own (as
    # in the test suite), never in the person's.
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="any-soak-data-")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    pages = [f"http://127.0.0.1:{httpd.server_address[1]}/soak.html?p={n}"
             for n in range(args.pages)]
    PageHandler.ran.clear()
    tmp = Path(tempfile.mkdtemp(prefix="any-soak-"))
    stack = Stack(Path(args.any), Path(args.extension), tmp)
    outcomes: dict[str, str] = {}
    answered = Counter()
    faults = Counter()
    lock = threading.Lock()
    try:
        server, _, cdp = stack.debuggable()
        keys = iter(range(args.calls))
        done = threading.Event()

        def caller(worker: int) -> None:
            wrng = random.Random(args.seed * 1000 + worker)
            while True:
                with lock:
                    n = next(keys, None)
                if n is None:
                    return
                key = f"k{n}"
                body = {"page": wrng.choice(pages), "method": wrng.choice(("soak", "soakToo")),
                        "params": {"k": key, "ms": wrng.choice((0, 0, 5, 20))},
                        "timeout_ms": 15_000}
                try:
                    status, answer = http_json("POST", server.base + "/v1/call", body, timeout=40)
                    if status == 200 and answer.get("result", {}).get("k") == key:
                        outcome = "ok"
                    elif status == 200:
                        outcome = f"wrong result {answer}"
                    else:
                        outcome = answer.get("error", {}).get("code", f"HTTP {status}")
                except (urllib.error.URLError, ConnectionError, OSError) as err:
                    # The server is restarting: one outcome for this call, and a pause
                    # before the next, as a caller would make.
                    outcome = f"unreachable ({type(err).__name__})"
                    time.sleep(0.2)
                with lock:
                    answered[key] += 1
                    outcomes[key] = outcome

        def injector() -> None:
            while not done.wait(args.fault_every):
                kinds = [f for f in FAULTS if f in args.faults.split(",")]
                fault = rng.choices(kinds, weights=[FAULTS[f] for f in kinds])[0]
                try:
                    inject(fault, cdp, server, rng)
                    faults[fault] += 1
                except Exception as err:  # noqa: BLE001 - a fault that could not be made
                    faults[f"{fault} (not made: {type(err).__name__})"] += 1

        started = time.monotonic()
        threads = [threading.Thread(target=caller, args=(w,)) for w in range(args.workers)]
        fault_thread = threading.Thread(target=injector, daemon=True)
        for t in threads:
            t.start()
        if args.fault_every > 0:
            fault_thread.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        done.set()
        if fault_thread.is_alive():
            fault_thread.join(60)
        # Runs whose report was still on its way (keepalive requests outlive their page).
        time.sleep(2)
        server.wait_extension()
        status = server.status()
        left_open = len([t for t in cdp.targets()
                         if t["type"] == "page" and "soak.html" in t["url"]])
    finally:
        stack.stop_all()
        httpd.shutdown()

    with PageHandler.ran_lock:
        ran = dict(PageHandler.ran)
    violations = []
    for n in range(args.calls):
        key = f"k{n}"
        if answered[key] != 1:
            violations.append(f"{key}: {answered[key]} outcomes")
        elif outcomes[key] == "ok" and ran.get(key, 0) != 1:
            violations.append(f"{key} succeeded but ran {ran.get(key, 0)} times")
        elif ran.get(key, 0) > 1:
            violations.append(f"{key} failed ({outcomes[key]}) and ran {ran[key]} times")
        elif outcomes[key].startswith("wrong result"):
            violations.append(f"{key}: {outcomes[key]}")
    strangers = sorted(set(ran) - {f"k{n}" for n in range(args.calls)})
    if strangers:
        violations.append(f"runs of keys nobody called: {strangers[:5]}")
    if status["calls"]:
        violations.append(f"{len(status['calls'])} calls left in the server's table")
    # An extension reload can cut in while a tab is being opened or closed, and leave that
    # one tab unrecorded (extension/README.md, "Known limits"): never more.
    allowed = MAX_TABS + faults["reload_extension"]
    if left_open > allowed:
        violations.append(f"{left_open} tabs left open (the limit is {MAX_TABS}, "
                          f"+{faults['reload_extension']} extension reloads)")
    tally = Counter(outcomes.values())
    return {
        "calls": args.calls,
        "pages": args.pages,
        "workers": args.workers,
        "seconds": round(elapsed, 1),
        "calls_per_s": round(args.calls / elapsed, 1),
        "outcomes": dict(tally.most_common()),
        "ran_once": sum(1 for k in outcomes if ran.get(k, 0) == 1),
        "failed_without_running": sum(1 for k, o in outcomes.items()
                                      if o != "ok" and ran.get(k, 0) == 0),
        "faults": dict(faults),
        "tabs_left_open": left_open,
        "tabs_the_extension_knows": sum(len(e["tabs"]) for e in status["extensions"]),
        "violations": violations[:20],
        "violation_count": len(violations),
    }


def inject(fault: str, cdp: Cdp, server, rng: random.Random) -> None:
    """Makes one fault happen, from outside the extension (DevTools, the server process)."""
    if fault in ("close_tab", "reload_tab"):
        targets = [t for t in cdp.targets() if t["type"] == "page" and "soak.html" in t["url"]]
        if not targets:
            raise LookupError("no soak tab open")
        target = rng.choice(targets)
        if fault == "close_tab":
            with cdp.browser() as browser:
                browser.send("Target.closeTarget", {"targetId": target["id"]})
        else:
            with cdp.session(target) as page:
                page.send("Page.reload")
    elif fault == "reload_extension":
        worker = next(t for t in cdp.targets() if t["type"] == "service_worker"
                      and t["url"].startswith(WORKER_URL_PREFIX))
        with cdp.session(worker) as session:
            session.send("Runtime.evaluate", {"expression": "chrome.runtime.reload()"}, wait=False)
        time.sleep(0.2)
    elif fault == "restart_server":
        server.stop()
        server.start()


if __name__ == "__main__":
    sys.exit(main())
