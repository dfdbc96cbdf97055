"""The node's connection to Redis: a bounded, pipelined publisher, one subscriber, the
heartbeat that keeps this node's names alive and reaps dead nodes, and the up/down state.

Cross-node messages go over Redis **pub/sub**, one channel per node: Redis delivers a
channel's messages in the order one connection published them, which is all signaling
needs (one node's writer publishes everything for another node in order: a call's
candidates never overtake its offer), at the cost of one Redis hop.  Delivery is
at-most-once, as on a websocket: a node that is gone has no users to deliver to, and
its users' partners are told by the dead-node sweep.  Streams would add a write, a read
and trimming per message for a durability signaling does not need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection

from . import scripts
from .config import ClusterConfig, Keys
from .inbox import Inbox
from .outbox import REDIS_FAILURES, Outbox

log = logging.getLogger("nbcall.cluster")

_FAILURES = REDIS_FAILURES
CLAIM_SLOTS = 32  # claims in flight at once (more wait their turn); beats, publishing and reading have their own
STOP_WAIT = 3.0  # seconds stop() waits for the link's tasks


class RedisLink:
    """``on_message(data)`` for each message on this node's channels; ``on_up()`` when
    Redis answers again, for the first time, or without knowing this node (it restarted);
    ``on_down()`` when it stops answering."""

    def __init__(
        self,
        config: ClusterConfig,
        on_message: Callable[[bytes], None],
        on_up: Callable[[], Awaitable[None]],
        on_down: Callable[[], None],
    ) -> None:
        self.config = config
        self.node = config.node_id
        self.keys = Keys(config.prefix)
        self.inbox = self.keys.inbox(self.node)
        options: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 1.0, "health_check_interval": 0}
        self.redis = aioredis.Redis.from_url(config.url, max_connections=CLAIM_SLOTS + 8, **options)
        # A burst of registers (a class joining at once) queues its claims here, FIFO, rather
        # than failing past the pool's cap ("Too many connections").
        self._claim_slots = asyncio.Semaphore(CLAIM_SLOTS)
        self._claim = self.redis.register_script(scripts.CLAIM)
        # The beats have a connection of their own: never behind a burst of claims (a node
        # that misses its beats for the expiry is reaped with all its users).
        self._beats = aioredis.Redis.from_url(config.url, single_connection_client=True, **options)
        self._beat = self._beats.register_script(scripts.HEARTBEAT)
        self._keep_alive = self._beats.register_script(scripts.KEEP_ALIVE)
        self._on_message, self._on_up, self._on_down = on_message, on_up, on_down
        self.up = False
        self.down_since: float | None = time.monotonic()
        self.rtt = 0.0  # seconds, the last heartbeat's round trip
        self.nodes: list[str] = []  # live nodes, as of the last heartbeat
        release_keys = (self.keys.users, self.keys.node_users(self.node))
        self.outbox = Outbox(release_keys, self.node, self._open_publisher, self.failed)
        self._all = self.keys.all.encode()
        # The subscriber's own connection (the publisher's is the outbox's).
        self._sub: AbstractConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()
        # Stopping is also a flag the loops check: a cancellation that lands as a connect or
        # read times out comes out of redis-py as a TimeoutError (handled as "Redis down"), and
        # a loop that went on after it kept the node from exiting on SIGTERM (seen: 3 of 24
        # nodes whose Redis had gone).
        self._stopping = False

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.outbox.run(lambda: self._stopping)),
            asyncio.create_task(self._reader()),
            asyncio.create_task(self._heartbeat()),
        ]
        # Serving before being subscribed would lose the first messages for our users.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a task still running after STOP_WAIT is left to the process's exit.
            _, running = await asyncio.wait(self._tasks, timeout=STOP_WAIT)
            for task in running:
                log.warning("node %s: %s did not stop within %s s", self.node, task.get_coro(), STOP_WAIT)
        with contextlib.suppress(*_FAILURES):
            # A stopping node looks dead at once: the next sweep (within a heartbeat) frees
            # its names and tells its users' partners, instead of after the expiry.
            await self.redis.zadd(self.keys.nodes, {self.node: 0})
        self.outbox.abort()  # (its task's end did already)
        if self._sub is not None:
            with contextlib.suppress(*_FAILURES):
                await self._sub.disconnect(nowait=True)  # the inbox's protocol: no stream to wait for
        with contextlib.suppress(*_FAILURES):
            await self.redis.aclose()
        with contextlib.suppress(*_FAILURES):
            await self._beats.aclose()

    def _connection(self) -> AbstractConnection:
        """A connection of our own to the same Redis (URL, password, TLS as the client's),
        outside the pool: RESP2 (pub/sub messages as plain arrays, not RESP3 push frames that
        redis-py logs one by one) and no per-read timeout (each would arm a timer; a silent
        Redis is found by the heartbeat, whose failure closes these connections)."""
        pool = self.redis.connection_pool
        kwargs = {**pool.connection_kwargs, "protocol": 2, "socket_timeout": None}
        return pool.connection_class(**kwargs)

    # -- publishing (bounded: outbox.py) -----------------------------------------------------

    def publish(self, node: str, data: bytes) -> bool:
        """Queue ``data`` for ``node``'s channel; False (dropped) when Redis is down or slow."""
        if not self.up:
            self.outbox.dropped += 1
            return False
        return self.outbox.put(self.keys.inbox(node).encode(), data)

    def broadcast(self, data: bytes) -> bool:
        """Queue ``data`` for every node; False when Redis is down or slow (not queued)."""
        return self.up and self.outbox.put(self._all, data)

    def release(self, key: str, token: str) -> None:
        """Free a name this node held, if the registration ``token`` wrote it (in order with
        the messages queued before)."""
        self.outbox.release(key, token)

    async def _open_publisher(self) -> AbstractConnection:
        conn = self._connection()
        await conn.connect()  # type: ignore[no-untyped-call]
        # No replies on this connection: nothing to read, no wake-up per batch.
        await conn.send_packed_command(conn.pack_command("CLIENT", "REPLY", "OFF"), False)
        return conn

    # -- the registry ------------------------------------------------------------------------

    def _claim_keys_args(self, key: str, entry: bytes, credential_hash: str, mode: str) -> tuple[list[str], list[Any]]:
        """scripts.CLAIM's KEYS and ARGV."""
        keys = [self.keys.users, self.keys.nodes, self.keys.node_users(self.node)]
        expiry = int(self.config.node_expiry * 1000)
        return keys, [key, self.node, entry, credential_hash, expiry, self.config.prefix, mode]

    async def claim(self, key: str, entry: bytes, credential_hash: str, mode: str = "claim") -> tuple[str, str]:
        keys, args = self._claim_keys_args(key, entry, credential_hash, mode)
        async with self._claim_slots:
            status, info = await self._claim(keys=keys, args=args)
        return _text(status), _text(info)

    async def put_many(self, entries: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
        """Users this node already accepted, in one pipeline: CLAIM's "put" for each."""
        if not entries:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for key, entry in entries:
            keys, args = self._claim_keys_args(key, entry, "", "put")
            await self._claim(keys=keys, args=args, client=pipe)
        return [(_text(status), _text(info)) for status, info in await pipe.execute()]

    async def keep_alive(self) -> None:
        """This node's beat, without the sweep (while it publishes its users, between batches)."""
        await self._keep_alive(keys=[self.keys.nodes], args=[self.node])

    async def held(self) -> dict[str, str]:
        """The names Redis says this node holds, with the token of the registration that wrote
        each entry ("" when the entry is gone or another node's: a release just forgets it)."""
        members = sorted(_text(m) for m in await self.redis.smembers(self.keys.node_users(self.node)))
        if not members:
            return {}
        tokens: dict[str, str] = {}
        for key, raw in zip(members, await self.redis.hmget(self.keys.users, members), strict=True):
            entry = orjson.loads(raw) if raw is not None else {}
            tokens[key] = entry.get("g", "") if entry.get("node") == self.node else ""
        return tokens

    async def entries(self) -> dict[bytes, bytes]:
        result = await self.redis.hgetall(self.keys.users)
        return {_bytes(k): _bytes(v) for k, v in result.items()}

    # -- receiving ---------------------------------------------------------------------------

    async def _reader(self) -> None:
        channels = (self.inbox, self.keys.all)
        while not self._stopping:
            conn = self._sub = self._connection()
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
                await conn.send_command("SUBSCRIBE", *channels, check_health=False)
                for _ in channels:
                    await conn.read_response()  # the confirmations
                inbox = Inbox.take_over(conn, self._on_message)
                self._subscribed.set()
                if inbox is not None:
                    await inbox.lost
                    continue
                # Without hiredis: read through redis-py, a task's turn per message.
                while True:
                    message = await conn.read_response()
                    if type(message) is list and message[0] == b"message":
                        self._deliver(message[2])
            except _FAILURES as exc:
                self._failed(exc)
            finally:
                with contextlib.suppress(*_FAILURES):
                    await conn.disconnect(nowait=True)
            await asyncio.sleep(0.25)

    def _deliver(self, data: bytes) -> None:
        try:
            self._on_message(data)
        except Exception:  # one bad message from another node must not stop the inbox
            log.exception("node %s: a message from Redis could not be handled", self.node)

    # -- liveness ------------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        keys = [self.keys.nodes, self.keys.users, self.keys.known(self.node)]
        args: list[str | int] = [self.node, int(self.config.node_expiry * 1000), self.config.prefix]
        while not self._stopping:
            started = time.monotonic()
            try:
                result = await self._beat(keys=keys, args=args)
                self.rtt = time.monotonic() - started
                nodes = await self._beats.zrange(self.keys.nodes, 0, -1)
                self.nodes = [_text(n) for n in nodes]
                known = bool(result[0])
                if (not self.up or not known) and not self._subscribed.is_set():
                    # Read everyone's names only once our channels are subscribed (again): a
                    # node that re-publishes after our read is then heard, because its presence
                    # batch is published after its write. Otherwise a join could fall between.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._subscribed.wait(), self.config.heartbeat)
                if (not self.up or not known) and self._subscribed.is_set():
                    if not known and self.up:
                        log.warning("node %s: Redis did not know this node (restarted, or we were reaped)", self.node)
                    await self._on_up()  # publish our users again, and read everyone's
                    if not self.up:
                        log.info("node %s: Redis reachable, cluster mode on (%d nodes)", self.node, len(self.nodes))
                    self.up, self.down_since = True, None
                for node in result[1:]:
                    dead = _text(node)
                    log.warning("node %s: node %s stopped beating; its users are released", self.node, dead)
                    self.broadcast(b'{"t":"dead","node":"' + dead.encode() + b'"}')
            except _FAILURES as exc:
                self._failed(exc)
            except Exception as exc:  # a bug in _on_up must not stop the beats (the node would be reaped)
                log.exception("node %s: publishing this node's users failed", self.node)
                self._failed(exc)
            await asyncio.sleep(max(0.0, self.config.heartbeat - (time.monotonic() - started)))

    def failed(self, exc: BaseException) -> None:
        """A request to Redis failed: Redis counts as down until the next beat's _on_up."""
        if not self._stopping:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if self.up:
            log.error("node %s: Redis unreachable (%s); serving this node's users only", self.node, exc)
            self.up, self.down_since = False, time.monotonic()
            self._subscribed.clear()
            self.outbox.clear()
            self.outbox.abort()  # a write stuck on a silent Redis is dropped, not waited for
            if self._sub is not None:  # and a read
                self._disconnect_soon(self._sub)
            self._on_down()

    def _disconnect_soon(self, conn: AbstractConnection) -> None:
        task = asyncio.create_task(conn.disconnect(nowait=True))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
