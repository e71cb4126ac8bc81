"""HTTP/1.1 to the any server: synchronous (urllib) and asynchronous (asyncio streams).

Runs in the caller's process. Neither transport ever uses the system's proxy settings:
the urllib opener has an empty `ProxyHandler`, the asyncio one connects directly. One
request per connection (`Connection: close`): the server is local and a call is long,
so there is nothing worth keeping alive, and a dropped connection is how the server
learns that an asyncio caller gave up (it then cancels the call).

Both send the user's token (`Authorization: Bearer`) when one is given, and return
`(status, body)` for every HTTP answer, whatever its status. They raise
`Unreachable` when no connection could be made (the cue to autostart a server),
`errors.Timeout` when the answer did not come in time, and `errors.ServerUnavailable`
when the connection broke before a complete answer.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import urllib.error
import urllib.request

from .errors import ServerUnavailable, Timeout

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# What a read or connect timeout raises: `socket.timeout` is not yet TimeoutError on 3.9.
_TIMEOUTS = (TimeoutError, socket.timeout)

_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class Unreachable(Exception):
    """Nothing accepted a connection at the address (typically: connection refused)."""


def netloc(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _headers(token: str | None) -> dict[str, str]:
    if token is None:
        return _HEADERS
    return {**_HEADERS, "Authorization": f"Bearer {token}"}


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes | None,
    timeout: float,
    token: str | None = None,
) -> tuple[int, bytes]:
    """One blocking HTTP exchange with `timeout` seconds for each socket operation."""
    address = netloc(host, port)
    req = urllib.request.Request(
        f"http://{address}{path}", data=body, method=method, headers=_headers(token)
    )
    try:
        with _OPENER.open(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()
    except urllib.error.URLError as e:
        # Raised before an answer began: connecting (or sending) failed.
        if isinstance(e.reason, _TIMEOUTS):
            raise _timed_out(host, port, timeout) from e
        raise Unreachable(str(e.reason)) from e
    except _TIMEOUTS as e:  # while reading the answer
        raise _timed_out(host, port, timeout) from e
    except (OSError, http.client.HTTPException) as e:
        raise _broken(address, e) from e


async def request_async(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes | None,
    timeout: float,
    token: str | None = None,
) -> tuple[int, bytes]:
    """One HTTP exchange over asyncio streams, bounded by `timeout` seconds in total."""
    address = netloc(host, port)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError as e:
        raise _timed_out(host, port, timeout) from e
    except OSError as e:
        raise Unreachable(str(e)) from e
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in _headers(token).items())
        payload = body or b""
        head += f"Content-Length: {len(payload)}\r\n\r\n"
        writer.write(head.encode("latin-1") + payload)
        return await asyncio.wait_for(_read_response(reader), timeout)
    except asyncio.TimeoutError as e:
        raise _timed_out(host, port, timeout) from e
    except (OSError, ValueError, asyncio.IncompleteReadError) as e:
        raise _broken(address, e) from e
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Reads one HTTP/1.1 response: Content-Length, chunked, or until the peer closes."""
    status_line = (await reader.readline()).decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP status line: {status_line!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    while line := (await reader.readline()).decode("latin-1").strip():
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while size := int((await reader.readline()).split(b";")[0], 16):
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, b"".join(chunks)
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    return status, await reader.read()


def _timed_out(host: str, port: int, timeout: float) -> Timeout:
    return Timeout(
        f"the any server at {netloc(host, port)} did not answer within {timeout:g} s — "
        f"is it stuck? `any status --port {port}` shows its calls, its log says more"
    )


def _broken(address: str, error: Exception) -> ServerUnavailable:
    return ServerUnavailable(
        f"the connection to the any server at {address} broke before a complete answer "
        f"({error}) — did the server stop or crash? Its log says more"
    )
