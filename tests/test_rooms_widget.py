"""CallWidget's room API in Python (no browser): checks, commands, the queue, callbacks.

The page's half is js/test/room*.test.js; real rooms in JupyterLab are tests/e2e/test_rooms_lab.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from nbcall import CallWidget
from nbcall._errors import PageError
from nbcall._messages import TO_PAGE, problem
from nbcall.signaling.protocol import ErrorCode

from .error_helpers import raises_code
from .test_queued_actions import URL, capture, page_done, ready


def member(name: str, state: str = "connected") -> dict[str, Any]:
    return {"name": name, "key": name.lower(), "state": state, "audio": True, "video": True, "speaking": False}


def test_join_leave_invite_send_checked_commands() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    ready(w)
    w.join("Standup", password="s3cret")
    assert sent == [{"kind": "join", "room": "Standup", "invite_only": False, "password": "s3cret"}]
    # The invite of the same cell waits for the page to be in the room.
    w.invite("bob")
    assert w.waiting == ["invite bob"] and w._queued[0]["wait"] == "in_room"
    page_done(w, w._queued[0]["id"])
    w.set_trait("room", "Standup")
    w.invite("carol")
    w.leave()
    assert sent[1:] == [{"kind": "invite", "to": "carol"}, {"kind": "leave"}]
    for message in sent:
        assert problem(TO_PAGE, message) is None


def test_what_python_can_check_raises_at_once() -> None:
    w = CallWidget("ann", server=URL)
    capture(w)
    ready(w)
    with raises_code(ErrorCode.INVALID_ROOM):
        w.join("")
    with raises_code(ErrorCode.INVALID_ROOM):
        w.join("x" * 65)
    with raises_code(PageError.INVALID_ARGUMENT):
        w.join("ok", password="p" * 257)
    with raises_code(ErrorCode.NOT_IN_ROOM):
        w.leave()
    with raises_code(ErrorCode.NOT_IN_ROOM):
        w.invite("bob")
    with raises_code(ErrorCode.SELF_CALL):
        w.invite("ANN")
    with raises_code(ErrorCode.SELF_CALL):
        w.call(["bob", "ann"])
    with raises_code(PageError.INVALID_ARGUMENT):
        w.call([])
    w.set_trait("state", "connected")
    w.set_trait("peer", "bob")
    with raises_code(PageError.IN_CALL):
        w.join("standup")
    w.set_trait("state", "idle")
    w.set_trait("room", "standup")
    w.set_trait("participants", [member("bob")])
    with raises_code(PageError.IN_ROOM):
        w.join("other")
    with raises_code(PageError.ALREADY_MEMBER):
        w.invite("BOB")
    with raises_code(PageError.IN_ROOM):
        w.call("carol")


def test_call_several_makes_an_invite_only_room_and_invites_once_in_it() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    ready(w)
    w.call(["bob", "Carol", "bob"])
    assert sent[0]["kind"] == "join" and sent[0]["invite_only"] is True and sent[0]["room"].startswith("call-")
    assert w.waiting == ["invite bob", "invite Carol"]
    assert all(e["wait"] == "in_room" for e in w._queued)


def test_before_the_page_reports_join_waits_until_free() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    w.join("standup", invite_only=True)
    w.invite("bob")
    assert sent == []
    assert [(e["wait"], e["command"]["kind"]) for e in w._queued] == [("free", "join"), ("in_room", "invite")]


def test_accept_answers_a_room_invitation() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    ready(w)
    with raises_code(ErrorCode.NO_CALL):
        w.accept()
    w.set_trait("room_invite", {"room": "standup", "from": "bob"})
    w.accept()
    assert sent == [{"kind": "accept"}]


def test_on_join_and_on_leave_follow_participants() -> None:
    w = CallWidget("ann", server=URL)
    ready(w)
    joined: list[str] = []
    left: list[str] = []
    w.on_join(joined.append)
    w.on_leave(left.append)
    w.set_trait("room", "standup")
    w.set_trait("participants", [member("bob"), member("carol", "ringing")])
    w.set_trait("participants", [member("bob"), member("carol", "connecting")])
    w.set_trait("participants", [member("carol")])
    assert joined == ["bob", "carol"] and left == ["bob"]
    # Our own leaving is not everyone else leaving.
    with w.hold_trait_notifications():
        w.set_trait("room", "")
        w.set_trait("participants", [])
    assert left == ["bob"]


def test_snapshot_of_a_member_by_name() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    ready(w)
    with pytest.raises(ValueError, match="room member"):
        w.snapshot("bob")
    w.set_trait("room", "standup")
    w.set_trait("participants", [member("Bob"), member("dave", "ringing")])
    snap = w.snapshot("bob")
    assert snap.which == "Bob" and sent[-1]["which"] == "Bob"
    with pytest.raises(ValueError, match="in the room: Bob"):
        w.snapshot("dave")


def test_room_video_is_checked() -> None:
    w = CallWidget("ann", server=URL, room_video={"width": 320, "height": 180, "fps": 15})
    assert w.room_video == {"width": 320, "height": 180, "fps": 15}
    for bad in ({"width": 0}, {"fps": 61}, {"height": "180"}, {"depth": 8}, {"width": True}):
        with pytest.raises(Exception, match="room_video takes"):
            w.room_video = bad


def test_run_all_snapshot_of_a_member_waits_for_that_member() -> None:
    w = CallWidget("cat", server=URL)
    sent = capture(w)
    w.join("standup")
    snap = w.snapshot("Ann")
    assert sent == [] and not snap.ready
    entry = w._queued[-1]
    assert (entry["wait"], entry["key"], entry["command"]["which"]) == ("member", "ann", "Ann")
    # Once the page is up and in the room, a name nobody in it has is an error at once.
    ready(w, room="standup", participants=[member("Ann")])
    w._queued = []
    with pytest.raises(ValueError, match="in the room: Ann"):
        w.snapshot("bob")


def test_run_all_chat_in_a_room_waits_for_the_room() -> None:
    w = CallWidget("ann", server=URL)
    capture(w)
    w.join("standup")
    w.send_chat("hello everyone")
    assert [(e["wait"], e["command"]["kind"]) for e in w._queued] == [("free", "join"), ("in_room", "chat")]
