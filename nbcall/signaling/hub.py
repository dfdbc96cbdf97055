"""Who is online and who is calling whom: the server's state machine, free of sockets.

The hub sees :class:`Transport` objects (anything with ``send_bytes`` and ``close_now``) and
validated messages from :func:`wire.parse_request`.  Keeping the transport out makes
the rules testable.  It is also the cluster's seam (:mod:`.cluster`): a user who is not
here is looked up with :meth:`Hub.remote_user`, which a cluster hub answers with a stand-in
session whose ``send`` goes to that user's node; the rules below stay the only rules.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from . import protocol as p
from . import wire
from .bucket import TokenBucket
from .names import name_key
from .presence import Presence
from .rooms import Rooms
from .session import Call, Limits, Session, Transport, check_receivable, take_token

__all__ = ["Call", "Hub", "Limits", "Session", "Transport"]

log = logging.getLogger("nbcall.server")


class Hub:
    """The in-memory registry of users and calls, and the rules of the protocol."""

    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or Limits()
        self.users: dict[str, Session] = {}  # key -> session holding that name
        self.calls: dict[str, Call] = {}  # user key -> the call that user is in
        self.presence = Presence(self.limits.presence_interval, self.online_count)
        # After a server restart: user key -> (peer key, call_id) it says it was in, until
        # the peer says the same (then the call is restored) or the user leaves.
        self.announced: dict[str, tuple[str, str]] = {}
        # Tells a reconnecting client whether it reached the same server (whose grace may
        # have ended its call) or a restarted one (which knows nothing: announce the call).
        self.instance = secrets.token_hex(8)
        self.clock = clock
        # For /metrics: plain ints (a Counter's lock would cost the relay's hot path).
        self.relayed = 0  # offers, answers and candidates forwarded
        self.errors: dict[str, int] = {}  # error replies by code
        self.rooms = Rooms(self)  # group calls: docs/rooms.md

    def online_count(self) -> int:
        """Users online as clients see them (a cluster hub counts every node's)."""
        return len(self.users)

    def remote_user(self, key: str, kind: str | None = None) -> Session | None:
        """A user who is not connected here: None on one server (a cluster hub answers with
        a stand-in for a user on another node, or raises ``cluster_unavailable``)."""
        return None

    # -- connection lifecycle --------------------------------------------------------

    def connect(self, transport: Transport) -> Session:
        return Session(transport=transport, budget=TokenBucket(self.limits.rate, self.limits.burst, self.clock))

    def disconnect(self, session: Session, *, clean: bool = True) -> None:
        """The connection closed.  ``clean``: the client closed it itself (it sent a close
        frame); otherwise it dropped, and a user in a connected call keeps its name and the
        call for ``limits.reconnect_grace`` seconds, its partner told ``peer_status``."""
        self.presence.subscribers.discard(session)
        key = session.key
        if key is None or session.replaced or self.users.get(key) is not session:
            return
        self.rooms.gone(session, clean=clean)  # a room is told at once: no grace for a room
        call = self.calls.get(key)
        grace = self.limits.reconnect_grace
        if not clean and grace > 0 and call is not None and call.state == "active" and not session.away:
            session.away = True
            session.grace_timer = asyncio.get_running_loop().call_later(grace, self.release, session)
            self._tell_status(key, call, "reconnecting")
            return
        self.release(session)

    def release(self, session: Session) -> None:
        """The user is gone: its name is free and its call ends."""
        key = session.key
        if key is None or self.users.get(key) is not session:
            return
        if session.grace_timer is not None:
            session.grace_timer.cancel()
            session.grace_timer = None
        del self.users[key]
        self.announced.pop(key, None)
        self._end_call(key, "disconnected", session.name)
        self.presence.changed(key, session.name or key, joined=False)

    def _tell_status(self, key: str, call: Call, status: str) -> None:
        message: dict[str, Any] = {"type": "peer_status", "from": self.display_name(key), "from_key": key}
        message.update(call_id=call.call_id, status=status, grace=self.limits.reconnect_grace)
        self._tell(call.other(key), message)

    # -- dispatch ---------------------------------------------------------------------

    def receive(self, session: Session, frame: p.Frame) -> None:
        """Handle one frame from ``session``; replies and forwards happen inside."""
        if not self._take_token(session):
            return
        try:
            message = wire.parse_request(frame)
            kind = message["type"]
            if kind == "register":
                self._register(session, message)
            elif kind == "ping":
                session.send({"type": "pong"})
            elif kind == "list":
                session.send(self._users_reply("users"))
            elif session.key is None:
                raise p.ProtocolError(p.ErrorCode.NOT_REGISTERED, "send 'register' with a username first", kind)
            elif kind in wire.SEED_FORWARDED:
                self._forward(session, message)
            elif kind in wire.ROOM_REQUESTS:
                self.rooms.receive(session, message)
            else:
                self._call_control(session, message)
        except p.ProtocolError as exc:
            self.errors[exc.code] = self.errors.get(exc.code, 0) + 1
            session.send(exc.reply())
        except Exception:
            # A bug must cost one request, not the connection or its neighbours.
            log.exception("internal error handling a message from %s", session.name or "an unregistered client")
            session.send(p.error(p.ErrorCode.INTERNAL, "the server failed to handle this message"))

    def _take_token(self, session: Session) -> bool:
        if take_token(session, self.limits):
            return True
        self.errors[p.ErrorCode.RATE_LIMITED] = self.errors.get(p.ErrorCode.RATE_LIMITED, 0) + 1
        return False

    # -- register ---------------------------------------------------------------------

    def _register(self, session: Session, message: dict[str, Any]) -> None:
        name: str = message["username"]
        key = name_key(name)
        credential = message.get("credential")
        holder = self.users.get(key)
        if holder is not None and holder is not session:
            # As bytes: compare_digest raises TypeError for a str with non-ASCII characters.
            held = (holder.credential or "").encode()
            if credential is None or not secrets.compare_digest(credential.encode(), held):
                raise p.ProtocolError(
                    p.ErrorCode.NAME_TAKEN,
                    f"'{holder.name}' is in use by another connection; choose another name "
                    "or reconnect with that name's credential",
                    "register",
                )
            # A reconnect with the credential: the old socket hands over, calls survive.
            self.retire(holder)
            joined = False
        else:
            joined = holder is None
        if session.key is not None and session.key != key:
            self.disconnect(session)  # a rename releases the old name
            session.replaced = False
        session.name, session.key = name, key
        session.credential = credential or secrets.token_urlsafe(18)
        session.nbcall = message.get("client") is not None
        session.presence = bool(message.get("presence", False))
        self.users[key] = session
        if session.presence:
            self.presence.subscribers.add(session)
        reply = self._users_reply("registered")
        reply.update(username=name, key=key, credential=session.credential, protocol=p.PROTOCOL_VERSION)
        reply["server_id"] = self.instance
        reply["ring_timeout"] = self.limits.ring_timeout
        call = self.calls.get(key)
        if call is None and message.get("call") is not None:
            call = self._restore_call(key, message["call"])
        if call is not None:
            other = call.other(key)
            peer = self.display_name(other)
            reply["call"] = {"call_id": call.call_id, "peer": peer, "peer_key": other, "state": call.state}
        session.send(reply)
        if holder is not None and holder.away:
            for data in holder.outbox:  # what the partner sent while we were away, in order
                session.transport.send_bytes(data)
            if call is not None:
                self._tell_status(key, call, "connected")
        if joined:
            self.presence.changed(key, name, joined=True)

    def retire(self, holder: Session) -> None:
        """The name's holder gives way to a newer connection (the credential's): it is told
        ``replaced`` and closed, unless it is away; its calls stay with the name."""
        holder.replaced = True
        self.rooms.gone(holder, clean=False)  # the new connection starts outside any room
        self.presence.subscribers.discard(holder)
        if holder.grace_timer is not None:
            holder.grace_timer.cancel()
            holder.grace_timer = None
        if not holder.away:
            holder.send({"type": "replaced", "message": "this name was taken over by a newer connection"})
            holder.transport.close_now(p.CLOSE_REPLACED, "replaced by a newer connection")

    def _restore_call(self, key: str, announced: dict[str, str]) -> Call | None:
        """A call announced at registration (the server restarted mid-call) is restored once
        both of its sides have announced it; a one-sided claim restores nothing."""
        peer_key, call_id = name_key(announced["peer"]), announced["call_id"]
        if peer_key == key:
            return None
        if self.announced.get(peer_key) != (key, call_id) or peer_key in self.calls or peer_key not in self.users:
            self.announced[key] = (peer_key, call_id)
            return None
        del self.announced[peer_key]
        call = Call(call_id, peer_key, key, "active")
        self.calls[key] = self.calls[peer_key] = call
        self._tell_status(key, call, "connected")
        return call

    def _users_reply(self, kind: str) -> dict[str, Any]:
        listed = list(self.users.items())[: p.MAX_LISTED_USERS]
        return {
            "type": kind,
            "users": [s.name for _, s in listed],
            "keys": [key for key, _ in listed],
            "online": len(self.users),
        }

    def display_name(self, key: str) -> str:
        session = self.users.get(key) or self.remote_user(key)
        return session.name if session is not None and session.name else key

    # -- forwarding the seed's messages -----------------------------------------------

    def _forward(self, session: Session, message: dict[str, Any]) -> None:
        kind: str = message["type"]
        if message.get("room") is not None:  # a room's mesh link: only between its members
            return self.rooms.forward(session, message)
        sender = session.key
        assert sender is not None
        target_key = name_key(message["to"])
        target = self.users.get(target_key) or self.remote_user(target_key, kind)
        if target is None:
            raise p.ProtocolError(p.ErrorCode.UNKNOWN_PEER, f"'{message['to']}' is not online", kind)
        call = self.calls.get(sender)
        if call is None or call.other(sender) != target_key:
            # Offers, answers and candidates go only to the other side of your call (or
            # ringing invite): nobody else's call can be disturbed or flooded this way.
            if kind != "offer":
                raise p.ProtocolError(
                    p.ErrorCode.NO_CALL, f"you have no call with '{message['to']}'; {kind} goes only to it", kind
                )
            if not self._start_implicit_call(session, target, kind):
                return
        check_receivable(target, kind, self.limits)
        field_name = wire.PAYLOAD_FIELD[kind]
        out: dict[str, Any] = {"type": kind, "from": session.name, field_name: message.get(field_name)}
        call_id = message.get("call_id")
        if call_id is not None:
            out["call_id"] = call_id
        if target.nbcall:  # a seed client gets the seed's shape, byte for byte
            out["from_key"] = sender
        self.relayed += 1
        target.send(out)

    def _start_implicit_call(self, session: Session, target: Session, kind: str) -> bool:
        """A plain offer outside a call is the seed's way to call: track it as a call.

        Only to someone in no call (else the sender gets ``busy``); the sender's own earlier
        seed-style call ends (its other side is told).  False when nothing is to be forwarded.
        """
        caller, callee = session.key, target.key
        assert caller is not None and callee is not None
        if callee == caller:
            raise p.ProtocolError(p.ErrorCode.SELF_CALL, "you cannot call yourself", kind)
        mine = self.calls.get(caller)
        if mine is not None and not mine.implicit:
            raise p.ProtocolError(
                p.ErrorCode.BUSY,
                f"you are in a call with '{self.display_name(mine.other(caller))}'; hang up first",
                kind,
            )
        self.rooms.check_free(caller, kind)
        if callee in self.calls or self.rooms.engaged(callee):
            session.send({"type": "busy", "from": target.name, "from_key": callee})
            return False
        if mine is not None:
            self._end_call(caller, "hangup", session.name)
        call = Call(secrets.token_hex(6), caller, callee, "active", implicit=True)
        self.calls[caller] = self.calls[callee] = call
        return True

    # -- call control -----------------------------------------------------------------

    def _call_control(self, session: Session, message: dict[str, Any]) -> None:
        kind: str = message["type"]
        me = session.key
        assert me is not None
        other_key = name_key(message["to"])
        if kind == "invite":
            self._invite(session, other_key, message)
            return
        call = self.calls.get(me)
        if call is None or call.other(me) != other_key:
            raise p.ProtocolError(p.ErrorCode.NO_CALL, f"you have no call with '{message['to']}'", kind)
        if kind == "accept":
            if call.state != "ringing" or call.callee != me:
                raise p.ProtocolError(p.ErrorCode.NO_CALL, "there is no ringing call to accept", kind)
            call.state = "active"
            if call.timer is not None:
                call.timer.cancel()
                call.timer = None
            self._tell(other_key, {"type": "accept", "from": session.name, "from_key": me, "call_id": call.call_id})
            return
        if kind == "reject" and (call.state != "ringing" or call.callee != me):
            raise p.ProtocolError(p.ErrorCode.NO_CALL, "there is no ringing call to reject", kind)
        if kind == "cancel" and (call.state != "ringing" or call.caller != me):
            raise p.ProtocolError(p.ErrorCode.NO_CALL, "there is no outgoing ringing call to cancel", kind)
        default_reason = {"reject": "rejected", "cancel": "cancelled", "hangup": "hangup"}[kind]
        self.drop_call(call)
        self._tell(
            other_key,
            {
                "type": kind,
                "from": session.name,
                "from_key": me,
                "call_id": call.call_id,
                "reason": message.get("reason") or default_reason,
            },
        )

    def _invite(self, session: Session, callee_key: str, message: dict[str, Any]) -> None:
        me = session.key
        assert me is not None
        callee = self.users.get(callee_key) or self.remote_user(callee_key, "invite")
        if callee is None:
            raise p.ProtocolError(p.ErrorCode.UNKNOWN_PEER, f"'{message['to']}' is not online", "invite")
        if callee_key == me:
            raise p.ProtocolError(p.ErrorCode.SELF_CALL, "you cannot call yourself", "invite")
        mine = self.calls.get(me)
        if mine is not None and not mine.implicit:
            raise p.ProtocolError(
                p.ErrorCode.BUSY,
                f"you are already in a call with '{self.display_name(mine.other(me))}'; hang up first",
                "invite",
            )
        self.rooms.check_free(me, "invite")
        call_id = message.get("call_id") or secrets.token_hex(6)
        # In any call, a seed-style one too (nobody else may end it), or in a room.
        if callee_key in self.calls or self.rooms.engaged(callee_key):
            session.send({"type": "busy", "from": callee.name, "from_key": callee_key, "call_id": call_id})
            return
        if mine is not None:  # our own seed-style call ends: its other side is told
            self._end_call(me, "hangup", session.name)
        if not callee.nbcall and not callee.remote:  # (a remote callee's node decides this)
            # A seed client cannot ring: it answers any offer.  Accept on its behalf so
            # the caller goes straight to sending its offer, the seed's way.
            call = Call(call_id, me, callee_key, "active")
            self.calls[me] = self.calls[callee_key] = call
            accept = {"type": "accept", "from": callee.name, "from_key": callee_key, "call_id": call_id, "seed": True}
            session.send(accept)
            return
        call = Call(call_id, me, callee_key, "ringing")
        self.calls[me] = self.calls[callee_key] = call
        loop = asyncio.get_running_loop()
        call.timer = loop.call_later(self.limits.ring_timeout, self.ring_out, call)
        callee.send({"type": "invite", "from": session.name, "from_key": me, "call_id": call_id})
        if not callee.remote:  # else the callee's node answers: ringing, busy, or a seed's accept
            session.send({"type": "ringing", "from": callee.name, "from_key": callee_key, "call_id": call_id})

    def ring_out(self, call: Call) -> None:
        call.timer = None
        if self.calls.get(call.caller) is not call:
            return
        self.drop_call(call)
        # The caller hears a hang-up from the callee, the callee a cancel from the caller.
        for to, kind, other in ((call.caller, "hangup", call.callee), (call.callee, "cancel", call.caller)):
            message = {"type": kind, "from": self.display_name(other), "from_key": other, "call_id": call.call_id}
            self._tell(to, {**message, "reason": "timeout"})

    def _end_call(self, key: str, reason: str, name: str | None) -> None:
        call = self.calls.get(key)
        if call is None:
            return
        self.drop_call(call)
        other = call.other(key)
        message = {"type": "hangup", "from": name or key, "from_key": key, "call_id": call.call_id, "reason": reason}
        self._tell(other, message)

    def drop_call(self, call: Call) -> None:
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        for key in (call.caller, call.callee):
            if self.calls.get(key) is call:
                del self.calls[key]
        for key in (call.caller, call.callee):
            session = self.users.get(key)
            if session is not None and session.away:
                self.release(session)  # its name was held for this call only

    def _tell(self, key: str, message: dict[str, Any]) -> None:
        session = self.users.get(key) or self.remote_user(key)
        if session is not None:
            session.send(message)
