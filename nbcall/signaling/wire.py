"""Every signaling message, declared once for each direction: its fields, their kinds and bounds.

The declarations below are the one definition of the wire (``docs/protocol.md`` and
``docs/rooms.md`` are its prose):

- the server validates what clients send with :func:`parse_request`, built from
  :data:`CLIENT_MESSAGES` (no hand-written chain of checks);
- :mod:`nbcall._codegen` writes ``js/wire.js`` from both tables (JSDoc typedefs of every
  message, the tables themselves and a checker) and the generated tables of
  ``docs/protocol.md``; ``tests/test_codegen.py`` fails when either is stale;
- with ``NBCALL_WIRE_CHECK=1`` in the environment (the test suite sets it), every frame a
  server sends is checked against :data:`SERVER_MESSAGES` (:func:`check_sent`) and every
  frame :class:`~nbcall.signaling.client.SignalingClient` receives likewise, so a server
  message with an undeclared field fails the tests.

Fields marked *seed* are the seed's own (``../shared/seed/``): a seed client sends and
receives exactly those, byte for byte.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from . import protocol as p
from .names import InvalidName, normalize_name
from .protocol import ErrorCode, ProtocolError

# -- the declarations' vocabulary ----------------------------------------------------

# What a field holds.  The client-side meaning (what parse_request checks and how it
# normalises) and the server-side meaning (what check_sent accepts) of each kind:
KINDS: Final = {
    "string": "a string (from clients: at most MAX_TOKEN_CHARS characters)",
    "username": "the name being registered (normalised; refused with invalid_name)",
    "name": "a user's display name (from clients: normalised, refused with bad_message)",
    "key": "a user's or room's key, as the server derived it (names.name_key)",
    "room": "a room's display name (from clients: normalised, refused with invalid_room)",
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "enum": "one of the listed strings",
    "sdp": "an RTCSessionDescription {type, sdp} or an SDP string (at most MAX_SDP_CHARS)",
    "candidate": "an RTCIceCandidate {candidate, sdpMid, sdpMLineIndex, usernameFragment} or null",
    "text": "a line of chat, 1 to MAX_ROOM_CHAT_CHARS characters",
    "names": "a list of display names",
    "keys": "a list of keys",
    "object": "an object with the listed fields",
    "objects": "a list of objects with the listed fields",
    "ignored": "anything: accepted and not used (the seed sends it)",
}


@dataclass(frozen=True)
class Field:
    """One field of a message."""

    name: str
    kind: str
    doc: str = ""
    required: bool = False
    # null is a value (a field may be present and null); absent optional fields may always be.
    nullable: bool = False
    values: tuple[str, ...] = ()  # kind "enum"
    items: tuple[Field, ...] = ()  # kinds "object" / "objects"
    seed: bool = False  # the seed's own field
    # From clients: the value an absent field takes (set in the parsed message).
    default: object = None
    has_default: bool = False
    # From clients: an empty string means "none" (the parsed message holds null).
    empty_is_none: bool = False
    # From clients: the refusal for an enum value not listed ({value}: its first 32 characters).
    invalid: str = ""
    # From clients: an enum whose non-string or over-long value gets the string refusal first.
    token: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: unknown kind {self.kind!r}")
        if (self.kind == "enum") != bool(self.values):
            raise ValueError(f"field {self.name!r}: values go with kind 'enum' only")
        if (self.kind in ("object", "objects")) != bool(self.items):
            raise ValueError(f"field {self.name!r}: items go with kinds 'object' and 'objects' only")


@dataclass(frozen=True)
class Message:
    """One message type in one direction."""

    type: str
    doc: str
    fields: tuple[Field, ...] = ()
    seed: bool = False  # one of the seed's four messages
    room: bool = False  # a room request or event (docs/rooms.md): the page's room client handles it


def _f(name: str, kind: str, doc: str = "", **options: Any) -> Field:
    return Field(name, kind, doc, **options)


def _req(name: str, kind: str, doc: str = "", **options: Any) -> Field:
    return Field(name, kind, doc, required=True, **options)


# Fields many messages share.
_TO = _req("to", "name", "the user it is for")
_CALL_ID = _f("call_id", "string", "the call it belongs to")
_ROOM_LINK = _f("room", "room", "a room's mesh link: only between two members of that room")
_FROM = _req("from", "name", "the sender's registered name, stamped by the server", seed=True)
_FROM_KEY = _req("from_key", "key", "the sender's key")
_FROM_KEY_NBCALL = _f("from_key", "key", "the sender's key (not to seed clients)")
_CALL_ID_OUT = _req("call_id", "string", "the call")
_ROOM = _req("room", "room", "the room")
_MEMBER = (_ROOM, _req("from", "name", "the member"), _req("from_key", "key", "its key"))
_REASON_IN = "unknown reason '{value}'"
_SDP_DOC = "RTCSessionDescription {type, sdp} or an SDP string, at most 48 Ki characters"
_CANDIDATE_DOC = "RTCIceCandidate {candidate, sdpMid, sdpMLineIndex, usernameFragment} (2 Ki characters), or null"

# A room member as room_joined and room_topology list them.
_MEMBER_ITEMS = (
    _req("name", "name"),
    _req("key", "key"),
    _req("audio", "boolean", "its microphone is on (true until it sends room_state)"),
    _req("video", "boolean", "its camera is on"),
    _req("offer", "boolean", "the receiver offers to it (mesh)"),
    _req("sfu_id", "string", "its Janus publisher id once in use there; null in a mesh", nullable=True),
)
_SFU_ITEMS = (
    _req("url", "string", "the Janus WebSocket URL"),
    _req("room", "string", "the Janus VideoRoom room"),
    _req("token", "string", "this member's token, for publishing"),
    _req("pin", "string", "the room's PIN"),
    _req("id", "string", "this member's publisher id"),
)
_SFU = _req("sfu", "object", "where and how to join the SFU; null in a mesh", nullable=True, items=_SFU_ITEMS)


# -- client → server -----------------------------------------------------------------

_SDP_IN = _req("sdp", "sdp", _SDP_DOC, seed=True)
_CANDIDATE_IN = _f("candidate", "candidate", _CANDIDATE_DOC, seed=True, nullable=True)


def _signal_request(kind: str, doc: str, payload: Field) -> Message:
    """One of the seed's three signals, as a client sends it (``from`` is the server's to stamp)."""
    return Message(kind, doc, (_TO, _f("from", "ignored", "ignored: the server stamps it", seed=True), _CALL_ID,
                               _ROOM_LINK, payload), seed=True)  # fmt: skip


def _ending_request(kind: str, doc: str, default: str) -> Message:
    """reject, cancel or hangup: the call ends, for a reason the other side is told."""
    reason = _f(
        "reason", "enum", f"default `{default}`", values=tuple(sorted(p.REASONS)), invalid=_REASON_IN, token=True
    )
    return Message(kind, doc, (_TO, _CALL_ID, reason))


CLIENT_MESSAGES: Final[Mapping[str, Message]] = {
    m.type: m
    for m in (
        Message(
            "register",
            "binds the name to this connection; replies `registered`",
            (
                _req("username", "username", "the name to use", seed=True),
                _f("id", "ignored", "the seed's own id: ignored", seed=True),
                _f("credential", "string", "the name's credential, to take it over from an older connection"),
                _f("client", "string", "the client's name and version: it understands nbcall's extensions"),
                _f("presence", "boolean", "send presence updates"),
                _f(
                    "call",
                    "object",
                    "the call this client was in before the server restarted",
                    items=(_req("peer", "name", "the other side"), _req("call_id", "string", "the call")),
                ),
            ),
            seed=True,
        ),
        Message("list", "replies `users`"),
        Message("ping", "replies `pong`"),
        _signal_request(
            "offer", "forwards `offer` to `to` (a plain offer outside a call is the seed's way to call)", _SDP_IN
        ),
        _signal_request("answer", "forwards `answer` to the other side of your call", _SDP_IN),
        _signal_request("candidate", "forwards `candidate` to the other side of your call", _CANDIDATE_IN),
        Message("invite", "rings `to`: it gets `invite`, you get `ringing` (or `busy`)", (_TO, _CALL_ID)),
        Message("accept", "the callee takes a ringing call: the caller gets `accept`", (_TO, _CALL_ID)),
        _ending_request("reject", "the callee declines: the caller gets `reject`", "rejected"),
        _ending_request("cancel", "the caller gives up while ringing: the callee gets `cancel`", "cancelled"),
        _ending_request("hangup", "ends the call: the other side gets `hangup`", "hangup"),
        Message(
            "room_join",
            "creates the room on first join, adds the sender; replies `room_joined`, the others get `member_joined`",
            (
                _ROOM,
                _f(
                    "access",
                    "enum",
                    "who may join besides the invited, when this join creates the room",
                    values=tuple(sorted(p.ROOM_ACCESS)),
                    default="open",
                    has_default=True,
                    invalid='\'access\' must be "open" or "invite"',
                ),
                _f(
                    "password",
                    "string",
                    'the room\'s password (sets it on creation; "" is none)',
                    empty_is_none=True,
                    has_default=True,
                ),
            ),
            room=True,
        ),
        Message(
            "room_leave", "removes the sender; replies `room_left`; the others get `member_left`", (_ROOM,), room=True
        ),
        Message(
            "room_invite",
            "a member invites `to` (`room_invite`; every member gets `member_ringing`); without `room`, the "
            "sender's connected 1:1 call becomes a room",
            (
                _f(
                    "room",
                    "room",
                    "the room; null or absent: the current call becomes one",
                    nullable=True,
                    has_default=True,
                ),
                _TO,
            ),
            room=True,
        ),
        Message("room_decline", "the invitee declines: every member gets `member_declined`", (_ROOM,), room=True),
        Message(
            "room_state",
            "the sender's microphone and camera: the others get `member_state`",
            (_ROOM, _req("audio", "boolean"), _req("video", "boolean")),
            room=True,
        ),
        Message("room_chat", "the others get `room_chat` (not echoed)", (_ROOM, _req("text", "text")), room=True),
    )
}


# -- server → client -----------------------------------------------------------------

_REASON_OUT = _req("reason", "enum", values=tuple(sorted(p.REASONS)))
_LEFT_REASON = _req("reason", "enum", values=tuple(sorted(p.LEAVE_REASONS)))


def _forwarded(kind: str, payload: Field) -> Message:
    """A seed signal as the server forwards it: the seed's fields first, in the seed's order;
    a seed client gets exactly those."""
    return Message(kind, "forwarded", (_FROM, payload, _f("call_id", "string"), _f("room", "room"), _FROM_KEY_NBCALL),
                   seed=True)  # fmt: skip


SERVER_MESSAGES: Final[Mapping[str, Message]] = {
    m.type: m
    for m in (
        Message(
            "registered",
            "reply to `register`",
            (
                _req("username", "name", "your name, normalised"),
                _req("key", "key", "your key"),
                _req("credential", "string", "this name's credential, for a reconnect"),
                _req("users", "names", "who is online (at most MAX_LISTED_USERS)"),
                _req("keys", "keys", "their keys, in the same order"),
                _req("online", "integer", "how many are online"),
                _req("protocol", "integer", "PROTOCOL_VERSION"),
                _req("ring_timeout", "number", "seconds an invite rings"),
                _req("server_id", "string", "random per server start: a changed one means the server restarted"),
                _f(
                    "call",
                    "object",
                    "a call that survived a reconnect, or was restored",
                    items=(
                        _req("call_id", "string"),
                        _req("peer", "name"),
                        _req("peer_key", "key"),
                        _req("state", "enum", values=("active", "ringing")),
                    ),
                ),
            ),
        ),
        Message(
            "users",
            "reply to `list`",
            (_req("users", "names"), _req("keys", "keys"), _req("online", "integer")),
        ),
        Message(
            "presence",
            "batched changes (at most one message per 250 ms), to clients that registered with `presence`",
            (
                _req("online", "integer"),
                _f("joined", "names"),
                _f("joined_keys", "keys"),
                _f("left", "names"),
                _f("left_keys", "keys"),
                _f("truncated", "boolean", "too many changes to list: ask with `list`"),
            ),
        ),
        Message("pong", "reply to `ping`"),
        Message(
            "error",
            "a request that could not be served",
            (
                _req("code", "enum", values=tuple(sorted(ErrorCode.ALL))),
                _req("message", "string", "why, in words"),
                _f("request", "string", "the request's type, when known"),
            ),
        ),
        Message(
            "replaced",
            "to the old connection when a reconnect took over its name (then closed with 4001)",
            (_req("message", "string"),),
        ),
        _forwarded("offer", _req("sdp", "sdp", seed=True)),
        _forwarded("answer", _req("sdp", "sdp", seed=True)),
        _forwarded("candidate", _req("candidate", "candidate", seed=True, nullable=True)),
        Message("invite", "someone is calling you", (_FROM, _FROM_KEY, _CALL_ID_OUT)),
        Message("ringing", "your invite is ringing (`from`: the callee)", (_FROM, _FROM_KEY, _CALL_ID_OUT)),
        Message(
            "accept",
            "your call was accepted: send your offer",
            (_FROM, _FROM_KEY, _CALL_ID_OUT, _f("seed", "boolean", "the callee is a seed client")),
        ),
        Message("reject", "the callee declined", (_FROM, _FROM_KEY, _CALL_ID_OUT, _REASON_OUT)),
        Message(
            "busy",
            "the callee is in another call",
            (_FROM, _FROM_KEY, _f("call_id", "string", "absent for a seed-style offer")),
        ),
        Message(
            "cancel", "the caller gave up, or nobody answered in time", (_FROM, _FROM_KEY, _CALL_ID_OUT, _REASON_OUT)
        ),
        Message("hangup", "the call ended", (_FROM, _FROM_KEY, _CALL_ID_OUT, _REASON_OUT)),
        Message(
            "peer_status",
            "the other side of your call lost its socket, or is back",
            (
                _FROM,
                _FROM_KEY,
                _CALL_ID_OUT,
                _req("status", "enum", values=tuple(sorted(p.PEER_STATUSES))),
                _req("grace", "number", "seconds it has to come back"),
            ),
        ),
        Message(
            "room_joined",
            "reply to `room_join`; or, with `from_call`, to both sides of a call that became a room",
            (
                _ROOM,
                _req("room_key", "key"),
                _req("topology", "enum", values=tuple(sorted(p.TOPOLOGIES))),
                _req("members", "objects", "the others, in joining order", items=_MEMBER_ITEMS),
                _req(
                    "ringing", "objects", "invited, not yet answered", items=(_req("name", "name"), _req("key", "key"))
                ),
                _req("mesh_limit", "integer"),
                _req("max_members", "integer"),
                _SFU,
                _f(
                    "from_call",
                    "object",
                    "your 1:1 call became this room",
                    items=(_req("peer", "name"), _req("peer_key", "key"), _req("call_id", "string")),
                ),
            ),
            room=True,
        ),
        Message(
            "room_left",
            "reply to `room_leave`, or the server removed you",
            (_ROOM, _LEFT_REASON),
            room=True,
        ),
        Message(
            "member_joined",
            "someone joined (to every other member)",
            (*_MEMBER, *_MEMBER_ITEMS[2:]),
            room=True,
        ),
        Message(
            "member_left",
            "someone left or its connection ended",
            (*_MEMBER, _LEFT_REASON),
            room=True,
        ),
        Message(
            "member_ringing",
            "a member invited someone (`from`: the invitee)",
            (*_MEMBER, _req("by", "name", "who invited")),
            room=True,
        ),
        Message(
            "member_declined",
            "the invitee did not come: to every member, and to the invitee",
            (*_MEMBER, _req("reason", "enum", values=tuple(sorted(p.DECLINE_REASONS)))),
            room=True,
        ),
        Message(
            "member_state",
            "a member muted or turned its camera off or on",
            (*_MEMBER, _req("audio", "boolean"), _req("video", "boolean")),
            room=True,
        ),
        Message(
            "room_invite",
            "you are invited: answer `room_join` or `room_decline`",
            (*_MEMBER, _req("members", "integer", "how many are in the room")),
            room=True,
        ),
        Message("room_chat", "chat to the room", (*_MEMBER, _req("text", "text")), room=True),
        Message(
            "room_topology",
            "the room moved to the SFU (sent again as members' publisher ids come into use)",
            (
                _ROOM,
                _req("topology", "enum", values=tuple(sorted(p.TOPOLOGIES))),
                _SFU,
                _req("members", "objects", "the others, as in room_joined", items=_MEMBER_ITEMS),
            ),
            room=True,
        ),
    )
}

CLIENT_TYPES: Final = frozenset(CLIENT_MESSAGES)
SERVER_TYPES: Final = frozenset(SERVER_MESSAGES)
SEED_FORWARDED: Final = frozenset(t for t, m in CLIENT_MESSAGES.items() if m.seed and t != "register")
ROOM_REQUESTS: Final = frozenset(t for t, m in CLIENT_MESSAGES.items() if m.room)
ROOM_EVENTS: Final = frozenset(t for t, m in SERVER_MESSAGES.items() if m.room)
# What each forwarded type carries besides type/from, in the seed's key order.
PAYLOAD_FIELD: Final = {"offer": "sdp", "answer": "sdp", "candidate": "candidate"}


# -- client → server: validation -----------------------------------------------------

_SDP_KEYS: Final = frozenset({"type", "sdp"})
# The fields an RTCIceCandidateInit may carry; anything else is dropped before forwarding
# (an extra key is only padding or a payload for the peer).
_CANDIDATE_KEYS: Final = frozenset({"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})


def _short(value: object, path: str, kind: str) -> str:
    if not isinstance(value, str) or len(value) > p.MAX_TOKEN_CHARS:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, f"'{path}' must be a string of at most {p.MAX_TOKEN_CHARS} characters", kind
        )
    return value


def _clean_sdp(sdp: Any, kind: str) -> Any:
    """The session description to forward: an SDP string, or ``{type, sdp}`` with nothing else."""
    if isinstance(sdp, str):
        text = sdp
    elif isinstance(sdp, dict) and isinstance(sdp.get("sdp", ""), str) and sdp.get("type") in p.SDP_TYPES:
        text = sdp.get("sdp", "")
        if len(sdp) > 2 or not sdp.keys() <= _SDP_KEYS:
            sdp = {k: v for k, v in sdp.items() if k in _SDP_KEYS}  # the sender's key order: seed bytes
    else:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, "'sdp' must be a session description {type, sdp} or an SDP string", kind
        )
    if len(text) > p.MAX_SDP_CHARS:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"the SDP is longer than {p.MAX_SDP_CHARS} characters", kind)
    return sdp


def _optional_short(value: Any) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= p.MAX_TOKEN_CHARS)


def _clean_candidate(candidate: Any, kind: str) -> Any:
    """The ICE candidate to forward: ``{candidate, sdpMid, sdpMLineIndex, usernameFragment}`` or None."""
    if candidate is None:  # end-of-candidates
        return None
    if isinstance(candidate, dict):
        text = candidate.get("candidate", "")
        if isinstance(text, str):
            if len(text) > p.MAX_CANDIDATE_CHARS:
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


def _username(f: Field, value: Any, path: str, kind: str) -> Any:
    try:
        return normalize_name(value)
    except InvalidName as exc:
        raise ProtocolError(ErrorCode.INVALID_NAME, str(exc), kind) from None


def _name(f: Field, value: Any, path: str, kind: str) -> Any:
    try:
        return normalize_name(value)
    except InvalidName as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{path}' is not a valid user name: {exc}", kind) from None


def _room(f: Field, value: Any, path: str, kind: str) -> Any:
    return p.room_name(value, kind)


def _string(f: Field, value: Any, path: str, kind: str) -> Any:
    text = _short(value, f.name, kind)
    return None if f.empty_is_none and not text else text


def _boolean(f: Field, value: Any, path: str, kind: str) -> Any:
    if not isinstance(value, bool):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{path}' must be true or false", kind)
    return value


def _enum(f: Field, value: Any, path: str, kind: str) -> Any:
    if value not in f.values:
        if f.token:  # a non-string or over-long value gets every token field's refusal first
            _short(value, f.name, kind)
        shown = value[:32] if isinstance(value, str) else "?"
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f.invalid.format(value=shown), kind)
    return value


def _text(f: Field, value: Any, path: str, kind: str) -> Any:
    if not isinstance(value, str) or not value:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{path}' must be a non-empty string", kind)
    if len(value) > p.MAX_ROOM_CHAT_CHARS:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"room chat is limited to {p.MAX_ROOM_CHAT_CHARS} characters", kind)
    return value


def _object(f: Field, value: Any, path: str, kind: str) -> Any:
    if not isinstance(value, dict):
        shape = ", ".join(item.name for item in f.items)
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{path}' must be {{{shape}}}", kind)
    return _fields(f.items, value, kind, f"{path}.", keep_others=False)


_CLIENT_CHECKS: Final[dict[str, Callable[[Field, Any, str, str], Any]]] = {
    "username": _username,
    "name": _name,
    "room": _room,
    "string": _string,
    "boolean": _boolean,
    "enum": _enum,
    "sdp": lambda f, value, path, kind: _clean_sdp(value, kind),
    "candidate": lambda f, value, path, kind: _clean_candidate(value, kind),
    "text": _text,
    "object": _object,
    "ignored": lambda f, value, path, kind: value,
}


def _fields(fields: tuple[Field, ...], data: dict[str, Any], kind: str, prefix: str, *, keep_others: bool) -> Any:
    """Check ``fields`` of ``data`` in their declared order (the first bad one is refused).

    Absent: a default is set, a required field is refused, an optional one skipped.  Null:
    kept for a nullable field; for an optional one it is as if absent, except for a flag
    or a field whose default is not null (null is not "open"); a required one is refused.
    """
    out = data if keep_others else {}
    for f in fields:
        path = f"{prefix}{f.name}"
        if f.name not in data:
            if f.has_default:
                out[f.name] = f.default
            elif f.required:
                out[f.name] = _refuse_missing(f, path, kind)
            continue
        value = data[f.name]
        if value is None:
            if f.nullable or f.empty_is_none:
                out[f.name] = None
                continue
            if f.required:
                out[f.name] = _refuse_missing(f, path, kind)
                continue
            if f.kind != "boolean" and f.default is None:
                if not keep_others:
                    out[f.name] = None
                continue
        out[f.name] = _CLIENT_CHECKS[f.kind](f, value, path, kind)
    return out


def _refuse_missing(f: Field, path: str, kind: str) -> Any:
    """A required field is absent or null: the kind's own refusal, which names the field."""
    if f.kind in ("string", "enum", "object", "ignored"):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{f.name}' is required", kind)
    return _CLIENT_CHECKS[f.kind](f, None, path, kind)


def parse_request(frame: p.Frame) -> dict[str, Any]:
    """Decode and validate one client frame.

    Returns the message as a dict whose ``type`` is in :data:`CLIENT_TYPES` and whose
    declared fields have been checked and normalised (names, rooms, SDP, candidates; an
    absent ``access`` is ``"open"``, an empty ``password`` is null).  Undeclared fields are
    kept and never used.  Raises :class:`ProtocolError` for anything else.
    """
    if len(frame) > p.MAX_FRAME_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"messages are limited to {p.MAX_FRAME_BYTES} bytes")
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "the message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "the message must be a JSON object")
    kind = data.get("type")
    spec = CLIENT_MESSAGES.get(kind) if isinstance(kind, str) else None
    if spec is None:
        shown = kind if isinstance(kind, str) and len(kind) <= 32 else "?"
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"unknown message type '{shown}'")
    result: dict[str, Any] = _fields(spec.fields, data, spec.type, "", keep_others=True)
    return result


# -- server → client: what check_sent accepts ----------------------------------------


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


_SENT_CHECKS: Final[dict[str, Callable[[Any], bool]]] = {
    "string": _is_string,
    "username": _is_string,
    "name": _is_string,
    "key": _is_string,
    "room": _is_string,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) in (int, float),
    "sdp": lambda v: isinstance(v, str) or (isinstance(v, dict) and v.keys() <= _SDP_KEYS),
    "candidate": lambda v: isinstance(v, dict) and v.keys() <= _CANDIDATE_KEYS,
    "text": _is_string,
    "names": _is_strings,
    "keys": _is_strings,
    "ignored": lambda v: True,
}


def problems(message: Any, table: Mapping[str, Message] = SERVER_MESSAGES) -> list[str]:
    """What is wrong with ``message`` against ``table`` (the server's messages by default);
    empty when it is a declared message with declared fields of their declared kinds."""
    if not isinstance(message, dict):
        return ["not a JSON object"]
    spec = table.get(message.get("type"))  # type: ignore[arg-type]
    if spec is None:
        return [f"undeclared message type {message.get('type')!r}"]
    return _field_problems(spec.fields, message, spec.type, skip=("type",))


def _field_problems(
    fields: tuple[Field, ...], data: dict[str, Any], where: str, skip: tuple[str, ...] = ()
) -> list[str]:
    out: list[str] = []
    declared = {f.name: f for f in fields}
    for name in data:
        if name not in declared and name not in skip:
            out.append(f"{where}: undeclared field {name!r}")
    for f in fields:
        if f.name not in data:
            if f.required:
                out.append(f"{where}: required field {f.name!r} is missing")
            continue
        value = data[f.name]
        path = f"{where}.{f.name}"
        if value is None:
            if not f.nullable:
                out.append(f"{path} is null")
        elif f.kind == "enum":
            if value not in f.values:
                out.append(f"{path}: {value!r} is not one of {list(f.values)}")
        elif f.kind == "object":
            out += (
                [f"{path} is not an object"] if not isinstance(value, dict) else _field_problems(f.items, value, path)
            )
        elif f.kind == "objects":
            if not isinstance(value, list):
                out.append(f"{path} is not a list")
            else:
                for i, item in enumerate(value):
                    item_path = f"{path}[{i}]"
                    ok = isinstance(item, dict)
                    out += _field_problems(f.items, item, item_path) if ok else [f"{item_path} is not an object"]
        elif not _SENT_CHECKS[f.kind](value):
            out.append(f"{path}: {type(value).__name__} is not {f.kind}")
    return out


# -- checking what servers send (the test suite turns it on) -------------------------

CHECKING: Final = os.environ.get("NBCALL_WIRE_CHECK", "") not in ("", "0")
MAX_VIOLATIONS: Final = 100
# The last violations seen in this process (tests/conftest.py fails a test that left any).
violations: list[str] = []


class WireViolation(AssertionError):
    """A server sent, or a client received, a message the declarations do not allow."""


def check_sent(data: bytes | str, table: Mapping[str, Message] = SERVER_MESSAGES, *, fail: bool = True) -> None:
    """Remember a violation when ``data`` is not a declared message of ``table``, and raise
    :class:`WireViolation` unless ``fail`` is False (a reader that must go on reading)."""
    try:
        found = problems(orjson.loads(data), table)
    except orjson.JSONDecodeError:
        found = ["not JSON"]
    if found:
        text = f"{'; '.join(found)} in {data[:300]!r}"
        if len(violations) >= MAX_VIOLATIONS:
            del violations[0]
        violations.append(text)
        if fail:
            raise WireViolation(text)
