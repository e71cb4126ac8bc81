"""The golden protocol fixtures (`crates/protocol/fixtures/`) read by the Python client:
every error body becomes its exception class, every API body parses into its type, and
the client's set of error codes is the protocol's. Pure: no server, no sockets.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from .client_support import FIXTURES, REPO

import any_browser
from any_browser import api, errors

ERROR_FIXTURES = sorted((FIXTURES / "errors").glob("*.json"))

CODE_CLASSES: dict[str, type[any_browser.AnyError]] = {
    "no_extension": any_browser.NoExtension,
    "timeout": any_browser.Timeout,
    "bad_request": any_browser.BadRequest,
    "method_not_found": any_browser.MethodNotFound,
    "page_error": any_browser.PageError,
    "navigation_failed": any_browser.NavigationFailed,
    "tab_closed": any_browser.TabClosed,
    "not_serializable": any_browser.NotSerializable,
    "extension_disconnected": any_browser.ExtensionDisconnected,
    "protocol_error": any_browser.ProtocolError,
    "too_large": any_browser.TooLarge,
    "unauthorized": any_browser.Unauthorized,
    "forbidden": any_browser.Forbidden,
    "too_many_calls": any_browser.TooManyCalls,
    "scripts_disabled": any_browser.ScriptsDisabled,
    "not_scriptable": any_browser.NotScriptable,
}


def rust_error_codes() -> set[str]:
    """The wire names in `ErrorCode::as_str` of `crates/protocol/src/error.rs`."""
    source = (REPO / "crates" / "protocol" / "src" / "error.rs").read_text()
    as_str = source[source.index("fn as_str") : source.index("fn name")]
    return set(re.findall(r'ErrorCode::\w+ => "(\w+)"', as_str))


def test_the_client_knows_exactly_the_protocol_codes() -> None:
    assert set(CODE_CLASSES) == rust_error_codes()
    assert {path.stem for path in ERROR_FIXTURES} == rust_error_codes()
    for code, cls in CODE_CLASSES.items():
        assert cls.CODE == code
        assert issubclass(cls, any_browser.AnyError)


@pytest.mark.parametrize("path", ERROR_FIXTURES, ids=lambda p: p.stem)
def test_error_fixture_becomes_its_exception(path: Path) -> None:
    body = json.loads(path.read_text())
    error = errors.from_error_body(body, call_id="c-1", status=418)
    assert type(error) is CODE_CLASSES[body["code"]]
    assert error.code == body["code"]
    assert error.name == body["name"]
    assert error.message == body["message"]
    assert error.stack == body.get("stack")
    assert error.stage == body.get("stage")
    assert (error.call_id, error.status) == ("c-1", 418)
    assert body["message"] in str(error)


def test_page_error_shows_the_page_name_and_stack() -> None:
    body = json.loads((FIXTURES / "errors" / "page_error.json").read_text())
    error = errors.from_error_body(body)
    assert isinstance(error, any_browser.PageError)
    assert str(error).startswith("TypeError: x is undefined\n")
    assert "at pageInfo (https://example.com/any.user.js:9:3)" in str(error)


def test_an_unknown_code_is_a_plain_any_error() -> None:
    error = errors.from_error_body({"code": "teleport_failed", "name": "X", "message": "m"})
    assert type(error) is any_browser.AnyError
    assert (error.code, error.name, error.message) == ("teleport_failed", "X", "m")


def test_call_failure_fixture() -> None:
    body = (FIXTURES / "api" / "call_failure.json").read_bytes()
    error = errors.from_failure(504, body, "127.0.0.1:8765")
    assert isinstance(error, any_browser.Timeout)
    assert (error.call_id, error.status, error.stage) == ("c-8", 504, "page_loaded")


@pytest.mark.parametrize(
    "body", [b"<html>Bad Gateway</html>", b"{}", b'{"error": "x"}', b"[]", b""]
)
def test_a_failure_that_is_not_an_any_error_is_a_protocol_error(body: bytes) -> None:
    error = errors.from_failure(502, body, "127.0.0.1:8765")
    assert isinstance(error, any_browser.ProtocolError)
    assert error.status == 502
    assert "HTTP 502" in error.message and "127.0.0.1:8765" in error.message


def test_call_success_fixture() -> None:
    body = (FIXTURES / "api" / "call_success.json").read_bytes()
    assert api.call_result(body) == {
        "title": "Example Domain",
        "url": "https://example.com/",
        "readyState": "complete",
    }


def test_call_request_fixture_is_what_the_client_sends() -> None:
    request = api.CallRequest(
        page="https://example.com",
        method="pageInfo",
        params={"delay": 500},
        timeout_ms=30000,
        browser="work",
        new_tab=True,
    )
    expected = json.loads((FIXTURES / "api" / "call_request.json").read_text())
    assert json.loads(request.to_json()) == expected


def test_a_minimal_call_request_leaves_the_defaults_to_the_server() -> None:
    request = api.CallRequest(page="https://example.com", method="pageInfo")
    assert json.loads(request.to_json()) == {"page": "https://example.com", "method": "pageInfo"}


def test_health_fixture() -> None:
    health = api.Health.from_json((FIXTURES / "api" / "health.json").read_bytes())
    assert health == api.Health(ok=True, version="0.1.0", extensions=1)


def test_status_fixture() -> None:
    status = api.Status.from_json((FIXTURES / "api" / "status.json").read_bytes())
    assert (status.version, status.listen, status.pid) == ("0.1.0", "127.0.0.1:8765", 4242)
    assert status.extensions == (
        api.ExtensionStatus(
            conn="ext-1",
            label="work",
            browser=api.BrowserInfo(name="Chromium", version="156.0.8078.73"),
            extension_version="0.1.0",
            connected_since=1795000000.5,
            calls_in_flight=1,
            tabs=(api.OwnedTab(id=1204, url="https://example.com/", state="loaded", calls=1),),
            max_tabs=10,
        ),
    )
    assert status.calls == (
        api.CallStatus(
            id="c-7",
            page="https://example.com/",
            method="pageInfo",
            stage="method_called",
            conn="ext-1",
            age_s=0.75,
        ),
    )


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"ok": true}'])
def test_a_malformed_answer_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(any_browser.ProtocolError):
        api.Health.from_json(body)
    with pytest.raises(any_browser.ProtocolError):
        api.Status.from_json(body)
    with pytest.raises(any_browser.ProtocolError):
        api.call_result(body)
