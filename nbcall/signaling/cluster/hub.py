"""The hub of one cluster node: :class:`~..hub.Hub`'s rules, users found across nodes.

What changes from one server: a register is claimed in Redis first (one live holder per
key in the whole cluster), a user on another node is a :class:`~.remote.RemoteSession`,
lists and counts cover every node, and what arrives from another node passes
:func:`.mirror.admit` before delivery.  Nothing here decides what one server would decide
differently.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from .. import protocol as p
from ..hub import Hub, Limits
from ..names import name_key
from ..session import Session
from . import handover, mirror
from .config import MAX_HELD_FRAMES, REPLICATION_INTERVAL, ClusterConfig
from .directory import Change, Directory
from .link import _FAILURES, RedisLink
from .remote import NULL_PEER, RemoteSession, envelope, open_envelopes

log = logging.getLogger("nbcall.cluster")


def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


class ClusterHub(Hub):
    def __init__(self, limits: Limits | None, config: ClusterConfig) -> None:
        super().__init__(limits)
        config.check()
        self.config = config
        self.node = config.node_id
        self.link = RedisLink(config, self._on_bus, self._on_up, self._on_down)
        self.directory = Directory(self.node, REPLICATION_INTERVAL, self.link.broadcast)
        self.ghosts: dict[str, RemoteSession] = {}  # stand-ins for users on other nodes
        self.handovers = handover.Handovers(self)
        self._claiming: dict[Session, list[p.Frame]] = {}  # registers waiting: their later frames
        self._claims: dict[str, list[Callable[[], None]]] = {}  # key -> what waits for its claim
        self._publishing = False  # _on_up runs: registers wait for it (and for the link to be up)
        self._after_publishing: list[Callable[[], None]] = []
        self._yielded: set[str] = set()  # names another node took over while this node claimed them
        self._tokens: dict[str, str] = {}  # key -> the token of this node's entry (one per local user)
        self._sender: str | None = None  # the key whose frame is being handled
        self._tasks: set[asyncio.Task[None]] = set()
        self._cut_off: asyncio.TimerHandle | None = None
        self.cross_relayed = 0  # offers/answers/candidates sent to other nodes
        self.cross_received = 0  # messages delivered here from other nodes
        # Rooms span one server's users only, and a node's users are not a whole cluster's:
        # refused, rather than rooms that miss members on other nodes (docs/rooms.md).
        self.rooms.refusal = "rooms are not available on a cluster node (nbcall-server --redis) yet: use one server"

    async def start(self) -> None:
        await self.link.start()

    async def stop(self) -> None:
        for task in list(self._tasks):  # no claim may write after the node is gone
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
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

    def _remote_user(self, key: str, kind: str | None = None) -> Session | None:
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
                ghost = self.ghosts[key] = RemoteSession(peer=NULL_PEER, hub=self, key=key)
            ghost.name, ghost.node, ghost.nbcall = entry
        return ghost

    def ghost(self, key: str, name: str, node: str, nbcall: bool) -> RemoteSession:
        """The stand-in for a user whose node just spoke for it (the freshest word there is)."""
        ghost = self.ghosts.get(key)
        if ghost is None:
            ghost = self.ghosts[key] = RemoteSession(peer=NULL_PEER, hub=self, key=key)
        ghost.name, ghost.node, ghost.nbcall = name, node, nbcall
        return ghost

    # -- frames from local clients --------------------------------------------------------

    def receive(self, session: Session, frame: p.Frame) -> None:
        if self._claiming:
            held = self._claiming.get(session)
            if held is not None:  # its register waits for Redis: keep the order
                if len(held) < MAX_HELD_FRAMES:
                    held.append(frame)
                return
        self._sender = session.key
        super().receive(session, frame)

    def send_remote(self, ghost: RemoteSession, message: dict[str, Any], sender: str | None = None) -> bool:
        """Publish ``message`` for ``ghost`` to its node, the envelope filled in from this node's state."""
        kind = message["type"]
        frm = sender or message.get("from_key") or self._sender
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
        if kind in p.SEED_FORWARDED:
            self.cross_relayed += 1
        return True

    def bounce(self, ghost: RemoteSession, me: str, message: dict[str, Any]) -> None:
        """An error for a request ``ghost`` sent to the local user ``me``."""
        self.errors[message["code"]] = self.errors.get(message["code"], 0) + 1
        self.send_remote(ghost, message, sender=me)

    # -- registering: claimed in Redis first ------------------------------------------------
    #
    # Each registration that wins a name in Redis writes a token of its own into the entry
    # (``g``), and releases the name with it: a release that waits in the outbox while the
    # user registers on this node again deletes nothing of the new entry (scripts.RELEASE).
    # A name is claimed only when this node neither holds it (then the hub's rule decides, as
    # on one server) nor claims it already (a register waits for the claim before it), so an
    # entry of this node's that a claim finds is stale and overwritten.

    def _register(self, session: Session, message: dict[str, Any]) -> None:
        key = name_key(message["username"])
        waiting = self._claims.get(key)
        if waiting is None and self._publishing:  # decided once this node's users are in Redis
            waiting = self._after_publishing
        if waiting is not None:  # decided after the claim before it, with what it leaves
            self._claiming.setdefault(session, [])
            waiting.append(functools.partial(self._resume, session, message))
            return
        holder = self.users.get(key)
        if not self.link.up or (holder is not None and not holder.remote):
            # Cut off: this node's rule only, published when Redis is back.  Held here: the
            # entry is this node's already; a takeover keeps the holder's token.
            if self._register_here(session, message):
                self._tokens.setdefault(key, secrets.token_hex(8))
            return
        if message.get("credential") is None:  # made now: Redis stores its hash with the claim
            message["credential"] = secrets.token_urlsafe(18)
        self._claiming.setdefault(session, [])
        self._claims[key] = []
        self._spawn(self._claim(session, message, key))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _claim(self, session: Session, message: dict[str, Any], key: str) -> None:
        try:
            await self._claim_now(session, message, key)
        finally:
            self._after_claim(key)

    async def _claim_now(self, session: Session, message: dict[str, Any], key: str) -> None:
        name: str = message["username"]
        token = secrets.token_hex(8)
        hashed = credential_hash(message["credential"])
        entry = orjson.dumps({"n": name, "node": self.node, "c": message.get("client") is not None,
                              "h": hashed, "g": token})  # fmt: skip
        try:
            status, info = await self.link.claim(key, entry, hashed)
        except _FAILURES as exc:
            # Written or not, Redis did not say: released by token if not kept, put again
            # (``_put_later``) if kept.  Whether Redis is down is the heartbeat's call.
            log.warning("node %s: claiming '%s' failed (%s); registering on this node only", self.node, name, exc)
            status, info = "unknown", ""
        if status == "ok" and key in self._yielded:
            # Another node's claim moved the name after ours ran, and asked while ours was on
            # its way back: the name is theirs now (the later claim wins, as in Redis).
            status, info = "taken", name
        state = None
        if status == "moved":  # the old node lets the user go, even if this socket closed meanwhile
            log.info("node %s: '%s' moves here from node %s", self.node, name, info)
            state = await self.handovers.request(key, info)
        held = self._claiming.pop(session, None)
        if status == "taken":
            if held is not None:
                self.errors[p.ErrorCode.NAME_TAKEN] = self.errors.get(p.ErrorCode.NAME_TAKEN, 0) + 1
                session.send(p.error(p.ErrorCode.NAME_TAKEN, f"'{info}' is in use by another connection; choose "
                                     "another name or reconnect with that name's credential", "register"))  # fmt: skip
                self._replay(session, held)
            return
        kept = False
        if held is not None or state is not None:
            if state is not None:
                self.handovers.install(key, message, state)
            kept = self._register_here(session, message)
        if kept:
            self._tokens[key] = token
            if held is None:  # closed meanwhile: registered and gone, its partner told
                self.disconnect(session)
            elif status == "unknown":
                self._spawn(self._confirm_later(key, session, entry, hashed))
        else:
            self.link.release(key, token)  # exact: harmless if the claim never ran
        if held is not None:
            self._replay(session, held)

    def _resume(self, session: Session, message: dict[str, Any]) -> None:
        """A register that waited for another claim of its name: the hub's rule decides now."""
        held = self._claiming.pop(session, None)
        if held is None:  # closed meanwhile
            return
        self._sender = session.key
        try:
            self._register(session, message)
        except Exception:  # as in Hub.receive: a bug costs this request, not the queue behind it
            log.exception("node %s: a register that waited for its name failed", self.node)
            session.send(p.error(p.ErrorCode.INTERNAL, "the server failed to handle this message"))
        if session in self._claiming:  # claiming in turn: its frames keep waiting, first
            self._claiming[session][:0] = held
        else:
            self._replay(session, held)

    def _after_claim(self, key: str) -> None:
        """The registers that waited for ``key``'s claim, in order."""
        self._yielded.discard(key)
        self._run(self._claims.pop(key, []))

    def _run(self, waiting: list[Callable[[], None]]) -> None:
        for resume in waiting:
            try:
                resume()
            except Exception:
                log.exception("node %s: a register that waited failed", self.node)

    def _replay(self, session: Session, held: list[p.Frame]) -> None:
        self._sender = session.key
        for frame in held:
            self.receive(session, frame)

    def _register_here(self, session: Session, message: dict[str, Any]) -> bool:
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
        self._claiming.pop(session, None)
        super().disconnect(session, clean=clean)

    def _release(self, session: Session) -> None:
        key = session.key
        if key is None or self.users.get(key) is not session:
            return
        super()._release(session)
        self.directory.local_del(key)
        self.link.release(key, self._tokens.pop(key, ""))

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
                me.peer.send_bytes(body)

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
        self._publishing = True
        try:
            for key, token in (await self.link.held()).items():
                if key not in self.users and key not in self._claims:
                    self.link.release(key, token)  # released while Redis was away
            for key, session in list(self.users.items()):
                if self.users.get(key) is session and key not in self._claims:
                    await self._put(key, session)
            joined, left = self.directory.replace_remote(await self.link.entries())
        finally:
            self._publishing = False
            # After the heartbeat has set the link up (the same step of its task, no await in
            # between): what waited is claimed, and the other nodes hear who is here (joins
            # batched while the link was down were dropped).
            asyncio.get_running_loop().call_soon(self._published)
        self._presence(joined, left)
        log.info("node %s: %d users published, %d in the cluster (%.0f ms)", self.node, len(self.users),
                 len(self.directory), (time.monotonic() - started) * 1e3)  # fmt: skip

    def _taken_elsewhere(self, session: Session) -> None:
        log.warning("node %s: '%s' was registered elsewhere meanwhile; this one is closed", self.node, session.key)
        session.send({"type": "replaced", "message": "this name was taken on another node meanwhile"})
        session.peer.close_now(p.CLOSE_REPLACED, "taken on another node")
        self._release(session)

    def _published(self) -> None:
        if self.link.up:
            self.directory.announce_local()
        waiting, self._after_publishing = self._after_publishing, []
        self._run(waiting)

    async def _confirm_later(self, key: str, session: Session, entry: bytes, hashed: str) -> None:
        """A user kept here whose claim Redis did not answer: the same claim again once Redis
        answers (it answers as it did the first time, if that one ran: scripts.CLAIM)."""
        while True:
            await asyncio.sleep(self.config.heartbeat)
            if self.users.get(key) is not session:
                return  # gone: released with this token, which covers a claim that ran
            if not self.link.up or key in self._claims or self._publishing:
                continue  # _on_up puts the node's users; or wait for what is under way
            self._claims[key] = []  # a register of the name meanwhile waits for the answer
            try:
                status, info = await self.link.claim(key, entry, hashed)
                if self.users.get(key) is session:
                    if status == "moved":  # the old node still has the user: it lets go now
                        await self.handovers.request(key, info)
                    elif status == "taken":  # someone else's since: this one gives way
                        self._taken_elsewhere(session)
                return
            except _FAILURES:
                continue
            finally:
                self._after_claim(key)

    async def _put(self, key: str, session: Session) -> None:
        """Publish a user this node accepted while cut off (or that Redis forgot); a register
        of its name meanwhile waits, and is decided after what the put found."""
        if session.remote or session.name is None or session.credential is None:
            return
        token = self._tokens.setdefault(key, secrets.token_hex(8))
        entry = orjson.dumps({"n": session.name, "node": self.node, "c": session.nbcall,
                              "h": credential_hash(session.credential), "g": token})  # fmt: skip
        self._claims[key] = []
        try:
            status, _ = await self.link.claim(key, entry, "", mode="put")
            if self.users.get(key) is not session:  # it left meanwhile; its release may have come first
                if status != "taken":
                    self.link.release(key, token)
            elif status == "taken":
                self._taken_elsewhere(session)
            else:
                self.directory.local_set(key, session.name, session.nbcall)
        finally:
            self._after_claim(key)
