"""The evidence tools against the real extension in headless Chromium: `any trace --record`
captures a full call's frames; the recording, replayed by the fake extension peer against a
fresh server with no browser, gives the same outcome for the same calls; `any repl` with
piped lines answers each in one reused tab.

Runs in the pytest process; `any trace`, `any repl` and `fake-extension` are started as the
user would start them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

from any_e2e import ROOT

FAKE_EXTENSION = ROOT / "target" / "release" / "fake-extension"


class Lines:
    """Reads a child's stream line by line in a thread, so a test can wait with a deadline."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                left = deadline - time.monotonic()
                assert left > 0, f"no such line within {timeout}s; got {self.lines}"
                self._cond.wait(left)

    def text(self) -> str:
        self._thread.join(5)
        return "\n".join(self.lines)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _recorded(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError):
        return []


def _frames_of(lines: list[dict], call_id: str) -> list[tuple[str, str]]:
    return [(l["dir"], l["frame"]["type"]) for l in lines
            if isinstance(l.get("frame"), dict) and l["frame"].get("id") == call_id]


def test_trace_records_a_real_call_and_the_fake_peer_replays_it(shared, stack, pages, tmp_path):
    assert FAKE_EXTENSION.is_file(), f"{FAKE_EXTENSION} is missing: run ./build.sh build"
    record = tmp_path / "session.jsonl"
    tracer = subprocess.Popen(
        [str(shared.any_bin), "trace", "--port", str(shared.port), "--record", str(record)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = Lines(tracer.stdout), Lines(tracer.stderr)
        err.wait_for(lambda l: l.startswith("any trace: tracing the frames"))
        page = f"{pages}/plain.html"
        status, ok = shared.call_raw(page, "pageInfo", {"delay": 50})
        assert status == 200, ok
        errors = f"{pages}/errors.html"
        status, failed = shared.call_raw(errors, "throwsTyped")
        assert status == 422, failed
        out.wait_for(lambda l: f" -> error    {failed['id']}" in l)
        tracer.send_signal(signal.SIGINT)
        assert tracer.wait(10) == 0
    finally:
        _kill(tracer)

    lines = _recorded(record)
    assert lines[0]["event"] == "tracing" and lines[0]["extensions"], lines[0]
    frames = _frames_of(lines, ok["id"])
    assert frames[0] == ("in", "call") and frames[-1] == ("out", "result"), frames
    assert ("out", "progress") in frames, f"the extension reports its stages: {frames}"
    result = next(l["frame"] for l in lines if l.get("frame", {}).get("id") == ok["id"]
                  and l["frame"]["type"] == "result")
    assert result["value"] == ok["result"], "the full frame is recorded"
    assert _frames_of(lines, failed["id"])[-1] == ("out", "error")
    shown = out.text()
    assert f"<- call     {ok['id']}" in shown and f"-> result   {ok['id']}" in shown, shown
    assert "recorded" in err.text()

    # A fresh server with no browser: the fake peer plays the recorded extension.
    fresh = stack.server()
    fresh.start()
    fake = subprocess.Popen(
        [str(FAKE_EXTENSION), "--port", str(fresh.port), "--replay", str(record)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        said = Lines(fake.stdout)
        said.wait_for(lambda l: l == "ready")
        status, again = fresh.call_raw(page, "pageInfo", {"delay": 50})
        assert (status, again["result"]) == (200, ok["result"])
        status, again = fresh.call_raw(errors, "throwsTyped")
        assert status == 422
        assert again["error"] == failed["error"], "the same error, name, message and stack"
        said.wait_for(lambda l: l == "replayed")
    finally:
        _kill(fake)


def _repl(shared, page: str, lines: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(shared.any_bin), "repl", page, "--port", str(shared.port), "--no-autostart"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120)


def test_repl_runs_piped_lines_in_one_tab_of_the_real_browser(shared, pages):
    page = f"{pages}/plain.html"

    done = _repl(shared, page, ['pageInfo {"delay": 0}', "tabInfo", ".call tabInfo {}",
                                "return document.title"])

    out = done.stdout
    assert done.returncode == 1, f"the script line failed: {out}\n{done.stderr}"
    first, rest = out.split("\n}\n", 1)
    assert json.loads(first + "}") == {"title": "any plain page", "url": page,
                                       "readyState": "complete"}
    assert first.startswith('{\n  "title": "any plain page",\n'), "indented, in the page's order"
    tab1, rest = rest.split("\n}\n", 1)
    tab2, rest = rest.split("\n}\n", 1)
    assert json.loads(tab1 + "}")["tabId"] == json.loads(tab2 + "}")["tabId"], \
        "every line runs in the same tab"
    assert rest.startswith("ScriptsDisabled (scripts_disabled):"), rest
    assert "any serve --allow-scripts" in rest, rest


def test_repl_shows_a_page_error_with_its_stack(shared, pages):
    done = _repl(shared, f"{pages}/errors.html", ["throwsTyped", "rejects"])

    out = done.stdout.splitlines()
    assert done.returncode == 1, done.stdout
    assert out[0] == "TypeError (page_error): the answer is not 42", out
    assert out[1].startswith("    at ") and "errors.js" in out[1], out
    quota = out.index("QuotaError (page_error): out of quota after 50 ms")
    assert out[quota + 1].startswith("    at "), out


def test_repl_runs_javascript_lines_on_a_strict_csp_page_with_allow_scripts(stack, pages, tmp_path):
    server = stack.server()
    server.start(args=("--allow-scripts", "--scripts-dir", str(tmp_path / "scripts")))
    stack.browser(server.port).start()
    server.wait_extension()
    page = f"{pages}/csp.html"

    done = _repl(server, page, ["return document.title", 'cspInfo {"word": "w"}',
                                "return [1, 2].map((n) => n * 2)",
                                "throw new RangeError('too far')"])

    assert done.returncode == 1, f"the last line failed: {done.stdout}\n{done.stderr}"
    out = done.stdout
    assert out.startswith('"any strict CSP page"\n{\n  "title": "any strict CSP page",\n'), out
    assert "\n[\n  2,\n  4\n]\n" in out, out
    assert "RangeError (page_error): too far\n    at " in out, out
