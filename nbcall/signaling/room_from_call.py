"""A connected 1:1 call becomes a room when one of its two sides invites a third person.

``room_invite`` without ``room`` (docs/rooms.md, "From a call"): the server makes an
invite-only room with a generated name, moves both sides of the sender's call into it and
rings the invitee like any room invitation.  The call is dropped without a ``hangup`` to
either side: each gets ``room_joined`` with ``from_call``, and its page carries the call's
connection over as the mesh link between the two.  From then on the rules are the room's:
offers and candidates between the two go only with ``room``, a 1:1 ``hangup`` gets
``no_call``, and ``room_leave`` leaves.

Only the call's two sides can do it (the request names no call: it is always the sender's
own), only once the call is answered (a ringing call has no connection to carry over), and
only when both speak nbcall: a seed client, or a call started the seed's way, has no rooms.
Everything the invitation needs is checked before the call moves, so a refused invite
leaves the call as it was.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from . import protocol as p
from .names import name_key
from .room_model import Room

if TYPE_CHECKING:
    from .rooms import Rooms
    from .session import Session

KIND = "room_invite"


def invite_from_call(rooms: Rooms, session: Session, message: dict[str, Any]) -> None:
    """``session`` invites ``message["to"]`` into its call, which becomes a room."""
    hub = rooms.hub
    me = session.key
    assert me is not None
    call = hub.calls.get(me)
    if call is None:
        raise p.ProtocolError(p.ErrorCode.NO_CALL, "you are in no call: name the room to invite into", KIND)
    peer_key = call.other(me)
    peer, name = hub.users.get(peer_key), hub.display_name(peer_key)
    if call.state != "active":
        raise p.ProtocolError(p.ErrorCode.NO_CALL, f"your call with '{name}' is not answered yet", KIND)
    if call.implicit or not session.nbcall or (peer is not None and not peer.nbcall):
        why = f"your call with '{name}' is a seed client's, and the seed's protocol has no rooms"
        raise p.ProtocolError(p.ErrorCode.SEED_CALL, why, KIND)
    if peer is None or peer.away:  # its socket dropped: a room has no grace to wait for it in
        raise p.ProtocolError(p.ErrorCode.PEER_RECONNECTING, f"'{name}' is reconnecting: invite once back", KIND)
    if name_key(message["to"]) == peer_key:
        raise p.ProtocolError(p.ErrorCode.BUSY, f"'{name}' is in this call already", KIND)
    target = rooms.invitee(session, message, None)
    if len(rooms.rooms) >= rooms.limits.max_rooms:
        raise p.ProtocolError(p.ErrorCode.ROOM_FULL, f"this server has {len(rooms.rooms)} rooms, its most", KIND)

    room = _new_room(rooms)
    hub.drop_call(call)  # not ended: moved (nobody is told hangup)
    # The callee first, the caller as the newcomer: the caller offers to the callee, as in the
    # call, so a page that carries the connection over keeps its side of perfect negotiation.
    caller, callee = (session, peer) if call.caller == me else (peer, session)
    first, second = rooms.member(callee), rooms.member(caller)
    for member in (first, second):
        room.members[member.key] = member
        rooms.where[member.key] = room
    for member, partner in ((first, second), (second, first)):
        moved = {"peer": partner.name, "peer_key": partner.key, "call_id": call.call_id}
        rooms.joined(room, member, [partner.describe(offer=member is second)], from_call=moved)
    rooms.ring(room, session, target)


def _new_room(rooms: Rooms) -> Room:
    """An empty invite-only room named ``call-`` and random hex (a name nobody uses now)."""
    while True:
        name = f"call-{secrets.token_hex(4)}"
        key = name_key(name)
        if key not in rooms.rooms:
            room = rooms.rooms[key] = Room(key, name, "invite", None)
            return room
