"""Actions asked for before the page could carry them out wait in the `_queued` trait (no browser).

The page's half (carrying them out, timeouts, failures) is js/test/queued_actions.test.js;
Run All in real JupyterLab is tests/e2e/test_demo_notebooks.py.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from nbcall import CallError, CallWidget
from nbcall._errors import PageError
from nbcall._messages import MAX_QUEUED_ACTIONS, TO_PAGE, problem
from nbcall.signaling.names import name_key
from nbcall.signaling.protocol import ErrorCode

from .error_helpers import raises_code

URL = "ws://127.0.0.1:1"  # never dialled


def capture(widget: CallWidget) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    widget.send = sent.append  # type: ignore[method-assign,assignment]
    return sent


def ready(widget: CallWidget, **traits: Any) -> None:
    """The page reports, between cells (as after Run All)."""
    widget._handle_custom_msg({"kind": "ready"}, [])
    widget._handle_custom_msg({"kind": "view"}, [])
    widget.set_trait("state", traits.pop("state", "idle"))
    for name, value in traits.items():
        widget.set_trait(name, value)


def page_done(widget: CallWidget, entry_id: int) -> None:
    widget._handle_custom_msg({"kind": "queued_done", "id": entry_id}, [])


def test_run_all_actions_wait_for_the_page_in_order() -> None:
    alice, bob = CallWidget("alice", server=URL), CallWidget("bob", server=URL)
    sent_a, sent_b = capture(alice), capture(bob)
    # One cell after another, before the kernel reads anything from the page.
    alice.call("Bob")
    bob.accept()
    alice.send_chat("hello 你好")
    snap = bob.snapshot("remote")
    alice.start_recording("both")
    alice.stop_recording()
    alice.share_screen()
    assert sent_a == [] and sent_b == [], "nothing is sent as a message: a message before the model exists is lost"
    assert alice.waiting == ["call Bob", "send a message", "record", "stop recording", "share the screen"]
    assert bob.waiting == ["accept", "take a snapshot"]
    first = alice._queued[0]
    assert first["id"] == 1 and first["wait"] == "online" and first["key"] == name_key("Bob")
    assert first["command"] == {"kind": "call", "to": "Bob"}
    assert [e["wait"] for e in bob._queued] == ["ringing", "connected"]
    assert bob._queued[1]["command"] == {"kind": "snapshot", "id": str(snap.id), "which": "remote"}
    assert not snap.ready
    for entry in alice._queued + bob._queued:  # every queued command is one the page's table accepts
        assert problem(TO_PAGE, entry["command"]) is None, entry
    assert alice.traits()["_queued"].metadata.get("sync") is True

    # The page carried the first out: the kernel drops it; later actions keep the order.
    ready(alice)
    page_done(alice, 1)
    assert alice.waiting == ["send a message", "record", "stop recording", "share the screen"]
    alice.hangup()
    assert alice.waiting[-1] == "hang up" and sent_a == []
    for entry in list(alice._queued):
        page_done(alice, entry["id"])
    assert alice.waiting == []


def test_what_python_can_check_still_raises_at_once() -> None:
    w = CallWidget("alice", server=URL)
    with raises_code(ErrorCode.SELF_CALL):
        w.call("ALICE")
    with raises_code(ErrorCode.INVALID_NAME):
        w.call("bad\u200bname")
    with raises_code(PageError.INVALID_ARGUMENT):
        w.send_chat("")
    with pytest.raises(ValueError, match="which must be"):
        w.snapshot("sideways")
    assert w.waiting == []


def test_with_the_page_ready_actions_are_commands_and_impossible_ones_raise() -> None:
    w = CallWidget("alice", server=URL)
    sent = capture(w)
    ready(w, peers=["bob"])
    with raises_code(ErrorCode.NO_CALL):
        w.accept()
    with raises_code(PageError.NOT_CONNECTED):
        w.send_chat("hi")
    w.call("bob")
    assert sent == [{"kind": "call", "to": "bob"}]
    # The page's "calling" arrives after this cell: what needs the call waits for it.
    w.send_chat("hi")
    w.hangup()
    assert w.waiting == ["send a message", "hang up"]
    assert len(sent) == 1


def test_while_registering_a_call_waits_for_the_server() -> None:
    w = CallWidget("alice", server=URL)
    sent = capture(w)
    ready(w, state="registering")
    w.call("bob")
    assert sent == [] and w.waiting == ["call bob"]


def test_a_call_being_set_up_makes_in_call_actions_wait() -> None:
    w = CallWidget("alice", server=URL)
    capture(w)
    ready(w, state="connecting", peer="bob")
    snap = w.snapshot()
    assert w.waiting == ["take a snapshot"] and not snap.ready


def test_the_queue_is_bounded() -> None:
    w = CallWidget("alice", server=URL)
    for _ in range(MAX_QUEUED_ACTIONS):
        w.hangup()
    with raises_code(PageError.QUEUE_FULL):
        w.hangup()
    assert len(w._queued) == MAX_QUEUED_ACTIONS


def test_a_closed_widget_queues_nothing() -> None:
    w = CallWidget("alice", server=URL)
    w.close()
    with raises_code(PageError.CLOSED):
        w.call("bob")
    with raises_code(PageError.CLOSED):
        w.send_chat("hi")


def test_failures_reach_error_the_log_and_on_error(caplog: pytest.LogCaptureFixture) -> None:
    w = CallWidget("alice", server=URL)
    w.call("carol")
    errors: list[CallError] = []
    w.on_error(errors.append)

    def broken(_error: CallError) -> None:
        raise RuntimeError("a broken callback")

    w.on_error(broken)
    with caplog.at_level(logging.WARNING, logger="nbcall.widget"):
        w._handle_custom_msg(
            {
                "kind": "action_failed",
                "action": "call carol",
                "code": "timed_out",
                "message": "gave up after waiting 30 s for carol",
            },
            [],
        )
        page_done(w, 1)
    assert w.error == "call carol: gave up after waiting 30 s for carol"
    assert [str(e) for e in errors] == ["call carol: gave up after waiting 30 s for carol"]
    assert w.waiting == []
    assert "failed in the page" in caplog.text and "on_error callback failed" in caplog.text


def test_queued_done_for_an_unknown_id_changes_nothing() -> None:
    w = CallWidget("alice", server=URL)
    w.hangup()
    page_done(w, 999)
    w._handle_custom_msg({"kind": "queued_done", "id": "1"}, [])  # malformed: kept as a page problem
    assert w.waiting == ["hang up"]
    assert w._page_problem_count == 1


def test_an_action_whose_moment_is_now_does_not_wait_behind_the_queue() -> None:
    """bob.on_incoming(lambda c: bob.accept()) with a snapshot queued by Run All: the accept goes at once."""
    bob = CallWidget("bob", server=URL)
    sent = capture(bob)
    snap = bob.snapshot("remote")
    ready(bob, state="ringing", incoming="alice")
    bob.accept()
    assert sent == [{"kind": "accept"}]
    assert bob.waiting == ["take a snapshot"] and not snap.ready
    # Whatever cannot happen now still waits behind it, in order.
    bob.send_chat("hi")
    assert bob.waiting == ["take a snapshot", "send a message"]


def test_chat_in_the_cell_that_accepts_a_call_waits_for_the_call_even_after_an_old_join() -> None:
    w = CallWidget("alice", server=URL)
    capture(w)
    ready(w, peers=["bob"])
    w.join("standup")
    w.set_trait("room", "standup")  # in, then out again: that join is long over
    w.set_trait("room", "")
    w.set_trait("state", "ringing")
    w.accept()
    w.send_chat("hi")  # before the page reports the call: it waits for the call, not a room
    assert [(e["wait"], e["command"]["kind"]) for e in w._queued] == [("connected", "chat")]


def test_chat_in_the_cell_that_accepts_a_room_invitation_waits_for_the_room() -> None:
    w = CallWidget("alice", server=URL)
    capture(w)
    ready(w, peers=["bob"])
    w.set_trait("room_invite", {"room": "standup", "from": "bob"})
    w.accept()
    w.send_chat("hi")
    assert [(e["wait"], e["command"]["kind"]) for e in w._queued] == [("in_room", "chat")]
