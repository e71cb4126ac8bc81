"""`any browser --load-with cdp`: the extension loaded through the DevTools protocol
(`Extensions.loadUnpacked`) instead of `--load-extension`, the way branded Google Chrome
137+ needs. Here it runs with Debian's Chromium, which accepts both ways, so the test
proves the DevTools path end to end: the real server, `any browser` in headless Chromium,
a call on a local page over loopback.

Runs in the pytest process; each test starts its own server and browser (`stack`).
"""

from __future__ import annotations

import time
from pathlib import Path

EXTENSION_ID = "knhhpckbjemjphphdhibpcjmgbngnmig"


def browser_command_line(browser) -> list[str]:
    """The command line of the Chromium browser process of `browser`'s profile (the one
    whose arguments `any browser` chose; helpers carry `--type=`)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for pid in browser.chromium_pids():
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            if not any(arg.startswith("--type=") for arg in args):
                return args
        time.sleep(0.05)
    raise AssertionError(f"no Chromium runs on {browser.profile}\n{browser.tail()}")


def start_and_connect(server, browser, how: str) -> None:
    """Starts `browser` and waits for its extension on `server`; prints how long that took."""
    started = time.monotonic()
    browser.start()
    connected = server.wait_extension()
    print(f"\n{how}: extension connected {(connected - started) * 1000:.0f} ms "
          f"after `any browser` started")


def test_extension_loaded_through_devtools_connects_and_serves_a_call(stack, pages):
    server = stack.server()
    server.start()
    profile = stack.tmp / "profile-cdp"
    profile.mkdir()
    # A DevToolsActivePort left by an earlier run names a dead port: it must not be used.
    (profile / "DevToolsActivePort").write_text("1\n/devtools/browser/stale\n")
    browser = stack.browser(server.port, profile=profile, args=("--load-with", "cdp"))
    start_and_connect(server, browser, "--load-with cdp")

    args = browser_command_line(browser)
    # (Debian's chromium wrapper adds a `--load-extension=` of its own, for its packaged
    # extensions.)
    assert f"--load-extension={profile / 'any-extension'}" not in args, args
    assert "--remote-debugging-port=0" in args, args
    assert "--enable-unsafe-extension-debugging" in args, args
    port, path = (profile / "DevToolsActivePort").read_text().split()[:2]
    assert int(port) > 1 and path != "/devtools/browser/stale"
    log = browser.log.read_text()
    assert f"extension {EXTENSION_ID} loaded through DevTools on 127.0.0.1:{port}" in log, log

    page = f"{pages}/plain.html"
    info = server.call(page, "pageInfo", {"delay": 10})
    assert info == {"title": "any plain page", "url": page, "readyState": "complete"}
    [extension] = server.status()["extensions"]
    assert extension.get("label") in (None, ""), extension

    # Stopping `any browser` stops the browser it loaded the extension into.
    browser.proc.terminate()
    browser.proc.wait(15)
    assert browser.proc.returncode == 0, browser.tail()
    deadline = time.monotonic() + 10
    while browser.chromium_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert browser.chromium_pids() == []


def test_auto_keeps_load_extension_for_debian_chromium(stack):
    """The default (`--load-with auto`) on a Chromium that is not branded Google Chrome:
    `--load-extension`, no DevTools port."""
    server = stack.server()
    server.start()
    browser = stack.browser(server.port)
    start_and_connect(server, browser, "--load-with auto (flag here)")
    args = browser_command_line(browser)
    assert f"--load-extension={browser.profile / 'any-extension'}" in args, args
    assert not any(arg.startswith("--remote-debugging") for arg in args), args
    assert "loaded with --load-extension" in browser.log.read_text()
