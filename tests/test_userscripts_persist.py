"""Userscripts hosted by any, as the browser keeps and shows them: a script added through
`any scripts add` still defines its method after the browser restarts with no server
running, and the extension's popup lists the scripts, their patterns and whether each is
active on the current tab.

Runs in the pytest process; drives `any serve --scripts-dir DIR`, `any browser
--headless` with a DevTools port (`--chromium-arg=--remote-debugging-port=0`) on a temp
profile, and the browser through the DevTools protocol (tests/cdp.py): page targets it
opens itself, `Runtime.evaluate` in a page's main world, and the popup page opened as a
tab. Each test starts and stops its own server and browser (`stack`).
"""

from __future__ import annotations

import socket
import subprocess
import textwrap
import time
from pathlib import Path

from cdp import Cdp, devtools_port

EXTENSION_ID = "knhhpckbjemjphphdhibpcjmgbngnmig"
POPUP_URL = f"chrome-extension://{EXTENSION_ID}/popup.html"

NAME = "e2e persist"
METHOD = "persistInfo"
# Matches the strict-CSP page only (any port, any query); plain.html is not matched.
MATCH = "http://127.0.0.1/csp.html*"
SCRIPT = textwrap.dedent(f"""\
    // ==UserScript==
    // @name         {NAME}
    // @version      2.5
    // @match        {MATCH}
    // @exclude-match http://127.0.0.1/csp.html?excluded*
    // @run-at       document-start
    // ==/UserScript==
    globalThis.__any__ = globalThis.__any__ || {{}};
    globalThis.__any__.{METHOD} = async () => ({{ title: document.title, href: location.href }});
""")


def any_cli(any_bin: Path, port: int, *args: str):
    """(exit code, stdout, stderr) of `any ARGS… --port P`."""
    done = subprocess.run([str(any_bin), *args, "--port", str(port)], capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def served_with_script(stack, tmp_path: Path):
    """A server with its own scripts dir, a connected browser with a DevTools port, and
    SCRIPT added through the CLI: (server, browser)."""
    server = stack.server()
    server.start(args=("--scripts-dir", str(tmp_path / "scripts")))
    browser = stack.browser(server.port, chromium_args=("--remote-debugging-port=0",))
    browser.start()
    server.wait_extension()
    file = tmp_path / "persist.user.js"
    file.write_text(SCRIPT)
    code, out, err = any_cli(stack.any_bin, server.port, "scripts", "add", str(file))
    assert code == 0, (code, out, err)
    assert out.startswith(f'added "{NAME}": {MATCH}'), out
    return server, browser


def open_tab(cdp: Cdp, url: str, background: bool = False) -> dict:
    """A new page target at `url` (`Target.createTarget`), from the target list."""
    with cdp.browser() as b:
        target = b.send("Target.createTarget", {"url": url, "background": background})["targetId"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for t in cdp.targets():
            if t["id"] == target:
                return t
        time.sleep(0.05)
    raise AssertionError(f"no target {target} for {url}: {cdp.targets()}")


def poll(session, expression: str, until, timeout: float = 8.0):
    """Evaluates `expression` (in the target's main world) until `until(value)` holds or
    `timeout` passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = session.evaluate(expression)
        except RuntimeError as err:  # e.g. the context went away during navigation
            value = f"(evaluate failed: {err})"
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


# What the main world of a page says once its document is loaded: where it is and whether
# the hosted script's method exists there.
PAGE_STATE = (f"({{href: location.href, ready: document.readyState, "
              f"method: typeof globalThis.__any__?.{METHOD}}})")


def loaded_state(cdp: Cdp, url: str, until_method: bool, timeout: float = 8.0):
    """(PAGE_STATE of a tab at `url` once loaded, how many loads it took). With
    `until_method`, the page is loaded again (a new document each time) until the method
    is there or `timeout` passes: a userscript runs in the documents that start after it
    is registered, and a browser that just started registers its extension's scripts a
    moment after its first pages may have loaded."""
    deadline = time.monotonic() + timeout
    loads = 1
    with cdp.session(open_tab(cdp, url)) as page:
        while True:
            state = poll(page, PAGE_STATE, lambda v: isinstance(v, dict) and v["href"] == url
                         and v["ready"] == "complete", timeout=max(deadline - time.monotonic(), 1))
            if not until_method or not isinstance(state, dict) or state["method"] == "function" \
                    or time.monotonic() > deadline:
                return state, loads
            time.sleep(0.2)
            page.send("Page.navigate", {"url": "about:blank"})
            poll(page, "location.href", lambda v: v == "about:blank", timeout=2)
            page.send("Page.navigate", {"url": url})
            loads += 1


def nothing_listens(port: int) -> bool:
    """Whether a TCP connect to 127.0.0.1:port is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


# The popup's row for SCRIPT: name and version, patterns (exclusions as `not …`), and
# what it says for the current tab.
PATTERNS = f"{MATCH}, not http://127.0.0.1/csp.html?excluded*"


def popup_text(cdp: Cdp, current: str, row: str) -> str:
    """The popup's text once it shows `row`, opened while the tab at `current` is the
    active tab of the window.

    The popup takes "the current tab" to be `chrome.tabs.query({active: true,
    currentWindow: true})`. Opened as a foreground tab, that would be the popup itself; so
    it is opened as a background tab (`Target.createTarget` with `background: true`) in
    the window where `current` is in front, and its own query is checked to name
    `current` before its text is read."""
    with cdp.session(open_tab(cdp, POPUP_URL, background=True)) as popup:
        seen = poll(popup, "chrome.tabs.query({active: true, currentWindow: true})"
                           ".then((t) => t.map((x) => x.url))", lambda v: v == [current])
        assert seen == [current], f"the popup's current tab: {seen}"
        text = poll(popup, "document.body.innerText", lambda v: isinstance(v, str) and row in v)
        assert row in text, text
        return text


def test_a_hosted_script_survives_a_browser_restart_without_a_server(stack, pages, tmp_path):
    server, browser = served_with_script(stack, tmp_path)
    csp = f"{pages}/csp.html?persist"
    assert server.call(csp, METHOD)["title"] == "any strict CSP page"

    # No server, no browser; then the same profile again, still with no server.
    server.stop()
    browser.stop()
    assert browser.chromium_pids() == []
    assert nothing_listens(server.port)
    (browser.profile / "DevToolsActivePort").unlink(missing_ok=True)
    restarted = time.monotonic()
    browser.start()
    cdp = Cdp(devtools_port(browser.profile))

    after = f"{pages}/csp.html?after-restart"
    state, loads = loaded_state(cdp, after, until_method=True)
    seen = time.monotonic() - restarted
    print(f"\nmethod defined on a page loaded after the restart: {seen * 1000:.0f} ms after "
          f"`any browser` started, at load {loads}")
    assert state == {"href": after, "ready": "complete", "method": "function"}, \
        f"{state}\n{browser.tail()}"

    # Not on a page its @match does not match, nor on one its @exclude-match excludes.
    for url in (f"{pages}/plain.html?after-restart", f"{pages}/csp.html?excluded"):
        state, _ = loaded_state(cdp, url, until_method=False)
        assert state == {"href": url, "ready": "complete", "method": "undefined"}, state

    # The popup, with no server, still lists it as active on the matching page.
    loaded_state(cdp, after, until_method=True)
    text = popup_text(cdp, after, f"{NAME} 2.5\t{PATTERNS}\tactive")
    assert text.split("\n", 1)[0] != "any connected", text
    assert nothing_listens(server.port)  # no server ran at any point after the restart


def test_the_popup_lists_the_scripts_their_patterns_and_where_they_are_active(stack, pages,
                                                                              tmp_path):
    """With a server and SCRIPT added: the popup's "Userscripts hosted by any" table has
    one row per script — name and version, the patterns it runs on, and for the current
    tab `active` (matched, enabled, registered) or `—` (not matched)."""
    server, browser = served_with_script(stack, tmp_path)
    cdp = Cdp(devtools_port(browser.profile))

    matching = f"{pages}/csp.html?popup"
    assert loaded_state(cdp, matching, until_method=True)[0]["method"] == "function"
    text = popup_text(cdp, matching, f"{NAME} 2.5\t{PATTERNS}\tactive")
    assert "Userscripts hosted by any\n" in text and "script\truns on\tthis tab" in text, text
    assert text.startswith("any connected"), text

    plain = f"{pages}/plain.html?popup"
    loaded_state(cdp, plain, until_method=False)
    popup_text(cdp, plain, f"{NAME} 2.5\t{PATTERNS}\t—")
