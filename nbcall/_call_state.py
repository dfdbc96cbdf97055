"""A call's state and the one place it changes, for nbcall.Peer.

The moves are :data:`nbcall._enums.CALL_TRANSITIONS`, the table the widget's Phone uses too
(js/call/call_state.js imports the generated copy): a move the table does not list is a bug
and raises :class:`IllegalTransition`.  ``tests/call_transitions.json`` is one table of "in
state S, the server says M: state T" that both the Phone and the Peer are tested against.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ._enums import CALL_STATES, CALL_TRANSITIONS

MAX_HISTORY = 50


class IllegalTransition(RuntimeError):
    """A move CALL_TRANSITIONS does not list."""

    def __init__(self, old: str, new: str, why: str) -> None:
        super().__init__(f"nbcall: no transition {old} → {new} ({why})")
        self.old = old
        self.new = new


@dataclass(frozen=True)
class Move:
    old: str
    new: str
    why: str
    at: float


class CallState:
    """The current state; :meth:`move` is the only way to change it."""

    def __init__(self, initial: str = "registering", on_change: Callable[[str], None] | None = None) -> None:
        if initial not in CALL_STATES:
            raise ValueError(f"unknown call state {initial!r}")
        self.state = initial
        self.on_change = on_change
        self.history: list[Move] = []  # the last moves, for debugging

    def move(self, new: str, why: str) -> bool:
        """Move to ``new``, or raise IllegalTransition when the table does not list the move
        (a move to the current state too, as in the page); False for a listed move to the
        current state (nothing changed, nobody told)."""
        old = self.state
        if new not in CALL_TRANSITIONS[old]:
            raise IllegalTransition(old, new, why)
        if new == old:
            return False
        self.state = new
        self.history.append(Move(old, new, why, time.monotonic()))
        del self.history[:-MAX_HISTORY]
        if self.on_change is not None:
            self.on_change(new)
        return True
