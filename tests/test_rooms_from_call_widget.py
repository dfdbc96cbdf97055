"""CallWidget.invite during a 1:1 call (no browser): the command the page turns into a room,
what Python refuses at once, and what an invite waits for when the call is on its way.

The page's half is js/test/room_from_call.test.js; the server's tests/test_rooms_from_call.py;
real pages in JupyterLab tests/e2e/test_rooms_from_call_lab.py.
"""

from __future__ import annotations

from nbcall import CallWidget
from nbcall._errors import PageError
from nbcall._messages import TO_PAGE, problem
from nbcall.signaling.protocol import ErrorCode

from .error_helpers import raises_code
from .test_queued_actions import URL, capture, page_done, ready


def test_invite_in_a_connected_call_sends_the_command() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    ready(w, state="connected", peer="Bob", peers=["Bob", "carol"], topology="p2p")
    w.invite("carol")
    assert sent == [{"kind": "invite", "to": "carol"}]
    assert problem(TO_PAGE, sent[0]) is None
    with raises_code(PageError.ALREADY_MEMBER):
        w.invite("BOB")
    with raises_code(ErrorCode.SELF_CALL):
        w.invite("ann")
    # The page moved the call into a room: the next invite goes to the room.
    w.set_trait("state", "ended")
    w.set_trait("end_reason", "moved")
    w.set_trait("room", "call-1a2b3c4d")
    w.set_trait("topology", "mesh")
    w.set_trait("participants", [{"name": "Bob", "key": "bob", "state": "connected"}])
    w.invite("dave")
    assert sent[-1] == {"kind": "invite", "to": "dave"}
    with raises_code(PageError.ALREADY_MEMBER):
        w.invite("bob")


def test_no_room_and_no_connected_call_raises_at_once() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    ready(w)
    for state in ("idle", "ended"):
        w.set_trait("state", state)
        with raises_code(ErrorCode.NOT_IN_ROOM):
            w.invite("carol")
    assert sent == []


def test_an_invite_waits_for_the_call_on_its_way() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    ready(w, peers=["bob", "carol"])
    # call() and invite() in one cell: the invite waits for the call to connect.
    w.call("bob")
    w.invite("carol")
    assert sent == [{"kind": "call", "to": "bob"}]
    assert [(e["wait"], e["command"]) for e in w._queued] == [("connected", {"kind": "invite", "to": "carol"})]
    page_done(w, w._queued[0]["id"])
    # A call being set up (calling, ringing, connecting): the same.
    for state in ("calling", "ringing", "connecting"):
        w.set_trait("state", state)
        w.invite("carol")
        assert w._queued[-1]["wait"] == "connected", state
        page_done(w, w._queued[-1]["id"])
    # A join in this cell: the invite waits for the room, as before.
    w.set_trait("state", "idle")
    w.join("standup")
    w.invite("carol")
    assert w._queued[-1]["wait"] == "in_room"


def test_before_the_page_reports_the_latest_call_or_join_decides() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    w.call("bob")
    w.invite("carol")
    w.join("later")
    w.invite("dave")
    assert sent == []
    assert [(e["wait"], e["command"]["kind"]) for e in w._queued] == [
        ("online", "call"),
        ("connected", "invite"),
        ("free", "join"),
        ("in_room", "invite"),
    ]
