"""A takeover across nodes: the user's call and waiting messages move to its new node.

The new node has already won the name in Redis (the credential's hash matched).  It asks
the old node, which tells its socket ``replaced`` (close 4001), hands over the user's call
and what waited for it during a drop, forgets the user without ending the call, and for a
while forwards what still arrives for it.  The new node puts that state where the old
holder was and runs the hub's own register: the takeover rules are the hub's.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import TYPE_CHECKING, Any

import orjson

from ..session import Call
from .config import HANDOVER_TIMEOUT, MOVED_MEMORY
from .remote import NULL_TRANSPORT, RemoteSession

if TYPE_CHECKING:
    from .hub import ClusterHub

MAX_PENDING = 1024  # handovers one node waits for at once (each is one register)


class Handovers:
    def __init__(self, hub: ClusterHub) -> None:
        self.hub = hub
        self._waiting: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self.moved: dict[str, tuple[str, float]] = {}  # key -> (new node, until)

    async def request(self, key: str, moved_from: str) -> dict[str, Any] | None:
        """The user's state from the old node (None if it does not answer within a second);
        ``moved_from``: CLAIM's "node token", the token of the entry this node's claim overwrote."""
        old_node, _, overwritten = moved_from.partition(" ")
        if len(self._waiting) >= MAX_PENDING:
            return None
        rid = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        ask = {"t": "handover", "key": key, "to": self.hub.node, "rid": rid, "g": overwritten}
        self.hub.link.publish(old_node, orjson.dumps(ask))
        try:
            return await asyncio.wait_for(future, HANDOVER_TIMEOUT)
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiting.pop(rid, None)

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("t") == "handover":
            self.hub.registrar.overwritten(event["key"], event.get("g", ""))
            self._answer(event)
        elif event.get("t") == "handed":
            future = self._waiting.get(event.get("rid", ""))
            if future is not None and not future.done():
                future.set_result(event.get("state"))

    def _answer(self, event: dict[str, Any]) -> None:
        state = self._give(event["key"], event["to"])
        self.hub.link.publish(event["to"], orjson.dumps({"t": "handed", "rid": event["rid"], "state": state}))

    def _give(self, key: str, new_node: str) -> dict[str, Any] | None:
        """On the old node: let the user go to ``new_node``, keeping its call alive."""
        hub = self.hub
        holder = hub.users.get(key)
        if holder is None or holder.remote:
            return None
        state: dict[str, Any] = {"away": holder.away, "outbox": [b.decode() for b in holder.outbox]}
        hub.retire(holder)
        del hub.users[key]
        hub.registrar.tokens.pop(key, None)  # the entry is the new node's now
        assert holder.name is not None
        hub.directory.moved_away(key, new_node)
        hub.ghost(key, holder.name, new_node, holder.nbcall)
        now = time.monotonic()
        if len(self.moved) >= MAX_PENDING:  # forgotten when no message came for them (bounded)
            self.moved = {k: v for k, v in self.moved.items() if v[1] >= now}
        self.moved[key] = (new_node, now + MOVED_MEMORY)
        call = hub.calls.get(key)
        if call is not None:
            other = call.other(key)
            partner = hub.users.get(other) or hub.remote_user(other)
            state["call"] = {"call_id": call.call_id, "caller": call.caller, "callee": call.callee,
                             "state": call.state, "implicit": call.implicit}  # fmt: skip
            if partner is not None:
                node = partner.node if isinstance(partner, RemoteSession) else hub.node
                state["partner"] = [other, partner.name, node, partner.nbcall]
            if other not in hub.users:  # neither side is here any more: forget the call
                if call.timer is not None:
                    call.timer.cancel()
                    state["ring_timer"] = True  # the new node runs it now
                for k in (call.caller, call.callee):
                    if hub.calls.get(k) is call:
                        del hub.calls[k]
        return state

    def install(self, key: str, message: dict[str, Any], state: dict[str, Any]) -> None:
        """On the new node: put the old holder (as a stand-in) and its call where the hub looks."""
        hub = self.hub
        holder = RemoteSession(transport=NULL_TRANSPORT, hub=hub, key=key, name=message["username"])
        holder.credential = message["credential"]  # Redis matched its hash: the hub compares it again
        holder.away = bool(state.get("away"))
        holder.outbox = [s.encode() for s in state.get("outbox", [])]
        info = state.get("call")
        if info is not None:
            partner = state.get("partner")
            other = info["callee"] if info["caller"] == key else info["caller"]
            existing = hub.calls.get(other)
            if other in hub.users and existing is not None and existing.other(other) == key:
                call = existing  # the partner is here: this node already mirrors the call
            else:
                call = Call(info["call_id"], info["caller"], info["callee"], info["state"], implicit=info["implicit"])
                hub.calls[key] = hub.calls[other] = call
                if partner is not None and partner[2] != hub.node:
                    hub.ghost(*partner)
                if state.get("ring_timer") and call.state == "ringing":
                    loop = asyncio.get_running_loop()
                    call.timer = loop.call_later(hub.limits.ring_timeout, hub.ring_out, call)
        hub.users[key] = holder

    def forward(self, key: str, header: list[Any], body: bytes) -> bool:
        """A message for a user that moved away: on to its new node (for MOVED_MEMORY s), once:
        a forwarded message is marked, so two nodes that each think the user moved to the
        other cannot pass it back and forth."""
        moved = self.moved.get(key)
        if moved is None or len(header) > 7:
            return False
        if moved[1] < time.monotonic():
            with contextlib.suppress(KeyError):
                del self.moved[key]
            return False
        return self.hub.link.publish(moved[0], orjson.dumps([*header, 1]) + b"\n" + body)
