"""What the server knows about one room (docs/rooms.md): plain data and the shapes it sends.

:class:`Room` holds its members (in the order they joined), the users whose join waits for
the SFU, the invitations ringing, and its Janus room once it moved there.  The rules that
change it are :mod:`.rooms`; the Janus side is :mod:`.room_sfu`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from ..sfu import VideoRoom
from .bucket import TokenBucket
from .session import Session

log = logging.getLogger("nbcall.server")

Job = Callable[[], Coroutine[Any, Any, None]]


@dataclass(eq=False)
class Member:
    """One user in a room (or waiting to be: its join needs the SFU first)."""

    session: Session
    key: str
    name: str
    chat: TokenBucket  # its room_chat lines
    state: TokenBucket  # its room_state messages
    audio: bool = True
    video: bool = True
    sfu_id: str | None = None  # its Janus publisher id, once the room is on the SFU
    token: str | None = None  # its entry in the Janus room's ``allowed`` list
    sfu_seen: bool = False  # Janus lists a participant with ``sfu_id``: the id is taken, by its owner

    @property
    def public_sfu_id(self) -> str | None:
        """The publisher id the other members may know: only once it is in use in Janus.

        Told earlier, another member could join Janus under it first and be shown as this one.
        """
        return self.sfu_id if self.sfu_seen else None

    def describe(self, *, offer: bool) -> dict[str, Any]:
        """This member as ``room_joined.members[i]`` (``offer``: the receiver offers to it)."""
        return {"name": self.name, "key": self.key, "audio": self.audio, "video": self.video, "offer": offer,
                "sfu_id": self.public_sfu_id}  # fmt: skip


@dataclass(eq=False)
class Invitation:
    """``key`` is being rung to join a room by ``by`` (a display name) until ``timer`` fires."""

    session: Session
    key: str
    name: str
    by: str
    timer: asyncio.TimerHandle | None = None


class Serial:
    """A room's Janus work, one job at a time in the order asked: joins that need the SFU,
    and a leaver's token and publisher removed, never overtake one another."""

    def __init__(self) -> None:
        self._jobs: deque[Job] = deque()
        self._task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """A job runs or waits: a join now must wait behind it to keep the order."""
        return self._task is not None

    def add(self, job: Job) -> None:
        self._jobs.append(job)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._jobs:
                job = self._jobs.popleft()
                try:
                    await job()
                except Exception:  # one failed job must not stall the room's later ones
                    log.exception("a room's SFU job failed")
        finally:
            self._task = None

    def cancel(self) -> asyncio.Task[None] | None:
        """Stop at once (the server stops); returns the task to await, if any."""
        self._jobs.clear()
        task = self._task
        if task is not None:
            task.cancel()
        return task


@dataclass(eq=False)
class Room:
    """One room: created by its first join, gone when its last member leaves."""

    key: str  # names.name_key of its name: look-alike names are one room
    name: str  # the display name its first member gave
    access: str  # "open" | "invite"
    password: str | None
    members: dict[str, Member] = field(default_factory=dict)  # key -> member, in joining order
    joining: dict[str, Member] = field(default_factory=dict)  # joins waiting for the SFU
    ringing: dict[str, Invitation] = field(default_factory=dict)
    topology: str = "mesh"
    janus: VideoRoom | None = None
    work: Serial = field(default_factory=Serial)
    # key -> until when (monotonic) a member whose connection dropped may join again uninvited:
    # its page reconnects and rejoins, and an invite-only room must not lock it out.
    returning: dict[str, float] = field(default_factory=dict)

    def let_back(self, key: str, now: float, grace: float, most: int) -> None:
        """``key`` dropped: it may come back for ``grace`` seconds (at most ``most`` such at once)."""
        for gone in [k for k, t in self.returning.items() if t <= now]:
            del self.returning[gone]
        if len(self.returning) < most:
            self.returning[key] = now + grace

    def may_return(self, key: str, now: float) -> bool:
        return self.returning.get(key, 0.0) > now

    @property
    def size(self) -> int:
        """Members and those whose join is under way: what ``max_members`` bounds."""
        return len(self.members) + len(self.joining)

    def tell(self, message: dict[str, Any], *, but: str | None = None) -> None:
        """Send ``message`` to every member except ``but``."""
        for key, member in self.members.items():
            if key != but:
                member.session.send(message)

    def fan_out(self, message: dict[str, Any], sender: str, backlog: int) -> None:
        """What member ``sender`` says to the room; a member with more than ``backlog`` bytes
        unread misses it (what someone else sends never puts its connection at risk)."""
        for key, member in self.members.items():
            if key != sender and member.session.transport.unsent_bytes() <= backlog:
                member.session.send(message)

    def about(self, kind: str, member: Member | Invitation, **fields: Any) -> dict[str, Any]:
        """A message of type ``kind`` about ``member`` (``from``/``from_key``) in this room."""
        return {"type": kind, "room": self.name, "from": member.name, "from_key": member.key, **fields}
