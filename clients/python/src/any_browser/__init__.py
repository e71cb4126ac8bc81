"""any_browser: call methods of web pages in your real browser, from Python.

Runs in the caller's process and talks HTTP to the local `any` server, which hands each
call to the any browser extension; the extension runs `globalThis.__any__[method](params)`
in a tab at `page` and sends back the result or a structured error::

    import any_browser

    info = any_browser.call("https://example.com", "pageInfo", {"delay": 500})

The server is started for you (`any serve`, detached) when none answers on the port.
Every failure is an `AnyError`, one subclass per error code. `Client.scripts` manages the
userscripts the server hosts; `Client.run` runs an ad-hoc script (`any serve --allow-scripts`). Modules: `client` (blocking),
`aio` (asyncio), `errors`, `api` (the HTTP bodies); `_http`, `_server` and `_endpoint`
are internal.
"""

from .aio import AsyncClient
from .api import BrowserInfo, CallStatus, ExtensionStatus, Health, OwnedTab, ScriptInfo, Status
from .client import Client, call
from .errors import (
    AnyError,
    BadRequest,
    ExtensionDisconnected,
    MethodNotFound,
    NavigationFailed,
    NoExtension,
    NotSerializable,
    PageError,
    ProtocolError,
    ServerUnavailable,
    TabClosed,
    Timeout,
    TooLarge,
    TooManyCalls,
    Unauthorized,
    Forbidden,
    ScriptsDisabled,
    NotScriptable,
)

__version__ = "0.1.0"

__all__ = [
    "AnyError",
    "AsyncClient",
    "BadRequest",
    "BrowserInfo",
    "CallStatus",
    "Client",
    "ExtensionDisconnected",
    "ExtensionStatus",
    "OwnedTab",
    "Health",
    "MethodNotFound",
    "NavigationFailed",
    "NoExtension",
    "NotSerializable",
    "PageError",
    "ProtocolError",
    "ServerUnavailable",
    "Status",
    "TabClosed",
    "Timeout",
    "TooLarge",
    "TooManyCalls",
    "Unauthorized",
    "Forbidden",
    "ScriptsDisabled",
    "NotScriptable",
    "ScriptInfo",
    "call",
]
