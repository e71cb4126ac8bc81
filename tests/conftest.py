"""Fixtures of the end-to-end suite: the real `any` server, the built extension in real
headless Chromium (`any browser --headless`), and local test pages over loopback HTTP.

Runs in the pytest process. The machinery lives in any_e2e.py; this file only decides
what is shared: one page server and one server+browser for the whole session, and a
`stack` per test for the tests that start and stop their own. All of it is stopped at
teardown, also when a test fails.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from any_e2e import ROOT, PageHandler, Stack


def pytest_addoption(parser):
    parser.addoption("--any", default=str(ROOT / "target" / "release" / "any"),
                     help="the any binary (default: target/release/any)")
    parser.addoption("--extension", default=str(ROOT / "dist" / "extension"),
                     help="the built extension (default: dist/extension)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report ends with the logs of the servers and browsers it used."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for name in ("shared", "stack"):
        fixture = item.funcargs.get(name)
        stack = getattr(fixture, "stack", fixture)
        if isinstance(stack, Stack):
            for title, text in stack.logs():
                report.sections.append((f"log: {title}", text))


@pytest.fixture(scope="session")
def pages():
    """Base URL of the test pages, e.g. `http://127.0.0.1:41234`."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# ---------------------------------------------------------------- the stack


@pytest.fixture(scope="session")
def built(pytestconfig):
    """(any binary, extension dir), checked to exist."""
    any_bin = Path(pytestconfig.getoption("--any")).resolve()
    extension = Path(pytestconfig.getoption("--extension")).resolve()
    if not any_bin.is_file():
        pytest.exit(f"{any_bin} is missing: run ./build.sh build", returncode=2)
    if not (extension / "manifest.json").is_file():
        pytest.exit(f"{extension} has no manifest.json: run ./build.sh build", returncode=2)
    return any_bin, extension


@pytest.fixture
def stack(built, tmp_path):
    """A place to start this test's own servers and browsers; all stopped at teardown."""
    s = Stack(*built, tmp_path)
    yield s
    s.stop_all()


@pytest.fixture(scope="session")
def shared(built, tmp_path_factory):
    """One server and one connected headless browser shared by the tests that need no
    stack of their own."""
    s = Stack(*built, tmp_path_factory.mktemp("shared"))
    try:
        server = s.server()
        server.start()
        browser = s.browser(server.port)
        browser.start()
        try:
            server.wait_extension()
        except AssertionError as err:
            raise AssertionError(f"{err}\n--- browser log:\n{browser.tail()}") from None
        server.stack = s  # lets a failure report show the logs
        yield server
    finally:
        s.stop_all()
