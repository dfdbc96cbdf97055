"""The hub's view of one connection, one call, and the bounds it enforces.

Plain data: :class:`Transport` is what a transport gives the hub (the standalone server's and
the Jupyter endpoint's connections, see :mod:`.forwarding`), :class:`Session` is one
connection and the user it speaks for, :class:`Call` one call between two user keys.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from . import protocol as p
from .bucket import TokenBucket
from .protocol import MAX_AWAY_MESSAGES


class Transport(Protocol):
    """The transport side of one connection, as the hub needs it (a websocket of the
    standalone server or of the Jupyter endpoint: :mod:`.forwarding`)."""

    def send_bytes(self, data: bytes) -> bool:
        """Queue one text frame; False when the connection is gone or too slow."""

    def close_now(self, code: int, reason: str) -> None:
        """Close at once with a websocket close code."""

    def unsent_bytes(self) -> int:
        """Bytes written to this connection and not yet taken by the socket: its backlog."""


@dataclass(eq=False)
class Session:
    """One websocket connection and, once registered, the user it speaks for."""

    transport: Transport
    name: str | None = None
    key: str | None = None
    credential: str | None = None
    nbcall: bool = False  # registered with a ``client`` field: understands the extensions
    presence: bool = False  # asked for presence updates
    # the per-connection message rate (Hub.new_session gives it the hub's limits and clock)
    budget: TokenBucket = field(default_factory=lambda: TokenBucket(Limits.rate, Limits.burst))
    replaced: bool = False
    # The socket dropped during a call: the name and the call are held for a grace period,
    # and what arrives for this user waits here (at most MAX_AWAY_MESSAGES) until it is back.
    away: bool = False
    outbox: list[bytes] = field(default_factory=list)
    grace_timer: asyncio.TimerHandle | None = None
    # A stand-in for a user connected to another cluster node (cluster.remote.RemoteSession).
    remote = False  # a class attribute, not a field

    def send(self, message: dict[str, Any]) -> bool:
        data = orjson.dumps(message)
        if self.away:
            if len(self.outbox) >= MAX_AWAY_MESSAGES:
                return False
            self.outbox.append(data)
            return True
        return self.transport.send_bytes(data)


@dataclass(eq=False)
class Call:
    call_id: str
    caller: str  # user keys
    callee: str
    state: str  # "ringing" | "active"
    implicit: bool = False  # started by a plain seed offer, not an invite
    timer: asyncio.TimerHandle | None = None

    def other(self, key: str) -> str:
        return self.callee if key == self.caller else self.caller


@dataclass
class Limits:
    """Bounds the hub enforces; see ``docs/protocol.md``."""

    rate: float = 50.0  # messages per second, sustained, per connection
    burst: float = 200.0  # messages allowed at once (a trickle-ICE burst is ~20)
    ring_timeout: float = 30.0  # seconds an invite rings before it ends with "timeout"
    presence_interval: float = 0.25  # presence changes are batched this long
    # seconds a user whose socket dropped (no close frame) keeps its name and call
    reconnect_grace: float = 15.0
    # a receiver's unread bytes past which forwards to it are refused to their sender, so
    # what someone else sends can never cost the receiver its connection (its own limit,
    # the slow-receiver rule, is 1 MiB and only the server's own messages can reach it)
    max_forward_backlog: int = 256 * 1024
    # Rooms (docs/rooms.md, "Bounds").
    room_mesh_limit: int = 4  # members in a mesh; past it the SFU, or room_full without one
    room_max_members: int = p.MAX_ROOM_MEMBERS  # members in a room (and publishers in its Janus room)
    max_rooms: int = 10_000  # rooms on one server
    room_max_ringing: int = p.MAX_ROOM_RINGING  # invitations ringing in one room
    room_chat_rate: float = 5.0  # room_chat lines per second per member, sustained
    room_chat_burst: float = 20.0
    room_state_rate: float = 5.0  # room_state messages per second per member, sustained
    room_state_burst: float = 20.0

    def check(self) -> None:
        """Raise ValueError for bounds that cannot work together."""
        if not 2 <= self.room_mesh_limit <= self.room_max_members:
            raise ValueError("room_mesh_limit must be at least 2 and at most room_max_members")
        if self.max_rooms < 0 or self.room_max_ringing < 0:
            raise ValueError("max_rooms and room_max_ringing must not be negative")
        if min(self.room_chat_rate, self.room_chat_burst, self.room_state_rate, self.room_state_burst) < 1:
            raise ValueError("the room rates and bursts must be at least 1")


def take_token(session: Session, limits: Limits) -> bool:
    """The per-connection rate limit: True when this message may be handled.  A dropped
    message costs at most one ``rate_limited`` warning a second (no reply flood)."""
    if session.budget.take():
        return True
    if session.budget.warn():
        warning = f"more than {limits.rate:g} messages a second; messages are being dropped"
        session.send(p.error(p.ErrorCode.RATE_LIMITED, warning))
    return False


def check_receivable(target: Session, kind: str, limits: Limits) -> None:
    """Raise unless a forward may be queued for ``target`` (on its own node, in a cluster):
    what waits for a dropped user is bounded, and a receiver that does not read is not
    flooded by someone else (the sender is told to slow down, the receiver keeps its socket)."""
    if target.away:
        if len(target.outbox) >= MAX_AWAY_MESSAGES:
            raise p.ProtocolError(
                p.ErrorCode.PEER_RECONNECTING,
                f"'{target.name}' is reconnecting and {MAX_AWAY_MESSAGES} messages already wait for it",
                kind,
            )
    elif target.transport.unsent_bytes() > limits.max_forward_backlog:
        raise p.ProtocolError(
            p.ErrorCode.RATE_LIMITED, f"'{target.name}' is not reading its messages fast enough; slow down", kind
        )
