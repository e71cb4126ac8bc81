"""Who may connect, end to end: a hostile page in real headless Chromium (served from
another local origin) tries the extension socket, `fetch` and a form POST against the
real `any serve`, and fails every time — checked both in what the page observed and on
the server (no call was made, the refusals are recorded). Plus, against the real binary:
forged `Host` headers, look-alike origins on the socket, and a missing or wrong token.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import socket

from any_e2e import ROOT, http_json, token


def extension_origin() -> str:
    """`chrome-extension://<id>`, the id derived from the manifest key as Chrome does."""
    key = json.loads((ROOT / "extension" / "manifest.json").read_text())["key"]
    digest = hashlib.sha256(base64.b64decode(key)).hexdigest()[:32]
    return "chrome-extension://" + "".join(chr(ord("a") + int(c, 16)) for c in digest)


def test_a_hostile_page_cannot_reach_the_server_in_any_way(shared, pages):
    before = shared.status()
    seen_before = {c["id"] for c in before["recent"]}

    # The real token is handed to the page: even a page that knows it gets nowhere.
    page = f"{pages}/hostile.html"
    seen = shared.call(page, "attack", {"port": shared.port, "token": token()},
                       timeout_ms=30_000, tab="new")

    # What the page observed.
    assert seen["origin"] == pages
    for name in ("socket", "socketLocalhost"):
        assert seen[name]["opened"] is False, seen[name]
        assert seen[name]["messages"] == [], seen[name]
    for name in ("simplePost", "jsonPostWithToken", "status"):
        assert seen[name]["fetched"] is False, (name, seen[name])
        assert "Failed to fetch" in seen[name]["error"], (name, seen[name])
    for name in ("noCorsPost", "shutdown"):
        # Sent, but opaque: the page learns nothing of the answer.
        assert (seen[name]["type"], seen[name]["status"], seen[name]["body"]) == ("opaque", 0, "")
    assert seen["form"]["submitted"] is True

    # What the server did: nothing but the test's own call, and it recorded every refusal.
    after = shared.status()
    new_calls = [c for c in after["recent"] if c["id"] not in seen_before]
    assert [c["method"] for c in new_calls] == ["attack"], new_calls
    assert after["calls"] == [], after["calls"]
    assert len(after["extensions"]) == 1, "the page never registered as an extension"
    refused = {(r["request"], r["code"]) for r in after["rejected"] if r.get("origin") == pages}
    assert refused >= {
        ("GET /v1/extension", "forbidden"),
        ("POST /v1/call", "forbidden"),
        ("OPTIONS /v1/call", "forbidden"),
        ("GET /v1/status", "forbidden"),
        ("POST /v1/shutdown", "forbidden"),
    }, after["rejected"]
    forms = [r for r in after["rejected"]
             if r.get("origin") == pages and r["request"] == "POST /v1/call"]
    assert len(forms) >= 3, "simple fetch, no-cors fetch and the form post were all refused"
    # And the server is still there.
    assert shared.call(f"{pages}/plain.html", "echo", {"still": "here"}) == {"still": "here"}


def raw_request(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    """One request with exactly these headers (http.client adds no Host when given one)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body else {}
    finally:
        conn.close()


def test_forged_host_headers_are_refused(shared):
    port = shared.port
    auth = {"Authorization": f"Bearer {token()}"}
    for host in (f"evil.example:{port}", f"127.0.0.1.evil.com:{port}", f"localhost:{port + 1}",
                 "127.0.0.1"):
        status, body = raw_request(port, "GET", "/v1/status", {"Host": host, **auth})
        assert (status, body["error"]["code"]) == (403, "forbidden"), (host, body)
        assert "DNS rebinding" in body["error"]["message"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        status, _ = raw_request(port, "GET", "/v1/status", {"Host": host, **auth})
        assert status == 200, host


def upgrade_status(port: int, origin: str | None) -> int:
    """The HTTP status the extension socket answers a WebSocket upgrade with."""
    lines = [
        "GET /v1/extension HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
        "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return int(s.recv(4096).split(b" ", 2)[1])


def test_only_the_extensions_exact_origin_may_open_the_socket(shared):
    ours = extension_origin()
    for origin in (f"{ours}.evil", f"{ours}x", f"{ours}/", ours.upper(), ours[:-1],
                   "http://127.0.0.1.evil.com", f"http://127.0.0.1:{shared.port}", "null", None):
        assert upgrade_status(shared.port, origin) == 403, origin
    # The exact origin is let in (it then has 10 s to say hello; the socket just closes).
    assert upgrade_status(shared.port, ours) == 101


def test_a_missing_or_wrong_token_is_401(shared):
    body = {"page": "http://127.0.0.1:9/", "method": "echo"}
    for headers in ({}, {"Authorization": "Bearer " + "0" * 64},
                    {"Authorization": f"Basic {token()}"}):
        status, answer = http_json("POST", shared.base + "/v1/call", body, auth=False,
                                   headers=headers)
        assert (status, answer["error"]["code"]) == (401, "unauthorized"), (headers, answer)
    status, answer = http_json("GET", shared.base + "/v1/health", auth=False)
    assert (status, answer["ok"]) == (200, True)
