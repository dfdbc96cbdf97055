"""Every node's copy of who is online in the whole cluster, and the batches that keep it current.

Redis's ``users`` hash is the truth (who holds a name is decided there, atomically); this
copy answers the questions the hub asks synchronously (is ``bob`` online, on which node,
a seed client?) and lists users.  A node sends its own joins and leaves to the others at
most once per ``REPLICATION_INTERVAL`` (one message for a thousand joins), and reads the
whole hash when Redis comes back, so a lost batch is repaired.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import NamedTuple

import orjson


class Entry(NamedTuple):
    name: str  # display name
    node: str
    nbcall: bool  # registered with ``client``: understands the extensions


Change = tuple[str, str]  # (key, display name)


class Directory:
    def __init__(self, node: str, interval: float, send: Callable[[bytes], bool]) -> None:
        self.node = node
        self.interval = interval
        self.entries: dict[str, Entry] = {}
        self._send = send
        self._set: dict[str, Entry] = {}
        self._del: dict[str, None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._reaped = False  # the others dropped all our users: no leaves to keep for them

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    # -- this node's users ---------------------------------------------------------------

    def local_set(self, key: str, name: str, nbcall: bool) -> None:
        self.entries[key] = self._set[key] = Entry(name, self.node, nbcall)
        self._del.pop(key, None)
        self._schedule()

    def local_del(self, key: str) -> None:
        self.entries.pop(key, None)
        self._set.pop(key, None)
        if not self._reaped:  # (else bounded by nothing: every name that left while cut off)
            self._del[key] = None
        self._schedule()

    def rejoined(self) -> None:
        """Redis is back and this node's users are published: send what was kept."""
        self._reaped = False
        self.flush()

    def moved_away(self, key: str, node: str) -> None:
        """A user of this node's now on ``node`` (a takeover): no longer announced from here."""
        entry = self.entries.get(key)
        if entry is not None:
            self.entries[key] = entry._replace(node=node)
        self._set.pop(key, None)
        self._del.pop(key, None)

    def _schedule(self) -> None:
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.interval, self.flush)

    def flush(self) -> None:
        self._handle = None
        if not (self._set or self._del):
            return
        batch: dict[str, object] = {"t": "d", "node": self.node}
        batch["set"] = [[k, *e[0:1], e[2]] for k, e in self._set.items()]
        batch["del"] = list(self._del)
        if self._send(orjson.dumps(batch)):  # else kept (Redis is away) and sent once it is back
            self._set, self._del = {}, {}

    # -- the other nodes' ----------------------------------------------------------------

    def apply(self, node: str, added: list[list[object]], removed: list[str]) -> tuple[list[Change], list[Change]]:
        """A batch from ``node``: returns who joined and who left, as far as this copy knew."""
        joined: list[Change] = []
        left: list[Change] = []
        for key, name, nbcall in added:
            assert isinstance(key, str) and isinstance(name, str)
            if key not in self.entries:
                joined.append((key, name))
            self.entries[key] = Entry(name, node, bool(nbcall))
        for key in removed:
            entry = self.entries.get(key)
            if entry is not None and entry.node == node:  # not if it moved on meanwhile
                del self.entries[key]
                left.append((key, entry.name))
        return joined, left

    def drop_node(self, node: str) -> list[Change]:
        gone = [(k, e.name) for k, e in self.entries.items() if e.node == node]
        for key, _ in gone:
            del self.entries[key]
        return gone

    def drop_remote(self) -> list[Change]:
        """Forget every other node's users (this node is cut off from the cluster, and the
        others have reaped it: the leaves kept for them are moot)."""
        self._del.clear()
        self._reaped = True
        gone = [(k, e.name) for k, e in self.entries.items() if e.node != self.node]
        for key, _ in gone:
            del self.entries[key]
        return gone

    def replace_remote(self, raw: dict[bytes, bytes]) -> tuple[list[Change], list[Change]]:
        """Everyone else, as Redis lists them now (this node's own users are kept as they are)."""
        fresh: dict[str, Entry] = {}
        for key_bytes, value in raw.items():
            data = orjson.loads(value)
            if data["node"] != self.node:
                fresh[key_bytes.decode()] = Entry(data["n"], data["node"], bool(data["c"]))
        left = [(k, e.name) for k, e in self.entries.items() if e.node != self.node and k not in fresh]
        joined = [(k, e.name) for k, e in fresh.items() if k not in self.entries]
        for key, _ in left:
            del self.entries[key]
        for key, entry in fresh.items():
            if self.entries.get(key, entry).node != self.node:
                self.entries[key] = entry
        return joined, left
