"""Autostart: start `any serve` for the caller when no server answers on its address.

Runs in the caller's process. The server it starts is detached: a session of its own
(a Ctrl-C in the caller's terminal does not reach it), stdin from /dev/null, stdout and
stderr appended to the same log file `any call` uses when it starts a server
(`~/.local/share/any/server-<port>.log`). So it outlives the script, and the next
script finds it running. `start` is safe to race: whoever starts second finds the first
one's server healthy (or its own `any serve` exits on the taken port while the first
one answers).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Union

from . import _http, _token
from .api import Health
from .errors import ProtocolError, ServerUnavailable

BinaryPath = Union[str, "os.PathLike[str]"]

# How long a started server gets to answer `GET /v1/health`.
START_WAIT_S = 10.0
# One health probe; a local server answers in milliseconds.
PROBE_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.05

HOW_TO_INSTALL = (
    "build it with `./build.sh build` in the any repository, then put target/release/any "
    "on PATH or pass binary='/path/to/target/release/any'"
)

# Popen arguments that detach the server from the caller's session.
_DETACHED: dict[str, Any]
if sys.platform == "win32":
    _DETACHED = {
        "creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    }
else:
    _DETACHED = {"start_new_session": True}


_log = logging.getLogger(__name__)


def log_path(port: int) -> Path:
    """Where an autostarted server on `port` writes its log: `any call`'s choice too
    (`$XDG_DATA_HOME/any`, else `~/.local/share/any`)."""
    return _token.data_dir() / f"server-{port}.log"


def start(host: str, port: int, binary: BinaryPath | None) -> None:
    """Makes sure an any server answers on `host:port`, starting one if none does.

    Returns once `GET /v1/health` answers; raises `ServerUnavailable` otherwise.
    """
    if healthy(host, port):
        return
    exe = find_binary(binary, host, port)
    log = log_path(port)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [exe, "serve", "--host", host, "--port", str(port)]
    with open(log, "ab") as out:
        out.write(f"--- any_browser (Python) is starting `{' '.join(command)}` ---\n".encode())
        out.flush()
        server = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            close_fds=True,
            **_DETACHED,
        )
    _log.info("started `%s` (pid %d); log: %s", " ".join(command), server.pid, log)
    deadline = time.monotonic() + START_WAIT_S
    while not healthy(host, port):
        code = server.poll()
        if code is not None:
            raise ServerUnavailable(
                f"`{' '.join(command)}` exited with status {code} before answering on "
                f"{_http.netloc(host, port)}: {_tail(log)} (log: {log})"
            )
        if time.monotonic() > deadline:
            server.kill()
            raise ServerUnavailable(
                f"`{' '.join(command)}` did not answer on {_http.netloc(host, port)} within "
                f"{START_WAIT_S:g} s, so it was stopped; its log is {log}"
            )
        time.sleep(POLL_INTERVAL_S)


def healthy(host: str, port: int) -> bool:
    """Whether an any server answers `GET /v1/health` on `host:port`.

    False when nothing listens there, and also when something else answers: the
    `any serve` then started exits on the taken port, and its log says so.
    """
    try:
        status, body = _http.request(host, port, "GET", "/v1/health", None, PROBE_TIMEOUT_S)
        return status == 200 and Health.from_json(body).ok
    except (_http.Unreachable, ProtocolError):
        return False


def find_binary(binary: BinaryPath | None, host: str, port: int) -> str:
    """The `any` executable: `binary` when given, else `any` on PATH."""
    if binary is not None:
        found = shutil.which(os.fspath(binary))
        if found is None:
            raise ServerUnavailable(
                f"no any server answers on {_http.netloc(host, port)}, and the binary "
                f"{os.fspath(binary)!r} given to start one is not an executable file — "
                f"{HOW_TO_INSTALL}"
            )
        return found
    found = shutil.which("any")
    if found is None:
        raise ServerUnavailable(
            f"no any server answers on {_http.netloc(host, port)}, and there is no `any` "
            f"binary on PATH to start one — {HOW_TO_INSTALL}"
        )
    return found


def _tail(log: Path) -> str:
    """The last lines of the server's log, the likeliest to say why it stopped."""
    lines = log.read_text(errors="replace").strip().splitlines()
    return " / ".join(lines[-3:]) or "(its log is empty)"
