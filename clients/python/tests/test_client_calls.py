"""`Client` against the real `any serve` with the `fake-extension` peer: results come
back intact, every protocol error code raises its exception class with its fields, and
timeouts end calls on time. The peer answers by method name (see PLAN's contract table:
echo, sleep, throw, fail, never, late, disconnect, progress, big).
"""

from __future__ import annotations

import time

import pytest
from .client_support import FAKE_LABEL, FIXTURES, Server, StartFake, StartServer

import any_browser

PAGE = "http://127.0.0.1:9/page"

# HTTP status of each code, as `ErrorCode::http_status` in crates/protocol/src/error.rs.
HTTP_STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "scripts_disabled": 403,
    "method_not_found": 404,
    "too_large": 413,
    "too_many_calls": 429,
    "page_error": 422,
    "not_serializable": 422,
    "not_scriptable": 422,
    "navigation_failed": 502,
    "tab_closed": 502,
    "extension_disconnected": 502,
    "protocol_error": 502,
    "no_extension": 503,
    "timeout": 504,
}

CODES = sorted(path.stem for path in (FIXTURES / "errors").glob("*.json"))
# `method_not_found` -> any_browser.MethodNotFound
CODE_CLASSES = {
    code: getattr(any_browser, "".join(part.title() for part in code.split("_")))
    for code in CODES
}


@pytest.fixture
def client(server: Server) -> any_browser.Client:
    return any_browser.Client(server.port, autostart=False, timeout=10)


def test_echo_returns_the_params_intact(client: any_browser.Client) -> None:
    params = {"text": "Grüße, 世界 ✓", "n": [1, 2.5, None, True], "nested": {"a": {"b": []}}}
    assert client.call(PAGE, "echo", params) == params


def test_absent_params_reach_the_page_as_an_empty_object(client: any_browser.Client) -> None:
    assert client.call(PAGE, "echo") == {}


def test_a_call_routed_by_label(client: any_browser.Client) -> None:
    assert client.call(PAGE, "echo", [1], browser=FAKE_LABEL, new_tab=True) == [1]


def test_progress_frames_do_not_disturb_the_result(client: any_browser.Client) -> None:
    assert client.call(PAGE, "progress", {"x": 1}) == {"x": 1}


def test_a_big_result(client: any_browser.Client) -> None:
    result = client.call(PAGE, "big", {"bytes": 3_000_000})
    assert isinstance(result, str) and len(result) == 3_000_000


@pytest.mark.parametrize("code", CODES)
def test_every_error_code_raises_its_class(client: any_browser.Client, code: str) -> None:
    expected = CODE_CLASSES[code]
    with pytest.raises(any_browser.AnyError) as caught:
        client.call(PAGE, "fail", {"code": code, "message": f"the fake failed with {code}"})
    error = caught.value
    assert type(error) is expected
    assert error.code == code
    assert f"the fake failed with {code}" in error.message
    assert error.status == HTTP_STATUS[code]
    assert error.call_id


def test_a_page_error_carries_the_page_name_message_and_stack(
    client: any_browser.Client,
) -> None:
    with pytest.raises(any_browser.PageError) as caught:
        client.call(PAGE, "throw", {"name": "TypeError", "message": "x is undefined"})
    error = caught.value
    assert (error.code, error.name, error.message) == ("page_error", "TypeError", "x is undefined")
    assert error.stack
    assert error.status == 422
    assert str(error).startswith("TypeError: x is undefined\npage stack:\n")


def test_an_unknown_method_is_method_not_found(client: any_browser.Client) -> None:
    with pytest.raises(any_browser.MethodNotFound):
        client.call(PAGE, "noSuchMethod")


def test_an_invalid_page_is_a_bad_request(client: any_browser.Client) -> None:
    with pytest.raises(any_browser.BadRequest) as caught:
        client.call("not a url", "echo")
    assert caught.value.status == 400


def test_a_call_that_never_answers_times_out_on_time(client: any_browser.Client) -> None:
    started = time.monotonic()
    with pytest.raises(any_browser.Timeout) as caught:
        client.call(PAGE, "never", timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2.0, elapsed
    assert caught.value.status == 504  # the server's answer, not the client giving up
    assert caught.value.stage


def test_a_late_answer_is_a_timeout_and_harms_no_later_call(client: any_browser.Client) -> None:
    with pytest.raises(any_browser.Timeout):
        client.call(PAGE, "late", {"ms": 800}, timeout=0.3)
    time.sleep(0.8)  # the late answer arrives at the server and must be dropped
    assert client.call(PAGE, "echo", {"after": "late"}) == {"after": "late"}


def test_a_disconnecting_extension(server: Server, start_fake: StartFake) -> None:
    start_fake(server.port, "doomed")
    client = any_browser.Client(server.port, autostart=False)
    with pytest.raises(any_browser.ExtensionDisconnected) as caught:
        client.call(PAGE, "disconnect", browser="doomed")
    assert caught.value.status == 502


def test_status_lists_the_fake_extension(client: any_browser.Client, server: Server) -> None:
    status = client.status()
    assert status.listen.endswith(f":{server.port}")
    assert FAKE_LABEL in [e.label for e in status.extensions]
    assert status.pid > 0


def test_no_extension_says_what_to_do(start_server: StartServer) -> None:
    server = start_server("--connect-wait", "0.3")
    with pytest.raises(any_browser.NoExtension) as caught:
        any_browser.Client(server.port, autostart=False).call(PAGE, "echo")
    assert caught.value.status == 503
    assert str(server.port) in str(caught.value)


def test_the_one_shot_call(server: Server) -> None:
    assert any_browser.call(PAGE, "echo", {"one": "shot"}, port=server.port) == {"one": "shot"}

