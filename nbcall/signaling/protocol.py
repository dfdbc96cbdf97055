"""The nbcall signaling protocol: message types, validation, limits and error codes.

Pure functions and constants only (no I/O), shared by the server, the Python client and
the tests.  ``docs/protocol.md`` is the prose version of this module.

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

# -- message types ------------------------------------------------------------------
SEED_FORWARDED: Final = frozenset({"offer", "answer", "candidate"})
CALL_CONTROL: Final = frozenset({"invite", "accept", "reject", "cancel", "hangup"})
# Rooms (docs/rooms.md): group calls the server keeps, a mesh or a Janus SFU.
ROOM_REQUESTS: Final = frozenset({"room_join", "room_leave", "room_invite", "room_decline", "room_state", "room_chat"})
CLIENT_TYPES: Final = frozenset({"register", "list", "ping"} | SEED_FORWARDED | CALL_CONTROL | ROOM_REQUESTS)

# What each forwarded type carries besides type/from, in the seed's key order.
PAYLOAD_FIELD: Final = {"offer": "sdp", "answer": "sdp", "candidate": "candidate"}

SDP_TYPES: Final = frozenset({"offer", "answer", "pranswer", "rollback"})

ROOM_EVENTS: Final = frozenset(
    {
        "room_joined", "room_left", "room_invite", "room_chat", "room_topology",
        "member_joined", "member_left", "member_ringing", "member_declined", "member_state",
    }
)  # fmt: skip
ROOM_ACCESS: Final = frozenset({"open", "invite"})  # room_join.access: who may join besides the invited
TOPOLOGIES: Final = frozenset({"mesh", "sfu"})
# room_left / member_left: why a member is no longer in the room.
LEAVE_REASONS: Final = frozenset({"left", "disconnected", "closed"})
# member_declined: why an invitee did not come.
DECLINE_REASONS: Final = frozenset({"rejected", "timeout", "busy", "left"})

# What the server sends.  Every message that names a user also carries that user's *key*
# (``from_key``, ``key``, ``keys``, ``joined_keys`` ...): the identity the server derived
# with :func:`names.name_key`, so that clients compare keys and never need a name rule of
# their own.  (Seed clients get the seed's forwarded shapes byte for byte, without keys.)
SERVER_TYPES: Final = frozenset(
    {"registered", "users", "presence", "pong", "error", "replaced", "ringing", "busy", "peer_status"}
    | SEED_FORWARDED
    | CALL_CONTROL
    | ROOM_EVENTS
)

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


def _short_str(data: dict[str, Any], key: str, kind: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{key}' is required", kind)
        return None
    if not isinstance(value, str) or len(value) > MAX_TOKEN_CHARS:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, f"'{key}' must be a string of at most {MAX_TOKEN_CHARS} characters", kind
        )
    return value


# The fields an RTCSessionDescriptionInit / RTCIceCandidateInit may carry; anything else
# is dropped before forwarding (an extra key is only padding or a payload for the peer).
_SDP_KEYS: Final = frozenset({"type", "sdp"})
_CANDIDATE_KEYS: Final = frozenset({"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})


def _clean_sdp(sdp: Any, kind: str) -> Any:
    """The session description to forward: an SDP string, or ``{type, sdp}`` with nothing else."""
    if isinstance(sdp, str):
        text = sdp
    elif isinstance(sdp, dict) and isinstance(sdp.get("sdp", ""), str) and sdp.get("type") in SDP_TYPES:
        text = sdp.get("sdp", "")
        if len(sdp) > 2 or not sdp.keys() <= _SDP_KEYS:
            sdp = {k: v for k, v in sdp.items() if k in _SDP_KEYS}  # the sender's key order: seed bytes
    else:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, "'sdp' must be a session description {type, sdp} or an SDP string", kind
        )
    if len(text) > MAX_SDP_CHARS:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"the SDP is longer than {MAX_SDP_CHARS} characters", kind)
    return sdp


def _optional_short(value: Any) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= MAX_TOKEN_CHARS)


def _clean_candidate(candidate: Any, kind: str) -> Any:
    """The ICE candidate to forward: ``{candidate, sdpMid, sdpMLineIndex, usernameFragment}`` or None."""
    if candidate is None:  # end-of-candidates
        return None
    if isinstance(candidate, dict):
        text = candidate.get("candidate", "")
        if isinstance(text, str):
            if len(text) > MAX_CANDIDATE_CHARS:
                raise ProtocolError(ErrorCode.TOO_LARGE, "the ICE candidate is too long", kind)
            mline = candidate.get("sdpMLineIndex")
            if (
                (mline is None or (type(mline) is int and 0 <= mline < 1024))
                and _optional_short(candidate.get("sdpMid"))
                and _optional_short(candidate.get("usernameFragment"))
            ):
                if candidate.keys() <= _CANDIDATE_KEYS:
                    return candidate
                return {k: v for k, v in candidate.items() if k in _CANDIDATE_KEYS}
    raise ProtocolError(
        ErrorCode.BAD_MESSAGE, "'candidate' must be an RTCIceCandidate {candidate, sdpMid, sdpMLineIndex}", kind
    )


def _announced_call(call: Any) -> dict[str, str]:
    """``register.call``: the call a client was in before the server restarted, ``{peer, call_id}``."""
    if not isinstance(call, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'call' must be {peer, call_id}", "register")
    try:
        peer = normalize_name(call.get("peer"))
    except InvalidName as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'call.peer' is not a valid user name: {exc}", "register") from None
    call_id = _short_str(call, "call_id", "register", required=True)
    assert call_id is not None
    return {"peer": peer, "call_id": call_id}


def parse_request(frame: Frame) -> dict[str, Any]:
    """Decode and validate one client frame.

    Returns the message as a dict whose ``type`` is in :data:`CLIENT_TYPES` and whose
    fields have been checked for that type (``to``/``username`` normalised).  Raises
    :class:`ProtocolError` for anything else.
    """
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"messages are limited to {MAX_FRAME_BYTES} bytes")
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "the message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "the message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        shown = kind if isinstance(kind, str) and len(kind) <= 32 else "?"
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"unknown message type '{shown}'")

    if kind == "register":
        try:
            data["username"] = normalize_name(data.get("username"))
        except InvalidName as exc:
            raise ProtocolError(ErrorCode.INVALID_NAME, str(exc), kind) from None
        _short_str(data, "credential", kind)
        _short_str(data, "client", kind)
        if not isinstance(data.get("presence", False), bool):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "'presence' must be true or false", kind)
        if data.get("call") is not None:
            data["call"] = _announced_call(data["call"])
        return data

    if kind in ("list", "ping"):
        return data
    if kind in ROOM_REQUESTS:
        return _room_request(data, kind)

    try:
        data["to"] = normalize_name(data.get("to"))
    except InvalidName as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'to' is not a valid user name: {exc}", kind) from None
    _short_str(data, "call_id", kind)
    if kind in SEED_FORWARDED and data.get("room") is not None:  # a mesh link of a room
        data["room"] = room_name(data["room"], kind)
    if kind in ("offer", "answer"):
        data["sdp"] = _clean_sdp(data.get("sdp"), kind)
    elif kind == "candidate":
        data["candidate"] = _clean_candidate(data.get("candidate"), kind)
    else:
        reason = _short_str(data, "reason", kind)
        if reason is not None and reason not in REASONS:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"unknown reason '{reason[:32]}'", kind)
    return data


def room_name(raw: object, kind: str) -> str:
    """A room's display name: the user-name rules (``invalid_room`` when they refuse it)."""
    try:
        return normalize_name(raw)
    except InvalidName as exc:
        raise ProtocolError(ErrorCode.INVALID_ROOM, f"'room' is not a valid room name: {exc}", kind) from None


def _flag(data: dict[str, Any], key: str, kind: str) -> None:
    if not isinstance(data.get(key), bool):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{key}' must be true or false", kind)


def _room_request(data: dict[str, Any], kind: str) -> dict[str, Any]:
    """The fields of one room request (docs/rooms.md), checked; ``room`` (and ``to``) normalised."""
    if kind == "room_invite" and data.get("room") is None:
        data["room"] = None  # no room: the sender's connected 1:1 call becomes one (room_from_call.py)
    else:
        data["room"] = room_name(data.get("room"), kind)
    if kind == "room_join":
        access = data.setdefault("access", "open")
        if access not in ROOM_ACCESS:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, '\'access\' must be "open" or "invite"', kind)
        if not _short_str(data, "password", kind):
            data["password"] = None  # an empty password is no password
    elif kind == "room_invite":
        try:
            data["to"] = normalize_name(data.get("to"))
        except InvalidName as exc:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'to' is not a valid user name: {exc}", kind) from None
    elif kind == "room_state":
        _flag(data, "audio", kind)
        _flag(data, "video", kind)
    elif kind == "room_chat":
        text = data.get("text")
        if not isinstance(text, str) or not text:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "'text' must be a non-empty string", kind)
        if len(text) > MAX_ROOM_CHAT_CHARS:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"room chat is limited to {MAX_ROOM_CHAT_CHARS} characters", kind)
    return data
