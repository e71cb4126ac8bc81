"""`Client.scripts` and `AsyncClient.scripts`: the userscripts the any server hosts
(`/v1/scripts`).

Runs in the caller's process. The server keeps each script as a file and registers the
enabled ones with `chrome.userScripts` in every connected browser (in the page's main
world), so the ``globalThis.__any__`` methods they define exist on matching pages with
no userscript manager installed. Warnings the server sends (a connected browser whose
"Allow User Scripts" switch is off) are logged with `logging` and kept in `warnings`.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from typing import TYPE_CHECKING, Callable, Optional, Tuple

from ._endpoint import QUICK_TIMEOUT_S, Endpoint
from .api import ScriptInfo, script_change, script_list
from .errors import from_failure

if TYPE_CHECKING:
    from .aio import AsyncClient
    from .client import Client

_log = logging.getLogger("any_browser")

# Writing a file and telling every browser takes longer than a health check.
_TIMEOUT_S = QUICK_TIMEOUT_S * 5

# A request to the server: (HTTP method, path, body).
_Request = Tuple[str, str, Optional[bytes]]


class _Hosted:
    """What `Scripts` and `AsyncScripts` share: the requests, and reading the answers."""

    _client: Endpoint

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def _list_answer(self, status: int, body: bytes) -> list[ScriptInfo]:
        if status != 200:
            raise from_failure(status, body, self._client.address)
        scripts, self.warnings = script_list(body)
        self._log_warnings()
        return scripts

    def _change_answer(self, status: int, body: bytes) -> ScriptInfo:
        if status != 200:
            raise from_failure(status, body, self._client.address)
        script, self.warnings = script_change(body)
        self._log_warnings()
        return script

    def _log_warnings(self, log: Callable[[str], None] = _log.warning) -> None:
        for warning in self.warnings:
            log(warning)


class Scripts(_Hosted):
    """The userscripts hosted by a `Client`'s server: ``client.scripts.add(path)``…

    Attributes:
        warnings: what the server said keeps the scripts from running, as of the last
            answer (e.g. a browser whose "Allow User Scripts" switch is off).
    """

    _client: Client

    def __init__(self, client: Client) -> None:
        super().__init__()
        self._client = client

    def add(self, path: str | os.PathLike[str]) -> ScriptInfo:
        """Adds the ``.user.js`` file at `path` (or replaces the hosted script with the same
        ``@name``). Raises `BadRequest` naming the line when its header is not valid."""
        return self._change(_add(path))

    def list(self) -> list[ScriptInfo]:
        """Every hosted script, ordered by name."""
        return self._list_answer(*self._client._request(*_LIST, _TIMEOUT_S))

    def remove(self, name: str) -> ScriptInfo:
        """Removes the hosted script called `name`; returns it as it was."""
        return self._change(_remove(name))

    def enable(self, name: str) -> ScriptInfo:
        """Enables the hosted script called `name`."""
        return self._change(_switch(name, "enable"))

    def disable(self, name: str) -> ScriptInfo:
        """Disables the hosted script called `name` (kept, but not run in browsers)."""
        return self._change(_switch(name, "disable"))

    def _change(self, request: _Request) -> ScriptInfo:
        return self._change_answer(*self._client._request(*request, _TIMEOUT_S))


class AsyncScripts(_Hosted):
    """The userscripts hosted by an `AsyncClient`'s server: ``await c.scripts.add(path)``;
    the same methods as `Scripts`, awaited."""

    _client: AsyncClient

    def __init__(self, client: AsyncClient) -> None:
        super().__init__()
        self._client = client

    async def add(self, path: str | os.PathLike[str]) -> ScriptInfo:
        """Adds the ``.user.js`` file at `path`; see `Scripts.add`."""
        return await self._change(_add(path))

    async def list(self) -> list[ScriptInfo]:
        """Every hosted script, ordered by name."""
        return self._list_answer(*await self._client._request(*_LIST, _TIMEOUT_S))

    async def remove(self, name: str) -> ScriptInfo:
        """Removes the hosted script called `name`; returns it as it was."""
        return await self._change(_remove(name))

    async def enable(self, name: str) -> ScriptInfo:
        """Enables the hosted script called `name`."""
        return await self._change(_switch(name, "enable"))

    async def disable(self, name: str) -> ScriptInfo:
        """Disables the hosted script called `name` (kept, but not run in browsers)."""
        return await self._change(_switch(name, "disable"))

    async def _change(self, request: _Request) -> ScriptInfo:
        return self._change_answer(*await self._client._request(*request, _TIMEOUT_S))


_LIST: _Request = ("GET", "/v1/scripts", None)


def _add(path: str | os.PathLike[str]) -> _Request:
    # A userscript is a few kB: read in place, also by the asyncio client.
    with open(path, encoding="utf-8") as f:
        source = f.read()
    return "POST", "/v1/scripts", json.dumps({"source": source}).encode()


def _remove(name: str) -> _Request:
    return "DELETE", _path(name), None


def _switch(name: str, to: str) -> _Request:
    return "POST", f"{_path(name)}/{to}", None


def _path(name: str) -> str:
    return "/v1/scripts/" + urllib.parse.quote(name, safe="")
