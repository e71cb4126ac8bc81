"""A minimal Chrome DevTools Protocol client for the fault tests: the HTTP target list of
a Chromium started with `--remote-debugging-port`, and one WebSocket session per target
to send commands (`Runtime.evaluate`, `ServiceWorker.stopAllWorkers`, ...).

Runs in the pytest process, stdlib only (RFC 6455 text frames: the client masks, the
browser does not; fragments and 16/64-bit lengths are handled). Talks to 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
import urllib.parse
from pathlib import Path

from any_e2e import OPENER


def devtools_port(profile: Path, timeout: float = 15.0) -> int:
    """The port Chromium chose for `--remote-debugging-port=0` (first line of
    `<profile>/DevToolsActivePort`)."""
    path = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            time.sleep(0.05)
    raise AssertionError(f"Chromium wrote no {path} within {timeout}s")


class Cdp:
    """The DevTools endpoint of one browser on 127.0.0.1:port."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def targets(self) -> list[dict]:
        with OPENER.open(self.base + "/json/list", timeout=5) as resp:
            return json.loads(resp.read())

    def find(self, kind: str, url_prefix: str, timeout: float = 10.0) -> dict:
        """The first target of type `kind` (page, service_worker, ...) whose URL starts
        with `url_prefix`, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while True:
            for target in self.targets():
                if target["type"] == kind and target["url"].startswith(url_prefix):
                    return target
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} target at {url_prefix}…: {self.targets()}")
            time.sleep(0.05)

    def session(self, target: dict) -> Session:
        return Session(target["webSocketDebuggerUrl"])

    def browser(self) -> Session:
        with OPENER.open(self.base + "/json/version", timeout=5) as resp:
            return Session(json.loads(resp.read())["webSocketDebuggerUrl"])


class Session:
    """One DevTools WebSocket: `send` a command, get its `result` (events are skipped)."""

    def __init__(self, url: str, timeout: float = 10.0):
        parts = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the socket during the handshake")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"DevTools refused the WebSocket: {head.decode(errors='replace')}")
        self.next_id = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, method: str, params: dict | None = None, wait: bool = True):
        """Sends one command; with `wait`, returns its result (raises on a CDP error)."""
        self.next_id += 1
        ident = self.next_id
        self._write(json.dumps({"id": ident, "method": method, "params": params or {}}))
        if not wait:
            return None
        while True:
            message = json.loads(self._read())
            if message.get("id") != ident:
                continue
            if "error" in message:
                raise RuntimeError(f"{method}: {message['error']}")
            return message.get("result", {})

    def evaluate(self, expression: str, wait: bool = True):
        """`Runtime.evaluate` of `expression` (promises awaited); its value."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, wait=wait)
        if result is None:
            return None
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _write(self, text: str) -> None:
        payload = text.encode()
        header = bytearray([0x81])  # FIN + text
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        header += mask
        self.sock.sendall(bytes(header) + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("DevTools closed the socket")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _read(self) -> str:
        """The next whole text message (control frames other than close are skipped)."""
        parts = []
        while True:
            b0, b1 = self._exactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exactly(8))[0]
            payload = self._exactly(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the session")
            if opcode in (0x1, 0x0):
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts).decode()
