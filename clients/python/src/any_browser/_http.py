"""HTTP/1.1 to the any server: synchronous (plain sockets) and asynchronous (asyncio
streams), each over a small pool of kept-alive connections.

Runs in the caller's process. Neither transport ever uses the system's proxy settings:
both connect directly to the server's address. A connection carries one request at a
time and goes back to its pool once its answer was read completely (at most
`POOL_SIZE` idle ones are kept); one that failed, timed out, was cancelled or that the
server said it would close is closed instead. So a call costs no new TCP connection,
and a dropped connection is still how the server learns that an asyncio caller gave up
(the cancelled call's connection is closed, never pooled; the server then cancels it).
Both write a request with one `sendall` and read the answer with one small parser
(`_response`): the standard `http.client` parsed each answer's headers with the
`email` package, ~0.1 ms of the caller's CPU per call (bench/README.md).

Resending on a stale pooled connection (the server closed it while it sat idle): an
idle connection that has become readable (end of stream, a reset, stray bytes) is
closed before use, never written to. A request is sent a second time, on a fresh
connection, only when it certainly was not processed:
- the connection was a pooled, idle one AND writing the request to it failed (nothing
  of an answer was read); or
- the request is a `GET` (safe to repeat) on a pooled connection that ended before a
  single byte of an answer.
A `POST` (`/v1/call`, `/v1/run`, scripts) whose connection fails after the request was
written is never resent — the server may have started the method, and running it twice
would be worse than the `ServerUnavailable` the caller gets.

Both send the user's token (`Authorization: Bearer`) when one is given, and return
`(status, body)` for every HTTP answer, whatever its status. They raise
`Unreachable` when no connection could be made (the cue to autostart a server),
`errors.Timeout` when the answer did not come in time, and `errors.ServerUnavailable`
when the connection broke before a complete answer.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
from collections.abc import Generator
from typing import BinaryIO, Union

from .errors import ServerUnavailable, Timeout

# How many idle connections a pool keeps.
POOL_SIZE = 16

# What a read or connect timeout raises: `socket.timeout` is not yet TimeoutError on 3.9.
_TIMEOUTS = (TimeoutError, socket.timeout)

_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class Unreachable(Exception):
    """Nothing accepted a connection at the address (typically: connection refused)."""


def netloc(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _message(method: str, address: str, path: str, body: bytes | None,
             token: str | None) -> bytes:
    """The whole request, headers and body, as the bytes to write."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {address}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in _HEADERS.items())
    if token is not None:
        head += f"Authorization: Bearer {token}\r\n"
    payload = body or b""
    head += f"Content-Length: {len(payload)}\r\n\r\n"
    return head.encode("latin-1") + payload


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes | None,
    timeout: float,
    token: str | None = None,
) -> tuple[int, bytes]:
    """One blocking HTTP exchange on a fresh connection (closed afterwards), with
    `timeout` seconds for each socket operation. For probes such as the health check."""
    pool = Pool(host, port, size=0)
    return pool.request(method, path, body, timeout, token)


class _Conn:
    """One kept-alive connection: the socket and a buffered reader over it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rfile: BinaryIO = sock.makefile("rb")

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


class Pool:
    """Kept-alive connections to one server; safe to share between threads (each
    request takes a connection of its own for its whole exchange)."""

    def __init__(self, host: str, port: int, size: int = POOL_SIZE) -> None:
        self.host = host
        self.port = port
        self.size = size
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        timeout: float,
        token: str | None = None,
    ) -> tuple[int, bytes]:
        """One blocking HTTP exchange with `timeout` seconds for each socket operation."""
        address = netloc(self.host, self.port)
        message = _message(method, address, path, body, token)
        conn = self._take()
        while True:
            reused = conn is not None
            if conn is None:
                conn = self._connect(timeout)
            else:
                conn.sock.settimeout(timeout)
            try:
                conn.sock.sendall(message)
            except _TIMEOUTS as e:
                conn.close()
                raise _timed_out(self.host, self.port, timeout) from e
            except OSError as e:
                conn.close()
                if reused:  # a stale idle connection; nothing was processed
                    conn = None
                    continue
                raise _broken(address, e) from e
            try:
                status, data, keep = _read_sync(conn.rfile)
            except _TIMEOUTS as e:
                conn.close()
                raise _timed_out(self.host, self.port, timeout) from e
            except _NoAnswer as e:
                conn.close()
                if reused and method == "GET":  # no answer began; a GET is safe to repeat
                    conn = None
                    continue
                raise _broken(address, e) from e
            except (OSError, ValueError) as e:
                conn.close()
                raise _broken(address, e) from e
            if keep:
                self._put(conn)
            else:
                conn.close()
            return status, data

    def _connect(self, timeout: float) -> _Conn:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except _TIMEOUTS as e:
            raise _timed_out(self.host, self.port, timeout) from e
        except OSError as e:
            raise Unreachable(str(e)) from e
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Conn(sock)

    def _take(self) -> _Conn | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if not _readable(conn.sock):
                return conn
            conn.close()

    def _put(self, conn: _Conn) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Closes the idle connections (those in use close when their exchange ends)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _readable(sock: socket.socket) -> bool:
    """An idle kept-alive connection that is readable was closed (or written to) by the
    server: it must not carry a request."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class _NoAnswer(ValueError):
    """The connection ended before the first byte of an answer."""


class AsyncPool:
    """Kept-alive asyncio stream connections to one server, for the event loop they were
    opened in (connections of another, e.g. an earlier `asyncio.run`, are dropped)."""

    def __init__(self, host: str, port: int, size: int = POOL_SIZE) -> None:
        self.host = host
        self.port = port
        self.size = size
        self._idle: list[tuple[asyncio.AbstractEventLoop, asyncio.StreamReader,
                               asyncio.StreamWriter]] = []

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        timeout: float,
        token: str | None = None,
    ) -> tuple[int, bytes]:
        """One HTTP exchange, bounded by `timeout` seconds in total."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        address = netloc(self.host, self.port)
        message = _message(method, address, path, body, token)
        conn = self._take(loop)
        while True:
            reused = conn is not None
            if conn is None:
                try:
                    conn = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.port), timeout
                    )
                except asyncio.TimeoutError as e:
                    raise _timed_out(self.host, self.port, timeout) from e
                except OSError as e:
                    raise Unreachable(str(e)) from e
            reader, writer = conn
            keep = False
            try:
                try:
                    writer.write(message)
                    await asyncio.wait_for(writer.drain(), max(0.0, deadline - loop.time()))
                except OSError as e:
                    if reused:  # a stale idle connection; nothing was processed
                        conn = None
                        continue
                    raise _broken(address, e) from e
                try:
                    status, data, keep = await asyncio.wait_for(
                        _read_response(reader), max(0.0, deadline - loop.time())
                    )
                except _NoAnswer as e:
                    if reused and method == "GET":  # a GET is safe to repeat
                        conn = None
                        continue
                    raise _broken(address, e) from e
                return status, data
            except asyncio.TimeoutError as e:
                raise _timed_out(self.host, self.port, timeout) from e
            except (OSError, ValueError, asyncio.IncompleteReadError) as e:
                raise _broken(address, e) from e
            finally:
                # Cancelled, failed or told to close: the connection is closed, never
                # pooled (a closed connection is how the server learns a caller gave up).
                if keep:
                    self._put(loop, reader, writer)
                else:
                    writer.close()

    def _take(
        self, loop: asyncio.AbstractEventLoop
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        while self._idle:
            owner, reader, writer = self._idle.pop()
            if owner is not loop or owner.is_closed():
                continue  # another loop's: it cannot be used (nor closed) from here
            if reader.at_eof() or writer.is_closing() or reader._buffer:  # type: ignore[attr-defined]
                writer.close()
                continue
            return reader, writer
        return None

    def _put(
        self,
        loop: asyncio.AbstractEventLoop,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if len(self._idle) < self.size and not writer.is_closing():
            self._idle.append((loop, reader, writer))
        else:
            writer.close()

    def close(self) -> None:
        """Closes the idle connections of the running loop; drops the others."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        idle, self._idle = self._idle, []
        for owner, _, writer in idle:
            if owner is loop:
                writer.close()


async def request_async(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes | None,
    timeout: float,
    token: str | None = None,
) -> tuple[int, bytes]:
    """One HTTP exchange over a fresh asyncio connection (closed afterwards), bounded by
    `timeout` seconds in total."""
    return await AsyncPool(host, port, size=0).request(method, path, body, timeout, token)


# What `_response` asks to read next: a line, exactly n bytes (an int), or everything
# until the peer closes.
_LINE = "line"
_REST = "rest"
_Want = Union[str, int]


def _response() -> Generator[_Want, bytes, tuple[int, bytes, bool]]:
    """Reads one HTTP/1.1 response — Content-Length, chunked, or until the peer closes —
    from what it is sent for each thing it yields. Returns the status, the body, and
    whether the connection may carry another request. No I/O of its own: `_read_sync`
    and `_read_async` feed it."""
    status_line = (yield _LINE).decode("latin-1")
    if not status_line:
        raise _NoAnswer("the connection closed before an answer")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP status line: {status_line!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    while True:
        line = (yield _LINE).decode("latin-1")
        if not line:
            raise ValueError("the connection closed in the middle of the headers")
        line = line.strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    keep = parts[0] == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while size := int((yield _LINE).split(b";")[0], 16):
            chunks.append((yield size))
            yield 2
        # Trailers (none expected) up to the empty line.
        while (yield _LINE).strip():
            pass
        return status, b"".join(chunks), keep
    if "content-length" in headers:
        return status, (yield int(headers["content-length"])), keep
    return status, (yield _REST), False


def _read_sync(rfile: BinaryIO) -> tuple[int, bytes, bool]:
    """`_response` over a blocking buffered reader."""
    parser = _response()
    want = next(parser)
    while True:
        if want == _LINE:
            data = rfile.readline(65537)
        elif want == _REST:
            data = rfile.read()
        else:
            data = rfile.read(want)
            if len(data) != want:
                raise ValueError(f"the answer ended after {len(data)} of {want} bytes")
        try:
            want = parser.send(data)
        except StopIteration as done:
            return done.value


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """`_response` over an asyncio stream."""
    parser = _response()
    want = next(parser)
    while True:
        if want == _LINE:
            data = await reader.readline()
        elif want == _REST:
            data = await reader.read()
        else:
            data = await reader.readexactly(want)
        try:
            want = parser.send(data)
        except StopIteration as done:
            return done.value


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
