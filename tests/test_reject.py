"""A server that refuses the extension: the built extension in real headless Chromium
(`any browser --headless`, with a DevTools port) against a tiny rejecting server.

The real `any serve` never rejects a correct extension, so the rejecting end is written
here with the standard library (asyncio streams, RFC 6455 by hand): it answers the
extension's plain HTTP probe (`GET /v1/extension` without Upgrade, which the worker
fetches before opening a socket) with 426, accepts the WebSocket upgrade, reads the
masked `hello`, sends `{"v":1,"type":"reject","reason":...}` unmasked, and closes.

What is asserted is what extension/README.md promises ("reject: no more retries for
that address; the popup shows the reason; retries resume ... when the browser
restarts"): exactly one upgrade and no further probe in the 5 s after the reject (the
1 s retry would make about five), the reason in the popup page, and a restarted browser
on the same profile connecting to a real `any serve` on that port.

That the real server records the refusals it sends in `/v1/status` `rejected` and that
`any status` lists them under "Refused" is covered in Rust
(crates/server/tests/security.rs `a_wrong_protocol_version_is_recorded_for_any_status`,
and the rendering test in crates/server/src/cli.rs), so it is not repeated here.

Runs in the pytest process: the rejecting server in a thread of its own (an asyncio
loop on 127.0.0.1:0); everything started is stopped at teardown.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import struct
import threading
import time

import pytest

from cdp import Cdp, devtools_port

EXTENSION_ID = "knhhpckbjemjphphdhibpcjmgbngnmig"
POPUP_URL = f"chrome-extension://{EXTENSION_ID}/popup.html"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# How long the extension must stay away after the reject; its retry is every 1 s.
QUIET_S = 5.0


class RejectingServer:
    """An HTTP + WebSocket endpoint on 127.0.0.1 that rejects every `hello` with
    `reason`. Records each request: `probes` (plain GETs), `upgrades` (monotonic time,
    Origin header), `hellos` (the parsed first frames), `rejected_at` (times the reject
    was sent)."""

    def __init__(self, reason: str):
        self.reason = reason
        self.probes: list[tuple[float, str]] = []
        self.upgrades: list[tuple[float, str | None]] = []
        self.hellos: list[dict] = []
        self.rejected_at: list[float] = []
        self.errors: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(5), "the rejecting server did not start"

    # ------------------------------------------------------------ lifecycle

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        if self.loop.is_closed():
            return

        async def shut():
            self.server.close()
            await self.server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(5)
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()

    def summary(self) -> str:
        return (f"probes={[(round(t, 2), p) for t, p in self.probes]} "
                f"upgrades={[round(t, 2) for t, _ in self.upgrades]} "
                f"rejects={[round(t, 2) for t in self.rejected_at]} errors={self.errors}")

    # ------------------------------------------------------------ one connection

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            request = lines[0]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if headers.get("upgrade", "").lower() != "websocket":
                # The worker's probe: any answer means "something is there".
                self.probes.append((time.monotonic(), request))
                writer.write(b"HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: 25\r\nConnection: close\r\n\r\n"
                             b"a WebSocket endpoint only")
                await writer.drain()
                return
            self.upgrades.append((time.monotonic(), headers.get("origin")))
            accept = base64.b64encode(hashlib.sha1(
                (headers["sec-websocket-key"] + WS_GUID).encode()).digest()).decode()
            writer.write((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
                         .encode())
            await writer.drain()
            opcode, payload = await asyncio.wait_for(self._frame(reader), 10)
            if opcode == 0x1:
                self.hellos.append(json.loads(payload))
            else:
                self.errors.append(f"first frame had opcode {opcode:#x}")
            reject = json.dumps({"v": 1, "type": "reject", "reason": self.reason}).encode()
            writer.write(self._unmasked(0x1, reject))
            writer.write(self._unmasked(0x8, struct.pack(">H", 1008) + b"rejected"))
            await writer.drain()
            self.rejected_at.append(time.monotonic())
            # Give the client's close frame a moment, then drop the connection.
            try:
                await asyncio.wait_for(self._frame(reader), 2)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                pass
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError,
                asyncio.LimitOverrunError, KeyError, ValueError) as err:
            self.errors.append(f"{type(err).__name__}: {err}")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    @staticmethod
    async def _frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        """One whole (unfragmented) frame from the client, unmasked."""
        b0, b1 = await reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", await reader.readexactly(8))[0]
        mask = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
        data = await reader.readexactly(n)
        return b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    @staticmethod
    def _unmasked(opcode: int, payload: bytes) -> bytes:
        n = len(payload)
        if n < 126:
            header = bytes([0x80 | opcode, n])
        elif n < 1 << 16:
            header = bytes([0x80 | opcode, 126]) + struct.pack(">H", n)
        else:
            header = bytes([0x80 | opcode, 127]) + struct.pack(">Q", n)
        return header + payload


@pytest.fixture
def rejecting():
    reason = (f"protocol version 2 is not supported: this end speaks v1 "
              f"[test_reject {secrets.token_hex(6)}]")
    server = RejectingServer(reason)
    yield server
    server.close()


def popup_text(cdp: Cdp, needle: str, timeout: float = 5.0) -> str:
    """Opens the popup page in a tab and returns its `document.body.innerText` once it
    contains `needle` (or whatever it shows when `timeout` runs out)."""
    with cdp.browser() as b:
        target = b.send("Target.createTarget", {"url": POPUP_URL})["targetId"]
    tab = next(t for t in cdp.targets() if t["id"] == target)
    text = ""
    with cdp.session(tab) as page:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                text = page.evaluate("document.body ? document.body.innerText : ''") or ""
            except RuntimeError:
                text = ""
            if needle in text:
                break
            time.sleep(0.1)
    with cdp.browser() as b:
        b.send("Target.closeTarget", {"targetId": target})
    return text


def test_a_rejected_extension_stops_retrying_shows_the_reason_and_reconnects_after_a_restart(
        stack, rejecting):
    began = time.monotonic()
    port = rejecting.port
    browser = stack.browser(port, chromium_args=("--remote-debugging-port=0",))
    browser.start()

    # The extension connects once and is rejected.
    deadline = time.monotonic() + 20
    while not rejecting.rejected_at and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rejecting.rejected_at, (f"the extension never completed a hello: "
                                   f"{rejecting.summary()}\n{browser.tail()}")
    rejected = rejecting.rejected_at[0]
    print(f"\nrejected {rejected - began:.2f} s after `any browser` started")
    assert rejecting.upgrades[0][1] == f"chrome-extension://{EXTENSION_ID}", rejecting.upgrades
    hello = rejecting.hellos[0]
    assert (hello["v"], hello["type"]) == (1, "hello"), hello

    # The popup shows the reason (looked at while the quiet period runs).
    cdp = Cdp(devtools_port(browser.profile))
    text = popup_text(cdp, rejecting.reason)
    print(f"popup shown {time.monotonic() - rejected:.2f} s after the reject:\n"
          f"{text[:400]}")
    assert rejecting.reason in text, text
    assert "rejected" in text.lower(), text

    # ... and it does not come back to this address.
    time.sleep(max(0.0, rejected + QUIET_S - time.monotonic()))
    upgrades = len(rejecting.upgrades)
    later_probes = [t for t, _ in rejecting.probes if t > rejected]
    print(f"in the {time.monotonic() - rejected:.1f} s after the reject: "
          f"{upgrades - 1} more upgrade(s), {len(later_probes)} probe(s); "
          f"{rejecting.summary()}")
    assert upgrades == 1, f"the extension retried after the reject: {rejecting.summary()}"
    assert not later_probes, f"the extension kept probing after the reject: {rejecting.summary()}"
    assert not rejecting.errors, rejecting.summary()

    # The rejection lasts until the browser restarts: the same profile, restarted,
    # against a real `any serve` on that port, connects.
    browser.stop()
    rejecting.close()
    server = stack.server(port)
    server.start()
    again = stack.browser(port, profile=browser.profile)
    restarted = time.monotonic()
    again.start()
    connected = server.wait_extension(timeout=10, poll=0.02)
    print(f"restarted browser connected to the real server after {connected - restarted:.2f} s; "
          f"test took {time.monotonic() - began:.1f} s")
