"""The client's HTTP transports against canned local peers (no any server): the system
proxy is never used, a server that says nothing ends in `Timeout`, and the asyncio
reader understands every way HTTP/1.1 delimits a body.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator

import pytest
from .client_support import SRC, free_port

import any_browser
from any_browser import _endpoint


def success(result: Any) -> bytes:
    return json.dumps({"v": 1, "id": "c-1", "result": result}).encode()


def content_length(body: bytes, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def chunked(body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    half = len(body) // 2
    chunks = b"".join(
        f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n" for part in (body[:half], body[half:])
    )
    return head + chunks + b"0\r\n\r\n"


def until_close(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body


class Canned:
    """A loopback peer answering every request with `answer` (None: never answers)."""

    def __init__(self, answer: bytes | None) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + body)
            if self.answer is None:
                time.sleep(30)
                return
            conn.sendall(self.answer)

    def close(self) -> None:
        self.listener.close()


MakeCanned = Callable[[Any], Canned]


@pytest.fixture
def canned() -> Iterator[MakeCanned]:
    peers: list[Canned] = []

    def make(answer: bytes | None) -> Canned:
        peers.append(Canned(answer))
        return peers[-1]

    yield make
    for peer in peers:
        peer.close()


def sync_call(port: int, **kw: Any) -> Any:
    return any_browser.Client(port, autostart=False).call("http://a.test/", "m", **kw)


def async_call(port: int, **kw: Any) -> Any:
    async def run() -> Any:
        async with any_browser.AsyncClient(port, autostart=False) as c:
            return await c.call("http://a.test/", "m", **kw)

    return asyncio.run(run())


def call_both(port: int, **kw: Any) -> tuple[Any, Any]:
    """The same call through `Client` and through `AsyncClient`."""
    return sync_call(port, **kw), async_call(port, **kw)


@pytest.mark.parametrize("frame", [content_length, chunked, until_close])
def test_every_body_framing_is_read(canned: MakeCanned, frame: Any) -> None:
    result = {"title": "Ünïcode ✓", "items": list(range(1000))}
    peer = canned(frame(success(result)))
    assert call_both(peer.port) == (result, result)


def test_the_request_is_a_call_request(canned: MakeCanned) -> None:
    peer = canned(content_length(success(None)))
    call_both(peer.port, params={"delay": 500}, timeout=2.5, browser="work", new_tab=True)
    for request in peer.requests:
        head, _, body = request.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /v1/call HTTP/1.1\r\n")
        assert json.loads(body) == {
            "page": "http://a.test/",
            "method": "m",
            "params": {"delay": 500},
            "timeout_ms": 2500,
            "browser": "work",
            "tab": "new",
        }


def test_the_system_proxy_is_never_used(canned: MakeCanned) -> None:
    # In a fresh interpreter, with the proxy variables set before anything is imported.
    peer = canned(content_length(success("direct")))
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update({name: dead_proxy for name in ("http_proxy", "HTTP_PROXY", "all_proxy")})
    env["PYTHONPATH"] = str(SRC)
    script = (
        "import any_browser, asyncio\n"
        f"c = any_browser.Client({peer.port}, autostart=False)\n"
        "print(c.call('http://a.test/', 'm'))\n"
        f"a = any_browser.AsyncClient({peer.port}, autostart=False)\n"
        "print(asyncio.run(a.call('http://a.test/', 'm')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["direct", "direct"]


def test_a_server_that_never_answers_ends_in_timeout(
    canned: MakeCanned, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_endpoint, "HTTP_GRACE_S", 0.2)
    peer = canned(None)
    for call in (sync_call, async_call):
        started = time.monotonic()
        with pytest.raises(any_browser.Timeout, match="did not answer within 0.5 s"):
            call(peer.port, timeout=0.3)
        assert time.monotonic() - started < 1.5


def test_an_error_answer_becomes_its_exception(canned: MakeCanned) -> None:
    failure = {
        "v": 1,
        "id": "c-9",
        "error": {"code": "method_not_found", "name": "MethodNotFound", "message": "no m"},
    }
    peer = canned(content_length(json.dumps(failure).encode(), "404 Not Found"))
    for call in (sync_call, async_call):
        with pytest.raises(any_browser.MethodNotFound) as caught:
            call(peer.port)
        assert (caught.value.call_id, caught.value.status) == ("c-9", 404)


def test_a_broken_connection_is_server_unavailable(canned: MakeCanned) -> None:
    peer = canned(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"v\"")
    for call in (sync_call, async_call):
        with pytest.raises(any_browser.ServerUnavailable, match="broke before a complete answer"):
            call(peer.port)


def test_params_that_are_not_json_are_a_bad_request() -> None:
    client = any_browser.Client(free_port(), autostart=False)
    with pytest.raises(any_browser.BadRequest, match="cannot be sent as JSON"):
        client.call("http://a.test/", "m", {"when": object()})
    with pytest.raises(any_browser.BadRequest, match="cannot be sent as JSON"):
        client.call("http://a.test/", "m", {"x": float("nan")})


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_a_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        any_browser.Client(free_port(), autostart=False).call("http://a.test/", "m", timeout=timeout)
    with pytest.raises(ValueError, match="positive"):
        any_browser.Client(free_port(), timeout=timeout)


class KeepAlive:
    """A loopback HTTP/1.1 peer that keeps connections open: it answers request after
    request on each, and records which connection carried which request. `close_after`:
    close each connection after answering that many requests on it (without saying so,
    as a server dropping an idle connection does). `drop`: numbers (1-based, counted over
    all connections) of requests it reads and then closes the connection without
    answering."""

    def __init__(self, close_after: int | None = None, drop: tuple[int, ...] = ()) -> None:
        self.close_after = close_after
        self.drop = drop
        self.requests: list[tuple[int, bytes]] = []  # (connection number, request line)
        self.connections = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._answer, args=(conn, number), daemon=True).start()

    def _answer(self, conn: socket.socket, number: int) -> None:
        with conn:
            data = b""
            answered = 0
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")),
                    0,
                )
                while len(data) < length:
                    data += conn.recv(65536)
                body, data = data[:length], data[length:]
                with self.lock:
                    self.requests.append((number, head.split(b"\r\n")[0]))
                    seq = len(self.requests)
                if seq in self.drop:
                    return
                if head.startswith(b"GET "):
                    conn.sendall(content_length(b"{}"))
                else:
                    conn.sendall(content_length(success(json.loads(body)["params"])))
                answered += 1
                if self.close_after is not None and answered >= self.close_after:
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def keepalive() -> Iterator[Callable[..., KeepAlive]]:
    peers: list[KeepAlive] = []

    def make(**kw: Any) -> KeepAlive:
        peers.append(KeepAlive(**kw))
        return peers[-1]

    yield make
    for peer in peers:
        peer.close()


def settle() -> None:
    """Lets a peer's close reach this side's socket."""
    time.sleep(0.05)


def test_calls_reuse_one_kept_alive_connection(keepalive: Callable[..., KeepAlive]) -> None:
    peer = keepalive()
    with any_browser.Client(peer.port, autostart=False) as client:
        assert [client.call("http://a.test/", "m", i) for i in range(5)] == list(range(5))
        client._request("GET", "/v1/status", None, 5.0)
    assert peer.connections == 1
    assert len(peer.requests) == 6

    async def run() -> list[Any]:
        async with any_browser.AsyncClient(peer.port, autostart=False) as client:
            results = [await client.call("http://a.test/", "m", i) for i in range(3)]
            # Four at once take four connections, which then stay for later calls.
            results += await asyncio.gather(
                *(client.call("http://a.test/", "m", i) for i in range(4))
            )
            results += await asyncio.gather(
                *(client.call("http://a.test/", "m", i) for i in range(4))
            )
            await client._request("GET", "/v1/status", None, 5.0)
            return results

    assert asyncio.run(run()) == [0, 1, 2] + [0, 1, 2, 3] * 2
    assert peer.connections == 1 + 4


def test_a_connection_the_server_closed_while_idle_is_not_used(
    keepalive: Callable[..., KeepAlive],
) -> None:
    # The peer closes every connection after one answer, without `Connection: close`.
    peer = keepalive(close_after=1)
    with any_browser.Client(peer.port, autostart=False) as client:
        for i in range(3):
            assert client.call("http://a.test/", "m", i) == i
            settle()

    async def run() -> None:
        async with any_browser.AsyncClient(peer.port, autostart=False) as client:
            for i in range(3):
                assert await client.call("http://a.test/", "m", i) == i
                await asyncio.sleep(0.05)

    asyncio.run(run())
    # Each call was sent exactly once, each on a connection of its own.
    assert len(peer.requests) == 6
    assert peer.connections == 6


def test_a_call_is_never_sent_twice_but_a_get_is_retried(
    keepalive: Callable[..., KeepAlive],
) -> None:
    # Request 2 (on the kept-alive connection of request 1) is read, then the
    # connection closes without an answer: the server may have run the call, so the
    # client must not send it again. A GET in the same spot is resent once.
    for use in ("sync", "async"):
        peer = keepalive(drop=(2, 4))

        async def run_async() -> None:
            async with any_browser.AsyncClient(peer.port, autostart=False) as client:
                assert await client.call("http://a.test/", "m", 1) == 1
                with pytest.raises(any_browser.ServerUnavailable):
                    await client.call("http://a.test/", "m", 2)
                assert await client.call("http://a.test/", "m", 3) == 3
                assert await client._request("GET", "/v1/status", None, 5.0) == (200, b"{}")

        if use == "sync":
            with any_browser.Client(peer.port, autostart=False) as client:
                assert client.call("http://a.test/", "m", 1) == 1
                with pytest.raises(any_browser.ServerUnavailable):
                    client.call("http://a.test/", "m", 2)
                assert client.call("http://a.test/", "m", 3) == 3
                assert client._request("GET", "/v1/status", None, 5.0) == (200, b"{}")
        else:
            asyncio.run(run_async())
        lines = [line for _, line in peer.requests]
        assert lines == [b"POST /v1/call HTTP/1.1"] * 3 + [b"GET /v1/status HTTP/1.1"] * 2, use
        # 1+2 on the first connection, 3+4 on the second, the resent GET on a third.
        assert [n for n, _ in peer.requests] == [1, 1, 2, 2, 3], use
