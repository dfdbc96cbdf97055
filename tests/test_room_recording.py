"""start_recording in a room, in Python (no browser): which sources are checked and how,
what is sent at once and what waits for the room.  The page's half is
js/test/room_recording.test.js; real recordings of a room are tests/e2e/test_rooms_features_lab.py.
"""

from __future__ import annotations

import pytest

from nbcall import CallWidget
from nbcall._errors import PageError
from nbcall._messages import TO_PAGE, problem

from .error_helpers import raises_code
from .test_queued_actions import URL, capture, page_done, ready
from .test_rooms_widget import member


def in_room() -> tuple[CallWidget, list[dict[str, object]]]:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    ready(w)
    w.set_trait("room", "standup")
    w.set_trait("participants", [member("Bob"), member("cat"), member("dave", "ringing")])
    return w, sent


def test_in_a_room_the_grid_ours_or_a_member_as_the_server_spells_it() -> None:
    w, sent = in_room()
    for which, expected in [
        ("grid", "grid"),
        ("local", "local"),
        ("BOB", "Bob"),
        ("remote", "remote"),
        ("both", "both"),
    ]:
        w.start_recording(which)
        assert sent[-1] == {"kind": "recording_start", "which": expected}
        assert problem(TO_PAGE, sent[-1]) is None
        w.set_trait("recording_state", "done")
    with raises_code(PageError.ALREADY_RECORDING):
        w.set_trait("recording_state", "recording")
        w.start_recording("grid")


def test_in_a_room_a_name_that_is_nobody_there_says_who_is() -> None:
    w, sent = in_room()
    with pytest.raises(ValueError, match=r"in the room: Bob, cat\), not 'dave'"):
        w.start_recording("dave")  # still ringing: not in the room
    with pytest.raises(ValueError, match="not 'zed'"):
        w.start_recording("zed")
    with pytest.raises(ValueError, match="a string"):
        w.start_recording(3)  # type: ignore[arg-type]
    assert sent == []


def test_outside_a_room_the_grid_is_a_clear_error_and_a_call_records_as_before() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    ready(w)
    with raises_code(PageError.NOT_CONNECTED):
        w.start_recording("grid")
    with pytest.raises(ValueError, match="in a room 'grid' or a member's name, not 'bob'"):
        w.start_recording("bob")
    with raises_code(PageError.NOT_CONNECTED):
        w.start_recording("both")
    w.set_trait("state", "connected")
    w.start_recording("both")
    assert sent == [{"kind": "recording_start", "which": "both"}]


def test_a_grid_asked_for_in_the_cell_that_joins_waits_for_the_room_and_so_does_its_stop() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    ready(w)
    w.join("standup")
    w.start_recording("grid")
    w.stop_recording()
    assert sent == [{"kind": "join", "room": "standup", "invite_only": False}]
    assert [(e["wait"], e["command"]) for e in w._queued] == [
        ("in_room", {"kind": "recording_start", "which": "grid"}),
        ("in_room", {"kind": "recording_stop"}),
    ]


def test_our_own_video_asked_for_in_the_cell_that_joins_waits_for_the_room_not_a_call() -> None:
    w = CallWidget("ann", server=URL)
    capture(w)
    ready(w)
    w.join("standup")
    w.start_recording("local")  # a room never reaches a call's "connected": it must not wait for one
    assert [(e["wait"], e["command"]) for e in w._queued] == [
        ("in_room", {"kind": "recording_start", "which": "local"}),
    ]


def test_run_all_a_room_recording_waits_for_the_room_or_the_member() -> None:
    w = CallWidget("ann", server=URL)
    sent = capture(w)
    w.join("standup")
    w.start_recording("grid")
    assert [(e["wait"], e["command"]["kind"]) for e in w._queued][-1] == ("in_room", "recording_start")
    page_done(w, w._queued[-1]["id"])
    w.start_recording("Ben")
    entry = w._queued[-1]
    assert (entry["wait"], entry["key"], entry["command"]) == (
        "member",
        "ben",
        {"kind": "recording_start", "which": "Ben"},
    )
    assert sent == []


def test_in_a_room_with_actions_waiting_a_recording_goes_at_once_never_waiting_for_a_call() -> None:
    w, sent = in_room()
    w._enqueue("invite fay", "in_room", {"kind": "invite", "to": "fay"})
    w.start_recording("grid")
    assert sent == [{"kind": "recording_start", "which": "grid"}]
    assert [e["command"]["kind"] for e in w._queued] == ["invite"]
