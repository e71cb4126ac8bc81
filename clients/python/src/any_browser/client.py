"""The blocking client: `Client` and the one-shot `call`.

Runs in the caller's process (any thread; one `Client` may be shared between threads).
Each call is one `POST /v1/call` on a kept-alive connection from the client's pool
(see `_http` for when a request is ever sent twice: a `POST` never is once written to
a working connection); when nothing listens on the server's port and
`autostart` is on, the client starts `any serve` there (see `_server`) and sends the
request again — safe, since a refused connection never reached a server.
"""

from __future__ import annotations

import threading
from typing import Any

from . import _http, _server, _token
from ._endpoint import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TIMEOUT_S, QUICK_TIMEOUT_S, Endpoint
from ._scripts import Scripts
from .api import Status


class Client(Endpoint):
    """A blocking client of the any server on `host:port`.

    Args:
        port: the server's port.
        host: the server's host; loopback unless you run the server elsewhere.
        autostart: start `any serve` on `port` when no server answers there.
        binary: the `any` executable to autostart; default: `any` on PATH.
        timeout: the default deadline of a call, in seconds.
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
        self._starting = threading.Lock()
        self._pool = _http.Pool(host, port)
        self.scripts = Scripts(self)
        """The userscripts the server hosts: ``client.scripts.add("my.user.js")``, `.list()`,
        `.remove(name)`, `.enable(name)`, `.disable(name)`."""

    def call(
        self,
        page: str,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        browser: str | None = None,
        new_tab: bool = False,
    ) -> Any:
        """Runs `globalThis.__any__[method](params)` on `page` and returns its result.

        Args:
            page: the absolute URL (``http:``, ``https:`` or ``file:``) to run it on.
            method: the function's name on ``globalThis.__any__``.
            params: any JSON-serializable value; the page receives ``{}`` when None.
            timeout: seconds until the call fails with `Timeout`; default: the client's.
            browser: run it in the browser whose extension has this label.
            new_tab: always open a new tab instead of reusing an idle one at `page`.

        Raises:
            AnyError: a subclass per failure, e.g. `PageError` when the method threw.
        """
        body, http_timeout = self._call_request(page, method, params, timeout, browser, new_tab)
        return self._call_answer(*self._request("POST", "/v1/call", body, http_timeout))

    def run(
        self,
        page: str,
        script: str,
        *,
        timeout: float | None = None,
        browser: str | None = None,
        new_tab: bool = False,
    ) -> Any:
        """Runs `script` — the body of an async function (``return``, ``await``) — in the
        page's main world at `page` and returns what it returns, like `call`.

        The server must run with ``any serve --allow-scripts``; otherwise this raises
        `ScriptsDisabled` (as it does when the browser's "Allow User Scripts" switch for the
        any extension is off). Errors and encoding rules are those of `call`; a script
        that is not valid JavaScript raises `PageError` with name ``SyntaxError``.
        """
        body, http_timeout = self._run_request(page, script, timeout, browser, new_tab)
        return self._call_answer(*self._request("POST", "/v1/run", body, http_timeout))

    def status(self) -> Status:
        """The server's version, its connected extensions and its unanswered calls."""
        return self._status_answer(*self._request("GET", "/v1/status", None, QUICK_TIMEOUT_S))

    def close(self) -> None:
        """Closes the kept-alive connections to the server (the client stays usable: a
        later call opens a new one). Also done on leaving a ``with Client() as c:`` block."""
        self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(
        self, method: str, path: str, body: bytes | None, timeout: float
    ) -> tuple[int, bytes]:
        try:
            return self._pool.request(method, path, body, timeout, _token.read())
        except _http.Unreachable as e:
            if not self.autostart:
                raise self._unreachable(e) from e
        with self._starting:
            _server.start(self.host, self.port, self.binary)
        try:
            return self._pool.request(method, path, body, timeout, _token.read())
        except _http.Unreachable as e:
            raise self._unreachable(e) from e


def call(
    page: str,
    method: str,
    params: Any = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    browser: str | None = None,
    new_tab: bool = False,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    autostart: bool = True,
    binary: _server.BinaryPath | None = None,
) -> Any:
    """One call through a `Client(port, host, autostart=..., binary=...)`.

    ``any_browser.call("https://example.com", "pageInfo", {"delay": 500})`` returns the
    page method's result; see `Client.call` for the arguments and errors.
    """
    with Client(port, host, autostart=autostart, binary=binary, timeout=timeout) as client:
        return client.call(page, method, params, browser=browser, new_tab=new_tab)
