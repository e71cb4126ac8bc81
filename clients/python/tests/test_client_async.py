"""`AsyncClient` against the real `any serve` with the `fake-extension` peer: a hundred
concurrent calls each get their own answer, at the same time rather than one after
another; errors raise the same classes; a cancelled call is cancelled at the server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import pytest
from .client_support import Server

import any_browser

PAGE = "http://127.0.0.1:9/page"


def test_a_hundred_concurrent_calls_each_get_their_answer(server: Server) -> None:
    async def run() -> list[object]:
        async with any_browser.AsyncClient(server.port, autostart=False) as c:
            return await asyncio.gather(
                *(c.call(f"{PAGE}?n={i}", "echo", {"n": i, "text": "é" * i}) for i in range(100))
            )

    started = time.monotonic()
    results = asyncio.run(run())
    elapsed = time.monotonic() - started
    assert results == [{"n": i, "text": "é" * i} for i in range(100)]
    print(f"100 concurrent echo calls: {elapsed:.2f} s")
    assert elapsed < 10, elapsed


def test_a_hundred_sleeping_calls_run_at_the_same_time(server: Server) -> None:
    async def run() -> list[object]:
        async with any_browser.AsyncClient(server.port, autostart=False) as c:
            return await asyncio.gather(
                *(c.call(PAGE, "sleep", {"ms": 500, "i": i}) for i in range(100))
            )

    started = time.monotonic()
    results = asyncio.run(run())
    elapsed = time.monotonic() - started
    assert results == [{"ms": 500, "i": i} for i in range(100)]
    print(f"100 concurrent 500 ms calls: {elapsed:.2f} s")
    # One after another they would take 50 s.
    assert elapsed < 5, elapsed


def test_errors_raise_the_same_classes(server: Server) -> None:
    async def run() -> list[object]:
        async with any_browser.AsyncClient(server.port, autostart=False) as c:
            return await asyncio.gather(
                c.call(PAGE, "throw", {"name": "RangeError", "message": "too far"}),
                c.call(PAGE, "never", timeout=0.3),
                c.call(PAGE, "noSuchMethod"),
                c.call(PAGE, "echo", "fine"),
                return_exceptions=True,
            )

    page_error, timeout, not_found, fine = asyncio.run(run())
    assert isinstance(page_error, any_browser.PageError)
    assert (page_error.name, page_error.message) == ("RangeError", "too far")
    assert isinstance(timeout, any_browser.Timeout) and timeout.status == 504
    assert isinstance(not_found, any_browser.MethodNotFound)
    assert fine == "fine"


def test_a_cancelled_call_is_cancelled_at_the_server(server: Server) -> None:
    client = any_browser.AsyncClient(server.port, autostart=False)

    async def run() -> None:
        task = asyncio.ensure_future(client.call(PAGE, "never", {"cancel": "me"}, timeout=30))
        await wait_for_calls(client, lambda n: n >= 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_for_calls(client, lambda n: n == 0)

    asyncio.run(run())


async def wait_for_calls(
    client: any_browser.AsyncClient, ok: Callable[[int], bool], within: float = 5
) -> None:
    """Waits until the number of the server's unanswered `never` calls satisfies `ok`."""
    deadline = time.monotonic() + within
    while True:
        calls = [c for c in (await client.status()).calls if c.method == "never"]
        if ok(len(calls)):
            return
        assert time.monotonic() < deadline, f"the server's calls: {calls}"
        await asyncio.sleep(0.05)
