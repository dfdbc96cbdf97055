"""The scripted sessions: what each client sends, in order (record.py plays them).

The frames are the page's own shapes (js/signaling/signaling.js registers with
``client`` and ``presence``; the phone sends ``call_id`` with its call messages), plus the
seed's, and the mistakes a client can make, so that what the fake answers to the page
is what the real server answers.  A client is a label (``alice2`` is alice's second
socket); it connects at its first step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SDP = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


@dataclass(frozen=True)
class Session:
    name: str  # the file's name under sessions/
    about: str
    steps: list[dict[str, Any]]


def send(client: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"client": client, "send": message}


def drop(client: str) -> dict[str, Any]:
    """The client's socket dies without a close frame (the server releases it at once: record.LIMITS)."""
    return {"client": client, "drop": True}


def close(client: str) -> dict[str, Any]:
    """The client closes its socket with 1000 (the page's widget closed: it left on purpose)."""
    return {"client": client, "close": 1000}


def register(client: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    """The page's register."""
    page = {"type": "register", "username": name or client, "client": "nbcall-widget", "presence": True}
    return send(client, {**page, **extra})


def seed_register(client: str) -> dict[str, Any]:
    return send(client, {"type": "register", "username": client})


def to(client: str, kind: str, whom: str, **fields: Any) -> dict[str, Any]:
    return send(client, {"type": kind, "to": whom, **fields})


def room(client: str, kind: str, name: str | None, **fields: Any) -> dict[str, Any]:
    return send(client, {"type": kind, "room": name, **fields})


def call(caller: str, callee: str, call_id: str) -> list[dict[str, Any]]:
    """``caller`` invites ``callee`` and it answers."""
    return [to(caller, "invite", callee, call_id=call_id), to(callee, "accept", caller, call_id=call_id)]


SESSIONS = [
    Session(
        "register_and_presence",
        "registered replies, list, ping, presence only to those who asked for it, a name taken, "
        "a reconnect with the credential (the old socket is replaced), a drop",
        [
            register("alice"),
            register("bob"),
            send("carol", {"type": "register", "username": "carol", "client": "nbcall-widget", "presence": False}),
            send("alice", {"type": "list"}),
            send("bob", {"type": "ping"}),
            register("bob2", "  "),
            register("bob2", "b" * 65),
            register("bob2", "BOB"),
            register("bob3", "bob", credential="<credential:2>"),
            drop("carol"),
            drop("bob3"),
        ],
    ),
    Session(
        "unregistered",
        "what a socket may do before register, and what it may not",
        [
            send("alice", {"type": "ping"}),
            send("alice", {"type": "list"}),
            to("alice", "invite", "bob", call_id="c-1"),
            room("alice", "room_join", "team"),
            register("bob"),
            to("alice", "offer", "bob", sdp=SDP),
        ],
    ),
    Session(
        "call_answered_and_hung_up",
        "invite, ringing, accept, offer/answer/candidate with call_id both ways, hangup with a reason",
        [
            register("alice"),
            register("bob"),
            to("alice", "invite", "bob", call_id="call-1"),
            to("bob", "accept", "alice", call_id="call-1"),
            to("alice", "offer", "bob", sdp=SDP, call_id="call-1"),
            to("bob", "answer", "alice", sdp=ANSWER, call_id="call-1"),
            to("alice", "candidate", "bob", candidate=CANDIDATE, call_id="call-1"),
            to("bob", "candidate", "alice", candidate=None, call_id="call-1"),
            to("bob", "hangup", "alice", call_id="call-1", reason="failed"),
            to("alice", "hangup", "bob", call_id="call-1"),
            to("alice", "candidate", "bob", candidate=CANDIDATE, call_id="call-1"),
        ],
    ),
    Session(
        "call_ids_made_by_the_server",
        "an invite without call_id gets one from the server; hangup without a reason",
        [
            register("alice"),
            register("bob"),
            to("alice", "invite", "Bob"),
            to("bob", "accept", "alice"),
            to("alice", "hangup", "bob"),
        ],
    ),
    Session(
        "call_rejected_and_cancelled",
        "reject, cancel, and who may do which: the caller cannot accept or reject, the callee cannot cancel",
        [
            register("alice"),
            register("bob"),
            to("alice", "invite", "bob", call_id="call-1"),
            to("alice", "accept", "bob", call_id="call-1"),
            to("alice", "reject", "bob", call_id="call-1"),
            to("bob", "cancel", "alice", call_id="call-1"),
            to("bob", "reject", "alice", call_id="call-1"),
            to("alice", "invite", "bob", call_id="call-2"),
            to("alice", "cancel", "bob", call_id="call-2"),
            to("bob", "accept", "alice", call_id="call-2"),
            to("alice", "invite", "bob", call_id="call-3"),
            to("alice", "accept", "bob", call_id="call-4"),  # the caller cannot answer its own call
            to("bob", "reject", "alice", call_id="call-3", reason="busy"),
        ],
    ),
    Session(
        "call_errors",
        "unknown_peer, self_call, busy (the caller's error, the callee's busy message), no_call, bad_message",
        [
            register("alice"),
            register("bob"),
            register("carol"),
            to("alice", "invite", "nobody", call_id="call-0"),
            to("alice", "invite", "ALICE", call_id="call-0"),
            *call("alice", "bob", "call-1"),
            to("carol", "invite", "bob", call_id="call-2"),
            to("alice", "invite", "carol", call_id="call-3"),
            to("carol", "hangup", "alice", call_id="call-1"),
            to("carol", "answer", "alice", sdp=ANSWER),
            to("carol", "candidate", "bob", candidate=CANDIDATE),
            to("alice", "offer", "nobody", sdp=SDP),
            send("carol", {"type": "invite", "call_id": "call-5"}),
            send("carol", {"type": "hangup", "to": "", "call_id": "call-5"}),
            send("carol", {"type": "frobnicate"}),
            to("alice", "hangup", "bob", call_id="call-1", reason="because"),
        ],
    ),
    Session(
        "call_ends_when_a_socket_drops",
        "a dropped socket ends its call (disconnected) and leaves presence",
        [
            register("alice"),
            register("bob"),
            *call("alice", "bob", "call-1"),
            drop("alice"),
            to("bob", "hangup", "alice", call_id="call-1"),
        ],
    ),
    Session(
        "seed_client",
        "a seed client (no `client` field): the server accepts on its behalf, forwards in the seed's shape",
        [
            register("alice"),
            seed_register("seedy"),
            to("alice", "invite", "seedy", call_id="call-1"),
            to("alice", "offer", "seedy", sdp=SDP, call_id="call-1"),
            to("seedy", "answer", "alice", sdp=ANSWER),
            to("seedy", "candidate", "alice", candidate=CANDIDATE),
            to("alice", "hangup", "seedy", call_id="call-1"),
        ],
    ),
    Session(
        "seed_style_call",
        "a plain offer outside a call is the seed's way to call: the server tracks it as a call",
        [
            register("alice"),
            seed_register("seedy"),
            register("carol"),
            to("seedy", "offer", "alice", sdp=SDP),
            to("alice", "answer", "seedy", sdp=ANSWER),
            to("carol", "offer", "alice", sdp=SDP),
            to("carol", "offer", "carol", sdp=SDP),
            to("alice", "candidate", "seedy", candidate=CANDIDATE),
            to("alice", "invite", "carol", call_id="call-1"),
            to("carol", "accept", "alice", call_id="call-1"),
            to("seedy", "offer", "carol", sdp=SDP),
            to("alice", "offer", "seedy", sdp=SDP, call_id="call-2"),
            to("alice", "hangup", "carol", call_id="call-1"),
            to("alice", "offer", "seedy", sdp=SDP, call_id="call-3"),
            to("seedy", "offer", "carol", sdp=SDP),
        ],
    ),
    Session(
        "room_mesh",
        "join (who offers to whom), state, chat, a room's offer/answer/candidate, leave, not_in_room",
        [
            register("alice"),
            register("bob"),
            room("alice", "room_join", "Team"),
            room("bob", "room_join", "team"),
            room("bob", "room_state", "team", audio=False, video=True),
            room("alice", "room_chat", "TEAM", text="hello"),
            to("bob", "offer", "alice", sdp=SDP, room="team"),
            to("alice", "answer", "bob", sdp=ANSWER, room="team"),
            to("bob", "candidate", "alice", candidate=CANDIDATE, room="team"),
            to("alice", "offer", "bob", sdp=SDP, room="other"),
            room("bob", "room_leave", "team"),
            room("bob", "room_leave", "team"),
            room("bob", "room_chat", "team", text="anyone?"),
            room("bob", "room_state", "team", audio=True, video=True),
            to("alice", "candidate", "bob", candidate=CANDIDATE, room="team"),
            room("alice", "room_leave", "team"),
        ],
    ),
    Session(
        "room_full_without_sfu",
        "the mesh limit (4) with no SFU: the fifth is refused with room_full",
        [
            *(register(name) for name in ("a1", "a2", "a3", "a4", "a5")),
            *(room(name, "room_join", "big") for name in ("a1", "a2", "a3", "a4", "a5")),
            room("a2", "room_leave", "big"),
            room("a5", "room_join", "big"),
        ],
    ),
    Session(
        "room_invitations",
        "invite-only: not_invited, room_invite/member_ringing, decline (both sides told), join on invitation",
        [
            register("alice"),
            register("bob"),
            register("carol"),
            room("alice", "room_join", "Secret", access="invite"),
            room("bob", "room_join", "secret"),
            room("alice", "room_invite", "secret", to="bob"),
            room("bob", "room_decline", "secret"),
            room("bob", "room_decline", "secret"),
            room("alice", "room_invite", "secret", to="carol"),
            room("carol", "room_join", "secret"),
            room("alice", "room_invite", "secret", to="nobody"),
            room("bob", "room_invite", "secret", to="carol"),
            room("alice", "room_invite", "secret", to="carol"),
        ],
    ),
    Session(
        "room_password",
        "a password room: wrong or missing password is not_invited; the right one joins",
        [
            register("alice"),
            register("bob"),
            room("alice", "room_join", "vault", password="pw"),
            room("bob", "room_join", "vault"),
            room("bob", "room_join", "vault", password="nope"),
            room("bob", "room_join", "vault", password="pw"),
        ],
    ),
    Session(
        "room_errors",
        "invalid_room, and busy between rooms and calls",
        [
            register("alice"),
            register("bob"),
            register("carol"),
            room("alice", "room_join", ""),
            room("alice", "room_join", "x" * 65),
            room("alice", "room_join", None),
            *call("alice", "bob", "call-1"),
            room("alice", "room_join", "team"),
            room("carol", "room_join", "team"),
            room("carol", "room_join", "other"),
            to("carol", "invite", "alice", call_id="call-2"),
            to("alice", "invite", "carol", call_id="call-3"),
            room("carol", "room_invite", "team", to="alice"),
            to("carol", "offer", "alice", sdp=SDP),
            to("carol", "answer", "alice", sdp=ANSWER),
        ],
    ),
    Session(
        "room_member_drops",
        "a member's socket drops: the others are told at once (disconnected)",
        [
            register("alice"),
            register("bob"),
            room("alice", "room_join", "team"),
            room("bob", "room_join", "team"),
            drop("bob"),
            room("alice", "room_chat", "team", text="still here"),
        ],
    ),
    Session(
        "room_ringing_is_busy",
        "a user rung into a room is busy for calls and other rooms; its own call ends the ringing (busy)",
        [
            register("alice"),
            register("bob"),
            register("carol"),
            register("dave"),
            room("alice", "room_join", "team"),
            room("alice", "room_invite", "team", to="bob"),
            to("carol", "invite", "bob", call_id="call-1"),
            room("carol", "room_join", "other"),
            room("carol", "room_invite", "other", to="bob"),
            to("bob", "invite", "dave", call_id="call-2"),
            to("carol", "invite", "bob", call_id="call-3"),
        ],
    ),
    Session(
        "room_requests_checked",
        "room requests with missing or wrong fields: bad_message, invalid_room, too_large",
        [
            register("alice"),
            room("alice", "room_join", "team", access="secret"),
            room("alice", "room_join", "team"),
            room("alice", "room_state", "team", audio="yes", video=True),
            room("alice", "room_chat", "team", text=""),
            room("alice", "room_chat", "team", text="x" * 4001),
            room("alice", "room_invite", "team"),
            room("alice", "room_invite", "team", to="alice"),
            room("alice", "room_leave", ""),
            room("alice", "room_decline", "nowhere"),
        ],
    ),
    Session(
        "call_hung_up_while_ringing",
        "a ringing call hung up by either side, and a second invite to someone already ringing",
        [
            register("alice"),
            register("bob"),
            register("carol"),
            to("alice", "invite", "bob", call_id="call-1"),
            to("carol", "invite", "bob", call_id="call-2"),
            to("bob", "hangup", "alice", call_id="call-1"),
            to("alice", "invite", "bob", call_id="call-3"),
            to("alice", "hangup", "bob", call_id="call-3", reason="closed"),
            to("bob", "invite", "bob", call_id="call-4"),
        ],
    ),
    Session(
        "sockets_closed_and_dropped",
        "a socket closed on purpose (1000) or dropped: its call ends, its room is told closed or "
        "disconnected, a ringing invitation ends (left), an emptied room's invitations end (left)",
        [
            register("alice", "Alice"),  # (a display name unlike its key: the hangup names the user)
            *(register(name) for name in ("bob", "carol", "dave")),
            register("erin", "Erin"),
            *(register(name) for name in ("frank", "gina")),
            *call("alice", "bob", "call-1"),
            close("alice"),
            room("carol", "room_join", "team"),
            room("dave", "room_join", "team"),
            close("carol"),
            room("dave", "room_invite", "team", to="gina"),
            drop("gina"),
            to("erin", "invite", "frank", call_id="call-2"),
            drop("erin"),
            room("dave", "room_invite", "team", to="frank"),
            room("dave", "room_leave", "team"),
            room("frank", "room_join", "team"),
            close("bob"),
        ],
    ),
    Session(
        "calls_announced_after_a_restart",
        "a fresh server: both sides announce their call in register and it is restored; a one-sided claim is not",
        [
            register("alice", call={"peer": "bob", "call_id": "call-1"}),
            register("carol", call={"peer": "dave", "call_id": "call-2"}),
            register("bob", call={"peer": "alice", "call_id": "call-1"}),
            to("alice", "offer", "bob", sdp=SDP, call_id="call-1"),
            to("carol", "hangup", "dave", call_id="call-2"),
            to("bob", "hangup", "alice", call_id="call-1"),
        ],
    ),
    Session(
        "rename_and_invite_again",
        "a socket registers again under another name (the old one leaves); an invitation sent again "
        "rings anew; joining another room ends the ringing (busy)",
        [
            register("alice"),
            register("bob"),
            register("alice", "alicia"),
            room("bob", "room_join", "team"),
            room("bob", "room_invite", "team", to="alicia"),
            room("bob", "room_invite", "team", to="alicia"),
            room("alice", "room_join", "other"),
            room("bob", "room_chat", "team", text="gone?"),
        ],
    ),
    Session(
        "room_from_call",
        "a connected call becomes a room when one side invites a third (room_invite without room)",
        [
            register("alice"),
            register("bob"),
            register("carol"),
            register("dave"),
            send("alice", {"type": "room_invite", "to": "carol"}),
            to("alice", "invite", "bob", call_id="call-1"),
            send("alice", {"type": "room_invite", "to": "carol"}),
            to("bob", "accept", "alice", call_id="call-1"),
            send("bob", {"type": "room_invite", "to": "alice"}),
            send("bob", {"type": "room_invite", "to": "nobody"}),
            send("bob", {"type": "room_invite", "to": "carol"}),
            room("carol", "room_join", "<room:1>"),
            to("alice", "hangup", "bob", call_id="call-1"),
            to("alice", "offer", "bob", sdp=SDP, room="<room:1>"),
            room("dave", "room_join", "<room:1>"),
        ],
    ),
]
