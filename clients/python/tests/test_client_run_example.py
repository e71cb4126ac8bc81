"""End to end with the real extension: `examples/run.py`, the user's original scenario,
prints the title and URL of a local page whose `pageInfo` comes from the brief's
userscript, through the real server and `any browser --headless` with the built
extension; and how it reports a failed call.

Runs `any browser` (and so Chromium) and a loopback page server from the pytest
process; all are stopped at the end, and any Chromium still holding the test's profile
is killed. The browser test is skipped only when the extension is not built
(`./build.sh build`).
"""

from __future__ import annotations

import functools
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from .client_support import ANY, REPO, SRC, Server, StartServer, stop

from any_browser import Client

EXTENSION = REPO / "dist" / "extension"
PAGES = Path(__file__).resolve().parent / "pages"
# How long the extension may take to connect to the server once Chromium starts.
CONNECT_WAIT_S = 30.0

needs_extension = pytest.mark.skipif(
    not (EXTENSION / "manifest.json").is_file(),
    reason=f"the extension is not built ({EXTENSION} has no manifest.json): ./build.sh build",
)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_base() -> Iterator[str]:
    """The base URL of `tests/pages/`, served on a free loopback port."""
    handler = functools.partial(QuietHandler, directory=str(PAGES))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def browser_port(start_server: StartServer, tmp_path: Path) -> Iterator[int]:
    """The port of a server with `any browser --headless` connected to it."""
    server = start_server()
    profile = tmp_path / "profile"
    log = tmp_path / "browser.log"
    with open(log, "wb") as out:
        browser = subprocess.Popen(
            [str(ANY), "browser", "--headless", "--port", str(server.port), "--profile", str(profile)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        client = Client(server.port, autostart=False)
        deadline = time.monotonic() + CONNECT_WAIT_S
        while not client.status().extensions:
            assert browser.poll() is None, f"any browser exited: {log.read_text()}"
            assert time.monotonic() < deadline, (
                f"the extension did not connect within {CONNECT_WAIT_S} s\n"
                f"--- any browser:\n{log.read_text()}\n--- server:\n{server.log.read_text()}"
            )
            time.sleep(0.1)
        yield server.port
    finally:
        stop(browser)
        kill_chromium_of(profile)


def kill_chromium_of(profile: Path) -> None:
    """Kills whatever still runs with `--user-data-dir=<profile>` (a safety net)."""
    needle = f"--user-data-dir={profile}".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle in f.read().split(b"\0"):
                    os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def run_py(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "run.py"), *args],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_extension
def test_run_py_prints_the_page_title_and_url(browser_port: int, page_base: str) -> None:
    page = f"{page_base}/run-example.html"
    run = run_py(page, "--port", str(browser_port))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "title: Example Domain (local)",
        f"url:   {page}",
    ]


def test_run_py_reports_a_failed_call(server: Server) -> None:
    # The fake extension defines no pageInfo.
    run = run_py("http://127.0.0.1:9/", "--port", str(server.port))
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.startswith("run.py: MethodNotFound: ")
