"""Registers that meet other work on their name, in one node: a claim in flight, Redis coming
back (the node publishing its users), a claim Redis does not answer, a takeover from another
node.  In-process hubs on a real redis-server; a gate holds a claim at a chosen point, so
each interleaving is reached every time rather than by chance."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import redis as redis_sync

from nbcall._testing.redis import RedisServer, redis_server
from nbcall.signaling import protocol as p
from nbcall.signaling.cluster.config import ClusterConfig, Keys
from nbcall.signaling.cluster.hub import ClusterHub
from nbcall.signaling.hub import Hub
from nbcall.signaling.names import name_key
from nbcall.signaling.session import Session


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    return f"t{secrets.token_hex(3)}"  # each test its own cluster on the shared Redis


@pytest.fixture
def sync(redis: RedisServer) -> Iterator[redis_sync.Redis]:
    client = redis_sync.Redis(port=redis.port)
    yield client
    client.close()


class RecordingPeer:
    """A client's socket as the hub sees it: what was sent, and whether it was closed."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: int | None = None

    def send_bytes(self, data: bytes) -> bool:
        self.sent.append(orjson.loads(data))
        return self.closed is None

    def close_now(self, code: int, reason: str) -> None:
        self.closed = code

    def unsent_bytes(self) -> int:
        return 0

    def kinds(self) -> list[str]:
        return [m["type"] + (f":{m['code']}" if "code" in m else "") for m in self.sent]


def register(hub: Hub, name: str, credential: str | None = None) -> tuple[Session, RecordingPeer]:
    peer = RecordingPeer()
    session = hub.connect(peer)
    message: dict[str, Any] = {"type": "register", "username": name, "client": "test"}
    if credential is not None:
        message["credential"] = credential
    hub.receive(session, orjson.dumps(message))
    return session, peer


class Gate:
    """Holds ``hub``'s claims of one mode (``claim`` or ``put``) before they reach Redis, or
    after Redis ran them (``after``); ``lose_reply``: Redis runs it, the node hears nothing."""

    def __init__(self, hub: ClusterHub, mode: str, *, after: bool = False, lose_reply: bool = False) -> None:
        self.mode = mode
        self.entered = asyncio.Event()
        self.open = asyncio.Event()
        real: Callable[..., Awaitable[tuple[str, str]]] = hub.link.claim

        async def claim(key: str, entry: bytes, hashed: str, mode: str = "claim") -> tuple[str, str]:
            if mode != self.mode:
                return await real(key, entry, hashed, mode)
            if not after:
                self.entered.set()
                await self.open.wait()
            result = await real(key, entry, hashed, mode)
            if after:
                self.entered.set()
                await self.open.wait()
            if lose_reply:
                raise asyncio.TimeoutError("no reply from Redis")
            return result

        hub.link.claim = claim  # type: ignore[method-assign,assignment]

    async def reached(self) -> None:
        await asyncio.wait_for(self.entered.wait(), 3)


@asynccontextmanager
async def node(redis: RedisServer, prefix: str, node_id: str, *, started: bool) -> AsyncIterator[ClusterHub]:
    """A node: ``started`` runs its link (heartbeat, subscriber); otherwise only its writer to
    Redis runs, ``link.up`` is the test's to set and ``_on_up`` the test's to call."""
    hub = ClusterHub(None, ClusterConfig(redis.url, node_id=node_id, prefix=prefix))
    writer = None
    if started:
        await hub.start()
        for _ in range(100):
            if hub.link.up:
                break
            await asyncio.sleep(0.02)
        assert hub.link.up
    else:
        writer = asyncio.create_task(hub.link.outbox.run(lambda: False))
    try:
        yield hub
    finally:
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            await hub.link.redis.aclose()
        else:
            await hub.stop()


def entry(sync: redis_sync.Redis, prefix: str, name: str) -> dict[str, Any] | None:
    raw: bytes | None = sync.hget(Keys(prefix).users, name_key(name))  # type: ignore[assignment]
    return orjson.loads(raw) if raw is not None else None


async def until(check: Callable[[], bool], what: str, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.01)


def held_as_cluster_says(hub: ClusterHub, sync: redis_sync.Redis, prefix: str) -> None:
    """Every user of the node is in Redis with the node's token, and no token outlives its user."""
    assert set(hub._tokens) == set(hub.users), (hub._tokens, list(hub.users))
    for key, session in hub.users.items():
        assert session.name is not None
        found = entry(sync, prefix, session.name)
        assert found is not None and found["node"] == hub.node and found["g"] == hub._tokens[key], (key, found)


async def test_a_credential_with_non_ascii_characters_is_refused_not_an_internal_error() -> None:
    hub = Hub()
    register(hub, "alice", credential="right")
    _, peer = register(hub, "alice", credential="é")
    assert peer.kinds() == ["error:name_taken"]


async def test_registers_waiting_behind_a_claim_are_all_answered_whatever_one_of_them_sends(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    async with node(redis, prefix, "r0", started=False) as hub:
        hub.link.up = True
        gate = Gate(hub, "claim")
        _, first_peer = register(hub, "bob", credential="C")
        await gate.reached()
        _, odd_peer = register(hub, "bob", credential="é")
        victim, victim_peer = register(hub, "bob", credential="C")
        hub.receive(victim, b'{"type":"ping"}')  # held while it waits, then handled in order
        gate.open.set()
        await until(lambda: bool(victim_peer.sent), "the register behind the odd one was never answered")
        assert first_peer.kinds()[0] == "registered" and first_peer.closed == p.CLOSE_REPLACED
        assert odd_peer.kinds() == ["error:name_taken"]
        assert victim_peer.kinds() == ["registered", "pong"] and hub.users[name_key("bob")] is victim
        await until(lambda: entry(sync, prefix, "bob") is not None, "bob is not in Redis")
        held_as_cluster_says(hub, sync, prefix)


async def test_a_register_while_the_node_publishes_its_users_is_claimed(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """Redis is back: the node puts the users it accepted while cut off.  A user registering
    meanwhile is claimed in Redis like any other (it was taken locally only, and never put)."""
    async with node(redis, prefix, "r0", started=False) as hub:
        register(hub, "bob")  # cut off: this node's rule only
        gate = Gate(hub, "put")
        publishing = asyncio.create_task(hub._on_up())
        await gate.reached()
        _, carol = register(hub, "carol")
        gate.open.set()
        await asyncio.wait_for(publishing, 5)
        hub.link.up = True
        await until(lambda: bool(carol.sent), "carol was not answered")
        assert carol.kinds() == ["registered"]
        held_as_cluster_says(hub, sync, prefix)


async def test_a_user_who_leaves_during_its_put_and_comes_back_is_in_redis(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """Redis is back and the node puts alice, then dave.  During alice's put she leaves and
    registers again (she waits for the put), and dave leaves before his turn: alice ends in
    Redis with her new registration's token, dave nowhere, and no token is kept for him."""
    async with node(redis, prefix, "r0", started=False) as hub:
        first, _ = register(hub, "alice", credential="one")
        dave, _ = register(hub, "dave")
        assert list(hub.users) == [name_key("alice"), name_key("dave")]  # the order of the puts
        gate = Gate(hub, "put")
        publishing = asyncio.create_task(hub._on_up())
        await gate.reached()
        assert list(hub._claims) == [name_key("alice")]
        hub.disconnect(first)
        _, again = register(hub, "alice", credential="two")
        hub.disconnect(dave)
        gate.open.set()
        await asyncio.wait_for(publishing, 5)
        hub.link.up = True
        await until(lambda: bool(again.sent), "alice was not answered")
        assert again.kinds() == ["registered"]
        await asyncio.sleep(0.1)  # the releases the outbox writes
        held_as_cluster_says(hub, sync, prefix)
        assert list(hub.users) == [name_key("alice")] and entry(sync, prefix, "dave") is None


async def test_a_register_behind_a_put_that_finds_the_name_taken_elsewhere_is_refused_too(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """While this node was cut off, another node's user took alice; the node's own alice is
    closed when its put finds that, and her reconnect that waited for the put is refused: the
    cluster keeps one holder."""
    async with node(redis, prefix, "r0", started=False) as hub:
        _, first_peer = register(hub, "alice", credential="C")
        keys = Keys(prefix)
        now_s, now_us = sync.time()
        sync.zadd(keys.nodes, {"r1": now_s * 1000 + now_us // 1000})  # a live node
        theirs = {"n": "alice", "node": "r1", "c": True, "h": "x", "g": "t"}
        sync.hset(keys.users, name_key("alice"), orjson.dumps(theirs))
        gate = Gate(hub, "put")
        publishing = asyncio.create_task(hub._on_up())
        await gate.reached()
        _, again = register(hub, "alice", credential="C")
        gate.open.set()
        await asyncio.wait_for(publishing, 5)
        await until(lambda: bool(again.sent), "the reconnect was not answered")
        assert first_peer.closed == p.CLOSE_REPLACED and again.kinds() == ["error:name_taken"]
        assert name_key("alice") not in hub.users and entry(sync, prefix, "alice") == theirs
        held_as_cluster_says(hub, sync, prefix)


async def test_a_claim_redis_ran_but_did_not_answer_frees_the_name_if_its_socket_closed(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    async with node(redis, prefix, "r0", started=False) as hub:
        hub.link.up = True
        gate = Gate(hub, "claim", after=True, lose_reply=True)
        session, _ = register(hub, "erin")
        await gate.reached()
        assert entry(sync, prefix, "erin") is not None  # Redis ran it
        hub.disconnect(session)
        gate.open.set()
        await until(lambda: entry(sync, prefix, "erin") is None, "erin stays held in Redis by nobody")
        assert not hub.link.up  # and Redis counts as down: the next beat publishes who is here


async def test_a_takeover_from_a_socket_that_closed_while_claiming_still_moves_the_user(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """alice on r0; her credential's new socket on r1 wins the name in Redis and closes before
    r1 hears so.  r0 must still let her go (else r0 holds alice with no entry in Redis)."""
    async with node(redis, prefix, "r0", started=True) as r0, node(redis, prefix, "r1", started=True) as r1:
        _, old = register(r0, "alice", credential="C")
        await until(lambda: entry(sync, prefix, "alice") is not None, "alice is not in Redis")
        gate = Gate(r1, "claim", after=True)
        new, _ = register(r1, "alice", credential="C")
        await gate.reached()
        r1.disconnect(new)
        gate.open.set()
        await until(lambda: old.closed == p.CLOSE_REPLACED, "r0 kept the user it gave up in Redis")
        await until(lambda: entry(sync, prefix, "alice") is None, "the name stays held by nobody")
        assert name_key("alice") not in r0.users and name_key("alice") not in r1.users
        _, later = register(r0, "alice")  # free for anyone now
        await until(lambda: bool(later.sent), "no answer")
        assert later.kinds()[0] == "registered"


async def test_a_takeover_waits_for_the_old_nodes_own_claim_of_the_name(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """r0 claims alice (Redis has run it; r0 has not registered her yet) when her credential's
    socket on r1 takes the name over: r0 answers r1 only once its own register is done, and
    gives her up then, so the cluster keeps one holder."""
    async with node(redis, prefix, "r0", started=True) as r0, node(redis, prefix, "r1", started=True) as r1:
        gate = Gate(r0, "claim", after=True)
        _, first = register(r0, "alice", credential="C")
        await gate.reached()
        _, second = register(r1, "alice", credential="C")
        await asyncio.sleep(0.2)  # r1's claim moved the name; its question waits on r0
        gate.open.set()
        await until(lambda: bool(second.sent), "r1 did not answer")
        assert second.kinds()[0] == "registered"
        await until(lambda: first.closed == p.CLOSE_REPLACED, "r0 still holds alice")
        assert name_key("alice") not in r0.users and name_key("alice") not in r0._tokens
        assert entry(sync, prefix, "alice")["node"] == "r1"  # type: ignore[index]


async def test_a_failure_while_publishing_the_users_does_not_stop_the_heartbeat(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """A bug in ``_on_up`` (here: made to raise once) costs a retry at the next beat, not the
    beats themselves: a node that stopped beating would be reaped with its users online."""
    async with node(redis, prefix, "r0", started=True) as hub:
        real = hub._on_up
        calls = 0

        async def failing_once() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("a bug")
            await real()

        hub.link._on_up = failing_once
        _, alice = register(hub, "alice")
        await until(lambda: bool(alice.sent), "alice was not answered")
        sync.delete(Keys(prefix).known("r0"))  # as after a Redis restart: the node publishes again
        await until(lambda: calls >= 2, "the node stopped beating after the failure", timeout=5)
        await until(lambda: hub.link.up and entry(sync, prefix, "alice") is not None, "alice not published again")
        assert all(not task.done() for task in hub.link._tasks)
