#!/usr/bin/env python3
"""The demo behind `./build.sh demo`: one real call, end to end, on this machine.

It serves examples/demo/ (a page that loads the brief's `pageInfo` userscript with a
<script> tag, standing in for a userscript manager) on a free loopback port, starts
`any serve` on another free port, starts `any browser --headless` on a fresh temporary
profile, waits for the extension to connect, runs

    any call <page> pageInfo --params '{"delay": 500}'

prints the result, and stops everything it started (also on Ctrl-C or failure).
Runs as a plain Python 3 process; stdlib only.

    python3 examples/demo.py --any target/release/any --extension dist/extension
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Loopback only: never the system's proxy settings.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CONNECT_TIMEOUT_S = 30


class DemoFailed(Exception):
    pass


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(port: int) -> dict | None:
    try:
        with OPENER.open(f"http://127.0.0.1:{port}/v1/health", timeout=1) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def serve_pages() -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_QuietHandler, directory=str(HERE / "demo"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def stop(proc: subprocess.Popen | None, name: str) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        say(f"{name} did not stop within 10 s; killing it")
        proc.kill()
        proc.wait()


def run(any_bin: Path, extension: Path, work: Path, started: dict) -> None:
    httpd = serve_pages()
    started["pages"] = httpd
    page = f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    say(f"serving the demo page at {page}")

    port = free_port()
    server_log = work / "serve.log"
    with open(server_log, "wb") as log:
        started["server"] = server = subprocess.Popen(
            [str(any_bin), "serve", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while health(port) is None:
        if server.poll() is not None or time.monotonic() > deadline:
            raise DemoFailed(f"any serve did not start on port {port}:\n{tail(server_log)}")
        time.sleep(0.05)
    say(f"any serve is listening on 127.0.0.1:{port}")

    browser_log = work / "browser.log"
    with open(browser_log, "wb") as log:
        started["browser"] = browser = subprocess.Popen(
            [str(any_bin), "browser", "--headless", "--port", str(port),
             "--profile", str(work / "profile"), "--extension", str(extension)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    say("started headless Chromium with the extension (any browser --headless); "
        "waiting for the extension to connect")
    began = time.monotonic()
    next_note = began + 1
    while (health(port) or {}).get("extensions", 0) < 1:
        now = time.monotonic()
        if browser.poll() is not None:
            raise DemoFailed(f"any browser exited with {browser.returncode}:\n{tail(browser_log)}")
        if now - began > CONNECT_TIMEOUT_S:
            raise DemoFailed(
                f"the extension did not connect within {CONNECT_TIMEOUT_S} s\n"
                f"--- any browser:\n{tail(browser_log)}\n--- any serve:\n{tail(server_log)}")
        if now >= next_note:
            say(f"  still waiting for the extension ({now - began:.0f} s)")
            next_note += 1
        time.sleep(0.05)
    say(f"the extension connected after {time.monotonic() - began:.1f} s")

    params = json.dumps({"delay": 500})
    say(f"any call {page} pageInfo --params '{params}'")
    began = time.monotonic()
    call = subprocess.run(
        [str(any_bin), "call", page, "pageInfo", "--params", params, "--port", str(port)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if call.returncode != 0:
        raise DemoFailed(f"any call failed (exit {call.returncode}):\n"
                         f"{call.stdout}{call.stderr}\n--- any serve:\n{tail(server_log)}")
    try:  # `any call` prints the result as one line of JSON; show it readably
        print(json.dumps(json.loads(call.stdout), indent=2, ensure_ascii=False), flush=True)
    except ValueError:
        print(call.stdout.rstrip(), flush=True)
    say(f"the call took {time.monotonic() - began:.2f} s")


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--any", default="target/release/any", help="the any binary")
    parser.add_argument("--extension", default="dist/extension", help="the built extension")
    args = parser.parse_args()
    any_bin, extension = Path(args.any).resolve(), Path(args.extension).resolve()
    if not any_bin.is_file() or not (extension / "manifest.json").is_file():
        say(f"{any_bin} or {extension} is missing: run ./build.sh build first")
        return 2

    signal.signal(signal.SIGTERM, _interrupted)  # clean up on SIGTERM as on Ctrl-C
    work = Path(tempfile.mkdtemp(prefix="any-demo-"))
    started: dict = {}
    code = 0
    try:
        run(any_bin, extension, work, started)
        say("done")
    except DemoFailed as err:
        say(f"FAILED: {err}")
        code = 1
    except KeyboardInterrupt:
        say("interrupted")
        code = 130
    except Exception as err:  # the demo must still clean up and say what happened
        say(f"FAILED: {type(err).__name__}: {err}")
        code = 1
    finally:
        # Cleaning up must not itself be interrupted half-way.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("stopping the browser, the server and the page server")
        stop(started.get("browser"), "any browser")
        stop(started.get("server"), "any serve")
        if "pages" in started:
            started["pages"].shutdown()
            started["pages"].server_close()
        shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
