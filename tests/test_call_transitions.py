"""nbcall.Peer's call state against the one table of moves the page's Phone is tested on too.

tests/call_transitions.json: "in state S, the server says M (or the user acts): state T";
js/test/call_transitions.test.js replays the same cases into the Phone.  The Peer's Control
is driven directly, with no socket (what it sends goes nowhere) and no media session.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nbcall import _enums
from nbcall._call_state import CallState, IllegalTransition
from nbcall.peer._control import Control

TABLE = json.loads((Path(__file__).parent / "call_transitions.json").read_text(encoding="utf-8"))
CASES = TABLE["cases"]
REGISTERED = TABLE["registered"]


class NoMedia:
    """A session that negotiates nothing: these cases are about the call's state."""

    async def handle(self, message: dict[str, Any]) -> None:
        pass

    async def offer(self) -> None:
        pass


class Hooks:
    def __init__(self) -> None:
        self.states: list[str] = []

    def state_changed(self, state: str) -> None:
        self.states.append(state)

    def ringing(self, caller: str) -> None:
        pass

    def new_session(self, data_channel: bool) -> Any:
        return NoMedia()

    async def end_session(self, session: Any) -> None:
        pass

    def connected(self) -> None:
        pass


def substitute(value: Any, call_id: str | None) -> Any:
    if value == "$call":
        return call_id
    if isinstance(value, dict):
        return {k: substitute(v, call_id) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_the_peer_moves_as_the_table_says(case: dict[str, Any]) -> None:
    control = Control(Hooks(), "ws://127.0.0.1:9", "alice")
    await control.on_message(REGISTERED)
    assert control.state == "idle"
    for step in case["steps"]:
        if "close" in step:
            assert control.closing()  # the Peer stopped at the message; its reader ends at the close
        elif "server" in step:
            await control.on_message(substitute(step["server"], control.call_id))
        elif step["do"] == "call":
            await control.call(step["to"], step["to"])
        else:
            await getattr(control, step["do"])()
    assert control.state == case["state"]
    if "end_reason" in case:
        assert control.end_reason == case["end_reason"]
    if "peer" in case:
        assert control.peer == case["peer"]


def test_every_move_the_peer_made_is_in_the_table() -> None:
    machine = CallState("idle")
    for new in ("calling", "connecting", "connected", "ended", "ringing", "ended", "registering", "idle"):
        assert machine.move(new, "test")
    assert [m.new for m in machine.history][-2:] == ["registering", "idle"]


@pytest.mark.parametrize(
    ("old", "new"), [("connected", "idle"), ("calling", "error"), ("idle", "connected"), ("idle", "idle")]
)
def test_a_move_the_table_does_not_list_is_refused(old: str, new: str) -> None:
    machine = CallState(old)
    with pytest.raises(IllegalTransition, match=f"{old} → {new}"):
        machine.move(new, "test")
    assert machine.state == old


def test_the_table_covers_every_state() -> None:
    assert set(_enums.CALL_TRANSITIONS) == set(_enums.CALL_STATES)
    for moves in _enums.CALL_TRANSITIONS.values():
        assert set(moves) <= set(_enums.CALL_STATES)
