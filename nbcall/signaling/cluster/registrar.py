"""A node's registers, claimed in Redis before the hub's own rule accepts them.

Each registration that wins a name in Redis writes a token of its own into the entry
(``g``), and releases the name with it: a release that waits in the outbox while the user
registers on this node again deletes nothing of the new entry (scripts.RELEASE).  A name is
claimed only when this node neither holds it (then the hub's rule decides, as on one server)
nor claims it already: a second register of the name waits for the first, with the frames
its client sends meanwhile, so an entry of this node's own that a claim finds is stale and is
overwritten.  While the node publishes its users after an outage, registers wait for that.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import orjson

from .. import protocol as p
from ..names import name_key
from ..session import Session
from .link import _FAILURES

if TYPE_CHECKING:
    from .hub import ClusterHub

log = logging.getLogger("nbcall.cluster")

PUT_BATCH = 500  # users published per pipeline when Redis is back (then the node beats)


def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def registry_entry(name: str, node: str, nbcall: bool, hashed: str, token: str) -> bytes:
    """A name's entry in Redis (docs/protocol.md, "Cluster mode")."""
    return orjson.dumps({"n": name, "node": node, "c": nbcall, "h": hashed, "g": token})


class Registrar:
    def __init__(self, hub: ClusterHub) -> None:
        self.hub = hub
        self.claiming: dict[Session, list[p.Frame]] = {}  # registers waiting: their later frames
        self.claims: dict[str, list[Callable[[], None]]] = {}  # key -> the registers behind its claim
        self.tokens: dict[str, str] = {}  # key -> the token of this node's entry (one per local user)
        self.yielded: set[str] = set()  # names another node took over while this node claimed them
        self._claiming_with: dict[str, str] = {}  # key -> the token of this node's claim in flight
        self.unconfirmed: set[str] = set()  # tokens of claims Redis did not answer (_confirm_later)
        self.publishing = False  # publish() runs: registers wait for it (and for the link to be up)
        self._after_publishing: list[Callable[[], None]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False

    async def stop(self) -> None:
        self.stopping = True  # no claim may write after the node is gone, nor a new one start
        while self.tasks:  # (a cancelled claim runs the registers behind it)
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    # -- a register ---------------------------------------------------------------------------

    def register(self, session: Session, message: dict[str, Any]) -> None:
        hub = self.hub
        if self.stopping:
            return
        key = name_key(message["username"])
        waiting = self.claims.get(key)
        if waiting is None and self.publishing:  # decided once this node's users are in Redis
            waiting = self._after_publishing
        if waiting is not None:  # decided after what is under way, with what it leaves
            self.claiming.setdefault(session, [])
            waiting.append(functools.partial(self._resume, session, message))
            return
        holder = hub.users.get(key)
        if not hub.link.up or (holder is not None and not holder.remote):
            # Cut off: this node's rule only, published when Redis is back.  Held here: the
            # entry is this node's already; a takeover keeps the holder's token.
            if hub.register_here(session, message):
                self.tokens.setdefault(key, secrets.token_hex(8))
            return
        if message.get("credential") is None:  # made now: Redis stores its hash with the claim
            message["credential"] = secrets.token_urlsafe(18)
        self.claiming.setdefault(session, [])
        self.claims[key] = []
        self._spawn(self._claim(session, message, key))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _claim(self, session: Session, message: dict[str, Any], key: str) -> None:
        try:
            await self._claim_now(session, message, key)
        finally:
            self._after_claim(key)

    async def _claim_now(self, session: Session, message: dict[str, Any], key: str) -> None:
        hub = self.hub
        name: str = message["username"]
        token = secrets.token_hex(8)
        hashed = credential_hash(message["credential"])
        entry = registry_entry(name, hub.node, message.get("client") is not None, hashed, token)
        self._claiming_with[key] = token
        try:
            status, info = await hub.link.claim(key, entry, hashed)
        except _FAILURES as exc:
            # Written or not, Redis did not say: released by token if not kept, claimed again
            # (_confirm_later) if kept.  Whether Redis is down is the heartbeat's call.
            log.warning("node %s: claiming '%s' failed (%s); registering on this node only", hub.node, name, exc)
            status, info = "unknown", ""
        state = None
        if status == "moved":  # the old node lets the user go, even if this socket closed meanwhile
            log.info("node %s: '%s' moves here from node %s", hub.node, name, info.partition(" ")[0])
            state = await hub.handovers.request(key, info)
        if status in ("ok", "moved") and key in self.yielded:
            # Another node's claim overwrote ours and asked while ours was on its way back (or
            # we waited for the old node): the later claim wins, as in Redis.
            status, info = "taken", name
        held = self.claiming.pop(session, None)
        if status == "taken":
            if held is not None:
                hub.errors[p.ErrorCode.NAME_TAKEN] = hub.errors.get(p.ErrorCode.NAME_TAKEN, 0) + 1
                session.send(p.error(p.ErrorCode.NAME_TAKEN, f"'{info}' is in use by another connection; choose "
                                     "another name or reconnect with that name's credential", "register"))  # fmt: skip
                self._replay(session, held)
            return
        kept = False
        if held is not None or state is not None:
            if state is not None:
                hub.handovers.install(key, message, state)
            kept = hub.register_here(session, message)
        if kept:
            self.tokens[key] = token
            if held is None:  # closed meanwhile: registered and gone, its partner told
                hub.disconnect(session)
        elif status != "unknown":
            hub.link.release(key, token)  # exact: harmless if the claim never ran
        if status == "unknown":  # kept or not, Redis must say what it did with this entry
            self.unconfirmed.add(token)
            self._spawn(self._confirm_later(key, token, entry))
        if held is not None:
            self._replay(session, held)

    def _resume(self, session: Session, message: dict[str, Any]) -> None:
        """A register that waited for another claim of its name: decided now."""
        held = self.claiming.pop(session, None)
        if held is None:  # closed meanwhile
            return
        self.hub.current_sender = session.key
        try:
            self.register(session, message)
        except Exception:  # as in Hub.receive: a bug costs this request, not the queue behind it
            log.exception("node %s: a register that waited for its name failed", self.hub.node)
            session.send(p.error(p.ErrorCode.INTERNAL, "the server failed to handle this message"))
        if session in self.claiming:  # claiming in turn: its frames keep waiting, first
            self.claiming[session][:0] = held
        else:
            self._replay(session, held)

    def overwritten(self, key: str, token: str) -> None:
        """Another node's claim overwrote the entry with ``token`` (it asks for the user): if
        that entry was our claim in flight's, the later claim, theirs, wins."""
        if token and self._claiming_with.get(key) == token:
            self.yielded.add(key)

    def _after_claim(self, key: str) -> None:
        """The registers that waited for ``key``'s claim, in order."""
        self.yielded.discard(key)
        self._claiming_with.pop(key, None)
        self._run(self.claims.pop(key, []))

    def _run(self, waiting: list[Callable[[], None]]) -> None:
        for resume in waiting:
            try:
                resume()
            except Exception:
                log.exception("node %s: a register that waited failed", self.hub.node)

    def _replay(self, session: Session, held: list[p.Frame]) -> None:
        self.hub.current_sender = session.key
        for frame in held:
            self.hub.receive(session, frame)

    def _taken_elsewhere(self, session: Session) -> None:
        log.warning("node %s: '%s' was registered elsewhere meanwhile; this one is closed", self.hub.node, session.key)
        session.send({"type": "replaced", "message": "this name was taken on another node meanwhile"})
        session.transport.close_now(p.CLOSE_REPLACED, "taken on another node")
        self.hub.release(session)

    async def _confirm_later(self, key: str, token: str, entry: bytes) -> None:
        """A claim Redis did not answer: its entry again ("confirm": a put that leaves a newer
        entry of this node's alone), until Redis answers.  If the claim ran, Redis answers as
        it did then (scripts.CLAIM); if it did not, a put moves nobody.  What follows goes by
        the token, not by the socket: the holding may have gone on (a takeover on this node)
        or ended meanwhile (then its release waits for this: if the claim moved the name, the
        old node must let the user go first)."""
        try:
            await self._confirm(key, token, entry)
        finally:
            self.unconfirmed.discard(token)

    async def _confirm(self, key: str, token: str, entry: bytes) -> None:
        hub = self.hub
        while True:
            await asyncio.sleep(hub.config.heartbeat)
            if not hub.link.up or key in self.claims or self.publishing:
                continue  # wait for what is under way
            self.claims[key] = []  # a register of the name meanwhile waits for the answer
            try:
                # Still held with this token: its entry is the one to have (over a stale one of
                # ours too).  Not: leave a newer registration's entry alone.
                mode = "put" if self.tokens.get(key) == token else "confirm"
                status, info = await hub.link.claim(key, entry, "", mode=mode)
                if status == "stale":  # a newer registration of the name here overwrote it
                    return
                if status == "moved":  # the claim did run: the old node lets the user go now
                    await hub.handovers.request(key, info)
                holder = hub.users.get(key)
                if self.tokens.get(key) != token:  # not held with this entry (any more)
                    if status != "taken":
                        hub.link.release(key, token)
                elif status == "taken" and holder is not None:  # someone else's since
                    self._taken_elsewhere(holder)
                return
            except _FAILURES:
                continue
            finally:
                self._after_claim(key)

    # -- Redis back: the node's users published again ---------------------------------------

    async def publish(self) -> dict[bytes, bytes]:
        """Free the names Redis says this node holds and it no longer has, put the users it
        has, and return the registry as Redis has it then."""
        hub = self.hub
        self.publishing = True
        try:
            for key, token in (await hub.link.held()).items():
                if key not in hub.users and key not in self.claims:
                    hub.link.release(key, token)  # released while Redis was away
            users = [(key, session) for key, session in hub.users.items() if key not in self.claims]
            for start in range(0, len(users), PUT_BATCH):
                await self._put(users[start : start + PUT_BATCH])
                await hub.link.keep_alive()  # a long publish must not get this node reaped
            return await hub.link.entries()
        finally:
            self.publishing = False
            # After the heartbeat has set the link up (the same step of its task, no await in
            # between): what waited is claimed, and the other nodes get the joins and leaves
            # kept while the link was down.
            asyncio.get_running_loop().call_soon(self._published)

    def _published(self) -> None:
        if self.hub.link.up:
            self.hub.directory.rejoined()  # the joins and leaves kept while Redis was away
        waiting, self._after_publishing = self._after_publishing, []
        self._run(waiting)

    async def _put(self, users: list[tuple[str, Session]]) -> None:
        """Publish users this node accepted while cut off (or that Redis forgot), in one
        pipeline; a register of one of their names meanwhile waits, and is decided after what
        the put found."""
        hub = self.hub
        batch: list[tuple[str, Session, str, bytes]] = []
        for key, session in users:
            if hub.users.get(key) is not session or key in self.claims:
                continue  # left before its turn, or claimed anew
            if session.remote or session.name is None or session.credential is None:
                continue
            token = self.tokens.setdefault(key, secrets.token_hex(8))
            entry = registry_entry(session.name, hub.node, session.nbcall, credential_hash(session.credential), token)
            batch.append((key, session, token, entry))
            self.claims[key] = []
        try:
            answers = await hub.link.put_many([(key, entry) for key, _, _, entry in batch])
            for (key, session, token, _), (status, _) in zip(batch, answers, strict=True):
                if hub.users.get(key) is not session:  # it left meanwhile; its release may have come first
                    if status != "taken":
                        hub.link.release(key, token)
                elif status == "taken":
                    self._taken_elsewhere(session)
                else:
                    assert session.name is not None
                    hub.directory.local_set(key, session.name, session.nbcall)
        finally:
            for key, *_ in batch:
                self._after_claim(key)
