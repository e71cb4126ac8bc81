"""The JSON bodies of the server's HTTP API, as Python types.

Mirrors `crates/protocol/src/api.rs` (the golden examples are in
`crates/protocol/fixtures/api/`). Runs in the caller's process. Requests are built with
`to_json`, answers read with `from_json`; an answer of the wrong shape raises
`ProtocolError`, so the rest of the client only sees well-formed values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import ProtocolError


@dataclass(frozen=True)
class CallRequest:
    """`POST /v1/call`: run `method` with `params` on `page`."""

    page: str
    method: str
    params: Any = None
    """Any JSON value; omitted when None (the page then receives ``{}``)."""
    timeout_ms: int | None = None
    browser: str | None = None
    """Route to the extension with this label; any extension when None."""
    new_tab: bool = False
    """Always open a new tab, instead of reusing an idle one at `page`."""

    def to_json(self) -> bytes:
        """The request body. Raises ValueError or TypeError when `params` is not JSON."""
        body: dict[str, Any] = {"page": self.page, "method": self.method}
        if self.params is not None:
            body["params"] = self.params
        if self.timeout_ms is not None:
            body["timeout_ms"] = self.timeout_ms
        if self.browser is not None:
            body["browser"] = self.browser
        if self.new_tab:
            body["tab"] = "new"
        return json.dumps(body, allow_nan=False).encode()


@dataclass(frozen=True)
class RunRequest:
    """`POST /v1/run`: run `script` (the body of an async function) on `page`."""

    page: str
    script: str
    timeout_ms: int | None = None
    browser: str | None = None
    new_tab: bool = False

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"page": self.page, "script": self.script}
        if self.timeout_ms is not None:
            body["timeout_ms"] = self.timeout_ms
        if self.browser is not None:
            body["browser"] = self.browser
        if self.new_tab:
            body["tab"] = "new"
        return json.dumps(body).encode()


@dataclass(frozen=True)
class ScriptInfo:
    """One userscript the server hosts (`GET /v1/scripts`), its code left out."""

    name: str
    """Its ``@name``, which `Scripts.remove` & co. take."""
    version: str
    description: str
    matches: tuple[str, ...]
    exclude_matches: tuple[str, ...]
    exclude_globs: tuple[str, ...]
    run_at: str
    """``document_start``, ``document_end`` or ``document_idle``."""
    enabled: bool
    file: str
    """Where the server keeps it (empty when it keeps scripts in memory only)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScriptInfo:
        try:
            return cls(
                name=str(data["name"]),
                version=str(data.get("version", "")),
                description=str(data.get("description", "")),
                matches=tuple(str(m) for m in data["matches"]),
                exclude_matches=tuple(str(m) for m in data.get("exclude_matches", ())),
                exclude_globs=tuple(str(g) for g in data.get("exclude_globs", ())),
                run_at=str(data["run_at"]),
                enabled=bool(data["enabled"]),
                file=str(data.get("file", "")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(f"the server sent an invalid script description ({e!r})") from e


def script_list(body: bytes) -> tuple[list[ScriptInfo], list[str]]:
    """The scripts and warnings of a `ScriptList` body (`GET /v1/scripts`)."""
    data = _object(body, "script list")
    scripts = data.get("scripts")
    if not isinstance(scripts, list):
        raise ProtocolError("the server sent a script list without `scripts`")
    return [ScriptInfo.from_dict(s) for s in scripts], [str(w) for w in data.get("warnings", [])]


def script_change(body: bytes) -> tuple[ScriptInfo, list[str]]:
    """The script and warnings of a `ScriptChange` body."""
    data = _object(body, "script change")
    script = data.get("script")
    if not isinstance(script, dict):
        raise ProtocolError("the server sent a script change without `script`")
    return ScriptInfo.from_dict(script), [str(w) for w in data.get("warnings", [])]


def call_result(body: bytes) -> Any:
    """The `result` of a `CallSuccess` body (HTTP 200 of `POST /v1/call`)."""
    data = _object(body, "call answer")
    if "result" not in data:
        raise ProtocolError("the server sent a call answer without `result`")
    return data["result"]


@dataclass(frozen=True)
class Health:
    """`GET /v1/health`."""

    ok: bool
    version: str
    """The server's version."""
    extensions: int
    """How many extensions are connected and welcomed."""

    @classmethod
    def from_json(cls, body: bytes) -> Health:
        data = _object(body, "health")
        try:
            return cls(
                ok=bool(data["ok"]),
                version=str(data["version"]),
                extensions=int(data["extensions"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(f"the server sent an invalid health body ({e!r})") from e


@dataclass(frozen=True)
class BrowserInfo:
    name: str
    """For example ``"Chromium"``."""
    version: str


@dataclass(frozen=True)
class OwnedTab:
    """A tab an extension opened for calls, in `ExtensionStatus.tabs`."""

    id: int
    url: str
    state: str
    """``"loading"``, ``"loaded"``, ``"failed"`` or ``"unresponsive"``."""
    calls: int
    """Calls running in it now."""


@dataclass(frozen=True)
class ExtensionStatus:
    """One connected extension in `Status`."""

    conn: str
    """The server's name for this connection, e.g. ``"ext-3"``."""
    label: str
    browser: BrowserInfo
    extension_version: str
    connected_since: float
    """Seconds since the Unix epoch."""
    calls_in_flight: int
    tabs: tuple[OwnedTab, ...] = ()
    """The tabs it opened for calls, as it last reported them."""
    max_tabs: int = 0
    """Idle tabs beyond this many are closed (0: not reported yet)."""


@dataclass(frozen=True)
class CallStatus:
    """One unanswered call in `Status`."""

    id: str
    page: str
    method: str
    stage: str
    conn: str | None
    """The connection running it, when dispatched."""
    age_s: float


@dataclass(frozen=True)
class Status:
    """`GET /v1/status`: the server, its extensions and its unanswered calls."""

    version: str
    listen: str
    """The address the server listens on, e.g. ``"127.0.0.1:8765"``."""
    pid: int
    extensions: tuple[ExtensionStatus, ...]
    calls: tuple[CallStatus, ...]
    """Oldest first."""

    @classmethod
    def from_json(cls, body: bytes) -> Status:
        data = _object(body, "status")
        try:
            return cls(
                version=str(data["version"]),
                listen=str(data["listen"]),
                pid=int(data["pid"]),
                extensions=tuple(
                    ExtensionStatus(
                        conn=str(e["conn"]),
                        label=str(e["label"]),
                        browser=BrowserInfo(
                            name=str(e["browser"]["name"]),
                            version=str(e["browser"]["version"]),
                        ),
                        extension_version=str(e["extension_version"]),
                        connected_since=float(e["connected_since"]),
                        calls_in_flight=int(e["calls_in_flight"]),
                        tabs=tuple(
                            OwnedTab(
                                id=int(t["id"]),
                                url=str(t["url"]),
                                state=str(t["state"]),
                                calls=int(t["calls"]),
                            )
                            for t in e.get("tabs", ())
                        ),
                        max_tabs=int(e.get("max_tabs", 0)),
                    )
                    for e in data["extensions"]
                ),
                calls=tuple(
                    CallStatus(
                        id=str(c["id"]),
                        page=str(c["page"]),
                        method=str(c["method"]),
                        stage=str(c["stage"]),
                        conn=None if c.get("conn") is None else str(c["conn"]),
                        age_s=float(c["age_s"]),
                    )
                    for c in data["calls"]
                ),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(f"the server sent an invalid status body ({e!r})") from e


def _object(body: bytes, what: str) -> Mapping[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as e:
        raise ProtocolError(f"the server sent a {what} that is not JSON ({e})") from e
    if not isinstance(data, dict):
        raise ProtocolError(f"the server sent a {what} that is not a JSON object")
    return data

