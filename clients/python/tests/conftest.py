"""Fixtures of the Python client's tests: the package from source, a real `any serve`
on a free port, and the `fake-extension` peer connected to it.

Runs in pytest's process; the servers and peers are child processes, stopped at the
end of the session. The binaries come from `target/release/` (`./build.sh build` and
`cargo build --release -p fake-extension`); a missing one fails the tests that need it,
with the command that builds it.
"""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

# The package from source, not an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from .client_support import (  # noqa: E402
    ANY,
    FAKE_EXTENSION,
    FAKE_LABEL,
    Server,
    StartFake,
    StartServer,
    built,
    free_port,
    stop,
    wait_healthy,
)


@pytest.fixture(scope="session")
def any_binary() -> Path:
    return built(ANY)


@pytest.fixture(scope="session")
def start_server(
    any_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartServer]:
    """Starts `any serve` on a free port with extra flags (and, if given, this
    environment); every one stops at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> Server:
        port = free_port()
        log = tmp_path_factory.mktemp("server") / "serve.log"
        with open(log, "wb") as out:
            started.append(
                subprocess.Popen(
                    [str(any_binary), "serve", "--port", str(port), *flags],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
        wait_healthy(port)
        return Server(port, log)

    yield start
    for process in started:
        stop(process)


@pytest.fixture(scope="session")
def start_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartFake]:
    """Connects a `fake-extension` with a label to a server; every one stops at the end."""
    binary = built(FAKE_EXTENSION)
    started: list[subprocess.Popen[bytes]] = []

    def start(port: int, label: str) -> subprocess.Popen[bytes]:
        transcript = tmp_path_factory.mktemp("fake") / f"{label}.jsonl"
        process = subprocess.Popen(
            [str(binary), "--port", str(port), "--label", label, "--transcript", str(transcript)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        started.append(process)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 10)
        assert ready, "fake-extension did not say 'ready' within 10 s"
        line = process.stdout.readline().decode().strip()
        assert line == "ready", f"fake-extension said {line!r} instead of 'ready'"
        return process

    yield start
    for process in started:
        stop(process)


@pytest.fixture(scope="session")
def server(start_server: StartServer, start_fake: StartFake) -> Server:
    """The session's server, with the fake extension labelled FAKE_LABEL connected."""
    srv = start_server()
    start_fake(srv.port, FAKE_LABEL)
    return srv
