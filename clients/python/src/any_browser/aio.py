"""The asyncio client: `AsyncClient`.

Runs in the caller's event loop. Each call is one `POST /v1/call` over asyncio streams,
on a kept-alive connection from the client's pool (a new one when all are busy; up to
`_http.POOL_SIZE` idle ones are kept) — no threads, so a hundred calls at once cost a
hundred sockets and nothing more. Cancelling the awaiting task closes its connection
(never returned to the pool), and the server then cancels the call. Autostart (a blocking subprocess start and health wait) runs once, in
a worker thread, however many calls find the server missing at the same moment.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from . import _http, _server, _token
from ._endpoint import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TIMEOUT_S, QUICK_TIMEOUT_S, Endpoint
from ._scripts import AsyncScripts
from .api import Status


class AsyncClient(Endpoint):
    """An asyncio client of the any server on `host:port`; an async context manager.

    ``async with AsyncClient() as c: await asyncio.gather(*(c.call(u, "pageInfo") for u in urls))``

    Takes the same arguments as `Client` and has the same `call`, `run`, `status` and
    `scripts`, awaited. Keeps connections alive between calls (in the event loop that
    opened them); leaving the ``async with`` block, or `aclose()`, closes them.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        host: str = DEFAULT_HOST,
        *,
        autostart: bool = True,
        binary: _server.BinaryPath | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(port, host, autostart=autostart, binary=binary, timeout=timeout)
        self._starting: asyncio.Lock | None = None
        self._pool = _http.AsyncPool(host, port)
        self.scripts = AsyncScripts(self)
        """The userscripts the server hosts: ``await c.scripts.add("my.user.js")``,
        `.list()`, `.remove(name)`, `.enable(name)`, `.disable(name)`."""

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the kept-alive connections (the client stays usable)."""
        self._pool.close()

    async def call(
        self,
        page: str,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        browser: str | None = None,
        new_tab: bool = False,
    ) -> Any:
        """Runs `globalThis.__any__[method](params)` on `page`; see `Client.call`."""
        body, http_timeout = self._call_request(page, method, params, timeout, browser, new_tab)
        return self._call_answer(*await self._request("POST", "/v1/call", body, http_timeout))

    async def run(
        self,
        page: str,
        script: str,
        *,
        timeout: float | None = None,
        browser: str | None = None,
        new_tab: bool = False,
    ) -> Any:
        """Runs `script` (the body of an async function) in the page's main world at
        `page`; see `Client.run` (needs ``any serve --allow-scripts``)."""
        body, http_timeout = self._run_request(page, script, timeout, browser, new_tab)
        return self._call_answer(*await self._request("POST", "/v1/run", body, http_timeout))

    async def status(self) -> Status:
        """The server's version, its connected extensions and its unanswered calls."""
        answer = await self._request("GET", "/v1/status", None, QUICK_TIMEOUT_S)
        return self._status_answer(*answer)

    async def _request(
        self, method: str, path: str, body: bytes | None, timeout: float
    ) -> tuple[int, bytes]:
        try:
            return await self._pool.request(method, path, body, timeout, _token.read())
        except _http.Unreachable as e:
            if not self.autostart:
                raise self._unreachable(e) from e
        # Created here, not in __init__, so that it belongs to the running loop (3.9).
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            await asyncio.to_thread(_server.start, self.host, self.port, self.binary)
        try:
            return await self._pool.request(method, path, body, timeout, _token.read())
        except _http.Unreachable as e:
            raise self._unreachable(e) from e
