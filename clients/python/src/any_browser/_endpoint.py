"""What `Client` and `AsyncClient` share: the server's address, the options, and the
translation of a call into a request and of an answer into a result or an exception.

Runs in the caller's process; does no I/O itself, so the blocking and the asyncio
client differ only in how they send bytes and wait.
"""

from __future__ import annotations

from typing import Any

from . import _http, _server
from .api import CallRequest, RunRequest, Status, call_result
from .errors import AnyError, BadRequest, ServerUnavailable, from_failure

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"
DEFAULT_TIMEOUT_S = 30.0

# The HTTP exchange of a call may take this much longer than the call's own timeout, so
# that the server's `timeout` answer (HTTP 504, with the stage the call had reached)
# arrives before the client gives up on its own.
HTTP_GRACE_S = 5.0
# `GET /v1/status` and other quick requests.
QUICK_TIMEOUT_S = 10.0


class Endpoint:
    """An any server's address and how to reach it."""

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        host: str = DEFAULT_HOST,
        *,
        autostart: bool = True,
        binary: _server.BinaryPath | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        _check_timeout(timeout)
        self.port = port
        self.host = host
        self.autostart = autostart
        self.binary = binary
        self.timeout = timeout

    @property
    def address(self) -> str:
        """``host:port`` of the server."""
        return _http.netloc(self.host, self.port)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self.port}, host={self.host!r})"

    def _call_request(
        self,
        page: str,
        method: str,
        params: Any,
        timeout: float | None,
        browser: str | None,
        new_tab: bool,
    ) -> tuple[bytes, float]:
        """The `POST /v1/call` body and how long to wait for its answer."""
        timeout_ms, http_timeout = self._deadline(timeout)
        request = CallRequest(
            page=page,
            method=method,
            params=params,
            timeout_ms=timeout_ms,
            browser=browser,
            new_tab=new_tab,
        )
        try:
            body = request.to_json()
        except (TypeError, ValueError) as e:
            raise BadRequest(f"the params of {method!r} cannot be sent as JSON: {e}") from e
        return body, http_timeout

    def _run_request(
        self,
        page: str,
        script: str,
        timeout: float | None,
        browser: str | None,
        new_tab: bool,
    ) -> tuple[bytes, float]:
        """The `POST /v1/run` body and how long to wait for its answer."""
        timeout_ms, http_timeout = self._deadline(timeout)
        request = RunRequest(
            page=page, script=script, timeout_ms=timeout_ms, browser=browser, new_tab=new_tab
        )
        return request.to_json(), http_timeout

    def _deadline(self, timeout: float | None) -> tuple[int, float]:
        """A call's `timeout_ms` (default: the client's timeout) and how long to wait for
        its HTTP answer."""
        timeout = self.timeout if timeout is None else timeout
        _check_timeout(timeout)
        return round(timeout * 1000), timeout + HTTP_GRACE_S

    def _call_answer(self, status: int, body: bytes) -> Any:
        """The result of a call, or its exception raised."""
        if status == 200:
            return call_result(body)
        raise from_failure(status, body, self.address)

    def _status_answer(self, status: int, body: bytes) -> Status:
        if status == 200:
            return Status.from_json(body)
        raise from_failure(status, body, self.address)

    def _unreachable(self, error: _http.Unreachable) -> AnyError:
        """The error for a server that cannot be reached and is not to be started."""
        if self.autostart:
            return ServerUnavailable(
                f"the any server on {self.address} was started but stopped answering "
                f"({error}); its log is {_server.log_path(self.port)}"
            )
        return ServerUnavailable(
            f"no any server answers on {self.address} ({error}) — start one with "
            f"`any serve --port {self.port}`, or let the client start it (autostart=True)"
        )


def _check_timeout(timeout: float) -> None:
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
