"""`Client.scripts`: the userscripts the any server hosts (`/v1/scripts`).

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
from typing import TYPE_CHECKING, Callable

from ._endpoint import QUICK_TIMEOUT_S
from .api import ScriptInfo, script_change, script_list
from .errors import from_failure

if TYPE_CHECKING:
    from .client import Client

_log = logging.getLogger("any_browser")

# Writing a file and telling every browser takes longer than a health check.
_TIMEOUT_S = QUICK_TIMEOUT_S * 5


class Scripts:
    """The userscripts hosted by a `Client`'s server: ``client.scripts.add(path)``…

    Attributes:
        warnings: what the server said keeps the scripts from running, as of the last
            answer (e.g. a browser whose "Allow User Scripts" switch is off).
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self.warnings: list[str] = []

    def add(self, path: str | os.PathLike[str]) -> ScriptInfo:
        """Adds the ``.user.js`` file at `path` (or replaces the hosted script with the same
        ``@name``). Raises `BadRequest` naming the line when its header is not valid."""
        with open(path, encoding="utf-8") as f:
            source = f.read()
        body = json.dumps({"source": source}).encode()
        return self._change("POST", "/v1/scripts", body)

    def list(self) -> list[ScriptInfo]:
        """Every hosted script, ordered by name."""
        status, body = self._client._request("GET", "/v1/scripts", None, _TIMEOUT_S)
        if status != 200:
            raise from_failure(status, body, self._client.address)
        scripts, self.warnings = script_list(body)
        self._log_warnings()
        return scripts

    def remove(self, name: str) -> ScriptInfo:
        """Removes the hosted script called `name`; returns it as it was."""
        return self._change("DELETE", _path(name), None)

    def enable(self, name: str) -> ScriptInfo:
        """Enables the hosted script called `name`."""
        return self._change("POST", _path(name) + "/enable", None)

    def disable(self, name: str) -> ScriptInfo:
        """Disables the hosted script called `name` (kept, but not run in browsers)."""
        return self._change("POST", _path(name) + "/disable", None)

    def _change(self, method: str, path: str, body: bytes | None) -> ScriptInfo:
        status, answer = self._client._request(method, path, body, _TIMEOUT_S)
        if status != 200:
            raise from_failure(status, answer, self._client.address)
        script, self.warnings = script_change(answer)
        self._log_warnings()
        return script

    def _log_warnings(self, log: Callable[[str], None] = _log.warning) -> None:
        for warning in self.warnings:
            log(warning)


def _path(name: str) -> str:
    return "/v1/scripts/" + urllib.parse.quote(name, safe="")
