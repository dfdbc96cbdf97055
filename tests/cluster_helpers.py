"""Helpers of the cluster tests: unique names on shared nodes, waiting for replication, and
in-process nodes on a real redis-server with a gate that holds a claim at a chosen point."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import redis as redis_sync

from nbcall._testing.redis import RedisServer
from nbcall.signaling import SignalingClient
from nbcall.signaling.cluster.config import ClusterConfig, Keys
from nbcall.signaling.cluster.hub import ClusterHub
from nbcall.signaling.cluster.registrar import credential_hash, registry_entry
from nbcall.signaling.hub import Hub
from nbcall.signaling.names import name_key
from nbcall.signaling.session import Session

SDP = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
_counter = itertools.count()


def unique(*names: str) -> list[str]:
    """The same names with a suffix of this test's own: the nodes are shared by a module's tests."""
    n = next(_counter)
    return [f"{name}{n}" for name in names]


def seed_json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


async def until_online(client: SignalingClient, *names: str, timeout: float = 3.0) -> None:
    """Until ``client``'s node lists every one of ``names`` (joins reach other nodes in ~50 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        await client.send({"type": "list"})
        users = set((await client.expect("users"))["users"])
        if set(names) <= users:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{set(names) - users} not online on this node after {timeout} s")
        await asyncio.sleep(0.02)


async def until_offline(client: SignalingClient, name: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        await client.send({"type": "list"})
        if name not in (await client.expect("users"))["users"]:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} still online after {timeout} s")
        await asyncio.sleep(0.05)


async def in_a_call(alice: SignalingClient, bob: SignalingClient, call_id: str = "call-1") -> None:
    await alice.send({"type": "invite", "to": bob.username, "call_id": call_id})
    await bob.expect("invite")
    await bob.send({"type": "accept", "to": alice.username})
    await alice.expect("accept")


async def drain(client: SignalingClient, *, flooded: bool = False) -> list[dict[str, Any]]:
    """What reached ``client``, taken from its queue after a round trip through its connection
    (``flooded``: retried, the client may be past its rate limit).

    A barrier only for what ``client``'s node had already handled: its own frames, and the
    forwards it got before the ping.  What is on its way from another node is not, so a
    caller first waits for something that came back through that node after what it sent
    (an invite's ``busy`` from the callee's node, say; see :func:`until`): a node handles a
    message it gets from Redis at once, and one node publishes for another in order on one
    connection (cluster/link.py).
    """
    await client.round_trip(retry_every=0.2 if flooded else None)
    return client.pending()


async def until(client: SignalingClient, kind: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The messages ``client`` gets up to the first of type ``kind`` (included), errors too."""
    got: list[dict[str, Any]] = []
    while not got or got[-1]["type"] != kind:
        got.append(await client.recv(timeout))
    return got


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


async def across(sender: ClusterHub, receiver: ClusterHub, timeout: float = 5.0) -> None:
    """A barrier from one node to another: when it returns, ``receiver`` has handled every
    message ``sender`` had published for it before the call.  A node publishes for the others
    in order on one connection and handles what Redis pushes to it at once, in order; so a
    marker user registered on ``sender`` (its join, published after everything before it)
    appearing in ``receiver``'s directory means everything before it has been handled too."""
    name = f"marker{next(_markers)}"
    session, peer = register(sender, name)
    await until_true(lambda: bool(peer.sent), f"{sender.node} did not register the marker", timeout)
    await until_true(lambda: receiver.directory.get(name_key(name)) is not None,
                     f"{receiver.node} did not hear of {sender.node}'s marker", timeout)  # fmt: skip
    sender.disconnect(session)


_markers = itertools.count()


class Gate:
    """Holds ``hub``'s claims of one mode (``claim``, or ``put``: a node publishing its users,
    a batch at a time) before they reach Redis, or after Redis ran them (``after``);
    ``lose_reply``: Redis runs it, the node hears nothing."""

    def __init__(self, hub: ClusterHub, mode: str, *, after: bool = False, lose_reply: bool = False) -> None:
        self.mode = mode
        self.entered = asyncio.Event()
        self.open = asyncio.Event()
        real_claim: Callable[..., Awaitable[tuple[str, str]]] = hub.link.claim
        real_puts: Callable[..., Awaitable[list[tuple[str, str]]]] = hub.link.put_many

        async def held(run: Callable[[], Awaitable[Any]]) -> Any:
            if not after:
                self.entered.set()
                await self.open.wait()
            result = await run()
            if after:
                self.entered.set()
                await self.open.wait()
            if lose_reply:
                raise asyncio.TimeoutError("no reply from Redis")
            return result

        async def claim(key: str, entry: bytes, hashed: str, mode: str = "claim") -> tuple[str, str]:
            if mode != self.mode:
                return await real_claim(key, entry, hashed, mode)
            result: tuple[str, str] = await held(lambda: real_claim(key, entry, hashed, mode))
            return result

        async def put_many(entries: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
            if self.mode != "put":
                return await real_puts(entries)
            result: list[tuple[str, str]] = await held(lambda: real_puts(entries))
            return result

        hub.link.claim = claim  # type: ignore[method-assign,assignment]
        hub.link.put_many = put_many  # type: ignore[method-assign]

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
            await hub.link._beats.aclose()
        else:
            await hub.stop()


def entry(sync: redis_sync.Redis, prefix: str, name: str) -> dict[str, Any] | None:
    raw: bytes | None = sync.hget(Keys(prefix).users, name_key(name))  # type: ignore[assignment]
    return orjson.loads(raw) if raw is not None else None


async def until_true(check: Callable[[], bool], what: str, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.01)


def held_as_cluster_says(hub: ClusterHub, sync: redis_sync.Redis, prefix: str) -> None:
    """Every user of the node is in Redis with the node's token, and no token outlives its user."""
    assert set(hub.registrar.tokens) == set(hub.users), (hub.registrar.tokens, list(hub.users))
    for key, session in hub.users.items():
        assert session.name is not None
        found = entry(sync, prefix, session.name)
        assert found is not None and found["node"] == hub.node and found["g"] == hub.registrar.tokens[key], (key, found)


async def comes_back(hub: ClusterHub) -> None:
    """What a node's heartbeat does when Redis answers again: publish, then count it up (in
    the same step of its task)."""
    await hub._on_up()
    hub.link.up = True


def first_claim_unanswered(hub: ClusterHub, *, runs: bool) -> None:
    """``hub``'s first claim gets no answer (a timeout): Redis ran it (``runs``) or never saw it."""
    real = hub.link.claim
    calls = 0

    async def claim(key: str, value: bytes, hashed: str, mode: str = "claim") -> tuple[str, str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            if runs:
                await real(key, value, hashed, mode)
            raise asyncio.TimeoutError("no answer from Redis")
        return await real(key, value, hashed, mode)

    hub.link.claim = claim  # type: ignore[method-assign,assignment]


def holders(*hubs: ClusterHub, name: str = "alice") -> list[str]:
    """The nodes where ``name`` is held by a socket of theirs."""
    key = name_key(name)
    return [hub.node for hub in hubs if key in hub.users and not hub.users[key].remote]


def plant_entry(sync: redis_sync.Redis, prefix: str, name: str, node: str, credential: str, token: str = "old") -> None:
    """An entry of ``node``'s for ``name`` as a registration left it (a stale one, say), in
    the registry and in the node's own set."""
    keys = Keys(prefix)
    key = name_key(name)
    sync.hset(keys.users, key, registry_entry(name, node, True, credential_hash(credential), token))
    sync.sadd(keys.node_users(node), key)
