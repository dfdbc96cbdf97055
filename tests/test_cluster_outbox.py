"""A cluster node's publisher (cluster/outbox.py) against a real redis-server: order, one
PUBLISH per burst for a node, the one loop turn a message waits for others, writing without
the transport's fast path, a Redis that stops reading (a bounded backlog, nothing accepted is
lost once it reads again), and a publisher connection Redis closes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis as redis_sync
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, Connection

from nbcall._testing.redis import RedisServer, redis_server
from nbcall.signaling.cluster import outbox as outbox_module
from nbcall.signaling.cluster.outbox import HIGH_WATER, MAX_WRITE_BYTES, Outbox, _stream_of

A, B = b"test:to:a", b"test:to:b"
USERS, HELD = "test:users", "test:node:n1:users"


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


class Publisher:
    """What RedisLink gives its outbox: a new connection each time, CLIENT REPLY OFF."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conns: list[AbstractConnection] = []
        self.failures: list[BaseException] = []

    @property
    def connects(self) -> int:
        return len(self.conns)

    async def connect(self) -> AbstractConnection:
        conn = Connection(host="127.0.0.1", port=self.port, protocol=2, socket_timeout=None)
        await conn.connect()  # type: ignore[no-untyped-call]
        await conn.send_packed_command(conn.pack_command("CLIENT", "REPLY", "OFF"), False)
        self.conns.append(conn)
        return conn

    def failed(self, exc: BaseException) -> None:
        self.failures.append(exc)

    async def close(self) -> None:
        for conn in self.conns:
            await conn.disconnect(nowait=True)


@pytest.fixture
async def publisher(redis: RedisServer) -> AsyncIterator[tuple[Outbox, Publisher]]:
    pub = Publisher(redis.port)
    outbox = Outbox((USERS, HELD), "n1", pub.connect, pub.failed)
    stopping = False
    task = asyncio.create_task(outbox.run(lambda: stopping))
    await until(lambda: pub.connects == 1)
    yield outbox, pub
    stopping = True
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await pub.close()


@pytest.fixture
async def subscriber(redis: RedisServer) -> AsyncIterator[Any]:
    client = aioredis.Redis(port=redis.port, protocol=2)
    pubsub = client.pubsub()
    await pubsub.subscribe(A.decode(), B.decode())
    for _ in range(2):
        await pubsub.get_message(timeout=2)  # the confirmations
    yield pubsub
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await client.aclose()


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        await asyncio.sleep(0.01)


def envelope(n: int, size: int = 0) -> bytes:
    return b'["h",%d]\n' % n + b"x" * size


async def payloads(pubsub: Any, count: int, timeout: float = 10.0) -> list[tuple[bytes, bytes]]:
    """The next ``count`` pub/sub payloads, as (channel, data)."""
    got: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        message = await pubsub.get_message(timeout=max(0.01, deadline - time.monotonic()))
        if message is None and time.monotonic() > deadline:
            raise AssertionError(f"{len(got)} of {count} payloads arrived")
        if message is not None and message["type"] == "message":
            got.append((message["channel"], message["data"]))
    return got


async def envelopes(pubsub: Any, count: int, timeout: float = 10.0) -> list[tuple[bytes, int]]:
    """The next ``count`` envelopes, as (channel, sequence number), however they were batched."""
    got: list[tuple[bytes, int]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        remaining = max(0.01, deadline - time.monotonic())
        for channel, data in await payloads(pubsub, 1, remaining):
            got += [(channel, n) for n in numbers(data)]
    return got


def numbers(data: bytes) -> list[int]:
    """The sequence numbers of the envelopes in one payload (header, body, header, body...)."""
    return [int(head[len(b'["h",') : -1]) for head in data.split(b"\n")[::2]]


async def test_a_burst_for_one_node_is_one_publish_and_everything_keeps_its_order(
    redis: RedisServer, publisher: tuple[Outbox, Publisher], subscriber: Any
) -> None:
    outbox, _ = publisher
    sync = redis_sync.Redis(port=redis.port)
    sync.hset(USERS, "alice", '{"n":"alice","node":"n1","g":"t1"}')
    sync.sadd(HELD, "alice")
    sync.hset(USERS, "bob", '{"n":"bob","node":"n1","g":"t3"}')  # registered here again since
    sync.sadd(HELD, "bob")
    for n in range(50):
        assert outbox.put(A, envelope(n))
    assert outbox.put(A, b'{"t":"d","node":"n1"}')  # an event (JSON object) goes alone
    for n in range(50, 100):
        assert outbox.put(B, envelope(n))
    outbox.release("alice", "t1")  # after everything above
    outbox.release("bob", "t2")  # the earlier registration's: leaves t3
    assert outbox.put(A, envelope(100))
    got = await payloads(subscriber, 4)
    assert [(channel, numbers(data) if data[:1] == b"[" else data) for channel, data in got] == [
        (A, list(range(50))),
        (A, b'{"t":"d","node":"n1"}'),
        (B, list(range(50, 100))),
        (A, [100]),
    ]
    assert sync.hget(USERS, "alice") is None and not sync.sismember(HELD, "alice")
    assert sync.hget(USERS, "bob") == b'{"n":"bob","node":"n1","g":"t3"}' and sync.sismember(HELD, "bob")
    assert outbox.published == 102 and outbox.dropped == 0  # 101 envelopes and the event
    sync.close()


async def test_a_message_waits_one_loop_turn_for_others_to_join_it(
    publisher: tuple[Outbox, Publisher], subscriber: Any
) -> None:
    outbox, _ = publisher
    outbox.put(A, envelope(0))
    await asyncio.sleep(0)  # the next turn of the loop: still in time
    outbox.put(A, envelope(1))
    outbox.put(A, envelope(2))
    await asyncio.sleep(0.05)  # long gone
    outbox.put(A, envelope(3))
    got = await payloads(subscriber, 2)
    assert [numbers(data) for _, data in got] == [[0, 1, 2], [3]]


async def test_without_the_transport_every_write_goes_through_the_task(
    redis: RedisServer, subscriber: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If redis-py's internals move, the outbox writes with send_packed_command only."""
    monkeypatch.setattr(outbox_module, "_stream_of", lambda _conn: None)
    pub = Publisher(redis.port)
    outbox = Outbox((USERS, HELD), "n1", pub.connect, pub.failed)
    task = asyncio.create_task(outbox.run(lambda: False))
    try:
        for n in range(60):
            outbox.put(A if n % 20 < 10 else B, envelope(n, 100))
            if n % 7 == 0:
                await asyncio.sleep(0.002)
        got = await envelopes(subscriber, 60)
        sent = {A: [n for n in range(60) if n % 20 < 10], B: [n for n in range(60) if n % 20 >= 10]}
        for channel in (A, B):
            assert [n for c, n in got if c == channel] == sent[channel]
        assert outbox._socket is None and pub.connects == 1 and not pub.failures
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pub.close()


async def test_a_redis_that_stops_reading_meets_a_bounded_backlog_and_loses_nothing_accepted(
    redis: RedisServer, publisher: tuple[Outbox, Publisher], subscriber: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox, pub = publisher
    monkeypatch.setattr(outbox_module, "MAX_PENDING_BYTES", 1 << 20)
    assert redis.proc is not None
    size = 8 * 1024
    accepted: list[int] = []
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        refused = 0
        for n in range(20_000):  # fills the socket buffers (several MB on loopback), then the backlog
            if outbox.put(A, envelope(n, size)):
                accepted.append(n)
            else:
                refused += 1
                if refused >= 10:
                    break
            if n % 16 == 0:
                await asyncio.sleep(0)  # the loop's turns: the writes happen
            stream = _stream_of(pub.conns[-1])
            assert stream is not None
            # What waits in the process is bounded, whatever Redis does.
            assert stream.transport.get_write_buffer_size() <= HIGH_WATER + MAX_WRITE_BYTES + size + 64
            assert outbox._queued_bytes <= (1 << 20) + size + 64
        assert refused >= 10, "the backlog never filled: Redis was not stopped?"
        assert outbox.dropped == refused
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    assert [n for _, n in await envelopes(subscriber, len(accepted), timeout=30)] == accepted
    assert not pub.failures


async def test_a_publisher_connection_redis_closes_is_replaced_without_a_failure(
    redis: RedisServer, publisher: tuple[Outbox, Publisher], subscriber: Any
) -> None:
    """Redis's ``timeout`` (or a proxy's idle cut) closes a publisher with nothing to send:
    not Redis going down.  The next message goes out on a new connection."""
    outbox, pub = publisher
    outbox.put(A, envelope(0))
    assert [numbers(data) for _, data in await payloads(subscriber, 1)] == [[0]]
    sync = redis_sync.Redis(port=redis.port)
    assert sync.client_kill_filter(_type="normal", skipme=True) >= 1
    sync.close()
    await until(lambda: outbox._socket is None)  # the close reached the transport
    outbox.put(A, envelope(1))
    outbox.put(A, envelope(2))
    got = await payloads(subscriber, 1)
    assert numbers(got[0][1]) == [1, 2]
    assert pub.connects == 2 and not pub.failures


async def test_abort_drops_a_connection_redis_does_not_read_and_the_next_message_goes_on_a_new_one(
    redis: RedisServer, publisher: tuple[Outbox, Publisher], subscriber: Any
) -> None:
    """What the link does when its heartbeat finds Redis silent: a close would wait for the
    full buffer to drain for as long as Redis does not read, and everything after it too."""
    outbox, pub = publisher
    assert redis.proc is not None
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        n = 0
        while outbox._socket is not None and not outbox._socket.paused:
            outbox.put(A, envelope(n, 8 * 1024))
            n += 1
            if n % 16 == 0:
                await asyncio.sleep(0)
        stuck = _stream_of(pub.conns[0])
        assert stuck is not None and stuck.transport.get_write_buffer_size() > 0
        outbox.clear()
        outbox.abort()
        assert stuck.transport.is_closing() and stuck.transport.get_write_buffer_size() == 0
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    outbox.put(A, envelope(n))
    got: list[int] = []
    while n not in got:  # some of those before the abort were already in the kernel's buffers
        got += [number for _, number in await envelopes(subscriber, 1)]
    assert got[-1] == n and pub.connects == 2 and not pub.failures


async def test_releases_past_the_bound_are_dropped_and_reported_as_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A release is never queued past the bound either (a client that registers and leaves in
    a loop while Redis is away); the failure makes the link count Redis as down, and it frees
    stale names when Redis is back (ClusterHub._on_up)."""
    monkeypatch.setattr(outbox_module, "MAX_PENDING_MESSAGES", 50)

    async def no_redis() -> AbstractConnection:
        raise ConnectionRefusedError("no Redis here")

    failures: list[BaseException] = []
    outbox = Outbox((USERS, HELD), "n1", no_redis, failures.append)
    task = asyncio.create_task(outbox.run(lambda: False))
    try:
        for n in range(60):
            outbox.release(f"user{n}", "t")
        await asyncio.sleep(0.05)
        assert len(outbox._queue) == 50
        assert sum(isinstance(f, BufferError) for f in failures) == 10
        assert all(isinstance(f, (BufferError, ConnectionRefusedError)) for f in failures)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
