"""Who joined and who left, batched: one ``presence`` message per subscriber per interval.

A thousand users joining within a quarter second cost each subscriber one message, not a
thousand; the last event per user wins and never cancels out, so a client that saw a user
in its ``registered`` snapshot between a join and a leave still hears the leave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from . import protocol as p
from .session import Session


class Presence:
    """The subscribers and the pending batch of one hub."""

    def __init__(self, interval: float, online: Callable[[], int]) -> None:
        self.interval = interval
        self.subscribers: set[Session] = set()
        self._online = online
        self._joined: dict[str, str] = {}  # key -> display name
        self._left: dict[str, str] = {}
        self._flush_handle: asyncio.TimerHandle | None = None

    def changed(self, key: str, name: str, *, joined: bool) -> None:
        """Note a join or a leave; it is sent with the next batch."""
        if joined:
            self._left.pop(key, None)
            self._joined[key] = name
        else:
            self._joined.pop(key, None)
            self._left[key] = name
        if self._flush_handle is None and self.subscribers:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.interval, self.flush)

    def flush(self) -> None:
        """Send the batched joins and leaves to every subscriber."""
        self._flush_handle = None
        joined, left = self._joined, self._left
        self._joined, self._left = {}, {}
        if not (joined or left):
            return
        update: dict[str, Any] = {"type": "presence", "online": self._online()}
        if len(joined) + len(left) > p.MAX_LISTED_USERS:
            update["truncated"] = True  # too many changes to list: ask with 'list'
        else:
            update["joined"] = list(joined.values())
            update["joined_keys"] = list(joined)
            update["left"] = list(left.values())
            update["left_keys"] = list(left)
        data = orjson.dumps(update)
        for subscriber in list(self.subscribers):
            subscriber.transport.send_bytes(data)
