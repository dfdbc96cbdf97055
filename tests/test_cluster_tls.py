"""A cluster on a Redis that speaks only TLS and wants a password (``rediss://:PASSWORD@...``):
calls cross nodes through it (registry, the outbox's and the inbox's connections taken over
under TLS), and a node with the wrong password serves its own users, degraded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync

from nbcall._testing.redis import Node, RedisServer, redis_server
from nbcall.signaling import SignalingClient

from .cluster_helpers import CANDIDATE, SDP, in_a_call, until_online

pytestmark = pytest.mark.slow  # nbcall-server processes on a TLS Redis, seconds to start

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server(tls=True, password=PASSWORD) as server:
        yield server


def health(node: Node) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.port}/health", timeout=5) as reply:
        result: dict[str, object] = json.loads(reply.read())
        return result


def test_the_test_redis_refuses_plain_text_and_a_missing_password(redis: RedisServer) -> None:
    """So the test below is about TLS and a password, not a Redis that takes anything."""
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as plain:
        plain.sendall(b"PING\r\n")
        with contextlib.suppress(OSError):
            assert b"PONG" not in plain.recv(100)  # the failed handshake closes it
    anonymous = redis_sync.Redis.from_url(redis.url.replace(f":{PASSWORD}@", ""), socket_timeout=0.5)
    with pytest.raises(redis_sync.exceptions.AuthenticationError):
        anonymous.ping()
    assert redis_sync.Redis.from_url(redis.url, socket_timeout=0.5).ping()


async def test_calls_cross_nodes_over_tls_with_a_password(redis: RedisServer, tmp_path: Path) -> None:
    nodes = [Node(redis.url, f"tls{i}", log=tmp_path / f"tls{i}.log") for i in range(2)]
    try:
        async with SignalingClient(nodes[0].url, "alice") as alice, SignalingClient(nodes[1].url, "bob") as bob:
            await until_online(alice, "bob")
            await in_a_call(alice, bob)
            await alice.send({"type": "offer", "to": "bob", "sdp": SDP})
            assert (await bob.expect("offer"))["from"] == "alice"
            for n in range(40):  # a burst: one PUBLISH or a few, in order, over TLS
                candidate = {**CANDIDATE, "candidate": str(CANDIDATE["candidate"]).replace("50000", str(50000 + n))}
                await bob.send({"type": "candidate", "to": "alice", "candidate": candidate})
            ports = [int((await alice.expect("candidate"))["candidate"]["candidate"].split()[5]) for _ in range(40)]
            assert ports == [50000 + n for n in range(40)]
        for node in nodes:
            status = health(node)
            assert status["status"] == "ok", status
    finally:
        for node in nodes:
            node.stop()


async def test_a_node_with_the_wrong_password_serves_its_own_users_degraded(redis: RedisServer) -> None:
    node = Node(redis.url.replace(PASSWORD, "wrong password"), "tls-wrong")
    try:
        deadline = time.monotonic() + 10
        while (status := health(node))["status"] != "degraded":
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.1)
        assert status["node"] == {"id": "tls-wrong", "local": 0, "redis": "unreachable"}
        async with SignalingClient(node.url, "carol") as carol, SignalingClient(node.url, "dave") as dave:
            await in_a_call(carol, dave)  # its own users still call each other
    finally:
        node.stop()
