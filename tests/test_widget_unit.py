"""CallWidget without a browser: traits, validation, and the messages it sends."""

from __future__ import annotations

import logging
import pathlib
import re
import threading
from typing import Any

import pytest
import traitlets

import nbcall
from nbcall import CallWidget
from nbcall._errors import PageError
from nbcall._messages import TO_KERNEL, TO_PAGE
from nbcall.signaling import current
from nbcall.signaling.protocol import ErrorCode

from .error_helpers import raises_code

URL = "ws://127.0.0.1:1"  # never dialled: these tests have no browser


class Sent:
    """Collects what the widget sends to the frontend (instead of a comm)."""

    def __init__(self, widget: CallWidget) -> None:
        self.messages: list[dict[str, Any]] = []
        widget.send = self.messages.append


def frontend(widget: CallWidget, **traits: Any) -> Sent:
    """Play the browser's part: report a rendered view, then set traits as the page would."""
    widget._handle_custom_msg({"kind": "ready"}, [])
    widget._handle_custom_msg({"kind": "view"}, [])
    widget.set_trait("state", "idle")
    for name, value in traits.items():
        widget.set_trait(name, value)
    return Sent(widget)


def test_exported() -> None:
    assert nbcall.CallWidget is CallWidget
    assert "CallWidget" in nbcall.__all__


def test_traits_are_synced_and_documented() -> None:
    w = CallWidget("alice", server=URL)
    names = ["user", "server", "state", "peer", "incoming", "peers", "error", "end_reason", "audio", "video"]
    names += ["ice_servers", "transport", "stats", "connect_via", "ice_transport_policy", "preview"]
    for name in names:
        trait = w.traits()[name]
        assert trait.metadata.get("sync") is True, name
        assert trait.help, name
    assert w.state == "registering"
    assert (w.audio, w.video, w.ice_servers, w.transport) == (True, True, [], "")
    assert (w.connect_via, w.ice_transport_policy) == ("auto", "all")
    assert w.server == URL
    assert w._credential and len(w._credential) >= 16


def test_user_is_validated_and_normalised() -> None:
    assert CallWidget("ｗｚｈ", server=URL).user == "wzh"
    assert CallWidget(" 小文111 ", server=URL).user == "小文111"
    for bad in ["", "   ", "a\u200bb", "x" * 65, "pаypal"]:
        with pytest.raises(ValueError, match="invalid user name"):
            CallWidget(bad, server=URL)


def test_server_must_be_a_websocket_url() -> None:
    with pytest.raises(ValueError, match="ws://"):
        CallWidget("alice", server="http://127.0.0.1:9900")


def test_default_server_is_the_embedded_one() -> None:
    existing = current()  # another test may have started the process's server: leave it running
    handle = nbcall.serve(host="127.0.0.1", port=0)
    try:
        assert CallWidget("alice").server == handle.url
    finally:
        if existing is None:
            handle.stop()


def test_a_shared_server_from_the_environment_replaces_the_embedded_one(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr("nbcall.signaling.embedded.serve", lambda *a, **k: started.append(a))
    monkeypatch.setenv("NBCALL_SERVER", " wss://signal.example.org/nbcall ")
    assert CallWidget("alice").server == "wss://signal.example.org/nbcall"
    assert CallWidget("bob", server=URL).server == URL  # an explicit URL still wins
    monkeypatch.setenv("NBCALL_SERVER", "http://signal.example.org")
    with pytest.raises(ValueError, match="NBCALL_SERVER must be a ws:// or wss:// URL"):
        CallWidget("carol")
    assert started == [], "no embedded server is started when a shared one is configured"


def test_ice_servers_are_validated_and_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    stun = {"urls": "stun:127.0.0.1:3478"}
    assert CallWidget("alice", server=URL, ice_servers=[stun]).ice_servers == [stun]
    with pytest.raises(traitlets.TraitError, match="needs 'username' and 'credential'"):
        CallWidget("alice", server=URL, ice_servers=[{"urls": "turn:127.0.0.1:3478"}])
    with pytest.raises(traitlets.TraitError, match="STUN/TURN URL"):
        CallWidget("alice", server=URL).ice_servers = [{"urls": "http://example.org"}]
    monkeypatch.setenv("NBCALL_ICE_SERVERS", '[{"urls": "stun:127.0.0.1:3478"}]')
    assert CallWidget("alice", server=URL).ice_servers == [stun]


def test_enums_refuse_unknown_values() -> None:
    w = CallWidget("alice", server=URL)
    with pytest.raises(traitlets.TraitError):
        w.state = "dancing"
    with pytest.raises(traitlets.TraitError):
        w.transport = "pigeon"
    with pytest.raises(traitlets.TraitError):
        w.connect_via = "pigeon"
    with pytest.raises(traitlets.TraitError):
        w.ice_transport_policy = "sometimes"


def test_ready_without_a_view_is_not_displayed() -> None:
    w = CallWidget("alice", server=URL)
    w._handle_custom_msg({"kind": "ready"}, [])
    assert not w.displayed
    w._handle_custom_msg({"kind": "view"}, [])
    assert w.displayed


def test_call_sends_a_command() -> None:
    w = CallWidget("alice", server=URL)
    sent = frontend(w, peers=["Bob", "carol"])
    w.call("bob")  # names are matched like the server does: case-insensitively
    assert sent.messages == [{"kind": "call", "to": "Bob"}]


def test_call_refuses_what_cannot_work() -> None:
    w = CallWidget("alice", server=URL)
    sent = frontend(w, peers=["bob"])
    with raises_code(ErrorCode.SELF_CALL):
        w.call("ALICE")
    with raises_code(ErrorCode.UNKNOWN_PEER):
        w.call("zed")
    with raises_code(ErrorCode.INVALID_NAME):
        w.call("bad\u200bname")
    w.set_trait("state", "connected")
    w.set_trait("peer", "bob")
    with raises_code(PageError.IN_CALL):
        w.call("bob")
    w.set_trait("state", "error")
    w.set_trait("error", "cannot register as alice: name_taken: 'alice' is in use")
    with raises_code(ErrorCode.NOT_REGISTERED):
        w.call("bob")
    assert sent.messages == []


def test_call_again_after_a_call_ended() -> None:
    w = CallWidget("alice", server=URL)
    sent = frontend(w, peers=["bob"], state="ended")
    w.call("bob")
    assert sent.messages == [{"kind": "call", "to": "bob"}]


def test_accept_reject_only_while_ringing() -> None:
    w = CallWidget("alice", server=URL)
    sent = frontend(w)
    with raises_code(ErrorCode.NO_CALL):
        w.accept()
    with raises_code(ErrorCode.NO_CALL):
        w.reject()
    w.set_trait("state", "ringing")
    w.accept()
    w.reject()
    assert sent.messages == [{"kind": "accept"}, {"kind": "reject"}]


def test_accept_or_reject_after_the_page_auto_answered_go_to_the_page() -> None:
    w = CallWidget("alice", server=URL, auto_answer=True)
    sent = frontend(w)
    w.set_trait("state", "connecting")  # the page answered as it rang (or it is our own call)
    w.accept()  # an on_incoming that accepts too: the page knows whether it answered
    w.reject()
    assert sent.messages == [{"kind": "accept"}, {"kind": "reject"}]
    w.set_trait("state", "idle")
    with raises_code(ErrorCode.NO_CALL):
        w.accept()
    w.auto_answer = False
    w.set_trait("state", "connecting")
    with raises_code(ErrorCode.NO_CALL):
        w.accept()


def test_hangup_only_in_a_call() -> None:
    w = CallWidget("alice", server=URL)
    sent = frontend(w)
    for state in ["idle", "ended", "ringing", "registering", "error"]:
        w.set_trait("state", state)
        with raises_code(ErrorCode.NO_CALL):
            w.hangup()
    for state in ["calling", "connecting", "connected"]:
        w.set_trait("state", state)
        w.hangup()
    assert sent.messages == [{"kind": "hangup"}] * 3


def test_callbacks() -> None:
    w = CallWidget("alice", server=URL)
    rings: list[str] = []
    states: list[str] = []
    w.on_incoming(rings.append)
    w.on_state(states.append)
    w.set_trait("state", "idle")
    w.set_trait("incoming", "bob")
    w.set_trait("state", "ringing")
    w.set_trait("incoming", "")  # the ringing stopped: not a new call
    w.set_trait("state", "connecting")
    assert rings == ["bob"]
    assert states == ["idle", "ringing", "connecting"]


def test_unknown_frontend_messages_are_ignored() -> None:
    w = CallWidget("alice", server=URL)
    w._handle_custom_msg("not a dict", [])
    w._handle_custom_msg({"kind": "error", "action": "call", "message": "x"}, [])
    w._handle_custom_msg({"no": "kind"}, [])
    assert not w.displayed
    # ...ignored by the call, but not silently: each is logged and kept for debugging.
    assert w._page_problem_count == 3 and len(w._page_problems) == 3
    assert "must be a JSON object" in w._page_problems[0] and "unknown message kind 'error'" in w._page_problems[1]


def test_every_page_message_has_a_handler() -> None:
    assert set(CallWidget("alice", server=URL)._handlers) == set(TO_KERNEL)


def test_the_dispatcher_logs_and_keeps_what_it_cannot_handle(caplog: pytest.LogCaptureFixture) -> None:
    w = CallWidget("alice", server=URL)
    caplog.set_level(logging.WARNING, logger="nbcall.widget")
    w._handle_custom_msg({"kind": "teleport", "to": "mars"}, [])  # unknown kind
    w._handle_custom_msg({"kind": "kernel_socket_send", "id": "s1"}, [])  # known kind, a field missing
    w._handle_custom_msg({"kind": "recording_chunk", "id": "r", "seq": "1"}, [b"x"])  # mistyped field
    w._handle_custom_msg({"kind": "kernel_socket_open", "id": "x" * 65}, [])  # id too long
    w._handle_custom_msg({"kind": "relay-open", "id": "s1", "url": "ws://evil"}, [])  # an old page's kind
    assert w._page_problem_count == 5 and len(sockets(w)) == 0
    problems = list(w._page_problems)
    assert "unknown message kind 'teleport'" in problems[0] and "'kernel_socket_send' needs 'data'" in problems[1]
    assert "'seq' must be int" in problems[2] and "longer than 64" in problems[3] and "'relay-open'" in problems[4]
    logged = [r.getMessage() for r in caplog.records if r.name == "nbcall.widget"]
    assert len(logged) == 5 and all("alice" in m for m in logged) and "teleport" in logged[0]
    # Only the last few are kept; the count goes on.
    for i in range(30):
        w._handle_custom_msg({"kind": f"junk{i}"}, [])
    assert w._page_problem_count == 35 and len(w._page_problems) == 20 and "junk29" in w._page_problems[-1]


def test_a_failing_handler_is_logged_not_raised_into_the_comm(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    w = CallWidget("alice", server=URL)

    def broken(content: dict[str, Any], buffers: list[Any]) -> None:
        raise RuntimeError("boom")

    monkeypatch.setitem(w._handlers, "view", broken)
    with caplog.at_level(logging.WARNING, logger="nbcall.widget"):
        w._on_page_message(w, {"kind": "view"}, [])  # the comm's callback: must not raise
    assert "handling 'view' failed: RuntimeError('boom')" in w._page_problems[-1]
    assert any(r.exc_info for r in caplog.records)


def test_action_failed_reaches_the_error_trait_and_the_log(caplog: pytest.LogCaptureFixture) -> None:
    w = CallWidget("alice", server=URL)
    frontend(w)
    with caplog.at_level(logging.WARNING, logger="nbcall.widget"):
        w._handle_custom_msg(
            {"kind": "action_failed", "action": "call", "code": "media_failed", "message": "no camera"}, []
        )
    assert w.error == "call: no camera"
    assert any("call failed in the page: no camera" in r.getMessage() for r in caplog.records)
    # The page sets `error` too (same words): the kernel does not overwrite what is already there.
    w.set_trait("error", "start_recording: not allowed")
    w._handle_custom_msg(
        {"kind": "action_failed", "action": "start_recording", "code": "media_failed", "message": "not allowed"}, []
    )
    assert w.error == "start_recording: not allowed" and not w._page_problems


def test_protocol_error_from_the_page_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    w = CallWidget("alice", server=URL)
    with caplog.at_level(logging.WARNING, logger="nbcall.widget"):
        w._handle_custom_msg({"kind": "protocol_error", "detail": "unknown message kind 'dance'"}, [])
    assert any("could not handle" in r.getMessage() and "dance" in r.getMessage() for r in caplog.records)
    assert w._page_problem_count == 1 and w.error == ""


def test_commands_are_checked_before_they_are_sent() -> None:
    w = CallWidget("alice", server=URL)
    sent = frontend(w)
    w._command("call", to="bob")
    for kind, fields, why in [
        ("dance", {}, "unknown message kind 'dance'"),
        ("call", {}, "'call' needs 'to'"),
        ("call", {"to": 7}, "'to' must be str"),
        ("hangup", {"why": "bored"}, "'hangup' has no field"),
        ("kernel_socket_closed", {"id": "s", "code": "1000", "reason": ""}, "'code' must be int"),
        ("record_start", {"which": "both"}, "unknown message kind 'record_start'"),
    ]:
        with pytest.raises(ValueError, match=f"malformed command to the page: .*{re.escape(why)}"):
            w._command(kind, **fields)
    assert sent.messages == [{"kind": "call", "to": "bob"}]


def test_connect_via_kernel_and_its_deprecated_name() -> None:
    assert CallWidget("alice", server=URL, connect_via="kernel").connect_via == "kernel"
    with pytest.warns(DeprecationWarning, match="connect_via='relay' is deprecated: use connect_via='kernel'") as rec:
        w = CallWidget("alice", server=URL, connect_via="relay")
    assert w.connect_via == "kernel"
    assert rec[0].filename == __file__  # attributed to the caller, so that a notebook shows it
    with pytest.warns(DeprecationWarning, match="connect_via='relay'"):
        w.connect_via = "relay"
    assert w.connect_via == "kernel"
    w.set_trait("transport", "kernel")
    with pytest.raises(traitlets.TraitError):
        w.transport = "relay"  # the page reports the new name only


def test_the_kernel_socket_of_a_widget_always_goes_to_its_own_server() -> None:
    w = CallWidget("alice", server=URL)  # nothing listens on URL: each socket closes with 1006
    closed: list[dict[str, Any]] = []
    done = threading.Event()

    def capture(content: dict[str, Any]) -> None:
        closed.append(content)
        if len(closed) == 5:
            done.set()

    w.send = capture
    for i in range(5):
        # An old page's "url" is ignored: the page never chooses where the kernel connects.
        w._handle_custom_msg({"kind": "kernel_socket_open", "id": f"s{i}", "url": "ws://elsewhere:1"}, [])
        assert len(sockets(w)) <= 4  # the bound: the oldest goes
    assert all(s.url == URL for _, s in list(sockets(w).values()))
    assert done.wait(10), closed
    assert {c["kind"] for c in closed} == {"kernel_socket_closed"} and {c["id"] for c in closed} == {
        f"s{i}" for i in range(5)
    }
    assert all(c["code"] == 1006 for c in closed) and len(sockets(w)) == 0


def test_the_docs_list_every_message_kind_and_field() -> None:
    docs = (pathlib.Path(__file__).parent.parent / "docs" / "widget.md").read_text(encoding="utf-8")
    section = docs.split("## Messages between the kernel and the page", 1)[1].split("\n## ", 1)[0]
    for table in (TO_PAGE, TO_KERNEL):
        for kind in table.values():
            row = next((line for line in section.splitlines() if f"`{kind.name}`" in line), "")
            assert row, kind.name
            for name, type_ in kind.fields.items():
                assert f"`{name}{'?' if type_.endswith('?') else ''}`" in row, (kind.name, name)


def sockets(w: CallWidget) -> dict[str, Any]:
    return w._sockets._sockets


def test_repr() -> None:
    assert repr(CallWidget("alice", server=URL)) == "CallWidget(user='alice', state='registering', peer='')"


def test_a_new_widget_of_the_same_name_replaces_the_earlier_one() -> None:
    first = CallWidget("rerun", server=URL)
    frontend(first)
    assert not first._replaces
    # Running the cell again: the earlier widget is closed, the new one says it replaces it.
    second = CallWidget("ReRun", server=URL)  # the same name once normalised
    assert first.comm is None and second.comm is not None and second._replaces
    with raises_code(PageError.CLOSED):
        first.call("bob")
    # Another name, or the same name on another server, is a different widget.
    other = CallWidget("rerun-2", server=URL)
    elsewhere = CallWidget("rerun", server="ws://127.0.0.1:2")
    assert second.comm is not None and not other._replaces and not elsewhere._replaces
    # A closed widget is not "replaced" by its successor.
    second.close()
    assert not CallWidget("rerun", server=URL)._replaces
