"""The signaling server's side of the SFU: one Janus VideoRoom per room that outgrew its mesh.

The server decides everything a member could abuse (docs/rooms.md): it creates the Janus
room (private, with a PIN and an ``allowed`` list, so Janus checks a token at every join),
picks each member's publisher id and token, tells an id to the other members only once it
is in use in Janus (so nobody can take it first), removes a leaver's token and kicks its
publisher, and destroys the Janus room when the room empties.  :class:`~..sfu.RoomAdmin`'s
calls are blocking HTTP: they run in a thread, never on the event loop, and a room's
calls are kept in order by its :class:`~.room_model.Serial`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from ..sfu import JanusError, RoomAdmin, SfuConfig, VideoRoom
from .room_model import Member, Room

log = logging.getLogger("nbcall.server")

# What a Janus that is down, refuses, or answers nonsense raises through RoomAdmin.
FAILURES = (OSError, JanusError, ValueError, KeyError, TypeError)
CLOSE_TIMEOUT = 2.0  # seconds the server's stop waits to destroy its Janus rooms
SEEN_POLL = 0.2  # seconds between Janus's participant lists while an id is not in use yet...
SEEN_POLL_MAX = 2.0  # ...growing to this while nobody new comes into use


class RoomSfu:
    """One Janus, used by one signaling server for all its rooms."""

    def __init__(self, config: SfuConfig) -> None:
        config.check()
        self.config = config
        self.admin = RoomAdmin(config.admin_url, config.admin_key, timeout=config.timeout)
        self.rooms: set[VideoRoom] = set()  # created here and not destroyed yet
        self.watches: dict[Room, asyncio.Task[None]] = {}  # at most one per room on the SFU

    def access(self, room: Room, member: Member) -> dict[str, Any]:
        """``sfu`` for ``member``: where to connect and what to join with."""
        assert room.janus is not None
        return {"url": self.config.public_url, "room": room.janus.name, "token": member.token,
                "pin": room.janus.pin, "id": member.sfu_id}  # fmt: skip

    @staticmethod
    def enrol(member: Member) -> None:
        """Give ``member`` a fresh token and publisher id."""
        # Random, not derived from names: a page cannot guess another member's token, and a
        # publisher id says nothing about who it is until the server maps it.
        member.token = secrets.token_urlsafe(18)
        member.sfu_id = secrets.token_hex(8)
        member.sfu_seen = False

    def announce(self, room: Room) -> None:
        """``room_topology`` to every member: where the SFU is, and the others' publisher ids in use so far."""
        for key, member in room.members.items():
            others = [m.describe(offer=False) for k, m in room.members.items() if k != key]
            member.session.send({"type": "room_topology", "room": room.name, "topology": "sfu",
                                 "sfu": self.access(room, member), "members": others})  # fmt: skip

    def watch(self, room: Room) -> None:
        """Ask Janus who is in ``room`` while a member's publisher id is not in use there yet,
        and :meth:`announce` each time some are: only then may the others know them.  The
        asking slows from every 0.2 s to every 2 s (a member may take its time to open its
        camera), and ends when every id is in use, or the room empties or leaves the SFU."""
        running = self.watches.get(room)
        if running is not None and not running.done():
            return
        self.watches[room] = asyncio.get_running_loop().create_task(self._watch(room))

    async def _watch(self, room: Room) -> None:
        pause, warned = SEEN_POLL, False
        try:
            while (janus := room.janus) is not None and janus in self.rooms:
                waiting = [m for m in room.members.values() if m.sfu_id is not None and not m.sfu_seen]
                if not waiting:
                    return
                try:
                    listed = await asyncio.to_thread(self.admin.participants, janus)
                    present = {str(p.get("id")) for p in listed if isinstance(p, dict)}
                except FAILURES as exc:
                    if not warned:  # once per watch: Janus may be down for a while
                        log.warning("could not list the SFU's participants of room '%s': %s", room.name, exc)
                    warned, present = True, set()
                seen = [m for m in waiting if m.sfu_id in present and room.members.get(m.key) is m]
                for member in seen:
                    member.sfu_seen = True
                if seen:
                    self.announce(room)
                    pause = SEEN_POLL  # others may be about to come too
                else:
                    pause = min(SEEN_POLL_MAX, pause * 1.5)
                await asyncio.sleep(pause)
        finally:
            if self.watches.get(room) is asyncio.current_task():
                del self.watches[room]

    async def open(self, room: Room, members: list[Member], publishers: int) -> bool:
        """Create the Janus room for ``room`` with a token and an id for each of ``members``.

        The Janus room's id is random (not the room's name): a room that empties and is made
        again never collides with its predecessor's Janus room still being destroyed.
        """
        for member in members:
            self.enrol(member)
        tokens = [m.token for m in members if m.token is not None]
        name = secrets.token_hex(8)
        try:
            room.janus = await asyncio.to_thread(self.admin.create, name, publishers, allowed=tokens)
        except FAILURES as exc:
            log.warning("room '%s' could not move to the SFU at %s: %s", room.name, self.config.admin_url, exc)
            for member in members:
                member.token = member.sfu_id = None
            return False
        self.rooms.add(room.janus)
        return True

    async def allow(self, room: Room, member: Member) -> bool:
        """Give ``member`` a token and an id in the room's Janus room."""
        assert room.janus is not None
        self.enrol(member)
        assert member.token is not None
        try:
            await asyncio.to_thread(self.admin.allow, room.janus, [member.token])
        except FAILURES as exc:
            log.warning("the SFU refused a token for room '%s': %s", room.name, exc)
            member.token = member.sfu_id = None
            return False
        return True

    async def release(self, room: Room, member: Member) -> None:
        """``member`` left: its token no longer opens the Janus room, and its publisher is kicked."""
        janus, token, sfu_id = room.janus, member.token, member.sfu_id
        if janus is None or janus not in self.rooms or token is None or sfu_id is None:
            return
        try:
            await asyncio.to_thread(self.admin.disallow, janus, [token])
            await asyncio.to_thread(self.admin.kick, janus, sfu_id)
        except FAILURES as exc:
            log.warning("could not remove a member of room '%s' from the SFU: %s", room.name, exc)

    async def destroy(self, room: Room) -> None:
        """The room emptied: its Janus room goes too."""
        janus, room.janus = room.janus, None
        if janus is None or janus not in self.rooms:
            return
        self.rooms.discard(janus)
        try:
            await asyncio.to_thread(self.admin.destroy, janus)
        except FAILURES as exc:
            log.warning("could not destroy the SFU room of '%s': %s", room.name, exc)

    async def aclose(self) -> None:
        """Destroy every Janus room still open (the server stops), waiting at most a moment."""
        rooms, self.rooms = list(self.rooms), set()
        watches, self.watches = list(self.watches.values()), {}
        for task in watches:
            task.cancel()
        await asyncio.gather(*watches, return_exceptions=True)
        if not rooms:
            return
        calls = [asyncio.to_thread(self.admin.destroy, janus) for janus in rooms]
        try:
            await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:  # (not the builtin's alias before 3.11)
            log.warning("the SFU did not destroy %d rooms within %s s", len(rooms), CLOSE_TIMEOUT)
