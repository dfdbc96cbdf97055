"""The hub of one cluster node: :class:`~..hub.Hub`'s rules, users found across nodes.

What changes from one server: a register is claimed in Redis first (one live holder per
key in the whole cluster), a user on another node is a :class:`~.remote.RemoteSession`,
lists and counts cover every node, and what arrives from another node passes
:func:`.mirror.admit` before delivery.  Nothing here decides what one server would decide
differently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from .. import protocol as p
from .. import wire
from ..hub import Hub, Limits
from ..session import Session
from . import handover, mirror
from .config import MAX_HELD_FRAMES, REPLICATION_INTERVAL, ClusterConfig
from .directory import Change, Directory
from .link import RedisLink
from .registrar import Registrar
from .remote import NULL_TRANSPORT, RemoteSession, envelope, open_envelopes

log = logging.getLogger("nbcall.cluster")


class ClusterHub(Hub):
    def __init__(
        self, limits: Limits | None, config: ClusterConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(limits, clock)
        config.check()
        self.config = config
        self.node = config.node_id
        self.link = RedisLink(config, self._on_bus, self._on_up, self._on_down)
        self.directory = Directory(self.node, REPLICATION_INTERVAL, self.link.broadcast)
        self.ghosts: dict[str, RemoteSession] = {}  # stand-ins for users on other nodes
        self.handovers = handover.Handovers(self)
        self.registrar = Registrar(self)
        self.current_sender: str | None = None  # the key whose frame is being handled
        self._cut_off: asyncio.TimerHandle | None = None
        self.cross_relayed = 0  # offers/answers/candidates sent to other nodes
        self.cross_received = 0  # messages delivered here from other nodes
        # Rooms span one server's users only, and a node's users are not a whole cluster's:
        # refused, rather than rooms that miss members on other nodes (docs/rooms.md).
        self.rooms.refusal = "rooms are not available on a cluster node (nbcall-server --redis) yet: use one server"

    async def start(self) -> None:
        await self.link.start()

    async def stop(self) -> None:
        await self.registrar.stop()
        await self.link.stop()

    def health(self) -> dict[str, Any]:
        link = self.link
        return {
            "status": "ok" if link.up else "degraded",
            "node": {"id": self.node, "local": len(self.users), "redis": "up" if link.up else "unreachable"},
            "cluster": {"nodes": link.nodes, "online": len(self.directory), "redis_rtt_ms": round(link.rtt * 1e3, 3)},
        }

    # -- what the hub asks ----------------------------------------------------------------

    def online_count(self) -> int:
        return len(self.directory)

    def _users_reply(self, kind: str) -> dict[str, Any]:
        listed = list(self.directory.entries.items())[: p.MAX_LISTED_USERS]
        return {"type": kind, "users": [e.name for _, e in listed], "keys": [k for k, _ in listed],
                "online": len(self.directory)}  # fmt: skip

    def remote_user(self, key: str, kind: str | None = None) -> Session | None:
        if kind is not None and not self.link.up:
            if self.ghosts.get(key) is not None or self.directory.get(key) is not None:
                raise p.ProtocolError(
                    p.ErrorCode.CLUSTER_UNAVAILABLE, "the cluster is unreachable from this node; try again", kind
                )
            raise p.ProtocolError(
                p.ErrorCode.CLUSTER_UNAVAILABLE,
                "this node cannot reach the cluster: only users on this node can be reached now",
                kind,
            )
        ghost = self.ghosts.get(key)
        entry = self.directory.get(key)
        if entry is not None and entry.node != self.node:
            if ghost is None:
                ghost = self.ghosts[key] = RemoteSession(transport=NULL_TRANSPORT, hub=self, key=key)
            ghost.name, ghost.node, ghost.nbcall = entry
        return ghost

    def ghost(self, key: str, name: str, node: str, nbcall: bool) -> RemoteSession:
        """The stand-in for a user whose node just spoke for it (the freshest word there is)."""
        ghost = self.ghosts.get(key)
        if ghost is None:
            ghost = self.ghosts[key] = RemoteSession(transport=NULL_TRANSPORT, hub=self, key=key)
        ghost.name, ghost.node, ghost.nbcall = name, node, nbcall
        return ghost

    # -- frames from local clients --------------------------------------------------------

    def receive(self, session: Session, frame: p.Frame) -> None:
        claiming = self.registrar.claiming
        if claiming:
            held = claiming.get(session)
            if held is not None:  # its register waits for Redis: keep the order
                if len(held) < MAX_HELD_FRAMES:
                    held.append(frame)
                return
        self.current_sender = session.key
        super().receive(session, frame)

    def send_remote(self, ghost: RemoteSession, message: dict[str, Any], sender: str | None = None) -> bool:
        """Publish ``message`` for ``ghost`` to its node, the envelope filled in from this node's state."""
        kind = message["type"]
        frm = sender or message.get("from_key") or self.current_sender
        if frm is None:
            return False
        local = self.users.get(frm)
        call = self.calls.get(frm)
        call_id = call.call_id if call is not None and call.other(frm) == ghost.key else message.get("call_id")
        name: str = message.get("from") or (local.name if local is not None and local.name else frm)
        nbcall = local.nbcall if local is not None else True
        data = envelope(kind, ghost.key or "", frm, name, self.node, nbcall, call_id, orjson.dumps(message))
        if not self.link.publish(ghost.node, data):
            return False
        if kind in wire.SEED_FORWARDED:
            self.cross_relayed += 1
        return True

    def bounce(self, ghost: RemoteSession, me: str, message: dict[str, Any]) -> None:
        """An error for a request ``ghost`` sent to the local user ``me``."""
        self.errors[message["code"]] = self.errors.get(message["code"], 0) + 1
        self.send_remote(ghost, message, sender=me)

    # -- registering: claimed in Redis first (registrar.py) ----------------------------------

    def _register(self, session: Session, message: dict[str, Any]) -> None:
        self.registrar.register(session, message)

    def register_here(self, session: Session, message: dict[str, Any]) -> bool:
        try:
            super()._register(session, message)
        except p.ProtocolError as exc:
            self.errors[exc.code] = self.errors.get(exc.code, 0) + 1
            session.send(exc.reply())
            return False
        key = session.key
        assert key is not None and session.name is not None
        self.directory.local_set(key, session.name, session.nbcall)
        self.ghosts.pop(key, None)
        self.handovers.moved.pop(key, None)
        log.debug("node %s: '%s' registered", self.node, session.name)
        return True

    def disconnect(self, session: Session, *, clean: bool = True) -> None:
        self.registrar.claiming.pop(session, None)
        super().disconnect(session, clean=clean)

    def release(self, session: Session) -> None:
        key = session.key
        if key is None or self.users.get(key) is not session:
            return
        super().release(session)
        self.directory.local_del(key)
        token = self.registrar.tokens.pop(key, "")
        if token not in self.registrar.unconfirmed:  # (else released once Redis says what it did)
            self.link.release(key, token)

    # -- what other nodes send ----------------------------------------------------------------

    def _on_bus(self, data: bytes) -> None:
        if data[:1] == b"[":  # one envelope, or several back to back (remote.py)
            for head, body in open_envelopes(data):
                self._deliver(head, body)
            return
        event = orjson.loads(data)
        kind, node = event.get("t"), event.get("node")
        if kind == "d" and node != self.node:
            joined, left = self.directory.apply(node, event["set"], event["del"])
            self._presence(joined, left)
        elif kind == "dead" and node != self.node:
            self._node_gone(node)
        else:
            self.handovers.on_event(event)

    def _deliver(self, head: bytes, body: bytes) -> None:
        header = orjson.loads(head)  # (an 8th field: forwarded once already, handover.py)
        kind, to, frm, name, node, nbcall, call_id = header[:7]
        self.cross_received += 1
        sender = self.ghost(frm, name, node, nbcall)
        me = self.users.get(to)
        if me is None or me.remote:
            if not self.handovers.forward(to, header, body) and kind in ("invite", "offer"):
                self.bounce(sender, to, p.error(p.ErrorCode.UNKNOWN_PEER, f"'{to}' is not online", kind))
            return
        if mirror.admit(self, me, sender, kind, call_id, body):
            if me.away:
                me.outbox.append(body)
            else:
                me.transport.send_bytes(body)

    def _presence(self, joined: list[Change], left: list[Change]) -> None:
        for key, name in joined:
            self.presence.changed(key, name, joined=True)
        for key, name in left:
            self._remote_gone(key, name)

    def _remote_gone(self, key: str, name: str) -> None:
        """A user of another node is gone: its calls here end (``disconnected``), as on one server."""
        self.presence.changed(key, name, joined=False)
        if key not in self.users:
            self._end_call(key, "disconnected", name)
            self.ghosts.pop(key, None)

    def _node_gone(self, node: str) -> None:
        gone = self.directory.drop_node(node)
        for key, ghost in list(self.ghosts.items()):
            if ghost.node == node and key not in {k for k, _ in gone}:
                gone.append((key, ghost.name or key))
        if gone:
            log.warning("node %s: node %s is gone with %d users", self.node, node, len(gone))
        for key, name in gone:
            self._remote_gone(key, name)

    # -- Redis down and up ------------------------------------------------------------------

    def _on_down(self) -> None:
        # Calls with other nodes' users cannot be relayed.  Once the others have reaped this
        # node (after the expiry) their side has ended them: end ours too, so both agree.
        loop = asyncio.get_running_loop()
        self._cut_off = loop.call_later(self.config.node_expiry + self.config.heartbeat, self._isolate)

    def _isolate(self) -> None:
        self._cut_off = None
        log.warning("node %s: cut off from the cluster; calls with other nodes end", self.node)
        for key, name in self.directory.drop_remote():
            self._remote_gone(key, name)
        for key, ghost in list(self.ghosts.items()):
            self._remote_gone(key, ghost.name or key)

    async def _on_up(self) -> None:
        if self._cut_off is not None:
            self._cut_off.cancel()
            self._cut_off = None
        started = time.monotonic()
        joined, left = self.directory.replace_remote(await self.registrar.publish())
        self._presence(joined, left)
        log.info("node %s: %d users published, %d in the cluster (%.0f ms)", self.node, len(self.users),
                 len(self.directory), (time.monotonic() - started) * 1e3)  # fmt: skip
