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
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from . import scripts
from .config import MAX_BATCH, MAX_PENDING_BYTES, MAX_PENDING_MESSAGES, ClusterConfig, Keys

log = logging.getLogger("nbcall.cluster")

_FAILURES = (RedisError, OSError, asyncio.TimeoutError)


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
        self.redis = aioredis.Redis.from_url(
            config.url, socket_timeout=2.0, socket_connect_timeout=1.0, health_check_interval=0
        )
        self._claim = self.redis.register_script(scripts.CLAIM)
        self._release = self.redis.register_script(scripts.RELEASE)
        self._beat = self.redis.register_script(scripts.HEARTBEAT)
        self._on_message, self._on_up, self._on_down = on_message, on_up, on_down
        self.up = False
        self.down_since: float | None = time.monotonic()
        self.rtt = 0.0  # seconds, the last heartbeat's round trip
        self.nodes: list[str] = []  # live nodes, as of the last heartbeat
        self.published = 0  # messages and bytes handed to Redis (for /metrics)
        self.published_bytes = 0
        self.dropped = 0  # messages not published: Redis down or the backlog full
        self._queue: deque[tuple[Any, ...]] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._writer()),
            asyncio.create_task(self._reader()),
            asyncio.create_task(self._heartbeat()),
        ]
        # Serving before being subscribed would lose the first messages for our users.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, *_FAILURES):
                await task
        with contextlib.suppress(*_FAILURES):
            # A stopping node looks dead at once: the next sweep (within a heartbeat) frees
            # its names and tells its users' partners, instead of after the expiry.
            await self.redis.zadd(self.keys.nodes, {self.node: 0})
        with contextlib.suppress(*_FAILURES):
            await self.redis.aclose()

    # -- publishing (bounded) --------------------------------------------------------------

    def room(self) -> bool:
        """Whether a cross-node message can be accepted now."""
        return self.up and len(self._queue) < MAX_PENDING_MESSAGES and self._queued_bytes < MAX_PENDING_BYTES

    def publish(self, node: str, data: bytes) -> bool:
        """Queue ``data`` for ``node``'s channel; False (dropped) when Redis is down or slow."""
        if not self.room():
            self.dropped += 1
            return False
        self._queue.append((0, self.keys.inbox(node), data))
        self._queued_bytes += len(data)
        self._wake.set()
        return True

    def broadcast(self, data: bytes) -> None:
        if self.up:
            self._queue.append((0, self.keys.all, data))
            self._queued_bytes += len(data)
            self._wake.set()

    def release(self, key: str) -> None:
        """Free a name this node held (in order with the messages queued before)."""
        self._queue.append((1, key))
        self._wake.set()

    async def _writer(self) -> None:
        queue = self._queue
        while True:
            await self._wake.wait()
            self._wake.clear()
            while queue:
                pipe = self.redis.pipeline(transaction=False)
                size = 0
                for _ in range(min(len(queue), MAX_BATCH)):
                    item = queue.popleft()
                    if item[0] == 0:
                        pipe.publish(item[1], item[2])
                        size += len(item[2])
                    else:
                        keys = [self.keys.users, self.keys.node_users(self.node)]
                        await self._release(keys=keys, args=[item[1], self.node], client=pipe)  # queued
                self._queued_bytes -= size
                count = len(pipe)
                try:
                    await pipe.execute()
                    self.published += count
                    self.published_bytes += size
                except _FAILURES as exc:
                    self.dropped += count
                    self._failed(exc)

    # -- the registry ------------------------------------------------------------------------

    async def claim(self, key: str, entry: bytes, credential_hash: str, mode: str = "claim") -> tuple[str, str]:
        keys = [self.keys.users, self.keys.nodes, self.keys.node_users(self.node)]
        expiry = int(self.config.node_expiry * 1000)
        args: list[bytes | str | int] = [key, self.node, entry, credential_hash, expiry, self.config.prefix, mode]
        status, info = await self._claim(keys=keys, args=args)
        return _text(status), _text(info)

    async def held(self) -> set[str]:
        """The names Redis says this node holds."""
        members = await self.redis.smembers(self.keys.node_users(self.node))
        return {_text(m) for m in members}

    async def entries(self) -> dict[bytes, bytes]:
        result = await self.redis.hgetall(self.keys.users)
        return {_bytes(k): _bytes(v) for k, v in result.items()}

    # -- receiving ---------------------------------------------------------------------------

    async def _reader(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.inbox, self.keys.all)
                self._subscribed.set()
                handle = self._on_message
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        handle(message["data"])
            except _FAILURES as exc:
                self._failed(exc)
            finally:
                with contextlib.suppress(*_FAILURES):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(0.25)

    # -- liveness ------------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        keys = [self.keys.nodes, self.keys.users, self.keys.known(self.node)]
        args: list[str | int] = [self.node, int(self.config.node_expiry * 1000), self.config.prefix]
        while True:
            started = time.monotonic()
            try:
                result = await self._beat(keys=keys, args=args)
                self.rtt = time.monotonic() - started
                nodes = await self.redis.zrange(self.keys.nodes, 0, -1)
                self.nodes = [_text(n) for n in nodes]
                known = bool(result[0])
                if not self.up or not known:
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
            await asyncio.sleep(max(0.0, self.config.heartbeat - (time.monotonic() - started)))

    def _failed(self, exc: BaseException) -> None:
        if self.up:
            log.error("node %s: Redis unreachable (%s); serving this node's users only", self.node, exc)
            self.up, self.down_since = False, time.monotonic()
            self._subscribed.clear()
            self._queue.clear()
            self._queued_bytes = 0
            self._on_down()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
