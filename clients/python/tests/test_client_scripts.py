"""`Client.scripts` (the server's hosted userscripts) and `Client.run` (ad-hoc scripts),
and the same on `AsyncClient`, against the real `any serve` and the `fake-extension`
peer, which answers a script with ``{"ran": <script>}`` and announces no
``user_scripts`` capability (so the server warns that "Allow User Scripts" is off there).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from .client_support import FAKE_LABEL, Server, StartFake, StartServer

import any_browser

PAGE = "http://127.0.0.1:9/page"

SCRIPT = """// ==UserScript==
// @name        py hosted
// @version     0.3
// @description from the Python tests
// @match       https://example.com/*
// @exclude     *logout*
// @run-at      document-end
// ==/UserScript==
globalThis.__any__ = globalThis.__any__ || {};
"""


@pytest.fixture(scope="module")
def scripting(start_server: StartServer, start_fake: StartFake, tmp_path_factory) -> tuple[Server, Path]:
    scripts = tmp_path_factory.mktemp("scripts")
    srv = start_server("--allow-scripts", "--scripts-dir", str(scripts))
    start_fake(srv.port, FAKE_LABEL)
    return srv, scripts


def test_scripts_add_list_disable_enable_remove(scripting, tmp_path, caplog) -> None:
    srv, scripts = scripting
    client = any_browser.Client(srv.port, autostart=False)
    file = tmp_path / "py.user.js"
    file.write_text(SCRIPT)

    with caplog.at_level(logging.WARNING, logger="any_browser"):
        added = client.scripts.add(file)
    assert added == any_browser.ScriptInfo(
        name="py hosted",
        version="0.3",
        description="from the Python tests",
        matches=("https://example.com/*",),
        exclude_matches=(),
        exclude_globs=("*logout*",),
        run_at="document_end",
        enabled=True,
        file=str(scripts / "py_hosted.user.js"),
    )
    assert any("Allow User Scripts" in w for w in client.scripts.warnings)
    assert "Allow User Scripts" in caplog.text
    assert [s.name for s in client.scripts.list()] == ["py hosted"]

    assert client.scripts.disable("py hosted").enabled is False
    assert (scripts / "py_hosted.user.js.disabled").exists()
    assert client.scripts.list()[0].enabled is False
    assert client.scripts.enable("py hosted").enabled is True

    assert client.scripts.remove("py hosted").name == "py hosted"
    assert client.scripts.list() == []
    with pytest.raises(any_browser.BadRequest, match='no hosted userscript is named "py hosted"'):
        client.scripts.remove("py hosted")


def test_a_bad_header_raises_bad_request_naming_the_line(scripting, tmp_path) -> None:
    srv, _ = scripting
    file = tmp_path / "bad.user.js"
    file.write_text(SCRIPT.replace("@run-at      document-end", "@run-at      whenever"))
    with pytest.raises(any_browser.BadRequest, match='line 7: @run-at "whenever" is not supported'):
        any_browser.Client(srv.port, autostart=False).scripts.add(file)


def test_run_returns_the_script_result(scripting) -> None:
    srv, _ = scripting
    client = any_browser.Client(srv.port, autostart=False)
    assert client.run(PAGE, "return document.title;") == {"ran": "return document.title;"}


def test_run_is_refused_without_allow_scripts(server: Server) -> None:
    client = any_browser.Client(server.port, autostart=False)
    with pytest.raises(any_browser.ScriptsDisabled, match="--allow-scripts") as caught:
        client.run(PAGE, "return 1;")
    assert caught.value.code == "scripts_disabled"
    assert caught.value.status == 403


# ------------------------------------------------------------- the asyncio client


def test_async_scripts_add_list_disable_enable_remove(scripting, tmp_path, caplog) -> None:
    srv, scripts = scripting
    file = tmp_path / "py.user.js"
    file.write_text(SCRIPT.replace("py hosted", "py async"))

    async def steps() -> list:
        async with any_browser.AsyncClient(srv.port, autostart=False) as c:
            added = await c.scripts.add(file)
            warned = list(c.scripts.warnings)
            listed = [s.name for s in await c.scripts.list()]
            disabled = (await c.scripts.disable("py async")).enabled
            on_disk = (scripts / "py_async.user.js.disabled").exists()
            enabled = (await c.scripts.enable("py async")).enabled
            removed = (await c.scripts.remove("py async")).name
            left = await c.scripts.list()
            with pytest.raises(any_browser.BadRequest, match='no hosted userscript is named "py async"'):
                await c.scripts.remove("py async")
            return [added.name, added.exclude_globs, warned, listed, disabled, on_disk,
                    enabled, removed, left]

    with caplog.at_level(logging.WARNING, logger="any_browser"):
        got = asyncio.run(steps())
    assert got[:2] == ["py async", ("*logout*",)]
    assert any("Allow User Scripts" in w for w in got[2]) and "Allow User Scripts" in caplog.text
    assert got[3:] == [["py async"], False, True, True, "py async", []]


def test_async_a_bad_header_raises_bad_request_naming_the_line(scripting, tmp_path) -> None:
    srv, _ = scripting
    file = tmp_path / "bad.user.js"
    file.write_text(SCRIPT.replace("@run-at      document-end", "@run-at      whenever"))

    async def add() -> None:
        async with any_browser.AsyncClient(srv.port, autostart=False) as c:
            await c.scripts.add(file)

    with pytest.raises(any_browser.BadRequest, match='line 7: @run-at "whenever" is not supported'):
        asyncio.run(add())


def test_async_run_returns_the_script_result_or_scripts_disabled(scripting, server: Server) -> None:
    srv, _ = scripting

    async def run(port: int, script: str):
        async with any_browser.AsyncClient(port, autostart=False) as c:
            return await c.run(PAGE, script, timeout=5)

    assert asyncio.run(run(srv.port, "return 1;")) == {"ran": "return 1;"}
    with pytest.raises(any_browser.ScriptsDisabled, match="--allow-scripts") as caught:
        asyncio.run(run(server.port, "return 1;"))
    assert caught.value.status == 403
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        asyncio.run(any_browser.AsyncClient(srv.port, autostart=False).run(PAGE, "return 1;", timeout=0))
