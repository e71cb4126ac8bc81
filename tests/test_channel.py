"""The persistent channel into a ready page (crates/ext-core/src/channel.rs), in real
headless Chromium with the built extension: the first calls in a document inject, later
ones go over the document's runtime.Port (also under a strict CSP), big results come
back by one injection, and a channel that breaks under a call or before one ends in one
clear outcome — never a hang.

Runs in the pytest process against the shared server and browser; tests/pages/channel.js
reports which way each call came in.
"""

from __future__ import annotations

import time


def until_channel(shared, page: str, method: str = "via", limit: int = 10) -> list[dict]:
    """Calls `method` until a call comes in over the channel; all the answers."""
    answers = []
    for n in range(limit):
        answers.append(shared.call(page, method, {"n": n}))
        if answers[-1]["via"] == "any.call":
            return answers
    raise AssertionError(f"no call came over the channel in {limit} calls: {answers}")


def test_later_calls_in_a_document_go_over_its_channel(shared, pages):
    page = f"{pages}/channel.html?later"
    answers = until_channel(shared, page)
    # The first call injects (probe + invoke), the second injects and connects.
    assert [a["via"] for a in answers[:2]] == ["injection", "injection"], answers
    assert len(answers) <= 4, f"the channel took {len(answers)} calls to open: {answers}"
    more = [shared.call(page, "via", {"n": n}) for n in range(100, 130)]
    assert [a["n"] for a in more] == list(range(100, 130))
    assert {a["via"] for a in more} == {"any.call"}, more
    assert {a["documentId"] for a in answers + more} == {answers[0]["documentId"]}


def test_channel_under_a_strict_csp(shared, pages):
    page = f"{pages}/csp.html?channel"
    until_channel(shared, page, "cspVia")
    assert shared.call(page, "cspVia", {"n": 7}) == {"n": 7, "via": "any.call"}
    result = shared.call(page, "cspInfo", {"word": "over the channel"})
    assert result["evalBlocked"] and result["trustedTypesEnforced"], result
    status, error = shared.fail(page, "cspThrow")
    assert (status, error["code"], error["name"]) == (422, "page_error", "RangeError")


def test_big_result_in_a_channel_document(shared, pages):
    page = f"{pages}/channel.html?big"
    until_channel(shared, page)
    # A method's first call in a document probes for it (by injection), then goes over
    # the channel too.
    assert shared.call(page, "quotes", {"quotes": 1})["via"] == "any.call"
    # ~6 MiB of JSON: over the channel's stash limit (1 MiB), taken by one injection.
    result = shared.call(page, "quotes", {"quotes": 3 * 1024 * 1024})
    assert result["via"] == "any.call"
    assert len(result["text"]) == 3 * 1024 * 1024 and set(result["text"]) == {'"'}
    # Small results keep coming over the channel afterwards.
    assert shared.call(page, "via", {"n": 1})["via"] == "any.call"


def test_page_that_clears_its_listeners_falls_back_to_injection(shared, pages):
    page = f"{pages}/channel.html?reopen"
    answers = until_channel(shared, page)
    assert shared.call(page, "reopenSoon") is True
    time.sleep(0.3)
    started = time.monotonic()
    after = [shared.call(page, "via", {"n": n}) for n in range(5)]
    elapsed = time.monotonic() - started
    assert [a["n"] for a in after] == list(range(5))
    assert {a["via"] for a in after} == {"injection"}, after
    assert {a["documentId"] for a in after} == {answers[0]["documentId"]}, "same JS realm"
    assert elapsed < 5, f"5 calls after the channel broke took {elapsed:.1f}s"


def test_navigating_away_under_a_channel_call_fails_promptly(shared, pages):
    page = f"{pages}/channel.html?leave"
    until_channel(shared, page)
    started = time.monotonic()
    status, error = shared.fail(page, "leaveSoon", timeout_ms=20_000)
    elapsed = time.monotonic() - started
    assert (status, error["code"]) == (502, "tab_closed"), error
    assert elapsed < 5, f"answered after {elapsed:.1f}s"
    # The page is opened again, and its new document gets a channel of its own.
    answers = until_channel(shared, page)
    assert answers[0]["via"] == "injection"


def test_a_page_that_reopens_its_document_during_a_channel_call_still_answers(shared, pages):
    page = f"{pages}/channel.html?during"
    answers = until_channel(shared, page)
    # reopenDuring is called over the channel once a probe has found it.
    shared.call(page, "via", {"n": 0})
    started = time.monotonic()
    result = shared.call(page, "reopenDuring", {"title": "reopened 1"}, timeout_ms=10_000)
    elapsed = time.monotonic() - started
    assert result["title"] == "reopened 1", result
    assert result["documentId"] == answers[0]["documentId"], "same JS realm"
    assert elapsed < 3, f"answered after {elapsed:.1f}s"
    # The MAIN world's end of the channel is gone now: later calls are injected, and
    # answer.
    result = shared.call(page, "reopenDuring", {"title": "reopened 2"}, timeout_ms=10_000)
    assert (result["title"], result["via"]) == ("reopened 2", "injection"), result
    after = [shared.call(page, "via", {"n": n}) for n in range(3)]
    assert [a["n"] for a in after] == [0, 1, 2]
    assert {a["documentId"] for a in after} == {answers[0]["documentId"]}


def test_each_call_runs_once_on_every_way_into_the_page(shared, pages):
    page = f"{pages}/channel.html?once"
    seen = []
    # Injection first, then the channel, alternating with another method.
    for n in range(6):
        seen.append(shared.call(page, "count"))
        shared.call(page, "via", {"n": n})
    # The page clears its listeners: the calls fall back to injection.
    assert shared.call(page, "reopenSoon") is True
    time.sleep(0.3)
    for n in range(4):
        seen.append(shared.call(page, "count"))
        shared.call(page, "via", {"n": n})
    assert [s["n"] for s in seen] == list(range(1, 11)), seen
    assert {s["via"] for s in seen} == {"injection", "any.call"}, seen


def test_each_call_runs_once_through_the_post_message_lane(shared, pages):
    page = f"{pages}/lane.html?once"
    counts = []
    for _ in range(5):
        counts.append(shared.call(page, "laneCount"))
        shared.call(page, "laneEcho", {"x": 1})
    assert counts == [1, 2, 3, 4, 5], counts
