"""End-to-end tests: the real `any` server, the built extension in real headless Chromium
started by `any browser`, and local pages (tests/pages) over loopback HTTP.

Runs in the pytest process; every call goes through the client API (`POST /v1/call`)
exactly as a user's program would. Most tests share one server and browser (`shared`);
the ones about starting, stopping and reconnecting build their own (`stack`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from any_e2e import LANE_HELPER, ROOT, free_port

import pytest


# ---------------------------------------------------------------- pages and methods


def test_plain_page(shared, pages):
    page = f"{pages}/plain.html"
    info = shared.call(page, "pageInfo", {"delay": 100})
    assert info == {"title": "any plain page", "url": page, "readyState": "complete"}


def test_params_and_result_round_trip(shared, pages):
    params = {"text": "héllo \u2603 \"quoted\"", "n": 1.5, "list": [1, None, True],
              "nested": {"empty": {}, "deep": [[[]]]}}
    assert shared.call(f"{pages}/plain.html", "echo", params) == params


def test_strict_csp_page(shared, pages):
    result = shared.call(f"{pages}/csp.html", "cspInfo", {"word": "nonce"})
    # The method ran, and the page's CSP really was in force around it.
    assert result == {"title": "any strict CSP page", "word": "nonce",
                      "evalBlocked": True, "trustedTypesEnforced": True}


def test_strict_csp_page_error_keeps_name_and_message(shared, pages):
    status, error = shared.fail(f"{pages}/csp.html", "cspThrow")
    assert (status, error["code"], error["name"]) == (422, "page_error", "RangeError")
    assert error["message"] == "thrown under a strict CSP"


def test_method_defined_at_document_start_runs_once_the_page_is_loaded(shared, pages):
    result = shared.call(f"{pages}/document-start.html", "early")
    assert result == {"definedWhile": "loading", "hadBody": False,
                      "calledWhile": "complete", "heading": "any document-start page"}


def test_method_defined_seconds_after_load(shared, pages):
    started = time.monotonic()
    result = shared.call(f"{pages}/late.html", "late", timeout_ms=20_000, tab="new")
    elapsed = time.monotonic() - started
    assert result["definedAfterLoadMs"] >= 2400
    assert result["calledAfterLoadMs"] >= result["definedAfterLoadMs"]
    assert elapsed < 10, f"the late method was found only after {elapsed:.1f}s"


# ---------------------------------------------------------------- failures


def test_throwing_method(shared, pages):
    status, error = shared.fail(f"{pages}/errors.html", "throwsTyped")
    assert (status, error["code"], error["name"]) == (422, "page_error", "TypeError")
    assert error["message"] == "the answer is not 42"
    assert "errors.js" in error.get("stack", ""), error


def test_rejecting_method(shared, pages):
    status, error = shared.fail(f"{pages}/errors.html", "rejects")
    assert (status, error["code"], error["name"]) == (422, "page_error", "QuotaError")
    assert error["message"] == "out of quota after 50 ms"
    assert "errors.js" in error.get("stack", ""), error


def test_never_resolving_method_times_out_naming_the_stage(shared, pages):
    started = time.monotonic()
    status, error = shared.fail(f"{pages}/errors.html", "never", timeout_ms=2000)
    elapsed = time.monotonic() - started
    assert (status, error["code"]) == (504, "timeout")
    assert error.get("stage") == "method_called", error
    assert "method_called" in error["message"], error
    assert 1.9 <= elapsed < 6, f"answered after {elapsed:.1f}s for a 2 s timeout"


@pytest.mark.parametrize("method, path", [
    ("returnsFunction", "$.items[3]"),
    ("returnsCycle", "$.child.parent"),
    ("returnsNode", "$.found.node"),
    ("returnsBigInt", "$.big[1]"),
    ("returnsMap", "$.lookup"),
    ("returnsSymbol", "$.tag"),
])
def test_non_serializable_result_names_the_path(shared, pages, method, path):
    status, error = shared.fail(f"{pages}/errors.html", method)
    assert (status, error["code"]) == (422, "not_serializable"), error
    assert path in error["message"], error


def test_missing_method(shared, pages):
    status, error = shared.fail(f"{pages}/plain.html", "noSuchMethod", timeout_ms=25_000)
    assert (status, error["code"]) == (404, "method_not_found"), error
    assert "noSuchMethod" in error["message"], error


def test_navigation_to_a_port_where_nothing_listens(shared):
    page = f"http://127.0.0.1:{free_port()}/nothing.html"
    status, error = shared.fail(page, "pageInfo", timeout_ms=15_000)
    assert (status, error["code"]) == (502, "navigation_failed"), error
    assert page in error["message"] or "127.0.0.1" in error["message"], error


def test_page_navigating_away_during_the_method_fails_promptly(shared, pages):
    started = time.monotonic()
    status, error = shared.fail(f"{pages}/errors.html", "navigatesAway", timeout_ms=20_000,
                                tab="new")
    elapsed = time.monotonic() - started
    assert (status, error["code"]) == (502, "tab_closed"), error
    assert elapsed < 10, f"answered after {elapsed:.1f}s"


# ---------------------------------------------------------------- tabs and concurrency


def test_tab_reuse_and_new_tab(shared, pages):
    page = f"{pages}/plain.html?tabs"
    first = shared.call(page, "tabInfo")
    again = shared.call(page, "tabInfo")
    assert again["tabId"] == first["tabId"], "an idle tab at the same page is reused"
    fresh = shared.call(page, "tabInfo", tab="new")
    assert fresh["tabId"] != first["tabId"], 'tab: "new" opens another tab'
    assert fresh["url"] == page


def test_twenty_parallel_calls_across_five_pages(shared, pages):
    calls = [(n, f"{pages}/plain.html?parallel={n % 5}") for n in range(20)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(
            lambda c: shared.call(c[1], "work", {"n": c[0], "ms": 300}, timeout_ms=30_000),
            calls))
    elapsed = time.monotonic() - started
    assert [(r["n"], r["url"]) for r in results] == calls
    # Each call slept its 300 ms at full speed: background tabs are not throttled.
    assert all(r["sleptMs"] < 900 for r in results), [r["sleptMs"] for r in results]
    print(f"\n20 parallel calls on 5 pages: {elapsed:.2f}s")
    assert elapsed < 20


# ---------------------------------------------------------------- the postMessage lane


@pytest.mark.skipif(not LANE_HELPER.exists(), reason="clients/userscript/any-lane.js not there yet")
def test_method_served_only_through_the_post_message_lane(shared, pages):
    result = shared.call(f"{pages}/lane.html", "laneEcho", {"x": [1, 2]})
    assert result == {"echo": {"x": [1, 2]}, "servedBy": "lane", "onMainWorldApi": False}


@pytest.mark.skipif(not LANE_HELPER.exists(), reason="clients/userscript/any-lane.js not there yet")
def test_post_message_lane_errors(shared, pages):
    status, error = shared.fail(f"{pages}/lane.html", "laneThrows")
    assert (status, error["code"], error["name"]) == (422, "page_error", "SyntaxError")
    assert error["message"] == "thrown on the lane"
    status, error = shared.fail(f"{pages}/lane.html", "laneReturnsFunction")
    assert (status, error["code"]) == (422, "not_serializable")
    assert "$.list[0]" in error["message"], error


# ---------------------------------------------------------------- starting and reconnecting


def test_extension_connects_within_a_second_after_33s_without_a_server(stack, pages):
    """Past the 30 s service-worker idle limit with no server, the extension must still
    connect about a second after a server starts. Two browsers wait at once: one started
    before any server existed, one whose server went away after it had connected."""
    early_port = free_port()
    early = stack.browser(early_port, label="early")
    early.start()

    gone = stack.server()
    gone.start()
    orphaned = stack.browser(gone.port, label="orphaned")
    orphaned.start()
    gone.wait_extension()
    gone.stop()

    time.sleep(33)
    assert early.proc.poll() is None, early.tail()
    assert orphaned.proc.poll() is None, orphaned.tail()

    for name, port in [("started before the server", early_port),
                       ("whose server went away 33 s ago", gone.port)]:
        server = stack.server(port)
        up = server.start()
        connected = server.wait_extension(timeout=10, poll=0.01)
        delay = connected - up
        print(f"\nbrowser {name}: connected {delay:.2f}s after the server started")
        assert delay <= 1.5, f"browser {name}: connected {delay:.2f}s after the server started"
        page = f"{pages}/plain.html?after-33s-{port}"
        assert server.call(page, "pageInfo")["title"] == "any plain page"


def test_server_restarted_under_a_connected_browser(stack, pages):
    server = stack.server()
    server.start()
    browser = stack.browser(server.port, label="restarted")
    browser.start()
    server.wait_extension()
    page = f"{pages}/plain.html?restart"
    before = server.call(page, "tabInfo", browser="restarted")

    server.stop()
    time.sleep(2)
    up = server.start()
    connected = server.wait_extension(timeout=10, poll=0.01)
    print(f"\nextension reconnected {connected - up:.2f}s after the server restarted")
    assert connected - up <= 1.5
    after = server.call(page, "tabInfo", browser="restarted")
    assert after["url"] == before["url"] == page


def test_a_profile_reused_with_another_port_connects_there(stack, tmp_path, pages):
    """The default profile is persistent: the next `any browser --port Q` on it must talk
    to port Q, not to the port of the last run."""
    profile = tmp_path / "kept-profile"
    for run in range(2):
        server = stack.server()
        server.start()
        browser = stack.browser(server.port, profile=profile)
        browser.start()
        server.wait_extension()
        page = f"{pages}/plain.html?profile-run-{run}"
        assert server.call(page, "pageInfo")["url"] == page
        browser.stop()
        server.stop()


def test_stopping_any_browser_leaves_no_chromium(stack):
    port = free_port()
    browser = stack.browser(port)
    browser.start()
    deadline = time.monotonic() + 15
    while not browser.chromium_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert browser.chromium_pids(), f"Chromium never started:\n{browser.tail()}"
    time.sleep(1)
    browser.proc.send_signal(signal.SIGINT)
    browser.proc.wait(15)
    deadline = time.monotonic() + 5
    while browser.chromium_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert browser.chromium_pids() == [], "Chromium outlived any browser"
    assert "started" in browser.tail(), browser.tail()


# ---------------------------------------------------------------- what a user runs


def test_any_browser_explains_a_missing_extension_or_chromium(built, tmp_path):
    any_bin, extension = built
    run = lambda *args: subprocess.run(  # noqa: E731
        [str(any_bin), "browser", "--headless", "--port", str(free_port()),
         "--profile", str(tmp_path / "profile"), *args],
        capture_output=True, text=True, timeout=30)
    missing = run("--extension", str(tmp_path / "nowhere"))
    assert missing.returncode != 0
    assert "./build.sh build" in missing.stderr, missing.stderr
    no_chromium = run("--extension", str(extension), "--chromium", str(tmp_path / "no-chromium"))
    assert no_chromium.returncode != 0
    assert "no-chromium" in no_chromium.stderr, no_chromium.stderr


def test_demo(built):
    """`./build.sh demo` runs this script; it must print the page's info and clean up."""
    any_bin, extension = built
    demo = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--any", str(any_bin),
         "--extension", str(extension)],
        capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert '"title": "any demo page"' in demo.stdout, demo.stdout
    assert "demo: done" in demo.stdout
