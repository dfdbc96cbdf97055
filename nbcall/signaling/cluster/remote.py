"""Users on other nodes, as the local hub sees them, and the envelope that carries a message there.

An envelope is ``[kind, to, from, from name, from node, from nbcall, call id]`` as JSON, a
newline, then the message exactly as the receiver gets it (JSON never contains a raw
newline, so the first one ends the header).  Envelopes for one node that wait back to back
are published as one payload, joined by newlines: header, message, header, message...
The sender's node fills in the header from its own state: a client never writes any of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..session import Session

if TYPE_CHECKING:
    from .hub import ClusterHub


class NullTransport:
    """The transport of a stand-in: there is no socket here."""

    def send_bytes(self, data: bytes) -> bool:
        return False

    def close_now(self, code: int, reason: str) -> None:
        pass

    def unsent_bytes(self) -> int:
        return 0  # the receiver's own node checks its backlog (session.check_receivable)


NULL_TRANSPORT = NullTransport()


@dataclass(eq=False)
class RemoteSession(Session):
    """A user connected to ``node``; what the hub sends it is published to that node.

    ``node`` is empty for the holder a takeover replaces (the old node already told and
    closed that socket): what is sent to it goes nowhere.
    """

    node: str = ""
    hub: ClusterHub | None = None
    remote = True

    def send(self, message: dict[str, Any]) -> bool:
        if not self.node or self.hub is None:
            return False
        return self.hub.send_remote(self, message)


def envelope(kind: str, to: str, sender: str, name: str, node: str, nbcall: bool, call_id: Any, body: bytes) -> bytes:
    return orjson.dumps([kind, to, sender, name, node, nbcall, call_id]) + b"\n" + body


def open_envelopes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The (header, message) pairs of one published payload: the writer joins envelopes
    queued back to back for one node with newlines (neither part contains a raw one)."""
    parts = data.split(b"\n")
    return zip(parts[::2], parts[1::2], strict=False)
