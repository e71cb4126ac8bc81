"""The exceptions of `any_browser`: one class per protocol error code, under `AnyError`.

Runs in the caller's process. A failed call comes back from the server as a
`CallFailure` body, `{"v": 1, "id": "c-7", "error": {code, name, message, stack?, stage?}}`,
with the HTTP status of its code; `from_failure` turns it into the matching exception.
The codes are the closed set of `ErrorCode` in `crates/protocol/src/error.rs`; a code
this version does not know (a newer server) becomes a plain `AnyError`, never a crash.
`ServerUnavailable` is the client's own: no server could be reached or started.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Mapping


class AnyError(Exception):
    """Base of every error `any_browser` raises.

    Attributes:
        code: the protocol code, e.g. ``"method_not_found"``.
        name: the code's name (``"MethodNotFound"``), or for a `PageError` the page's own
            ``error.name`` (``"TypeError"``).
        message: what happened and, where there is one, what to do.
        stack: for a `PageError`, the page's stack trace.
        stage: how far the call got (``"queued"``, ``"dispatched"``, ``"tab_opened"``,
            ``"navigating"``, ``"page_loaded"``, ``"waiting_for_methods"``,
            ``"method_found"``, ``"method_called"``).
        call_id: the server's id of the call (``"c-7"``), to find it in its log.
        status: the HTTP status the server answered with.
    """

    CODE: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        name: str | None = None,
        stack: str | None = None,
        stage: str | None = None,
        call_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code: str = code or self.CODE
        self.name: str = name or type(self).__name__
        self.message: str = message
        self.stack: str | None = stack
        self.stage: str | None = stage
        self.call_id: str | None = call_id
        self.status: int | None = status

    def __str__(self) -> str:
        return self.message


class NoExtension(AnyError):
    """No browser with the any extension is connected (or none with the asked label)."""

    CODE = "no_extension"


class Timeout(AnyError):
    """The call's deadline passed; `stage` says how far it got."""

    CODE = "timeout"


class BadRequest(AnyError):
    """The request was malformed or invalid (also: params that are not JSON)."""

    CODE = "bad_request"


class MethodNotFound(AnyError):
    """`globalThis.__any__[method]` never appeared on the page."""

    CODE = "method_not_found"


class PageError(AnyError):
    """The page's method threw or rejected.

    `name`, `message` and `stack` are the page's own (``TypeError``, ``x is undefined``,
    its JavaScript stack trace).
    """

    CODE = "page_error"

    def __str__(self) -> str:
        text = f"{self.name}: {self.message}"
        if self.stack:
            text += "\npage stack:\n" + self.stack
        return text


class NavigationFailed(AnyError):
    """The tab could not load the page."""

    CODE = "navigation_failed"


class TabClosed(AnyError):
    """The tab was closed, or navigated away, while the call was running."""

    CODE = "tab_closed"


class NotSerializable(AnyError):
    """The method's result cannot be sent as JSON; the message names the path."""

    CODE = "not_serializable"


class ExtensionDisconnected(AnyError):
    """The extension running the call disconnected before answering."""

    CODE = "extension_disconnected"


class ProtocolError(AnyError):
    """A peer broke the protocol (a bad frame, or a server answer of the wrong shape)."""

    CODE = "protocol_error"


class TooLarge(AnyError):
    """A request, frame or result exceeds the server's size limit."""

    CODE = "too_large"


class Unauthorized(AnyError):
    """The server wants the user's token (`Authorization: Bearer`), and it was missing,
    wrong, or the token file could not be read. The client reads it from
    ``~/.local/share/any/token`` (``$XDG_DATA_HOME/any/token``); `any token` prints it."""

    CODE = "unauthorized"


class Forbidden(AnyError):
    """The server refused where the request came from: a web page's ``Origin``, or a
    ``Host`` that is not its loopback address."""

    CODE = "forbidden"


class TooManyCalls(AnyError):
    """The server already runs its maximum number of calls (`any serve --max-calls`);
    this one was not started. Retry when some have finished."""

    CODE = "too_many_calls"


class ScriptsDisabled(AnyError):
    """An ad-hoc script (`Client.run`) was refused: the server was not started with
    ``any serve --allow-scripts``, or the browser's "Allow User Scripts" switch for the
    any extension is off. The message says which, and what to switch on."""

    CODE = "scripts_disabled"


class NotScriptable(AnyError):
    """No script can run in the page, so it can have no methods: it is sandboxed by its
    Content-Security-Policy, or the browser does not let extensions script it
    (``chrome://``, ``file://`` without file access). The message names the cause."""

    CODE = "not_scriptable"


class ServerUnavailable(AnyError):
    """No any server answers on the address and none could be started there."""

    CODE = "server_unavailable"


_BY_CODE: dict[str, type[AnyError]] = {
    cls.CODE: cls
    for cls in (
        NoExtension,
        Timeout,
        BadRequest,
        MethodNotFound,
        PageError,
        NavigationFailed,
        TabClosed,
        NotSerializable,
        ExtensionDisconnected,
        ProtocolError,
        TooLarge,
        Unauthorized,
        Forbidden,
        TooManyCalls,
        ScriptsDisabled,
        NotScriptable,
    )
}


def from_error_body(
    error: Mapping[str, Any], *, call_id: str | None = None, status: int | None = None
) -> AnyError:
    """The exception for a protocol `ErrorBody` (`{code, name, message, stack?, stage?}`)."""
    code = str(error.get("code", ""))
    cls = _BY_CODE.get(code, AnyError)
    return cls(
        str(error.get("message", "")),
        code=code or None,
        name=_optional_str(error.get("name")),
        stack=_optional_str(error.get("stack")),
        stage=_optional_str(error.get("stage")),
        call_id=call_id,
        status=status,
    )


def from_failure(status: int, body: bytes, server: str) -> AnyError:
    """The exception for a non-2xx answer of the server at `server` (``host:port``)."""
    try:
        failure = json.loads(body)
        error = failure["error"]
        if not isinstance(error, dict) or "code" not in error:
            raise TypeError("error is not an ErrorBody")
    except (ValueError, TypeError, KeyError):
        snippet = body[:200].decode("utf-8", "replace")
        return ProtocolError(
            f"the server at {server} answered HTTP {status} with a body that is not an any "
            f"error: {snippet!r} — is something other than `any serve` listening there?",
            status=status,
        )
    return from_error_body(error, call_id=_optional_str(failure.get("id")), status=status)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
