"""Helpers of the cluster tests: unique names on shared nodes, waiting for replication."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from nbcall.signaling import SignalingClient

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


async def drain(client: SignalingClient, settle: float = 0.3) -> list[dict[str, Any]]:
    await asyncio.sleep(settle)
    return client.pending()
