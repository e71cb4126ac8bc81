"""Real pages (issue: each call runs its method exactly once, in the tab the caller
means): tests/pages/app.html is a todo app with late state and in-app routes that keeps
its own record of every method that ran. Every check is made twice: by the answers and
by the page's record.

Runs in the pytest process against the shared server and browser (real headless
Chromium with the built extension), or against a stack of its own where the test needs
a browser flag, a DevTools port or a browser started like a person's; each test uses
page URLs of its own, so its tabs are its own.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from cdp import Cdp

EXTENSION_ID = "knhhpckbjemjphphdhibpcjmgbngnmig"


def ran(shared, page: str) -> list[tuple]:
    """(method, n or text) of every entry of the page's record, and its documentId."""
    seen = shared.call(page, "record")
    return seen["documentId"], [(e["method"], e.get("n", e.get("text"))) for e in seen["record"]]


def test_a_sequence_of_different_methods_runs_each_exactly_once(shared, pages):
    page = f"{pages}/app.html?sequence"
    assert shared.call(page, "ping") == "pong"
    assert shared.call(page, "addTodo", {"text": "milk"})["length"] == 1
    counts = [shared.call(page, "count")["n"] for _ in range(5)]
    assert shared.call(page, "addTodo", {"text": "bread"}) == {"length": 2, "rendered": 2}
    assert shared.call(page, "ping") == "pong"
    counts += [shared.call(page, "count")["n"] for _ in range(20)]
    # The calls went by injection first, then over the document's channel: every path.
    assert counts == list(range(1, 26)), counts
    _, record = ran(shared, page)
    assert record == ([("ping", None), ("addTodo", "milk")]
                      + [("count", n) for n in range(1, 6)]
                      + [("addTodo", "bread"), ("ping", None)]
                      + [("count", n) for n in range(6, 26)]), record


def test_concurrent_calls_to_one_page_share_its_tab(shared, pages):
    page = f"{pages}/app.html?together"
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: shared.call(page, "count", {"ms": 100}), range(16)))
    assert sorted(a["n"] for a in answers) == list(range(1, 17)), answers
    assert len({a["documentId"] for a in answers}) == 1, "all in one tab"
    document, record = ran(shared, page)
    assert document == answers[0]["documentId"]
    assert sorted(n for _, n in record) == list(range(1, 17)), record
    # Once loaded, concurrent calls interleave in the one tab, and keep doing so.
    with ThreadPoolExecutor(max_workers=8) as pool:
        again = list(pool.map(lambda _: shared.call(page, "count", {"ms": 50}), range(8)))
    assert sorted(a["n"] for a in again) == list(range(17, 25))
    assert {a["documentId"] for a in again} == {document}


def test_tab_new_opens_another_tab(shared, pages):
    page = f"{pages}/app.html?another"
    first = shared.call(page, "count")
    fresh = shared.call(page, "count", tab="new")
    assert fresh == {"n": 1, "documentId": fresh["documentId"]}
    assert fresh["documentId"] != first["documentId"]


def test_reuse_follows_push_state_and_fragment_routes(shared, pages):
    start = f"{pages}/app.html?route=a"
    moved = f"{pages}/app.html?route=b"
    first = shared.call(start, "count")
    assert shared.call(start, "route", {"path": "/app.html?route=b"}) == moved
    # The tab is at /b now: a call for /b runs there, a call for /a opens the page anew.
    at_b = shared.call(moved, "count")
    assert at_b == {"n": 2, "documentId": first["documentId"]}
    at_a = shared.call(start, "count")
    assert at_a["n"] == 1 and at_a["documentId"] != first["documentId"]
    # replaceState and fragments count the same way.
    replaced = f"{pages}/app.html?route=c"
    assert shared.call(moved, "route", {"path": "/app.html?route=c", "replace": True}) == replaced
    assert shared.call(replaced, "count") == {"n": 3, "documentId": first["documentId"]}
    assert shared.call(replaced, "fragment", {"hash": "#done"}) == replaced + "#done"
    assert shared.call(replaced + "#done", "count") == {"n": 4, "documentId": first["documentId"]}
    document, record = ran(shared, replaced + "#done")
    assert document == first["documentId"]
    assert [m for m, _ in record] == ["count", "route", "count", "route", "count", "fragment", "count"]


# ---------------------------------------------------------------- late methods and typos


def test_a_typo_fails_within_two_seconds_naming_the_methods(shared, pages):
    page = f"{pages}/app.html?typo"
    assert shared.call(page, "ping") == "pong"
    started = time.monotonic()
    status, error = shared.fail(page, "addtodo", {"text": "x"}, timeout_ms=60_000)
    elapsed = time.monotonic() - started
    assert (status, error["code"]) == (404, "method_not_found"), error
    assert "Did you mean addTodo?" in error["message"], error
    for name in ("count", "ping", "addTodo", "route", "record"):
        assert name in error["message"], error
    assert elapsed < 4, f"a typo took {elapsed:.1f}s to fail"
    # Nothing ran for it, and the tab kept its document.
    document, record = ran(shared, page)
    assert record == [("ping", None)], record
    assert shared.call(page, "count")["documentId"] == document


def test_only_own_methods_of_any_are_methods(shared, pages):
    page = f"{pages}/app.html?own"
    for name in ("constructor", "toString", "valueOf", "hasOwnProperty"):
        started = time.monotonic()
        status, error = shared.fail(page, name, timeout_ms=30_000)
        assert (status, error["code"]) == (404, "method_not_found"), (name, error)
        assert time.monotonic() - started < 4, name


def test_a_method_defined_12_s_after_load_is_waited_for_as_a_stage(shared, pages):
    page = f"{pages}/late.html?ms=12000"
    answer = {}
    thread = threading.Thread(target=lambda: answer.update(
        result=shared.call(page, "late", timeout_ms=30_000, tab="new")))
    thread.start()
    stages = set()
    while thread.is_alive():
        stages |= {c["stage"] for c in shared.status()["calls"] if c["page"] == page}
        time.sleep(0.1)
    thread.join()
    assert "waiting_for_methods" in stages, stages
    assert answer["result"]["definedAfterLoadMs"] >= 12_000, answer


# ---------------------------------------------------------------- tabs any owns


def page_targets(cdp: Cdp, fragment: str) -> list[dict]:
    return [t for t in cdp.targets() if t["type"] == "page" and fragment in t["url"]]


def until(check, timeout: float = 10.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout}s")
        time.sleep(0.05)


def windows(cdp: Cdp) -> set[int]:
    """The windows that hold a page (Chromium closes a window with its last tab)."""
    with cdp.browser() as browser:
        return {browser.send("Browser.getWindowForTarget", {"targetId": t["id"]})["windowId"]
                for t in cdp.targets() if t["type"] == "page"}


def test_idle_tabs_beyond_the_limit_are_closed_and_their_windows_with_them(stack, pages):
    server, _, cdp = stack.debuggable(browser_args=("--max-tabs", "3"))
    before = windows(cdp)
    # Six pages at once: each runs in a window of its own.
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda n: server.call(f"{pages}/app.html?limit={n}", "count", {"ms": 500}),
                      range(6)))
    left = until(lambda: len(page_targets(cdp, "app.html?limit=")) == 3 and page_targets(
        cdp, "app.html?limit="), what="three tabs left")
    assert len(windows(cdp)) <= len(before) + 3, (before, windows(cdp))
    # The least recently used go first.
    server.call(f"{pages}/app.html?limit={left[0]['url'][-1]}", "count")
    for n in range(6, 8):
        server.call(f"{pages}/app.html?limit={n}", "count")
    urls = until(lambda: (lambda t: len(t) == 3 and sorted(x["url"][-1] for x in t))(
        page_targets(cdp, "app.html?limit=")), what="three tabs left again")
    assert urls == sorted([left[0]["url"][-1], "6", "7"]), urls
    # `tab: "new"` tabs count too.
    for _ in range(4):
        server.call(f"{pages}/app.html?fresh", "count", tab="new")
    until(lambda: len(page_targets(cdp, "app.html?")) == 3, what="three tabs in all")
    # The server's status lists them, as the extension reports them.
    reported = until(lambda: (lambda e: len(e["tabs"]) == 3 and {t["state"] for t in e["tabs"]}
                              == {"loaded"} and e)(server.status()["extensions"][0]),
                     what="the status to list three loaded tabs")
    assert reported["max_tabs"] == 3
    assert {t["url"] for t in reported["tabs"]} == {t["url"] for t in page_targets(cdp, "app.html?")}


def test_a_tab_whose_method_never_returns_is_closed_not_reused(stack, pages):
    server, _, cdp = stack.debuggable()
    page = f"{pages}/hang.html"
    first = server.call(page, "count")
    status, error = server.fail(page, "spin", timeout_ms=2_000)
    assert (status, error["code"]) == (504, "timeout"), error
    answers = [server.call(page, "count", timeout_ms=10_000) for _ in range(5)]
    assert [a["n"] for a in answers] == [1, 2, 3, 4, 5], answers
    assert {a["documentId"] for a in answers} != {first["documentId"]}
    assert len({a["documentId"] for a in answers}) == 1
    until(lambda: len(page_targets(cdp, "hang.html")) == 1, what="the hung tab closed")


# ---------------------------------------------------------------- a person's browser


def test_four_new_pages_at_once_in_a_browser_started_like_a_persons(stack, pages):
    server = stack.server()
    server.start()
    stack.user_browser(server.port).start()
    server.wait_extension()
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(
            lambda n: server.call(f"{pages}/app.html?person={n}", "timer", {"ms": 100}),
            range(4)))
    assert all(not a["hidden"] for a in answers), answers
    assert all(a["tookMs"] < 300 for a in answers), [a["tookMs"] for a in answers]
    # And a sequence of different methods runs each once there too.
    page = f"{pages}/app.html?person=0"
    counts = [server.call(page, "count")["n"] for _ in range(3)]
    assert server.call(page, "ping") == "pong"
    counts += [server.call(page, "count")["n"] for _ in range(3)]
    assert counts == [1, 2, 3, 4, 5, 6], counts


# ---------------------------------------------------------------- documents without methods


def failed_within(shared, seconds: float, page: str, method: str = "pageInfo", **kw):
    """(status, error) of a call that must fail within `seconds`."""
    started = time.monotonic()
    status, error = shared.fail(page, method, timeout_ms=30_000, tab="new", **kw)
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"{page} took {elapsed:.1f}s to fail: {error}"
    return status, error


def test_a_sandboxed_document_says_no_script_can_run_in_it(shared, pages):
    status, error = failed_within(shared, 5, f"{pages}/sandboxed.html")
    assert (status, error["code"]) == (422, "not_scriptable"), error
    assert "sandboxed by its Content-Security-Policy" in error["message"], error


def test_an_image_and_a_pdf_say_what_they_are(shared, pages):
    for path, kind in (("image.png", "image/png"), ("document.pdf", "application/pdf")):
        status, error = failed_within(shared, 5, f"{pages}/{path}")
        assert (status, error["code"]) == (404, "method_not_found"), error
        assert f"it is not a web page: it is {kind}" in error["message"], error


def test_an_http_error_page_runs_its_methods_and_names_its_status(shared, pages):
    page = f"{pages}/missing.html"
    assert shared.call(page, "pageInfo")["title"] == "any plain page"
    status, error = failed_within(shared, 5, page, "noSuchMethod")
    assert (status, error["code"]) == (404, "method_not_found"), error
    assert "(the page answered HTTP 404)" in error["message"], error


def test_a_file_url_without_file_access_says_how_to_allow_it(stack, tmp_path):
    file = tmp_path / "local.html"
    file.write_text("<!doctype html><title>a local file</title>")
    server = stack.server()
    server.start()
    browser = stack.user_browser(server.port)
    # "Allow access to file URLs" off, as after Load unpacked in a person's Chrome.
    (browser.profile / "Default").mkdir(parents=True)
    (browser.profile / "Default" / "Preferences").write_text(json.dumps({"extensions": {
        "settings": {EXTENSION_ID: {"newAllowFileAccess": False}}}}))
    browser.start()
    server.wait_extension()
    status, error = failed_within(server, 5, file.as_uri())
    assert (status, error["code"]) == (502, "navigation_failed"), error
    assert "Allow access to file URLs" in error["message"], error


def test_a_page_that_is_a_download_fails_naming_it_and_leaves_no_file(stack, pages, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = stack.server()
    server.start()
    stack.browser(server.port, env={"HOME": str(home)}).start()
    server.wait_extension()
    started = time.monotonic()
    status, error = server.fail(f"{pages}/report.csv", "pageInfo", timeout_ms=15_000)
    assert time.monotonic() - started < 5
    assert (status, error["code"]) == (502, "navigation_failed"), error
    assert "is a download (text/csv)" in error["message"], error
    time.sleep(1)
    left = [p.name for p in home.rglob("*") if "report" in p.name]
    assert left == [], left
    # The browser goes on serving calls.
    assert server.call(f"{pages}/plain.html", "pageInfo")["title"] == "any plain page"


# ---------------------------------------------------------------- dialogs


def test_dialogs_on_load_and_in_a_method_are_dismissed_at_once(shared, pages):
    started = time.monotonic()
    on_load = shared.call(f"{pages}/dialog.html?onload=alert", "answers", timeout_ms=10_000)
    asked = [shared.call(f"{pages}/dialog.html?onload=prompt", "ask", {"kind": kind},
                         timeout_ms=10_000) for kind in ("alert", "confirm", "prompt")]
    elapsed = time.monotonic() - started
    assert on_load == [{"kind": "alert", "returned": None}], on_load
    assert [a["returned"] for a in asked] == [None, False, None], asked
    assert elapsed < 5, f"the dialogs held the calls for {elapsed:.1f}s"


def test_a_dialog_in_a_window_that_has_the_focus_is_dismissed_within_seconds(stack, pages):
    # The person clicked into an automation window (or closed theirs, and the focus
    # landed there): Chrome shows that page's dialogs instead of dismissing them.
    server, _, cdp = stack.debuggable()
    page = f"{pages}/dialog.html?focused"
    assert server.call(page, "answers") == []
    worker = cdp.find("service_worker", "chrome-extension://")
    with cdp.session(worker) as session:
        focused = session.evaluate(
            "chrome.windows.getAll({populate: true}).then((ws) => {"
            " const w = ws.find((w) => w.tabs.some((t) => (t.url || '').includes('focused')));"
            " return chrome.windows.update(w.id, {focused: true}).then((w) => w.focused); })")
    assert focused is True
    started = time.monotonic()
    answer = server.call(page, "ask", {"kind": "confirm"}, timeout_ms=15_000)
    elapsed = time.monotonic() - started
    assert answer == {"kind": "confirm", "returned": False}, answer
    assert elapsed < 4, f"the dialog held the call for {elapsed:.1f}s"
    assert server.call(page, "answers") == [{"kind": "confirm", "returned": False}]
