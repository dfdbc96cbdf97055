"""On the receiving node: the call state a message from another node implies, before delivery.

Each node keeps the calls of its own users (with a stand-in for a partner elsewhere), the
way the protocol's clients keep theirs: from the messages addressed to them.  The sending
node has already applied every rule it can check on its side (``from`` stamped, the
sender's own call, rate, sizes); here the receiver's side is checked, the one thing the
sender cannot know: is the receiver still here, in another call, reconnecting, reading?
A refusal goes back to the sender as the same message one server would have sent.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import orjson

from .. import protocol as p
from .. import wire
from ..session import Call, Session, check_receivable
from .remote import RemoteSession

if TYPE_CHECKING:
    from .hub import ClusterHub


def admit(hub: ClusterHub, me: Session, sender: RemoteSession, kind: str, call_id: Any, body: bytes) -> bool:
    """Apply what a message from ``sender`` to the local user ``me`` means; True: deliver it."""
    key, other = me.key, sender.key
    assert key is not None and other is not None
    call = hub.calls.get(key)
    ours = call is not None and call.other(key) == other
    if kind in wire.SEED_FORWARDED:
        if not ours:
            if kind != "offer":
                return False  # the call ended while this was on its way
            if call is not None:  # a seed-style call to someone in a call: busy, as on one server
                sender.send({"type": "busy", "from": me.name, "from_key": key})
                return False
            call = Call(call_id or secrets.token_hex(6), other, key, "active", implicit=True)
            hub.calls[key] = hub.calls[other] = call
        try:
            check_receivable(me, kind, hub.limits)
        except p.ProtocolError as exc:
            hub.bounce(sender, key, exc.reply())
            return False
        return True
    if kind == "invite":
        if call is not None:
            sender.send({"type": "busy", "from": me.name, "from_key": key, "call_id": call_id})
            return False
        if not me.nbcall:  # a seed client cannot ring: accept on its behalf (Hub._invite)
            hub.calls[key] = hub.calls[other] = Call(call_id, other, key, "active")
            sender.send({"type": "accept", "from": me.name, "from_key": key, "call_id": call_id, "seed": True})
            return False
        hub.calls[key] = hub.calls[other] = Call(call_id, other, key, "ringing")
        sender.send({"type": "ringing", "from": me.name, "from_key": key, "call_id": call_id})
        return True
    if kind == "accept":
        if not (ours and call is not None and call.state == "ringing" and call.caller == key):
            return False  # it crossed a cancel or a ring timeout: both sides were told that
        call.state = "active"
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        return True
    if kind in ("reject", "cancel", "hangup"):
        if ours and call is not None:
            hub.drop_call(call)
            return True
        return False
    if kind == "busy":  # the callee's node refused our invite or plain offer
        if ours and call is not None and call.caller == key and (call.state == "ringing" or call.implicit):
            hub.drop_call(call)
        return True
    if kind == "error":
        if ours and call is not None and call.caller == key and orjson.loads(body).get("code") == "unknown_peer":
            hub.drop_call(call)  # the callee left before our invite reached its node
        return True
    return ours  # ringing, peer_status: only about a call we share
