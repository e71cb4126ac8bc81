"""Fault tests: things that go wrong in the browser or around it while a call runs, in
real headless Chromium started by `any browser` with a DevTools port
(`--chromium-arg=--remote-debugging-port=0`), driven through the DevTools protocol
(tests/cdp.py). Each test asserts the exact error code the caller gets and a bound on
how long it took, and prints what it measured (`pytest -rA -k faults` shows it).

Runs in the pytest process; every test starts its own server and browser (`stack`),
since most of these faults break them.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
import urllib.error


EXTENSION_ID = "knhhpckbjemjphphdhibpcjmgbngnmig"
WORKER_URL = f"chrome-extension://{EXTENSION_ID}/background.js"


class Running:
    """One `POST /v1/call` in a thread: its (status, body) or the exception it raised, and
    the monotonic time it ended."""

    def __init__(self, server, page: str, method: str, params=None, timeout_ms=20_000, **kw):
        self.answer = None
        self.raised: BaseException | None = None
        self.ended: float | None = None
        self.thread = threading.Thread(target=self._run, args=(server, page, method, params,
                                                               timeout_ms, kw), daemon=True)
        self.thread.start()

    def _run(self, server, page, method, params, timeout_ms, kw):
        try:
            self.answer = server.call_raw(page, method, params, timeout_ms=timeout_ms, **kw)
        except BaseException as err:  # noqa: BLE001 - the test inspects it
            self.raised = err
        self.ended = time.monotonic()

    def wait(self, timeout: float = 30.0):
        self.thread.join(timeout)
        assert self.ended is not None, "the call did not end"
        return self


def started(server, browser, method: str, stage: str = "method_called", timeout: float = 15.0):
    """Waits until the server reports a call of `method` at `stage`; returns its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for call in server.status()["calls"]:
            if call["method"] == method and call["stage"] == stage:
                return call["id"]
        time.sleep(0.02)
    raise AssertionError(f"no {method} call reached {stage}: {server.status()['calls']}\n"
                         f"{browser.tail()}")


def gone(server, timeout: float = 5.0) -> float:
    """Waits until no extension is connected; returns the monotonic time."""
    deadline = time.monotonic() + timeout
    while server.extensions() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.extensions() == 0, "the extension is still connected"
    return time.monotonic()


def report(what: str, seconds: float) -> None:
    print(f"\n{what}: {seconds * 1000:.0f} ms")


# ---------------------------------------------------------------- the server dies


def test_server_killed_mid_call_fails_the_caller_then_the_extension_reconnects(stack, pages,
                                                                               built):
    any_bin, _ = built
    server = stack.server()
    server.start()
    browser = stack.browser(server.port)
    browser.start()
    server.wait_extension()
    page = f"{pages}/plain.html?server-killed"
    http_call = Running(server, page, "work", {"n": 1, "ms": 20_000}, timeout_ms=30_000)
    cli = subprocess.Popen(
        [str(any_bin), "call", page, "work", "--params", '{"n": 2, "ms": 20000}',
         "--port", str(server.port), "--no-autostart"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    while len([c for c in server.status()["calls"] if c["stage"] == "method_called"]) < 2:
        assert time.monotonic() < deadline, server.status()
        time.sleep(0.02)

    killed = time.monotonic()
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    http_call.wait()
    out, err = cli.communicate(timeout=10)
    cli_ended = time.monotonic()
    report("HTTP caller saw the connection drop after", http_call.ended - killed)
    report("any call exited after", cli_ended - killed)
    # The HTTP caller: a connection error, at once (no answer, no hang until its timeout).
    assert isinstance(http_call.raised, (ConnectionError, http.client.RemoteDisconnected,
                                         urllib.error.URLError)), http_call.raised
    assert http_call.ended - killed < 1.0
    # The CLI: exit 1 ("any itself failed") with a message that says what happened.
    assert cli.returncode == 1, (cli.returncode, out, err)
    assert out == ""
    assert f"127.0.0.1:{server.port}" in err, err
    assert "closed the connection before answering" in err, err
    assert cli_ended - killed < 2.0

    time.sleep(0.5)
    up = server.start()
    connected = server.wait_extension(timeout=10, poll=0.01)
    report("extension reconnected after the server came back", connected - up)
    assert connected - up <= 1.5
    assert server.call(page, "work", {"n": 3, "ms": 10})["n"] == 3


# ---------------------------------------------------------------- the extension goes away


def test_extension_reloaded_mid_call_fails_at_once_then_comes_back(stack, pages):
    server, browser, cdp = stack.debuggable()
    page = f"{pages}/errors.html?reloaded"
    call = Running(server, page, "never")
    started(server, browser, "never")

    with cdp.session(cdp.find("service_worker", WORKER_URL)) as worker:
        reloaded = time.monotonic()
        # Scheduled, not run inline: the reload kills the worker, so an inline call never
        # answers, and closing the DevTools session before the command ran could drop
        # it. The evaluation's answer proves the reload is on its way.
        assert worker.evaluate("setTimeout(() => chrome.runtime.reload(), 20), true")
    call.wait()
    report("extension reloaded: the call failed after", call.ended - reloaded)
    status, body = call.answer
    assert (status, body["error"]["code"]) == (502, "extension_disconnected"), body
    assert body["error"]["stage"] == "method_called", body
    assert call.ended - reloaded < 1.0

    # It comes back by itself (an `any browser` profile has developer mode on: without
    # it Chromium disables a self-reloaded unpacked extension for good).
    connected = server.wait_extension(timeout=10, poll=0.01)
    report("reloaded extension reconnected after", connected - reloaded)
    assert connected - reloaded < 3.0
    assert server.call(f"{pages}/plain.html?after-reload", "echo", {"x": 1}) == {"x": 1}


def test_extension_disabled_mid_call_fails_at_once(stack, pages):
    server, browser, cdp = stack.debuggable()
    call = Running(server, f"{pages}/errors.html?disabled", "never")
    started(server, browser, "never")

    with cdp.browser() as b:
        target = b.send("Target.createTarget", {"url": "chrome://extensions"})["targetId"]
    extensions_page = next(t for t in cdp.targets() if t["id"] == target)
    with cdp.session(extensions_page) as ui:
        disabled = time.monotonic()
        ui.evaluate(f"chrome.management.setEnabled('{EXTENSION_ID}', false)")
        call.wait()
        report("extension disabled: the call failed after", call.ended - disabled)
        status, body = call.answer
        assert (status, body["error"]["code"]) == (502, "extension_disconnected"), body
        assert call.ended - disabled < 1.0
        assert server.extensions() == 0

        enabled = time.monotonic()
        ui.evaluate(f"chrome.management.setEnabled('{EXTENSION_ID}', true)")
        connected = server.wait_extension(timeout=10, poll=0.01)
    report("re-enabled extension reconnected after", connected - enabled)
    assert connected - enabled < 3.0
    assert server.call(f"{pages}/plain.html?enabled", "echo", [1]) == [1]


# ---------------------------------------------------------------- the tab


def test_tab_closed_mid_call_fails_with_tab_closed(stack, pages):
    server, browser, cdp = stack.debuggable()
    page = f"{pages}/errors.html?closed"
    call = Running(server, page, "never", tab="new")
    started(server, browser, "never")

    tab = cdp.find("page", page)
    with cdp.browser() as b:
        closed = time.monotonic()
        b.send("Target.closeTarget", {"targetId": tab["id"]})
    call.wait()
    report("tab closed: the call failed after", call.ended - closed)
    status, body = call.answer
    assert (status, body["error"]["code"]) == (502, "tab_closed"), body
    assert "closed" in body["error"]["message"], body
    assert call.ended - closed < 1.0


def test_tab_navigated_by_the_user_mid_call_fails_with_tab_closed(stack, pages):
    """test_e2e covers a page that navigates itself; here the navigation comes from
    outside the page, as when the user types another address into the tab."""
    server, browser, cdp = stack.debuggable()
    page = f"{pages}/errors.html?navigated"
    call = Running(server, page, "never", tab="new")
    started(server, browser, "never")

    elsewhere = f"{pages}/plain.html?elsewhere"
    with cdp.session(cdp.find("page", page)) as tab:
        navigated = time.monotonic()
        tab.send("Page.navigate", {"url": elsewhere})
    call.wait()
    report("tab navigated: the call failed after", call.ended - navigated)
    status, body = call.answer
    assert (status, body["error"]["code"]) == (502, "tab_closed"), body
    assert "navigated away" in body["error"]["message"], body
    assert call.ended - navigated < 2.0


# ---------------------------------------------------------------- the method


def test_method_that_outlives_its_timeout_fails_once_and_nothing_late_is_delivered(stack,
                                                                                    pages):
    server = stack.server()
    server.start()
    browser = stack.browser(server.port)
    browser.start()
    server.wait_extension()
    page = f"{pages}/plain.html?outlives"
    begun = time.monotonic()
    status, body = server.call_raw(page, "work", {"n": 1, "ms": 2500}, timeout_ms=1000)
    elapsed = time.monotonic() - begun
    report("a 2.5 s method with a 1 s timeout failed after", elapsed)
    assert (status, body["error"]["code"]) == (504, "timeout"), body
    assert body["error"]["stage"] == "method_called", body
    assert 0.95 <= elapsed < 2.0
    call_id = body["id"]

    # The method finishes in the page 1.5 s later; nothing about it reaches a caller, and
    # the black-box record still says timeout (with any answer the extension sent late
    # counted as dropped).
    time.sleep(2.0)
    record = next(r for r in server.status()["recent"] if r["id"] == call_id)
    assert record["error"]["code"] == "timeout", record
    dropped = record.get("dropped_answers", 0)
    print(f"answers dropped after the timeout: {dropped}")
    if dropped:
        assert "late error from" in server.tail(200) or "late result" in server.tail(200)
    # The tab and the extension are fine: the next call on that page works.
    assert server.call(page, "work", {"n": 2, "ms": 10})["n"] == 2
    assert not server.status()["calls"]


# ---------------------------------------------------------------- the service worker


def test_service_worker_stopped_while_idle_comes_back(stack, pages):
    server, browser, cdp = stack.debuggable()
    blank = cdp.find("page", "about:blank")
    with cdp.session(blank) as tab:
        tab.send("ServiceWorker.enable")

        # Nothing happens in the browser: the 30 s alarm wakes the worker.
        stopped = time.monotonic()
        tab.send("ServiceWorker.stopAllWorkers")
        report("worker stopped: the server saw the extension go after", gone(server) - stopped)
        connected = server.wait_extension(timeout=40, poll=0.05)
        report("stopped worker, idle browser: back after", connected - stopped)
        assert connected - stopped <= 35
        assert server.call(f"{pages}/plain.html?after-alarm", "echo", "a") == "a"

        # The user browses: the navigation event wakes the worker at once.
        tab.send("ServiceWorker.stopAllWorkers")
        gone(server)
        browsed = time.monotonic()
        tab.send("Page.navigate", {"url": f"{pages}/plain.html?browsing"})
        connected = server.wait_extension(timeout=40, poll=0.01)
    report("stopped worker, user navigates: back after", connected - browsed)
    assert connected - browsed < 2.0
    assert server.call(f"{pages}/plain.html?after-wake", "echo", "b") == "b"


# ---------------------------------------------------------------- the browser dies


def test_browser_killed_mid_call_fails_fast(stack, pages):
    server = stack.server()
    server.start()
    browser = stack.browser(server.port)
    browser.start()
    server.wait_extension()
    call = Running(server, f"{pages}/errors.html?killed", "never")
    started(server, browser, "never")

    # The browser process: the one of the profile without a --type= (renderers, GPU and
    # utility processes have one).
    main = [pid for pid in browser.chromium_pids()
            if b"--type=" not in open(f"/proc/{pid}/cmdline", "rb").read()]
    assert len(main) == 1, main
    killed = time.monotonic()
    os.kill(main[0], signal.SIGKILL)
    call.wait()
    report("browser killed: the call failed after", call.ended - killed)
    status, body = call.answer
    assert (status, body["error"]["code"]) == (502, "extension_disconnected"), body
    assert call.ended - killed < 1.0
    assert server.extensions() == 0
    # `any browser` notices and exits, saying Chromium died.
    assert browser.proc.wait(10) != 0
    assert "Chromium exited" in browser.tail(), browser.tail()

