"""The token: the client reads the user's token file for every request, and a missing,
wrong, exposed or broken token fails with `Unauthorized` saying what to do. The data
directory is moved with `XDG_DATA_HOME` (the rule the server and the client share), so
these tests never touch the user's own token.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from .client_support import FAKE_LABEL, Server, StartServer

import any_browser
from any_browser import _token

PAGE = "http://127.0.0.1:9/page"


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data directory for this test; `any/token` is where the client looks."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    return tmp_path


def write_token(data_home: Path, text: str, mode: int = 0o600) -> Path:
    path = data_home / "any" / "token"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_token_is_read_from_the_users_data_dir(server: Server) -> None:
    # The session's server made (or reused) the user's token; the client found it.
    path = _token.path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    client = any_browser.Client(server.port, autostart=False)
    assert client.call(PAGE, "echo", {"x": 1}, browser=FAKE_LABEL) == {"x": 1}


def test_a_wrong_token_is_refused_by_the_server(server: Server, data_home: Path) -> None:
    write_token(data_home, "0" * 64)
    with pytest.raises(any_browser.Unauthorized) as caught:
        any_browser.Client(server.port, autostart=False).call(PAGE, "echo", browser=FAKE_LABEL)
    assert caught.value.status == 401
    assert "wrong" in str(caught.value)


def test_a_missing_token_is_refused_and_the_message_names_the_file(
    server: Server, data_home: Path
) -> None:
    with pytest.raises(any_browser.Unauthorized) as caught:
        any_browser.Client(server.port, autostart=False).status()
    assert "Authorization: Bearer" in str(caught.value)
    assert "any token" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "mode", "needle"),
    [
        ("a" * 64, 0o644, "chmod 600"),
        ("not a token", 0o600, "64 hex digits"),
        ("a" * 64, 0o000, "cannot read"),
    ],
)
def test_an_unusable_token_file_fails_before_anything_is_sent(
    data_home: Path, text: str, mode: int, needle: str
) -> None:
    write_token(data_home, text, mode)
    if mode == 0 and os.geteuid() == 0:
        pytest.skip("root reads a file of mode 000")
    # Port 9 (discard): nothing is sent, so nothing needs to listen.
    with pytest.raises(any_browser.Unauthorized) as caught:
        any_browser.Client(9, autostart=False).call(PAGE, "echo")
    assert needle in str(caught.value)
    assert str(data_home / "any" / "token") in str(caught.value)


def test_a_server_makes_a_private_token_once_and_any_token_prints_it(
    start_server: StartServer, any_binary: Path, data_home: Path
) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(data_home)}
    printed = subprocess.run(
        [str(any_binary), "token"], env=env, capture_output=True, text=True, timeout=10
    )
    assert printed.returncode == 0, printed.stderr
    path = data_home / "any" / "token"
    token = path.read_text().strip()
    assert printed.stdout.strip() == token
    assert len(token) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    srv = start_server(env=env)
    # The server reused the token `any token` made; this client reads the same file.
    assert path.read_text().strip() == token
    assert any_browser.Client(srv.port, autostart=False).status().listen.endswith(f":{srv.port}")
