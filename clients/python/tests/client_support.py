"""Helpers of the Python client's tests: where the repository and the built binaries
are, free ports, starting and stopping processes.

Plain functions and constants that test modules import; the fixtures built on them
are in `conftest.py` (which pytest loads, and which is not for importing).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from any_browser import _http

REPO = Path(__file__).resolve().parents[3]
SRC = REPO / "clients" / "python" / "src"
ANY = REPO / "target" / "release" / "any"
FAKE_EXTENSION = REPO / "target" / "release" / "fake-extension"
FIXTURES = REPO / "crates" / "protocol" / "fixtures"

# The label of the session's fake extension; calls routed to it say `browser=FAKE_LABEL`.
FAKE_LABEL = "fake"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def built(path: Path) -> Path:
    """`path`, or the test fails saying how to build it."""
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"{path} is not built: run `./build.sh build` and "
            f"`cargo build --release -p fake-extension`",
            pytrace=False,
        )
    return path


def wait_healthy(port: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            status, _ = _http.request("127.0.0.1", port, "GET", "/v1/health", None, 1.0)
            if status == 200:
                return
        except _http.Unreachable:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no any server answered on port {port} within {within} s")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Server:
    port: int
    log: Path


StartServer = Callable[..., Server]
StartFake = Callable[[int, str], "subprocess.Popen[bytes]"]


