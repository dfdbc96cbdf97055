"""Rooms on :class:`~nbcall.CallWidget`: join, leave, invite, a call to several people.

A room is a call of more than two (docs/rooms.md): a mesh while small, the SFU (Janus) past
the mesh limit; the signaling server decides who may join and when the room moves, the
page carries it out and reports ``room``, ``participants`` and ``topology`` as traits.  What
Python can check it checks at once (a valid room name, not already in a call or another
room); the rest (an invite-only room, a full room) comes back from the server as an
``action_failed``: the ``error`` trait and :meth:`on_error` callbacks.

Like the 1:1 actions (:mod:`nbcall._actions`), an action asked for before the page has
reported waits in the ``_queued`` trait: ``join`` until the page is registered and free,
``invite`` and ``leave`` until it is in a room.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ._enums import CAN_CALL_STATES, SNAPSHOT_SOURCES
from ._errors import CallError, PageError
from .signaling.names import InvalidName, name_key, normalize_name
from .signaling.protocol import ErrorCode

log = logging.getLogger("nbcall.widget")

MAX_PASSWORD_CHARS = 256  # the server's limit on short strings
MAX_INVITED_AT_ONCE = 49  # call([...]): a room holds 50 at most, the caller included


class _Widget(Protocol):
    user: str
    state: str
    peer: str
    room: str
    room_invite: dict[str, Any]
    participants: list[dict[str, Any]]
    _queued: list[dict[str, Any]]
    _command_in_flight: bool
    _last_asked: str

    def _command(self, kind: str, /, **fields: Any) -> None: ...
    def observe(self, handler: Callable[[dict[str, Any]], None], names: list[str]) -> None: ...
    def _must_wait(self, action: str, wait: str) -> bool: ...
    def _enqueue(self, action: str, wait: str, command: dict[str, Any], key: str = "") -> None: ...
    def join(self, room: str, *, invite_only: bool = False, password: str | None = None) -> None: ...
    def invite(self, user: str) -> None: ...
    def _invite_waits_for(self) -> str: ...
    def _room_coming(self) -> bool: ...


def _room_name(room: str) -> str:
    try:
        return normalize_name(room)
    except InvalidName as exc:
        raise CallError(
            f"invalid room name {room!r}: {exc} (room names follow the user-name rules)",
            code=ErrorCode.INVALID_ROOM,
        ) from None


def _user_name(user: str, action: str) -> str:
    try:
        return normalize_name(user)
    except InvalidName as exc:
        raise CallError(f"cannot {action} {user!r}: {exc}", code=ErrorCode.INVALID_NAME) from None


def _members(participants: Iterable[dict[str, Any]]) -> dict[str, str]:
    """key -> name of the members who are in the room (not those still ringing)."""
    return {
        str(p.get("key") or name_key(str(p.get("name", "")))): str(p.get("name", ""))
        for p in participants
        if p.get("state") != "ringing" and p.get("name")
    }


class RoomActions:
    """Rooms: ``join``, ``leave``, ``invite``, ``on_join``, ``on_leave`` (mixed into CallWidget)."""

    def join(self: _Widget, room: str, *, invite_only: bool = False, password: str | None = None) -> None:
        """Join the room ``room``, created by the first to join.

        ``invite_only=True`` makes a new room one that only invited users may join;
        ``password`` (for a new room) makes joining it need that password (invited users
        need none).  Both apply only when this join creates the room.  Raises
        :class:`CallError` for an invalid name or while in a call or another room; the
        server's refusals (a full room, not invited, a wrong password) arrive in ``error``
        and :meth:`on_error`.  A room takes up to 4 members as a mesh, and up to 50 when
        the server has an SFU (docs/rooms.md).
        """
        name = _room_name(room)
        if password is not None and (not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS):
            raise CallError(
                f"the room password must be a string of at most {MAX_PASSWORD_CHARS} characters",
                code=PageError.INVALID_ARGUMENT,
            )
        command: dict[str, Any] = {"kind": "join", "room": name, "invite_only": bool(invite_only)}
        if password:
            command["password"] = password
        if self._must_wait("join", "free"):
            self._enqueue(f"join {name}", "free", command)
            return
        if self.room:
            raise CallError(
                f"cannot join {name!r}: already in room {self.room!r} (leave() first)", code=PageError.IN_ROOM
            )
        if self.state not in CAN_CALL_STATES:
            detail = f" with {self.peer}" if self.peer else ""
            raise CallError(f"cannot join {name!r} while {self.state}{detail} (hang up first)", code=PageError.IN_CALL)
        fields = {k: v for k, v in command.items() if k != "kind"}
        self._command("join", **fields)
        self._command_in_flight = True  # an invite in this cell waits for the room
        self._last_asked = "join"

    def leave(self: _Widget) -> None:
        """Leave the room (the others are told at once)."""
        if self._must_wait("leave", "in_room"):
            self._enqueue("leave", "in_room", {"kind": "leave"})
            return
        if not self.room:
            raise CallError("not in a room", code=ErrorCode.NOT_IN_ROOM)
        self._command("leave")

    def invite(self: _Widget, user: str) -> None:
        """Invite ``user`` into the current room, or into the connected 1:1 call, which becomes a room.

        ``user`` rings until it accepts, declines, or 30 s pass.  During a connected call the
        server turns the call into an invite-only room (named ``call-...``, see ``room``) and
        moves both sides into it without hanging up: ``topology`` goes from ``"p2p"`` to
        ``"mesh"``, ``state`` to ``"ended"`` with ``end_reason`` ``"moved"``, and the picture
        carries on (the call's connection becomes the room's link between the two).  Either
        side may invite; a call with a seed client cannot become a room (docs/rooms.md).
        Asked while a call or a join of this cell is on its way, it waits for it.
        """
        name = _user_name(user, "invite")
        if name_key(name) == name_key(self.user):
            raise CallError("cannot invite yourself", code=ErrorCode.SELF_CALL)
        wait = self._invite_waits_for()
        if self._must_wait("invite", wait):
            self._enqueue(f"invite {name}", wait, {"kind": "invite", "to": name})
            return
        if self.room:
            if name_key(name) in _members(self.participants):
                raise CallError(f"{name!r} is already in the room", code=PageError.ALREADY_MEMBER)
        elif self.state != "connected":
            raise CallError(
                f"cannot invite {name!r}: not in a room or a connected call "
                "(join() one, call() someone, or call([...]) several people)",
                code=ErrorCode.NOT_IN_ROOM,
            )
        elif name_key(name) == name_key(self.peer):
            raise CallError(f"{name!r} is already in this call", code=PageError.ALREADY_MEMBER)
        self._command("invite", to=name)

    def _invite_waits_for(self: _Widget) -> str:
        """What an invite that must wait waits for: the room (in it, or joining), else the 1:1
        call on its way, which the invite turns into a room once connected."""
        if self.room or self.room_invite:
            return "in_room"
        if self.state in ("calling", "ringing", "connecting", "connected"):
            return "connected"
        for entry in reversed(self._queued):  # the latest call or join asked for decides
            kind = entry["command"].get("kind")
            if kind in ("call", "join"):
                return "connected" if kind == "call" else "in_room"
        return "connected" if self._command_in_flight and self._last_asked == "call" else "in_room"

    def _call_many(self: _Widget, users: Iterable[str]) -> str:
        """``call([...])``: an invite-only room of our own, everyone in ``users`` invited; its name."""
        names: list[str] = []
        for user in users:
            name = _user_name(user, "call")
            if name_key(name) == name_key(self.user):
                raise CallError("cannot call yourself", code=ErrorCode.SELF_CALL)
            if name_key(name) not in {name_key(n) for n in names}:
                names.append(name)
        if not names:
            raise CallError("call([...]) needs at least one name", code=PageError.INVALID_ARGUMENT)
        if len(names) > MAX_INVITED_AT_ONCE:
            raise CallError(
                f"a room holds at most {MAX_INVITED_AT_ONCE + 1} people; {len(names)} invited", code=ErrorCode.ROOM_FULL
            )
        room = f"call-{secrets.token_hex(4)}"
        self.join(room, invite_only=True)
        # The invitations wait in the queue until the page is in the room: the server must
        # have let us in before we may invite anyone into it.
        for name in names:
            self._enqueue(f"invite {name}", "in_room", {"kind": "invite", "to": name})
        return room

    def _room_coming(self: _Widget) -> bool:
        """A join of this widget is queued or on its way, and it is not in the room yet."""
        if self.room:
            return False
        joining = any(entry.get("command", {}).get("kind") == "join" for entry in self._queued)
        return joining or (self._command_in_flight and self._last_asked == "join")

    def _member_to_wait_for(self: _Widget, which: str) -> str | None:
        """``snapshot(name)`` of someone not in the room yet, while this widget's own joining is
        still coming (Run All, or a join this cell): the name to wait for, else None."""
        try:
            name = normalize_name(which)
        except InvalidName:
            return None
        return name if self._room_coming() else None

    def _member_named(self: _Widget, which: str) -> str:
        """``which`` as a room member's name (as the server spells it), else ValueError."""
        members = _members(self.participants)
        key = name_key(which) if isinstance(which, str) else ""
        if not self.room or key not in members:
            where = f"; in the room: {', '.join(members.values()) or 'nobody else'}" if self.room else ""
            raise ValueError(f"which must be one of {SNAPSHOT_SOURCES} or a room member's name{where}, not {which!r}")
        return members[key]

    # -- callbacks -----------------------------------------------------------------------------

    def on_join(self: _Widget, callback: Callable[[str], Any]) -> None:
        """Call ``callback(name)`` when someone joins the room this widget is in."""
        self.observe(_member_diff(callback, joined=True), names=["participants"])

    def on_leave(self: _Widget, callback: Callable[[str], Any]) -> None:
        """Call ``callback(name)`` when someone leaves the room (or its connection ends)."""
        self.observe(_member_diff(callback, joined=False), names=["participants"])


def _member_diff(callback: Callable[[str], Any], *, joined: bool) -> Callable[[dict[str, Any]], None]:
    def handler(change: dict[str, Any]) -> None:
        owner = change["owner"]
        if not getattr(owner, "room", ""):
            return  # we left (or were never in a room): nobody else joined or left
        old, new = _members(change["old"] or []), _members(change["new"] or [])
        for key in (new.keys() - old.keys()) if joined else (old.keys() - new.keys()):
            name = (new if joined else old)[key]
            try:
                callback(name)
            except Exception:
                log.exception("CallWidget(%r): an on_%s callback failed", owner.user, "join" if joined else "leave")

    return handler


__all__ = ["RoomActions"]
