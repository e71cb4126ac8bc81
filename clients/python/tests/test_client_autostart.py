"""Autostart: a client finding no server on its port starts `any serve` there, detached
so that it outlives the script; without a binary it says how to get one. Each test uses
a fresh free port and stops whatever it started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from .client_support import free_port

import any_browser
from any_browser import _server

PAGE = "http://127.0.0.1:9/page"


@pytest.fixture
def cold_port(any_binary: Path) -> Iterator[int]:
    """A free port; whatever server answers on it at the end is stopped with `any stop`."""
    port = free_port()
    yield port
    if _server.healthy("127.0.0.1", port):
        pid = any_browser.Client(port, autostart=False).status().pid
        subprocess.run([str(any_binary), "stop", "--port", str(port)], check=True, timeout=10)
        wait_gone(pid)


def wait_gone(pid: int, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"the server (pid {pid}) did not stop within {within} s")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not reaped by us, does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_call_starts_a_detached_server(any_binary: Path, cold_port: int) -> None:
    assert not _server.healthy("127.0.0.1", cold_port)
    client = any_browser.Client(cold_port, binary=any_binary)
    started = time.monotonic()
    status = client.status()
    print(f"autostart from cold: {time.monotonic() - started:.2f} s")
    assert status.listen.endswith(f":{cold_port}")
    assert alive(status.pid)
    # Detached: a session of its own, so the script's terminal and its end do not stop it.
    assert os.getsid(status.pid) == status.pid != os.getsid(0)
    assert _server.log_path(cold_port).is_file()
    # The next client finds it running and starts nothing.
    assert any_browser.Client(cold_port, binary=any_binary).status().pid == status.pid


def test_the_server_outlives_the_script(any_binary: Path, cold_port: int) -> None:
    script = (
        "import any_browser\n"
        f"print(any_browser.Client({cold_port}, binary={str(any_binary)!r}).status().pid)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(any_browser.__file__).parents[1])}
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    pid = int(run.stdout)
    assert alive(pid)
    assert any_browser.Client(cold_port, autostart=False).status().pid == pid


def test_concurrent_async_calls_start_one_server(any_binary: Path, cold_port: int) -> None:
    async def run() -> set[int]:
        async with any_browser.AsyncClient(cold_port, binary=any_binary) as c:
            statuses = await asyncio.gather(*(c.status() for _ in range(20)))
        return {s.pid for s in statuses}

    assert len(asyncio.run(run())) == 1


def test_a_missing_binary_says_how_to_build_it(cold_port: int) -> None:
    client = any_browser.Client(cold_port, binary="/nonexistent/any")
    with pytest.raises(any_browser.ServerUnavailable) as caught:
        client.call(PAGE, "echo")
    assert "/nonexistent/any" in str(caught.value)
    assert "./build.sh build" in str(caught.value)


def test_no_any_on_path_says_how_to_install_it(
    cold_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(any_browser.ServerUnavailable) as caught:
        any_browser.call(PAGE, "echo", port=cold_port)
    assert "no `any` binary on PATH" in str(caught.value)
    assert "./build.sh build" in str(caught.value)


def test_a_server_that_exits_at_once_is_reported(cold_port: int, tmp_path: Path) -> None:
    broken = tmp_path / "any"
    broken.write_text("#!/bin/sh\necho 'cannot start: disk on fire' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(any_browser.ServerUnavailable) as caught:
        any_browser.Client(cold_port, binary=broken).status()
    assert "exited with status 3" in str(caught.value)
    assert "disk on fire" in str(caught.value)


def test_without_autostart_nothing_is_started(cold_port: int) -> None:
    with pytest.raises(any_browser.ServerUnavailable) as caught:
        any_browser.Client(cold_port, autostart=False).call(PAGE, "echo")
    assert f"any serve --port {cold_port}" in str(caught.value)
    assert not _server.healthy("127.0.0.1", cold_port)
