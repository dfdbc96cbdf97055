"""The widget's call control (call, accept, reject, hangup), and actions that wait for the page.

An action on a widget whose page has not reported yet is not an error: it is queued, and
the page carries it out as soon as it can.  Why it must be so: the kernel reads the page's
messages only between cells, and Run All (or one cell that builds, displays and uses a
widget) runs every cell before the first of them arrives.  So when ``w.call("bob")`` finds
a page that has not said ``ready``, or an earlier action still waiting, or a call still
being set up that a chat line needs, the action goes into the synced ``_queued`` trait
instead of raising:

- a trait, not a custom message: a message sent before the page's model exists is lost,
  while a trait is part of the state the model is created with;
- each entry says what it waits for (``QUEUE_WAITS``: the callee online, a ringing call, a
  call, a connected call); the page carries out the entries in order, each once its
  condition holds, through the same handlers as a command sent at once;
- the page gives up on an entry after ``QUEUED_ACTION_WAIT_S`` seconds (30), and an entry
  that fails fails the ones queued after it (they were meant to follow it);
- either way the page answers ``queued_done`` and the kernel drops the entry; a failure
  also comes as ``action_failed`` (with its code, :mod:`nbcall._errors`): the ``error``
  trait, a logged warning, and the callbacks of :meth:`CallActions.on_error`.

At most ``MAX_QUEUED_ACTIONS`` (32) entries wait at once.  What can be checked in Python
(a valid name, not yourself) is still checked at once, queued or not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ._enums import CAN_CALL_STATES, IN_CALL_STATES, QUEUE_WAITS
from ._errors import CallError, PageError
from ._messages import MAX_QUEUED_ACTIONS
from .signaling.names import InvalidName, name_key, normalize_name
from .signaling.protocol import ErrorCode

log = logging.getLogger("nbcall.widget")

# While a call is being placed or set up, an action that needs a connected call waits for it.
_SETTING_UP = ("registering", "calling", "ringing", "connecting")


class _Widget(Protocol):
    """What these methods use of :class:`~nbcall.CallWidget` (its traits and helpers)."""

    comm: Any
    user: str
    state: str
    peer: str
    peers: list[str]
    error: str
    _queued: list[dict[str, Any]]
    room: str
    room_invite: dict[str, Any]
    auto_answer: bool
    _frontend_ready: bool
    _next_queued_id: int
    _command_in_flight: bool
    _last_asked: str
    _error_callbacks: list[Callable[[CallError], Any]]

    def _command(self, kind: str, /, **fields: Any) -> None: ...
    def _check_answerable(self, action: str) -> None: ...
    def observe(self, handler: Callable[[dict[str, Any]], None], names: list[str]) -> None: ...
    def _state_arrived(self, change: dict[str, Any]) -> None: ...
    def _require_open(self, action: str) -> None: ...
    def _must_wait(self, action: str, wait: str) -> bool: ...
    def _holds_now(self, wait: str) -> bool: ...
    def _enqueue(self, action: str, wait: str, command: dict[str, Any], key: str = "") -> None: ...
    def _call_many(self, users: Iterable[str]) -> str: ...


class CallActions:
    """Call control and the queue of actions waiting for the page (mixed into CallWidget)."""

    def _init_actions(self: _Widget) -> None:
        self._next_queued_id = 1
        # A call or accept sent this cell: the page's state change arrives after the cell, and
        # an action that needs the call waits for it instead of raising.
        self._command_in_flight = False
        self._last_asked = ""  # "call", "join" or "accept": what that command was (an invite waits for a join)
        self._error_callbacks: list[Callable[[CallError], Any]] = []
        self.observe(self._state_arrived, names=["state", "room"])

    def _state_arrived(self: _Widget, _change: dict[str, Any]) -> None:
        self._command_in_flight = False

    # -- the queue -----------------------------------------------------------------------------

    def _require_open(self: _Widget, action: str) -> None:
        if self.comm is None:
            raise CallError(
                f"cannot {action}: this widget was closed (a newer CallWidget({self.user!r}) in this kernel "
                "replaces the earlier one); use the new widget",
                code=PageError.CLOSED,
            )

    def _must_wait(self: _Widget, action: str, wait: str) -> bool:
        """Whether ``action`` must be queued until ``wait`` holds in the page (else: check it now)."""
        self._require_open(action)
        if not self._frontend_ready:
            return True  # the page has not reported yet
        if self._holds_now(wait):
            return False  # e.g. an accept from on_incoming: it need not wait behind a queued snapshot
        if self._queued:
            return True  # earlier actions are waiting: keep the order
        if wait in ("online", "free"):
            return bool(self.state == "registering")
        if wait == "connected":
            return self._command_in_flight or self.state in _SETTING_UP
        if wait in ("in_call", "in_room"):
            return self._command_in_flight
        return False

    def _holds_now(self: _Widget, wait: str) -> bool:
        """Whether, as far as the kernel knows, ``wait`` holds now (nothing sent this cell may change it)."""
        if self._command_in_flight:
            return False
        if wait == "online":
            return self.state in CAN_CALL_STATES and not self.room
        if wait == "ringing":
            return self.state == "ringing" or bool(self.room_invite)
        if wait == "free":
            return self.state in CAN_CALL_STATES and not self.room and not self.room_invite
        if wait == "in_room":
            return bool(self.room)
        if wait == "in_call":
            return self.state in IN_CALL_STATES
        return bool(self.state == "connected")

    def _enqueue(self: _Widget, action: str, wait: str, command: dict[str, Any], key: str = "") -> None:
        if wait not in QUEUE_WAITS:  # a bug in nbcall, not the user's
            raise ValueError(f"unknown queue condition {wait!r}")
        if len(self._queued) >= MAX_QUEUED_ACTIONS:
            raise CallError(
                f"cannot {action}: {MAX_QUEUED_ACTIONS} actions are already waiting for the page "
                "(is the widget displayed? the page carries them out once it runs)",
                code=PageError.QUEUE_FULL,
            )
        entry: dict[str, Any] = {"id": self._next_queued_id, "wait": wait, "action": action, "command": command}
        if key:
            entry["key"] = key
        self._next_queued_id += 1
        self._queued = [*self._queued, entry]
        log.info("CallWidget(%r): %s waits for the page (until: %s)", self.user, action, wait)

    def _on_queued_done(self: _Widget, content: dict[str, Any], _buffers: list[Any]) -> None:
        self._queued = [entry for entry in self._queued if entry.get("id") != content["id"]]

    @property
    def waiting(self: _Widget) -> list[str]:
        """The actions waiting for the page, in order (e.g. ``['call bob']``); they run as soon as they can.

        An action asked for before the page has reported (Run All, or a widget built and used
        in one cell) waits here; the page gives up on one after 30 s (``error`` says why).
        """
        return [str(entry["action"]) for entry in self._queued]

    # -- errors --------------------------------------------------------------------------------

    def on_error(self: _Widget, callback: Callable[[CallError], Any]) -> None:
        """Call ``callback(CallError)`` whenever an action fails in the page, a queued one included.

        An action that waited for the page (see :attr:`waiting`) cannot raise in the cell that
        asked for it; this is where its failure arrives (also in ``error`` and the log).  The
        argument's ``code`` says which case it is (``room_full``, ``not_invited``, ``busy`` ...:
        :mod:`nbcall._errors`), its ``action`` what failed (``"call"``, ``"room"`` ...), and
        ``str()`` of it the words, ``"action: why"``, as before.
        """
        self._error_callbacks.append(callback)

    def _action_failed(self: _Widget, action: str, code: str, message: str) -> None:
        log.warning("CallWidget(%r): %s failed in the page: %s [%s]", self.user, action, message, code)
        self._command_in_flight = False  # what it would have changed will not change
        if message not in self.error:  # the page sets `error` itself; its update may come later
            self.error = f"{action}: {message}"
        error = CallError(f"{action}: {message}", code=code, action=action)
        for callback in list(self._error_callbacks):
            try:
                callback(error)
            except Exception:
                log.exception("CallWidget(%r): an on_error callback failed", self.user)

    # -- call control --------------------------------------------------------------------------

    def call(self: _Widget, user: str | Iterable[str]) -> None:
        """Ring ``user``; or, given a list of names, start a room and invite them all.

        ``call(["bob", "carol"])`` joins a new invite-only room (named ``call-...``, see
        ``room``) and invites each: they ring until they accept, decline or 30 s pass
        (docs/rooms.md).  Raises :class:`CallError` at once when the call cannot work (an invalid name,
        yourself, a user not online, a call already going on). Before the page has reported
        (Run All, or in the cell that displays the widget) the call waits for the page and
        for ``user`` to come online, at most 30 s (see :attr:`waiting` and :meth:`on_error`).
        """
        if not isinstance(user, str):
            self._call_many(user)
            return
        try:
            target = normalize_name(user)
        except InvalidName as exc:
            raise CallError(f"cannot call {user!r}: {exc}", code=ErrorCode.INVALID_NAME) from None
        if name_key(target) == name_key(self.user):
            raise CallError("cannot call yourself", code=ErrorCode.SELF_CALL)
        if self._must_wait("call", "online"):
            self._enqueue(f"call {target}", "online", {"kind": "call", "to": target}, key=name_key(target))
            return
        if self.state not in CAN_CALL_STATES:
            if self.state == "error":
                detail = f": {self.error}" if self.error else ""
            else:
                detail = f" with {self.peer}" if self.peer else ""
            code = ErrorCode.NOT_REGISTERED if self.state == "error" else PageError.IN_CALL
            raise CallError(f"cannot call while {self.state}{detail}", code=code)
        if self.room:
            raise CallError(
                f"cannot call {target!r} while in room {self.room!r}: invite({target!r}) instead",
                code=PageError.IN_ROOM,
            )
        online = {name_key(p): p for p in self.peers}
        if name_key(target) not in online:
            raise CallError(
                f"cannot call {target!r}: not online (online: {', '.join(self.peers) or 'nobody'})",
                code=ErrorCode.UNKNOWN_PEER,
            )
        self._command("call", to=online[name_key(target)])
        self._command_in_flight = True
        self._last_asked = "call"

    def accept(self: _Widget) -> None:
        """Answer the ringing incoming call, or join the room you are invited to (``room_invite``).

        Before the page has reported: the next call or invitation that rings."""
        if self._must_wait("accept", "ringing"):
            self._enqueue("accept", "ringing", {"kind": "accept"})
            return
        self._check_answerable("accept")
        self._command("accept")
        self._command_in_flight = True
        # Accepting a room invitation joins that room (the page answers a ringing call first).
        self._last_asked = "join" if self.room_invite and self.state != "ringing" else "accept"

    def reject(self: _Widget) -> None:
        """Decline the ringing incoming call or room invitation (before the page has reported: the next one)."""
        if self._must_wait("reject", "ringing"):
            self._enqueue("reject", "ringing", {"kind": "reject"})
            return
        self._check_answerable("reject")
        self._command("reject")

    def _check_answerable(self: _Widget, action: str) -> None:
        """A call rings or a room invitation waits; else CallError.  With auto_answer the page
        may have answered already: it knows, and takes the command (accept: a no-op, reject:
        hang up), so the command goes to it."""
        answered = self.auto_answer and self.state in ("connecting", "connected")
        if self.state != "ringing" and not self.room_invite and not answered:
            raise CallError(f"nothing to {action}: the widget is {self.state}, not ringing", code=ErrorCode.NO_CALL)

    def hangup(self: _Widget) -> None:
        """End the current call (or stop ringing someone)."""
        if self._must_wait("hang up", "in_call"):
            self._enqueue("hang up", "in_call", {"kind": "hangup"})
            return
        if self.state not in IN_CALL_STATES:
            raise CallError(f"no call to hang up: the widget is {self.state}", code=ErrorCode.NO_CALL)
        self._command("hangup")

    # -- callbacks -----------------------------------------------------------------------------

    def on_incoming(self: _Widget, callback: Callable[[str], Any]) -> None:
        """Call ``callback(caller_name)`` whenever a call starts ringing here."""

        def handler(change: dict[str, Any]) -> None:
            if change["new"]:
                callback(change["new"])

        self.observe(handler, names=["incoming"])

    def on_state(self: _Widget, callback: Callable[[str], Any]) -> None:
        """Call ``callback(new_state)`` on every state change."""

        def handler(change: dict[str, Any]) -> None:
            callback(change["new"])

        self.observe(handler, names=["state"])


__all__ = ["CallActions"]
