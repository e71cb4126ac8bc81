"""Userscripts hosted by any, and ad-hoc scripts, in real headless Chromium.

Runs in the pytest process; drives `any serve --allow-scripts --scripts-dir DIR`,
`any browser --headless` (whose profile has "Allow User Scripts" on), the `any scripts`
and `any run` commands, the Python `AsyncClient`, and the strict-CSP test page. One server and browser serve the
module; the "off" case has its own browser with the switch preset to off.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from any_e2e import ROOT, Stack, http_json

sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))
import any_browser  # noqa: E402

# A userscript as a user would write it: it defines a method on the page's own
# globalThis.__any__, and reports what the page's CSP allows (eval must stay blocked).
HOSTED = textwrap.dedent("""\
    // ==UserScript==
    // @name         e2e hosted
    // @version      1.0
    // @match        http://127.0.0.1/*
    // @exclude-match http://127.0.0.1/plain.html
    // @grant        none
    // @run-at       document-start
    // ==/UserScript==
    globalThis.__any__ = globalThis.__any__ || {};
    globalThis.__any__.hostedInfo = async ({ word = "" } = {}) => {
      let evalBlocked = false;
      try { eval("1"); } catch (e) { evalBlocked = e instanceof EvalError; }
      return { title: document.title, word, evalBlocked, readyState: document.readyState };
    };
""")

NAME = "e2e hosted"


@pytest.fixture(scope="module")
def hosting(built, tmp_path_factory):
    """(server, scripts dir, any binary): `any serve --allow-scripts` with its own scripts
    directory, and one connected headless browser."""
    tmp = tmp_path_factory.mktemp("userscripts")
    stack = Stack(*built, tmp)
    try:
        server = stack.server()
        scripts = tmp / "scripts"
        server.start(args=("--allow-scripts", "--scripts-dir", str(scripts)))
        stack.browser(server.port).start()
        server.wait_extension()
        server.stack = stack
        yield server, scripts, built[0]
    finally:
        stack.stop_all()


def any_cli(any_bin: Path, port: int, *args: str, stdin: str | None = None):
    """(exit code, stdout, stderr) of `any --port P ARGS…`."""
    done = subprocess.run([str(any_bin), "--port", str(port), *args], input=stdin,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def defined_on(server, page: str) -> bool:
    """Whether a fresh load of `page` has `hostedInfo`, asked with an ad-hoc script (the
    module's server runs with --allow-scripts): quicker and steadier than waiting for a
    call's `method_not_found`."""
    status, body = http_json("POST", server.base + "/v1/run", {
        "page": page, "script": "return typeof globalThis.__any__?.hostedInfo === 'function';",
        "tab": "new", "timeout_ms": 10_000})
    assert status == 200, body
    return body["result"]


def test_a_script_added_through_the_cli_defines_a_method_on_a_strict_csp_page(hosting, pages, tmp_path):
    server, scripts, any_bin = hosting
    file = tmp_path / "hosted.user.js"
    file.write_text(HOSTED)
    code, out, err = any_cli(any_bin, server.port, "scripts", "add", str(file))
    assert code == 0, err
    assert out.startswith(f'added "{NAME}": http://127.0.0.1/*'), out
    assert (scripts / "e2e_hosted.user.js").read_text() == HOSTED

    # The very next call uses it, on the strict-CSP page, with no userscript manager.
    result = server.call(f"{pages}/csp.html", "hostedInfo", {"word": "hi"}, tab="new")
    assert result == {"title": "any strict CSP page", "word": "hi", "evalBlocked": True,
                      "readyState": result["readyState"]}

    code, out, _ = any_cli(any_bin, server.port, "scripts", "list")
    assert code == 0
    assert NAME in out and "enabled" in out and "!http://127.0.0.1/plain.html" in out, out

    # @exclude-match keeps it off plain.html.
    assert defined_on(server, f"{pages}/plain.html") is False


def test_disabling_and_enabling(hosting, pages, tmp_path):
    server, scripts, any_bin = hosting
    file = tmp_path / "hosted.user.js"
    file.write_text(HOSTED)
    assert any_cli(any_bin, server.port, "scripts", "add", str(file))[0] == 0

    code, out, err = any_cli(any_bin, server.port, "scripts", "disable", NAME)
    assert code == 0, err
    assert (scripts / "e2e_hosted.user.js.disabled").exists()
    assert defined_on(server, f"{pages}/csp.html") is False

    code, out, err = any_cli(any_bin, server.port, "scripts", "enable", NAME)
    assert code == 0, err
    assert server.call(f"{pages}/csp.html", "hostedInfo", tab="new")["evalBlocked"] is True


def test_removing_a_script_removes_the_method_after_reload(hosting, pages, tmp_path):
    server, scripts, any_bin = hosting
    file = tmp_path / "hosted.user.js"
    file.write_text(HOSTED)
    assert any_cli(any_bin, server.port, "scripts", "add", str(file))[0] == 0
    page = f"{pages}/csp.html?remove"
    assert server.call(page, "hostedInfo")["title"] == "any strict CSP page"

    code, out, err = any_cli(any_bin, server.port, "scripts", "remove", NAME)
    assert code == 0, err
    assert out.startswith(f'removed "{NAME}"'), out
    assert not (scripts / "e2e_hosted.user.js").exists()
    # A fresh load of the page: the method is gone (the page's other methods are there,
    # so the call fails about 2 s after the load).
    _, error = server.fail(page, "hostedInfo", timeout_ms=15_000, tab="new")
    assert error["code"] == "method_not_found", error
    assert "does not exist" in error["message"]

    code, _, err = any_cli(any_bin, server.port, "scripts", "remove", NAME)
    assert code == 12 and f'no hosted userscript is named "{NAME}"' in err, (code, err)


def test_the_python_asyncio_client_hosts_a_script_and_runs_one(hosting, pages, tmp_path):
    server, scripts, _ = hosting
    file = tmp_path / "hosted.user.js"
    file.write_text(HOSTED)
    page = f"{pages}/csp.html?python"

    async def steps():
        async with any_browser.AsyncClient(server.port, autostart=False, timeout=20) as c:
            added = await c.scripts.add(file)
            info, title = await asyncio.gather(
                c.call(page, "hostedInfo", {"word": "from python"}, new_tab=True),
                c.run(page, "return document.title;", new_tab=True),
            )
            listed = [s.name for s in await c.scripts.list()]
            removed = await c.scripts.remove(NAME)
            return added, info, title, listed, removed

    added, info, title, listed, removed = asyncio.run(steps())
    assert (added.name, added.enabled, added.matches) == (NAME, True, ("http://127.0.0.1/*",))
    assert added.file == str(scripts / "e2e_hosted.user.js")
    assert (info["title"], info["word"], info["evalBlocked"]) == (
        "any strict CSP page", "from python", True), info
    assert title == "any strict CSP page"
    assert NAME in listed
    assert removed.name == NAME and not (scripts / "e2e_hosted.user.js").exists()


def test_a_call_after_method_not_found_reloads_the_tab_so_a_new_script_runs(hosting, pages, tmp_path):
    server, _, any_bin = hosting
    any_cli(any_bin, server.port, "scripts", "remove", NAME)  # if an earlier test left it
    page = f"{pages}/csp.html?added-after-a-miss"
    _, error = server.fail(page, "hostedInfo", timeout_ms=5_000)
    assert error["code"] == "method_not_found", error

    file = tmp_path / "hosted.user.js"
    file.write_text(HOSTED)
    assert any_cli(any_bin, server.port, "scripts", "add", str(file))[0] == 0
    # The user fixed what was missing and calls again, without tab="new": the tab where
    # the method was missing is reloaded, and the new document has it.
    assert server.call(page, "hostedInfo", {"word": "again"})["word"] == "again"
    status, body = http_json("POST", server.base + "/v1/run", {
        "page": page, "script": 'return performance.getEntriesByType("navigation")[0].type;'})
    assert (status, body.get("result")) == (200, "reload"), body
    assert any_cli(any_bin, server.port, "scripts", "remove", NAME)[0] == 0


# A hosted script that reports, from the top frame, which frames it ran in, and whose
# errors show where they come from.
FRAMES = textwrap.dedent("""\
    // ==UserScript==
    // @name         e2e frames
    // @match        http://127.0.0.1/*
    // @run-at       document-start
    // ==/UserScript==
    globalThis.__any__ = globalThis.__any__ || {};
    if (window === top) {
      const frames = [];
      addEventListener("message", (e) => { if (e.data && e.data.ranInFrame) frames.push(e.data.ranInFrame); });
      globalThis.__any__.framesRunIn = async () => {
        if (document.readyState !== "complete") await new Promise((r) => addEventListener("load", r));
        await new Promise((r) => setTimeout(r, 200));
        return frames;
      };
      globalThis.__any__.hostedThrows = () => { throw new RangeError("thrown by a hosted script"); };
    } else {
      top.postMessage({ ranInFrame: location.pathname + location.search }, "*");
    }
""")


def test_hosted_scripts_run_in_frames_unless_noframes_and_stacks_name_them(hosting, pages,
                                                                          tmp_path):
    server, _, any_bin = hosting
    file = tmp_path / "frames.user.js"
    file.write_text(FRAMES)
    assert any_cli(any_bin, server.port, "scripts", "add", str(file))[0] == 0
    try:
        assert server.call(f"{pages}/frames.html", "framesRunIn", tab="new") == ["/plain.html?framed"]
        status, error = server.fail(f"{pages}/frames.html", "hostedThrows")
        assert (status, error["name"]) == (422, "RangeError"), error
        # The file's own line numbers (line 15 is the throw) under the script's name.
        assert "any-userscripts/e2e%20frames.user.js:15" in error["stack"], error
        file.write_text(FRAMES.replace("// @run-at", "// @noframes\n// @run-at"))
        assert any_cli(any_bin, server.port, "scripts", "add", str(file))[0] == 0
        assert server.call(f"{pages}/frames.html", "framesRunIn", tab="new") == []
    finally:
        any_cli(any_bin, server.port, "scripts", "remove", "e2e frames")


COUNTING = textwrap.dedent("""\
    // ==UserScript==
    // @name         e2e counting
    // @match        http://127.0.0.1/*
    // @noframes
    // ==/UserScript==
    globalThis.__any__ = globalThis.__any__ || {};
    let runs = 0;
    globalThis.__any__.hostedCount = () => ++runs;
    globalThis.__any__.hostedOther = () => "other";
""")


def test_each_hosted_method_call_and_each_run_runs_once(hosting, pages, tmp_path):
    server, _, any_bin = hosting
    file = tmp_path / "counting.user.js"
    file.write_text(COUNTING)
    assert any_cli(any_bin, server.port, "scripts", "add", str(file))[0] == 0
    page = f"{pages}/plain.html?counting"
    try:
        counts = []
        for _ in range(6):
            counts.append(server.call(page, "hostedCount"))
            assert server.call(page, "hostedOther") == "other"
        assert counts == [1, 2, 3, 4, 5, 6], counts
        runs = []
        for _ in range(3):
            status, body = http_json("POST", server.base + "/v1/run", {
                "page": page, "timeout_ms": 10_000,
                "script": "globalThis.anyRuns = (globalThis.anyRuns ?? 0) + 1; return globalThis.anyRuns;"})
            assert status == 200, body
            runs.append(body["result"])
        assert runs == [1, 2, 3], runs
        assert server.call(page, "hostedCount") == 7, "the same document throughout"
    finally:
        any_cli(any_bin, server.port, "scripts", "remove", "e2e counting")


def test_a_bad_header_is_refused_naming_the_line(hosting, tmp_path):
    server, _, any_bin = hosting
    file = tmp_path / "bad.user.js"
    file.write_text(HOSTED.replace("http://127.0.0.1/*", "http://*.*/x"))
    code, _, err = any_cli(any_bin, server.port, "scripts", "add", str(file))
    assert code == 12, err
    assert f"{file}: not a userscript any can host: line 4: @match http://*.*/x: invalid host wildcard" in err


def test_ad_hoc_scripts_are_refused_by_default(shared, pages, built):
    status, body = http_json("POST", shared.base + "/v1/run",
                             {"page": f"{pages}/csp.html", "script": "return 1;"})
    assert status == 403, body
    assert body["error"]["code"] == "scripts_disabled"
    assert "--allow-scripts" in body["error"]["message"]
    code, _, err = any_cli(built[0], shared.port, "run", f"{pages}/csp.html", "--script", "-",
                           stdin="return 1;")
    assert code == 24, err
    assert "scripts_disabled" in err


def test_ad_hoc_scripts_run_on_the_strict_csp_page_with_allow_scripts(hosting, pages):
    server, _, any_bin = hosting
    page = f"{pages}/csp.html"
    script = textwrap.dedent("""\
        await new Promise((r) => setTimeout(r, 20));
        let evalBlocked = false;
        try { eval("1"); } catch (e) { evalBlocked = e instanceof EvalError; }
        return { title: document.title, evalBlocked, sum: [1, 2, 3].reduce((a, b) => a + b) };""")
    started = time.monotonic()
    code, out, err = any_cli(any_bin, server.port, "run", page, "--script", "-", stdin=script)
    assert code == 0, err
    assert json.loads(out) == {"title": "any strict CSP page", "evalBlocked": True, "sum": 6}
    assert time.monotonic() - started < 10

    def run(source: str):
        return http_json("POST", server.base + "/v1/run",
                         {"page": page, "script": source, "timeout_ms": 10_000})

    # Nothing returned: null, like a method.
    status, body = run("document.title;")
    assert (status, body["result"]) == (200, None)
    # Same errors and encoding rules as methods.
    status, body = run("throw new TypeError('bad ' + 'input');")
    assert status == 422 and body["error"]["code"] == "page_error", body
    assert body["error"]["name"] == "TypeError" and body["error"]["message"] == "bad input"
    assert "any-script.js:1" in body["error"]["stack"], body["error"]["stack"]
    status, body = run("return { when: new Map() };")
    assert status == 422 and body["error"]["code"] == "not_serializable", body
    assert "$.when is a Map" in body["error"]["message"]
    status, body = run("const a = 1;\nreturn a +;")
    assert status == 422 and body["error"]["name"] == "SyntaxError", body
    assert "line 2" in body["error"]["message"], body


def test_an_ad_hoc_script_on_a_sandboxed_document_names_the_sandbox(hosting, pages):
    server, _, _ = hosting
    started = time.monotonic()
    status, body = http_json("POST", server.base + "/v1/run", {
        "page": f"{pages}/sandboxed.html", "script": "return 1;", "timeout_ms": 10_000})
    assert (status, body["error"]["code"]) == (422, "not_scriptable"), body
    assert "sandboxed by its Content-Security-Policy" in body["error"]["message"], body
    assert time.monotonic() - started < 5


def test_with_allow_user_scripts_off_calls_and_runs_say_what_to_switch_on(stack, pages, tmp_path):
    server = stack.server()
    server.start(args=("--allow-scripts", "--scripts-dir", str(tmp_path / "scripts")))
    profile = tmp_path / "profile-off"
    (profile / "Default").mkdir(parents=True)
    # The user switched it off: `any browser` keeps that.
    (profile / "Default" / "Preferences").write_text(json.dumps(
        {"extensions": {"settings": {"knhhpckbjemjphphdhibpcjmgbngnmig": {"user_scripts_enabled": False}}}}))
    stack.browser(server.port, profile=profile).start()
    server.wait_extension()

    status, body = http_json("POST", server.base + "/v1/scripts", {"source": HOSTED})
    assert status == 200, body
    assert any("Allow User Scripts" in w for w in body["warnings"]), body

    status, body = http_json("POST", server.base + "/v1/run",
                             {"page": f"{pages}/csp.html", "script": "return 1;"})
    assert status == 403, body
    assert body["error"]["code"] == "scripts_disabled"
    assert 'chrome://extensions, click Details on any, and switch on "Allow User Scripts"' in body["error"]["message"]

    _, error = server.fail(f"{pages}/csp.html", "hostedInfo", timeout_ms=15_000)
    assert error["code"] == "method_not_found"
    assert "any hosts userscripts for this page" in error["message"], error
    assert "Allow User Scripts" in error["message"]
