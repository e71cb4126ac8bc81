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
    # In a fresh interpreter: urllib reads the proxy variables when an opener is built.
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
