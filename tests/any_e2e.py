"""What the end-to-end suite drives: `any serve` and `any browser --headless` processes,
calls through the client API, and the HTTP handler of the local test pages.

Runs in the pytest process (plain CPython, stdlib only). Everything here listens on or
talks to 127.0.0.1 only, on free ports, with fresh profiles; `Stack.stop_all` stops what a
`Stack` started: `any browser` is asked to stop (it stops its Chromium), then any
Chromium still holding one of its profiles is killed.
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = Path(__file__).resolve().parent / "pages"
LANE_HELPER = ROOT / "clients" / "userscript" / "any-lane.js"

# A 1x1 transparent PNG.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")

# The smallest PDF Chromium's viewer opens: one empty page.
TINY_PDF = (b"%PDF-1.1\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 100 100]>>endobj\n"
            b"trailer<</Root 1 0 R>>\n%%EOF\n")

# Loopback only: never the system's proxy settings.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# How long the extension may take to connect to a freshly started browser's server.
CONNECT_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port nothing listens on right now (bound to 127.0.0.1:0 and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- HTTP helpers


def token_path() -> Path:
    """The user's any token file, by the rule `any serve` uses to create it."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    data = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return data / "any" / "token"


def token() -> str:
    """The user's token, which every client API request but `/v1/health` must send."""
    return token_path().read_text().strip()


def http_json(method: str, url: str, body=None, timeout: float = 60.0, auth: bool = True,
              headers: dict | None = None):
    """(status, parsed JSON body) of one request; HTTP errors are answers, not raises.
    Sends the user's token unless `auth` is false."""
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"}
    if auth:
        all_headers["Authorization"] = f"Bearer {token()}"
    all_headers.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, {"raw": raw.decode(errors="replace")}


class CallFailed(AssertionError):
    pass


# ---------------------------------------------------------------- processes


def _profile_processes(profile: Path) -> list[int]:
    """Pids of processes whose command line names `profile` as their user data dir."""
    needle = f"--user-data-dir={profile}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


def _tail(path: Path, n: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"(no {path})"


def _stop(proc: subprocess.Popen, sig=signal.SIGTERM, grace: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    """`any serve --port P` in the background, with its log in `log`."""

    def __init__(self, any_bin: Path, port: int, log: Path):
        self.any_bin, self.port, self.log = any_bin, port, log
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{port}"

    def start(self, ready_timeout: float = 15.0, args: tuple[str, ...] = ()) -> float:
        """Starts the server (with `args` added to `any serve`); returns the monotonic time
        its health check first answered."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.any_bin), "serve", "--port", str(self.port), *args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"any serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                status, _ = http_json("GET", self.base + "/v1/health", timeout=1, auth=False)
                if status == 200:
                    return time.monotonic()
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"any serve did not answer /v1/health in {ready_timeout}s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def extensions(self) -> int:
        try:
            status, health = http_json("GET", self.base + "/v1/health", timeout=2, auth=False)
        except OSError:
            return 0
        return health.get("extensions", 0) if status == 200 else 0

    def wait_extension(self, timeout: float = CONNECT_TIMEOUT_S, poll: float = 0.02) -> float:
        """Waits until an extension is connected; returns the monotonic time it was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.extensions() >= 1:
                return time.monotonic()
            time.sleep(poll)
        raise AssertionError(f"no extension connected to port {self.port} within {timeout}s\n"
                             f"--- server log:\n{self.tail()}")

    def call_raw(self, page: str, method: str, params=None, timeout_ms: int | None = None,
                 tab: str | None = None, browser: str | None = None):
        """(HTTP status, body) of `POST /v1/call`."""
        body = {"page": page, "method": method}
        if browser is not None:
            body["browser"] = browser
        if params is not None:
            body["params"] = params
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        if tab is not None:
            body["tab"] = tab
        wait = (timeout_ms or 30_000) / 1000 + 30
        return http_json("POST", self.base + "/v1/call", body, timeout=wait)

    def call(self, page: str, method: str, params=None, **kw):
        """The method's result; raises `CallFailed` with the error body otherwise."""
        status, body = self.call_raw(page, method, params, **kw)
        if status != 200:
            raise CallFailed(f"{method} on {page}: HTTP {status} {json.dumps(body)}")
        return body["result"]

    def fail(self, page: str, method: str, params=None, **kw):
        """(HTTP status, error body) of a call expected to fail."""
        status, body = self.call_raw(page, method, params, **kw)
        assert status != 200, f"{method} on {page} should have failed but returned {body}"
        assert "error" in body, body
        return status, body["error"]

    def status(self) -> dict:
        """`GET /v1/status`."""
        status, body = http_json("GET", self.base + "/v1/status", timeout=10)
        assert status == 200, body
        return body

    def tail(self, n: int = 40) -> str:
        return _tail(self.log, n)


class Browser:
    """`any browser --headless --port P --profile DIR` in the background."""

    def __init__(self, any_bin: Path, extension: Path, port: int, profile: Path, log: Path,
                 label: str | None = None, chromium_args: tuple[str, ...] = (),
                 args: tuple[str, ...] = (), env: dict[str, str] | None = None):
        self.any_bin, self.extension, self.port = any_bin, extension, port
        self.profile, self.log, self.label = profile, log, label
        self.chromium_args = chromium_args
        self.args = args  # more flags of `any browser`, e.g. ("--load-with", "cdp")
        self.env = None if env is None else {**os.environ, **env}  # e.g. a HOME of its own
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [str(self.any_bin), "browser", "--headless", "--port", str(self.port),
               "--profile", str(self.profile), "--extension", str(self.extension)]
        if self.label:
            cmd += ["--label", self.label]
        cmd += [f"--chromium-arg={arg}" for arg in self.chromium_args]
        cmd += self.args
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=self.env)

    def chromium_pids(self) -> list[int]:
        return _profile_processes(self.profile)

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc is not None:
            _stop(self.proc, sig)
        # Safety net: no browser outlives the suite, whatever `any browser` did.
        for pid in self.chromium_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def tail(self, n: int = 40) -> str:
        """The end of `any browser`'s output and of Chromium's own log in the profile."""
        return (f"{_tail(self.log, n)}\n--- {self.profile / 'chromium.log'}:\n"
                f"{_tail(self.profile / 'chromium.log', n)}")


# The flags `any browser` gives Chromium besides the anti-throttling ones
# (crates/server/src/browser.rs): a browser started like a person's gets only these.
QUIET_FLAGS = ("--headless=new", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--no-default-browser-check", "--disable-background-networking",
               "--disable-component-update", "--disable-sync")


class UserBrowser(Browser):
    """Chromium started the way a person's is, not by `any browser`: no anti-throttling
    switches, the extension loaded from a copy whose `config.json` names the server.
    `headed` shows its windows (on the display `env` names); `url` is its first page."""

    headed = False
    url = "about:blank"

    def start(self) -> None:
        copy = self.profile.parent / f"{self.profile.name}-extension"
        shutil.copytree(self.extension, copy, dirs_exist_ok=True)
        (copy / "config.json").write_text(json.dumps(
            {"server": f"ws://127.0.0.1:{self.port}/v1/extension", "label": self.label or ""}))
        chromium = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
        flags = [f for f in QUIET_FLAGS if not (self.headed and f.startswith("--headless"))]
        cmd = [chromium, *flags, f"--user-data-dir={self.profile}", f"--load-extension={copy}"]
        if os.geteuid() == 0:
            cmd.append("--no-sandbox")
        cmd += [*self.chromium_args, self.url]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=self.env)


class Stack:
    """Creates servers and browsers on demand and stops all of them at teardown."""

    def __init__(self, any_bin: Path, extension: Path, tmp: Path):
        self.any_bin, self.extension, self.tmp = any_bin, extension, tmp
        self.started: list[Server | Browser] = []

    def server(self, port: int | None = None) -> Server:
        port = port or free_port()
        server = Server(self.any_bin, port, self.tmp / f"serve-{port}.log")
        self.started.append(server)
        return server

    def browser(self, port: int, label: str | None = None, profile: Path | None = None,
                chromium_args: tuple[str, ...] = (), args: tuple[str, ...] = (),
                env: dict[str, str] | None = None) -> Browser:
        profile = profile or self.tmp / f"profile-{len(self.started)}-{port}"
        browser = Browser(self.any_bin, self.extension, port, profile,
                          self.tmp / f"browser-{len(self.started)}-{port}.log", label,
                          chromium_args, args, env)
        self.started.append(browser)
        return browser

    def debuggable(self, server_args: tuple[str, ...] = (), browser_args: tuple[str, ...] = ()):
        """A server and a connected browser with a DevTools port: (server, browser, cdp)."""
        from cdp import Cdp, devtools_port  # cdp.py imports this module

        server = self.server()
        server.start(args=server_args)
        browser = self.browser(server.port, chromium_args=("--remote-debugging-port=0",),
                               args=browser_args)
        browser.start()
        server.wait_extension()
        return server, browser, Cdp(devtools_port(browser.profile))

    def user_browser(self, port: int, chromium_args: tuple[str, ...] = (), headed: bool = False,
                     env: dict[str, str] | None = None, url: str = "about:blank") -> UserBrowser:
        """A Chromium started like a person's (see `UserBrowser`)."""
        n = len(self.started)
        browser = UserBrowser(self.any_bin, self.extension, port, self.tmp / f"user-profile-{n}-{port}",
                              self.tmp / f"user-browser-{n}-{port}.log", None, chromium_args,
                              env=env)
        browser.headed, browser.url = headed, url
        self.started.append(browser)
        return browser

    def logs(self) -> list[tuple[str, str]]:
        """(title, tail) of every log, for a failure report."""
        return [(f"{type(item).__name__.lower()} on port {item.port}", item.tail())
                for item in self.started]

    def stop_all(self) -> None:
        # Browsers first, so that they do not log a reconnect storm into the servers.
        for item in sorted(self.started, key=lambda x: not isinstance(x, Browser)):
            item.stop()


# ---------------------------------------------------------------- test pages


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """Serves tests/pages; `csp.html` with a strict CSP and a fresh nonce per response,
    and `/lane/any-lane.js` from clients/userscript."""

    protocol_version = "HTTP/1.1"
    # What `POST /typed` last received, by the `?who=` of the page that sent it.
    typed: dict[str, str] = {}
    # How often `POST /ran?k=KEY` was received for each key (the soak's record).
    ran: dict[str, int] = {}
    ran_lock = threading.Lock()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(PAGES), **kwargs)

    def log_message(self, *args):
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/csp.html":
            nonce = secrets.token_urlsafe(16)
            html = (PAGES / "csp.html").read_text().replace("{{NONCE}}", nonce)
            self._send(html.encode(), "text/html; charset=utf-8", {
                "Content-Security-Policy":
                    f"script-src 'nonce-{nonce}' 'strict-dynamic'; object-src 'none'; "
                    "base-uri 'none'; require-trusted-types-for 'script'",
            })
        elif path == "/slow.png":
            # A resource that keeps the page loading for `ms` milliseconds.
            query = urllib.parse.parse_qs(self.path.partition("?")[2])
            time.sleep(int(query.get("ms", ["500"])[0]) / 1000)
            self._send(TINY_PNG, "image/png")
        elif path == "/lane/any-lane.js":
            self._send(LANE_HELPER.read_bytes(), "text/javascript; charset=utf-8")
        elif path == "/sandboxed.html":
            # A real site's header: the document is sandboxed, and no script runs in it.
            self._send((PAGES / "plain.html").read_bytes(), "text/html; charset=utf-8",
                       {"Content-Security-Policy": "sandbox"})
        elif path == "/missing.html":
            # An HTTP error page of the site, with the site's methods on it.
            self._send((PAGES / "plain.html").read_bytes(), "text/html; charset=utf-8",
                       status=404)
        elif path == "/image.png":
            self._send(TINY_PNG, "image/png")
        elif path == "/document.pdf":
            self._send(TINY_PDF, "application/pdf")
        elif path == "/report.csv":
            self._send(b"a,b\n1,2\n", "text/csv",
                       {"Content-Disposition": 'attachment; filename="report.csv"'})
        else:
            super().do_GET()

    def do_POST(self):
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        fields = urllib.parse.parse_qs(query)
        if path == "/typed":
            PageHandler.typed[fields.get("who", [""])[0]] = body.decode(errors="replace")
        elif path == "/ran":
            key = fields.get("k", [""])[0]
            with PageHandler.ran_lock:
                PageHandler.ran[key] = PageHandler.ran.get(key, 0) + 1
        else:
            self.send_error(404)
            return
        self._send(b"", "text/plain")

    def _send(self, body: bytes, content_type: str, headers=None, status: int = 200):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
