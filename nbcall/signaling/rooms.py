"""Rooms on the signaling server: who may join, who offers to whom, when a room moves to the SFU.

``docs/rooms.md`` is the contract.  :class:`Rooms` is the hub's rule book for the ``room_*``
requests and for offers, answers and candidates that carry ``room``; the hub calls it at a
few points (dispatch, forwarding, disconnects, and the busy checks of 1:1 calls).  A user
is in at most one call or room: a member is ``busy`` for 1:1 calls, and a user in a 1:1 call
is ``busy`` for rooms.

Joins and leaves change the room at once, except a join that needs Janus (the move to the
SFU, or a token in a room already there): it waits in the room's :class:`~.room_model.Serial`
with every later join, so they happen in the order they were asked for.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

from . import protocol as p
from . import wire
from .bucket import TokenBucket
from .names import name_key
from .room_from_call import invite_from_call
from .room_model import Invitation, Member, Room
from .room_sfu import RoomSfu
from .session import Session, check_receivable

if TYPE_CHECKING:
    from ..sfu import SfuConfig
    from .hub import Hub

NO_SFU = (
    "an SFU for more: start the server with one (nbcall.serve(sfu='local'), NBCALL_SFU=local, "
    "or nbcall-server --sfu local; see docs/rooms.md)"
)


class Rooms:
    """Every room of one hub, and the rules of docs/rooms.md."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.limits = hub.limits
        self.rooms: dict[str, Room] = {}  # room key -> room
        self.where: dict[str, Room] = {}  # user key -> the room it is in, or joining
        self.rung: dict[str, Room] = {}  # user key -> the room ringing it (one at a time)
        # user key -> its room_chat and room_state buckets: kept across rooms, so leaving and
        # joining again does not refill them
        self.buckets: dict[str, tuple[TokenBucket, TokenBucket]] = {}
        self.sfu: RoomSfu | None = None
        self.refusal: str | None = None  # why rooms are refused here (a cluster node), if they are

    def use_sfu(self, config: SfuConfig | None) -> None:
        """Move rooms past the mesh limit to this Janus (None: refuse them with ``room_full``)."""
        self.sfu = RoomSfu(config) if config is not None else None

    # -- what the hub asks ----------------------------------------------------------------

    def engaged(self, key: str) -> bool:
        """In a room, joining one, or rung to join one: ``busy`` for anyone's call."""
        return key in self.where or key in self.rung

    def check_free(self, key: str, kind: str) -> None:
        """``key`` starts a 1:1 call: refused (``busy``) in a room; a ringing invitation ends."""
        room = self.where.get(key)
        if room is not None:
            raise p.ProtocolError(p.ErrorCode.BUSY, f"you are in room '{room.name}'; leave it first", kind)
        self._end_ringing(key, "busy")

    def gone(self, session: Session, *, clean: bool) -> None:
        """``session``'s user is gone (closed: ``clean``; else dropped): its room is told at once."""
        key = session.key
        if key is None:
            return
        self.buckets.pop(key, None)
        room = self.where.get(key)
        if room is not None:
            member = room.members.get(key) or room.joining.get(key)
            if member is not None and member.session is session:
                self._remove(room, key, "closed" if clean else "disconnected")
                if not clean:  # its page comes back and joins again: for the call's grace, uninvited
                    room.let_back(key, self.hub.clock(), self.limits.reconnect_grace, self.limits.room_max_members)
        rung = self.rung.get(key)
        if rung is not None and rung.ringing[key].session is session:
            self._decline(rung, rung.ringing[key], "left")

    def forward(self, session: Session, message: dict[str, Any]) -> None:
        """An offer, answer or candidate of a mesh link: only to another member of the sender's room."""
        kind: str = message["type"]
        sender = session.key
        assert sender is not None
        room = self.where.get(sender)
        target_key = name_key(message["to"])
        if (
            room is None
            or room.key != name_key(message["room"])
            or sender not in room.members
            or target_key not in room.members
            or target_key == sender
        ):
            raise p.ProtocolError(
                p.ErrorCode.NO_CALL,
                f"'{message['to']}' is not in room '{message['room']}' with you; {kind} goes only to it",
                kind,
            )
        target = room.members[target_key].session
        check_receivable(target, kind, self.limits)
        field_name = wire.PAYLOAD_FIELD[kind]
        out: dict[str, Any] = {"type": kind, "from": session.name, field_name: message.get(field_name)}
        if message.get("call_id") is not None:
            out["call_id"] = message["call_id"]
        out["room"], out["from_key"] = room.name, sender
        self.hub.relayed += 1
        target.send(out)

    def receive(self, session: Session, message: dict[str, Any]) -> None:
        """One ``room_*`` request from a registered user."""
        kind: str = message["type"]
        if self.refusal is not None:
            raise p.ProtocolError(p.ErrorCode.ROOMS_UNAVAILABLE, self.refusal, kind)
        handler = {
            "room_join": self._join,
            "room_leave": self._leave,
            "room_invite": self._invite,
            "room_decline": self._decline_request,
            "room_state": self._state,
            "room_chat": self._chat,
        }[kind]
        handler(session, message)

    async def aclose(self) -> None:
        """The server stops: the rooms' pending work stops, their Janus rooms are destroyed."""
        tasks = [task for room in self.rooms.values() if (task := room.work.cancel()) is not None]
        for room in self.rooms.values():
            for invitation in room.ringing.values():
                if invitation.timer is not None:
                    invitation.timer.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.sfu is not None:
            await self.sfu.aclose()

    # -- join and leave -------------------------------------------------------------------

    def _join(self, session: Session, message: dict[str, Any]) -> None:
        key, kind = session.key, "room_join"
        assert key is not None
        if key in self.hub.calls:
            raise p.ProtocolError(p.ErrorCode.BUSY, "you are in a call; hang up first", kind)
        current = self.where.get(key)
        if current is not None:
            raise p.ProtocolError(p.ErrorCode.BUSY, f"you are already in room '{current.name}'; leave it first", kind)
        room_key = name_key(message["room"])
        room = self.rooms.get(room_key)
        if room is None:
            if len(self.rooms) >= self.limits.max_rooms:
                raise p.ProtocolError(p.ErrorCode.ROOM_FULL, f"this server has {len(self.rooms)} rooms, its most", kind)
            room = self.rooms[room_key] = Room(room_key, message["room"], message["access"], message["password"])
        else:
            self._check_entry(room, key, message.get("password"))
        self._end_ringing(key, "busy", but=room)
        invitation = room.ringing.pop(key, None)
        if invitation is not None:
            self._stop_ringing(room, invitation)
        member = self.member(session)
        self.where[key] = room
        if not room.work.busy and room.topology == "mesh" and len(room.members) < self.limits.room_mesh_limit:
            self._add(room, member)
        else:  # Janus first: after whatever the room is doing now
            room.joining[key] = member
            room.work.add(lambda: self._join_later(room, member))

    def _check_entry(self, room: Room, key: str, password: str | None) -> None:
        kind = "room_join"
        # An invitation opens an invite-only or password room; so does having dropped out of it lately.
        if key not in room.ringing and not room.may_return(key, self.hub.clock()):
            if room.access == "invite":
                raise p.ProtocolError(
                    p.ErrorCode.NOT_INVITED, f"room '{room.name}' is invite-only: ask a member to invite you", kind
                )
            given = (password or "").encode()
            if room.password is not None and not secrets.compare_digest(given, room.password.encode()):
                raise p.ProtocolError(
                    p.ErrorCode.NOT_INVITED, f"wrong or missing password for room '{room.name}'", kind
                )
        if room.size >= self.limits.room_max_members:
            raise p.ProtocolError(p.ErrorCode.ROOM_FULL, f"room '{room.name}' is full ({room.size} members)", kind)
        if self.sfu is None and room.topology == "mesh" and len(room.members) >= self.limits.room_mesh_limit:
            raise p.ProtocolError(
                p.ErrorCode.ROOM_FULL,
                f"room '{room.name}' has {len(room.members)} members, the most a mesh carries, "
                f"and it needs {NO_SFU}",
                kind,
            )

    async def _join_later(self, room: Room, member: Member) -> None:
        """A join that needs Janus: the room moves to the SFU, or the member gets a token there."""
        if room.joining.get(member.key) is not member:
            return  # it left, or its connection ended, while it waited
        limits = self.limits
        if room.topology == "mesh" and len(room.members) < limits.room_mesh_limit:
            del room.joining[member.key]
            self._add(room, member)  # members left while it waited: the mesh has room again
            return
        if self.sfu is None:  # (a join waits only with an SFU; kept safe all the same)
            self._refuse(room, member, p.ErrorCode.ROOM_FULL, f"room '{room.name}' needs {NO_SFU}")
            return
        if room.topology == "mesh":
            ok = await self.sfu.open(room, [*room.members.values(), member], limits.room_max_members)
            if ok:
                self._moved(room)
        else:
            ok = await self.sfu.allow(room, member)
        if room.joining.get(member.key) is not member:  # it left while Janus worked
            if ok:
                await self.sfu.release(room, member)
            return
        if not ok:
            message = f"room '{room.name}' needs the SFU and it did not answer; the room goes on without you"
            self._refuse(room, member, p.ErrorCode.SFU_UNAVAILABLE, message)
            return
        del room.joining[member.key]
        self._add(room, member)

    def _moved(self, room: Room) -> None:
        assert self.sfu is not None
        room.topology = "sfu"
        self.sfu.announce(room)
        self.sfu.watch(room)

    def member(self, session: Session) -> Member:
        """``session``'s user as a member; its chat and state buckets are kept across rooms."""
        key, name = session.key, session.name
        assert key is not None and name is not None
        limits, clock = self.limits, self.hub.clock
        buckets = self.buckets.get(key) or (
            TokenBucket(limits.room_chat_rate, limits.room_chat_burst, clock),
            TokenBucket(limits.room_state_rate, limits.room_state_burst, clock),
        )
        self.buckets[key] = buckets
        return Member(session, key, name, *buckets)

    def _add(self, room: Room, member: Member) -> None:
        """``member`` is in: it is told the room, the others are told about it."""
        others = [m.describe(offer=room.topology == "mesh") for m in room.members.values()]  # the newcomer offers
        room.members[member.key] = member
        self.joined(room, member, others)
        joined = room.about("member_joined", member, audio=member.audio, video=member.video, offer=False,
                            sfu_id=member.public_sfu_id)  # fmt: skip
        room.tell(joined, but=member.key)
        if room.topology == "sfu" and self.sfu is not None:
            self.sfu.watch(room)

    def joined(self, room: Room, member: Member, others: list[dict[str, Any]], **extra: Any) -> None:
        """Tell ``member`` it is in ``room`` with ``others`` (``room_joined``; ``extra``: more fields)."""
        sfu = self.sfu.access(room, member) if room.topology == "sfu" and self.sfu is not None else None
        member.session.send({
            "type": "room_joined", "room": room.name, "room_key": room.key, "topology": room.topology,
            "members": others, "ringing": [{"name": i.name, "key": i.key} for i in room.ringing.values()],
            "mesh_limit": self.limits.room_mesh_limit, "max_members": self.limits.room_max_members, "sfu": sfu,
            **extra,
        })  # fmt: skip

    def _refuse(self, room: Room, member: Member, code: str, message: str) -> None:
        room.joining.pop(member.key, None)
        if self.where.get(member.key) is room:
            del self.where[member.key]
        self.hub.errors[code] = self.hub.errors.get(code, 0) + 1
        member.session.send(p.error(code, message, "room_join"))
        self._drop_if_empty(room)

    def _leave(self, session: Session, message: dict[str, Any]) -> None:
        room = self._room_of(session, message, joining=True)
        assert session.key is not None
        self._remove(room, session.key, "left")
        session.send({"type": "room_left", "room": room.name, "reason": "left"})

    def _remove(self, room: Room, key: str, reason: str) -> None:
        del self.where[key]
        room.returning.pop(key, None)  # (a drop lets it back in afterwards: gone())
        member = room.members.pop(key, None)
        if member is None:
            room.joining.pop(key, None)  # a join still waiting: its job finds it gone
        else:
            room.tell(room.about("member_left", member, reason=reason))
            if member.token is not None and self.sfu is not None:
                sfu = self.sfu
                room.work.add(lambda: sfu.release(room, member))
        self._drop_if_empty(room)

    def _drop_if_empty(self, room: Room) -> None:
        if room.size or self.rooms.get(room.key) is not room:
            return
        del self.rooms[room.key]
        for invitation in list(room.ringing.values()):
            self._decline(room, invitation, "left")
        if self.sfu is not None and (room.janus is not None or room.work.busy):
            sfu = self.sfu
            room.work.add(lambda: sfu.destroy(room))  # after any join still talking to Janus

    # -- invitations ----------------------------------------------------------------------

    def _invite(self, session: Session, message: dict[str, Any]) -> None:
        if message["room"] is None:  # no room named: the sender's connected 1:1 call becomes one
            return invite_from_call(self, session, message)
        room = self._room_of(session, message)
        target = self.invitee(session, message, room)
        if room.size >= self.limits.room_max_members:
            full = f"room '{room.name}' is full ({room.size} members)"
            raise p.ProtocolError(p.ErrorCode.ROOM_FULL, full, "room_invite")
        self.ring(room, session, target)

    def invitee(self, session: Session, message: dict[str, Any], room: Room | None) -> Session:
        """Whom ``message`` invites, if it may be rung into ``room`` (None: a room still to be made)."""
        kind, target_key = "room_invite", name_key(message["to"])
        target = self.hub.users.get(target_key)
        if target is None or target.key is None or target.name is None:
            raise p.ProtocolError(p.ErrorCode.UNKNOWN_PEER, f"'{message['to']}' is not online", kind)
        if target_key == session.key:
            raise p.ProtocolError(p.ErrorCode.SELF_CALL, "you cannot invite yourself", kind)
        elsewhere = self.where.get(target_key) or self.rung.get(target_key)
        if target_key in self.hub.calls or (elsewhere is not None and elsewhere is not room):
            raise p.ProtocolError(p.ErrorCode.BUSY, f"'{target.name}' is in another call or room", kind)
        if target_key in self.where:
            raise p.ProtocolError(p.ErrorCode.BUSY, f"'{target.name}' is in this room already", kind)
        return target

    def ring(self, room: Room, session: Session, target: Session) -> None:
        """``session`` invites ``target`` (checked by :meth:`invitee`) into ``room``: it rings there."""
        assert session.name is not None and target.key is not None and target.name is not None
        earlier = room.ringing.get(target.key)
        if earlier is not None:  # invited again: it rings anew
            self._stop_ringing(room, earlier)
        elif len(room.ringing) >= self.limits.room_max_ringing:
            message = f"{len(room.ringing)} invitations ring in this room"
            raise p.ProtocolError(p.ErrorCode.ROOM_FULL, message, "room_invite")
        invitation = Invitation(target, target.key, target.name, session.name)
        room.ringing[target.key] = invitation
        self.rung[target.key] = room
        loop = asyncio.get_running_loop()
        invitation.timer = loop.call_later(self.limits.ring_timeout, self._ring_out, room, invitation)
        target.send({"type": "room_invite", "room": room.name, "from": session.name, "from_key": session.key,
                     "members": len(room.members)})  # fmt: skip
        room.tell(room.about("member_ringing", invitation, by=session.name))

    def _ring_out(self, room: Room, invitation: Invitation) -> None:
        invitation.timer = None
        if room.ringing.get(invitation.key) is invitation:
            self._decline(room, invitation, "timeout")

    def _decline_request(self, session: Session, message: dict[str, Any]) -> None:
        room = self.rooms.get(name_key(message["room"]))
        invitation = room.ringing.get(session.key or "") if room is not None else None
        if room is None or invitation is None:
            raise p.ProtocolError(
                p.ErrorCode.NOT_INVITED, f"you have no invitation to room '{message['room']}'", "room_decline"
            )
        self._decline(room, invitation, "rejected")

    def _decline(self, room: Room, invitation: Invitation, reason: str) -> None:
        """The invitation ends: the members and the invitee (whose ringing stops) are told why."""
        self._stop_ringing(room, invitation)
        message = room.about("member_declined", invitation, reason=reason)
        room.tell(message)
        invitation.session.send(message)

    def _stop_ringing(self, room: Room, invitation: Invitation) -> None:
        if room.ringing.get(invitation.key) is invitation:
            del room.ringing[invitation.key]
        if self.rung.get(invitation.key) is room:
            del self.rung[invitation.key]
        if invitation.timer is not None:
            invitation.timer.cancel()
            invitation.timer = None

    def _end_ringing(self, key: str, reason: str, *, but: Room | None = None) -> None:
        room = self.rung.get(key)
        if room is not None and room is not but:
            self._decline(room, room.ringing[key], reason)

    # -- in the room: state and chat --------------------------------------------------------

    def _state(self, session: Session, message: dict[str, Any]) -> None:
        room = self._room_of(session, message)
        member = room.members[session.key or ""]
        if not member.state.take():
            return  # a flood of toggles: the latest that got through stands
        member.audio, member.video = message["audio"], message["video"]
        message = room.about("member_state", member, audio=member.audio, video=member.video)
        room.fan_out(message, member.key, self.limits.max_forward_backlog)

    def _chat(self, session: Session, message: dict[str, Any]) -> None:
        room = self._room_of(session, message)
        member = room.members[session.key or ""]
        if not member.chat.take():
            if member.chat.warn():
                rate = f"{self.limits.room_chat_rate:g}"
                session.send(p.error(p.ErrorCode.RATE_LIMITED, f"more than {rate} chat lines a second", "room_chat"))
            return
        room.fan_out(room.about("room_chat", member, text=message["text"]), member.key, self.limits.max_forward_backlog)

    def _room_of(self, session: Session, message: dict[str, Any], *, joining: bool = False) -> Room:
        """The room named in ``message``, which the sender must be in (or joining)."""
        key = session.key or ""
        room = self.where.get(key)
        if room is None or room.key != name_key(message["room"]) or (key not in room.members and not joining):
            raise p.ProtocolError(p.ErrorCode.NOT_IN_ROOM, f"you are not in room '{message['room']}'", message["type"])
        return room
