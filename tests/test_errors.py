"""Error codes end to end: CallError.code, action_failed's code, one declared set (nbcall/_errors.py)."""

from __future__ import annotations

import logging
import pathlib
import pickle
import re
from typing import Any

import pytest

from nbcall import CallError, CallWidget
from nbcall._errors import ERROR_CODES, PAGE_ERRORS, PageError, server_code
from nbcall.signaling.protocol import ErrorCode

from .error_helpers import raises_code

URL = "ws://127.0.0.1:1"  # never dialled: these tests have no browser
ROOT = pathlib.Path(__file__).resolve().parent.parent
# The codes issue 22 names; each must reach Python as a code, whichever side found it.
NAMED = [ErrorCode.UNKNOWN_PEER, ErrorCode.BUSY, ErrorCode.ROOM_FULL, ErrorCode.NOT_INVITED, ErrorCode.RATE_LIMITED]


def page(widget: CallWidget) -> None:
    """Play the browser's part: the page reported, registered, bob online."""
    widget._handle_custom_msg({"kind": "ready"}, [])
    widget._handle_custom_msg({"kind": "view"}, [])
    widget.set_trait("state", "idle")
    widget.set_trait("peers", ["bob"])


def test_the_page_codes_are_declared_once_apart_from_the_servers() -> None:
    declared = {v for k, v in vars(PageError).items() if k.isupper()}
    assert declared == set(PAGE_ERRORS)
    assert not set(PAGE_ERRORS) & ErrorCode.ALL, "a page code must not shadow a server code"
    assert frozenset(PAGE_ERRORS) | ErrorCode.ALL == ERROR_CODES
    assert all(meaning.strip() for meaning in PAGE_ERRORS.values())


def test_call_error_carries_a_declared_code_and_stays_a_runtime_error() -> None:
    err = CallError("room: room 'team' is full", code=ErrorCode.ROOM_FULL, action="room")
    assert isinstance(err, RuntimeError)
    assert (str(err), err.code, err.action) == ("room: room 'team' is full", "room_full", "room")
    again = pickle.loads(pickle.dumps(err))
    assert (str(again), again.code, again.action) == (str(err), err.code, err.action)
    assert CallError("x", code=PageError.IN_CALL).action == ""
    with pytest.raises(ValueError, match="undeclared"):
        CallError("x", code="room full")


def test_a_server_code_this_nbcall_does_not_know_becomes_server_refused() -> None:
    assert server_code("not_invited") == "not_invited"
    assert server_code("brand_new_code") == server_code(None) == PageError.SERVER_REFUSED


@pytest.mark.parametrize("code", NAMED)
def test_action_failed_gives_on_error_a_call_error_with_the_code(code: str) -> None:
    w = CallWidget("alice", server=URL)
    page(w)
    errors: list[Any] = []
    w.on_error(errors.append)
    w._handle_custom_msg({"kind": "action_failed", "action": "room", "code": code, "message": f"words for {code}"}, [])
    assert len(errors) == 1
    err = errors[0]
    assert isinstance(err, CallError)
    assert (err.code, err.action) == (code, "room")
    assert str(err) == f"room: words for {code}" == w.error  # the words, as before
    assert not w._page_problems


@pytest.mark.parametrize("content", [{"code": "room full"}, {"code": 7}, {}], ids=["undeclared", "not-str", "missing"])
def test_action_failed_without_a_declared_code_is_a_page_problem(
    content: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    w = CallWidget("alice", server=URL)
    page(w)
    errors: list[Any] = []
    w.on_error(errors.append)
    with caplog.at_level(logging.WARNING, logger="nbcall.widget"):
        w._handle_custom_msg({"kind": "action_failed", "action": "call", "message": "m", **content}, [])
    assert errors == []
    assert w._page_problem_count == 1 and "code" in w._page_problems[0]


def test_call_error_raised_at_once_has_the_code() -> None:
    w = CallWidget("alice", server=URL)
    page(w)
    with raises_code(ErrorCode.UNKNOWN_PEER):
        w.call("zed")
    with raises_code(ErrorCode.ROOM_FULL):
        w.call([f"user{i}" for i in range(60)])
    w.set_trait("state", "connected")
    w.set_trait("peer", "bob")
    with raises_code(PageError.IN_CALL):
        w.call("bob")
    w._command = lambda *_a, **_k: None  # type: ignore[method-assign]  # no page to send to
    with raises_code(ErrorCode.RATE_LIMITED):
        for i in range(100):
            w.send_chat(f"line {i}")


def _page_sources() -> dict[pathlib.Path, str]:
    js = ROOT / "js"
    skip = {js / "messages.js", js / "protocol.js"}
    return {p: p.read_text(encoding="utf-8") for p in js.rglob("*.js") if "test" not in p.parts and p not in skip}


def test_every_code_the_page_names_is_declared() -> None:
    page_names = {k for k in vars(PageError) if k.isupper()}
    server_names = {k for k in vars(ErrorCode) if k.isupper() and k != "ALL"}
    seen = 0
    for path, text in _page_sources().items():
        for name in re.findall(r"\bPageError\.([A-Z_]+)", text):
            assert name in page_names, f"{path.name}: PageError.{name} is not declared in nbcall/_errors.py"
            seen += 1
        for name in re.findall(r"\bErrorCode\.([A-Z_]+)", text):
            assert name in server_names, f"{path.name}: ErrorCode.{name} is not in nbcall.signaling.protocol"
    assert seen > 10  # the scan found the page's codes


def test_every_action_failed_the_page_sends_has_a_code() -> None:
    sends = 0
    for path, text in _page_sources().items():
        for fields in re.findall(r"ACTION_FAILED, (\{[^}]*\})", text):
            assert re.search(r"\bcode\b", fields), f"{path.name}: action_failed without a code: {fields}"
            sends += 1
    assert sends >= 4  # widget.js, in_call.js, queued_actions.js, dispatch.js


def test_the_docs_list_every_page_code_with_its_meaning() -> None:
    docs = (ROOT / "docs" / "widget.md").read_text(encoding="utf-8")
    section = docs.split("## Errors and their codes", 1)[1].split("\n## ", 1)[0]
    for code, meaning in PAGE_ERRORS.items():
        assert f"| `{code}` | {meaning} |" in section, code
    for code in NAMED:
        assert f"`{code}`" in section, code
