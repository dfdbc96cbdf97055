"""The nbcall signaling protocol's values: limits, error codes, reasons, close codes.

Pure functions and constants only (no I/O), shared by the server, the Python client and
the tests.  The messages themselves (fields, kinds, both directions) and the validation of
requests are declared in :mod:`.wire`.  ``docs/protocol.md`` is the prose.

The seed's four messages (``register``, ``offer``, ``answer``, ``candidate``) are the
base: a client that sends exactly those and understands only those keeps working.
Everything else is an extension a seed client can ignore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

import orjson

from .names import MAX_NAME_LENGTH, InvalidName, normalize_name

PROTOCOL_VERSION: Final = 1

# One websocket text frame, decoded or not.
Frame = str | bytes | bytearray | memoryview

# -- limits -------------------------------------------------------------------------
MAX_FRAME_BYTES: Final = 64 * 1024  # a rich SDP is ~10 KB; 64 KiB leaves ample room
# Frames between the two limits get a ``too_large`` reply; beyond this one the websocket
# layer closes the connection (1009) without buffering the rest.
MAX_HARD_FRAME_BYTES: Final = 1024 * 1024
MAX_SDP_CHARS: Final = 48 * 1024
MAX_CANDIDATE_CHARS: Final = 2048
MAX_TOKEN_CHARS: Final = 256  # credential, id, call_id, reason, client
MAX_LISTED_USERS: Final = 1000  # users sent in one reply; the rest are counted
MAX_ROOM_CHAT_CHARS: Final = 4000  # one line of room chat (the 1:1 chat's limit too)
# The defaults of Limits.room_max_members and room_max_ringing, and what a page keeps at most.
MAX_ROOM_MEMBERS: Final = 50
MAX_ROOM_RINGING: Final = 50

# -- message values (the messages themselves are declared in wire.py) -----------------
SDP_TYPES: Final = frozenset({"offer", "answer", "pranswer", "rollback"})

ROOM_ACCESS: Final = frozenset({"open", "invite"})  # room_join.access: who may join besides the invited
TOPOLOGIES: Final = frozenset({"mesh", "sfu"})
# room_left / member_left: why a member is no longer in the room.
LEAVE_REASONS: Final = frozenset({"left", "disconnected", "closed"})
# member_declined: why an invitee did not come.
DECLINE_REASONS: Final = frozenset({"rejected", "timeout", "busy", "left"})

# peer_status: how the other side of your call is reachable through the server.
PEER_STATUSES: Final = frozenset({"reconnecting", "connected"})
MAX_AWAY_MESSAGES: Final = 64  # forwards kept for a user whose socket dropped, until it is back

# -- hang-up / end reasons ----------------------------------------------------------
REASONS: Final = frozenset(
    {
        "hangup",  # the other side hung up
        "rejected",  # the callee declined
        "busy",  # the callee is in another call
        "cancelled",  # the caller gave up before an answer
        "timeout",  # nobody answered within the ring timeout
        "disconnected",  # the other side's connection to the server closed
        "replaced",  # the other side's name was taken over by a reconnect
        "failed",  # media could not be established
        "closed",  # the other side closed its widget or page
        "lost",  # the other side went silent (no media, no heartbeat) and did not come back
        "moved",  # the call became a room (docs/rooms.md "From a call"): the page ends it, nobody hangs up
    }
)


class ErrorCode:
    """Stable codes carried by ``{"type": "error", "code": ...}`` replies."""

    BAD_MESSAGE: Final = "bad_message"
    TOO_LARGE: Final = "too_large"
    NOT_REGISTERED: Final = "not_registered"
    UNKNOWN_PEER: Final = "unknown_peer"
    NAME_TAKEN: Final = "name_taken"
    INVALID_NAME: Final = "invalid_name"
    RATE_LIMITED: Final = "rate_limited"
    UNAUTHORIZED: Final = "unauthorized"
    SERVER_FULL: Final = "server_full"
    BUSY: Final = "busy"
    NO_CALL: Final = "no_call"
    SELF_CALL: Final = "self_call"
    INTERNAL: Final = "internal_error"  # a server bug; logged with its traceback
    UPSTREAM_UNREACHABLE: Final = "upstream_unreachable"  # the Jupyter endpoint cannot reach its upstream
    PEER_RECONNECTING: Final = "peer_reconnecting"  # the receiver's socket dropped; its queue is full
    CLUSTER_UNAVAILABLE: Final = "cluster_unavailable"  # a cluster node cannot reach Redis: other nodes' users
    # rooms (docs/rooms.md)
    INVALID_ROOM: Final = "invalid_room"  # a room name the name rules refuse
    ROOM_FULL: Final = "room_full"  # max_members, the mesh limit with no SFU, or the server's room count
    NOT_INVITED: Final = "not_invited"  # an invite-only room, or a wrong or missing password
    NOT_IN_ROOM: Final = "not_in_room"  # leave, invite, chat, state to a room you are not in
    SFU_UNAVAILABLE: Final = "sfu_unavailable"  # the room had to move to the SFU and Janus did not answer
    ROOMS_UNAVAILABLE: Final = "rooms_unavailable"  # cluster mode: rooms need a single server (for now)
    SEED_CALL: Final = "seed_call"  # a seed-style call, or one with a seed client, cannot become a room

    ALL: ClassVar[frozenset[str]]  # every code above, filled in below the class


ErrorCode.ALL = frozenset(v for k, v in vars(ErrorCode).items() if k.isupper() and isinstance(v, str))

# WebSocket close codes the server uses (4000-4999 is the application range).
CLOSE_REPLACED: Final = 4001  # the name was taken over by a reconnect with its credential
CLOSE_UNAUTHORIZED: Final = 4003
CLOSE_TOO_SLOW: Final = 4008  # the client did not read its messages; its queue overflowed
CLOSE_NOT_REGISTERED: Final = 4010  # no valid register within the registration deadline
CLOSE_SERVER_FULL: Final = 4013  # crowded out, or refused, by a connection cap
CLOSE_CODES: Final = {
    "REPLACED": CLOSE_REPLACED,
    "UNAUTHORIZED": CLOSE_UNAUTHORIZED,
    "TOO_SLOW": CLOSE_TOO_SLOW,
    "NOT_REGISTERED": CLOSE_NOT_REGISTERED,
    "SERVER_FULL": CLOSE_SERVER_FULL,
}

# A client that closes its socket with one of these codes has left on purpose (a widget
# closed, a page navigating away): its call ends at once.  Any other end of a socket (no
# close frame, a close frame with no status, an error code, a ping timeout) is a drop,
# after which a connected call waits Limits.reconnect_grace for the user to come back.
LEFT_ON_PURPOSE: Final = frozenset({1000, 1001})


def left_on_purpose(close_code: int | None) -> bool:
    """Whether the close code a client sent means it left (not that its socket dropped)."""
    return close_code in LEFT_ON_PURPOSE


# The limits a client needs to know to stay inside them (js/protocol.js gets these).
CLIENT_LIMITS: Final = {
    "MAX_FRAME_BYTES": MAX_FRAME_BYTES,
    "MAX_SDP_CHARS": MAX_SDP_CHARS,
    "MAX_CANDIDATE_CHARS": MAX_CANDIDATE_CHARS,
    "MAX_TOKEN_CHARS": MAX_TOKEN_CHARS,
    "MAX_NAME_LENGTH": MAX_NAME_LENGTH,
    "MAX_ROOM_CHAT_CHARS": MAX_ROOM_CHAT_CHARS,
    "MAX_ROOM_MEMBERS": MAX_ROOM_MEMBERS,
    "MAX_ROOM_RINGING": MAX_ROOM_RINGING,
}


@dataclass(frozen=True)
class ProtocolError(Exception):
    """A request the server cannot serve; becomes an ``error`` reply."""

    code: str
    message: str
    request: str | None = None  # the offending request's type, when known

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def reply(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.request is not None:
            out["request"] = self.request
        return out


def encode(message: dict[str, Any]) -> str:
    """Serialise a message as compact JSON text, the same bytes ``JSON.stringify`` gives."""
    return orjson.dumps(message).decode()


def error(code: str, message: str, request: str | None = None) -> dict[str, Any]:
    return ProtocolError(code, message, request).reply()


def room_name(raw: object, kind: str) -> str:
    """A room's display name: the user-name rules (``invalid_room`` when they refuse it)."""
    try:
        return normalize_name(raw)
    except InvalidName as exc:
        raise ProtocolError(ErrorCode.INVALID_ROOM, f"'room' is not a valid room name: {exc}", kind) from None
