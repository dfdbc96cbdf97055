"""5,000 registered connections on one server process, and presence without a storm."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import ClientConnection, connect

from nbcall.signaling import SignalingClient
from nbcall.signaling.names import name_key

from .conftest import free_port, nbcall_server_cmd, serving

N = 5000


async def register(url: str, name: str) -> ClientConnection:
    ws = await connect(url, compression=None, ping_interval=None)
    await ws.send(json.dumps({"type": "register", "username": name, "client": "scale-test", "presence": False}))
    reply = json.loads(await ws.recv())
    assert reply["type"] == "registered", reply
    return ws


async def five_thousand(url: str) -> tuple[int, int, float]:
    async with SignalingClient(url, "watcher") as watcher:
        clients: list[ClientConnection] = []
        started = time.monotonic()
        for batch in range(0, N, 250):
            clients += await asyncio.gather(*(register(url, f"user{i}") for i in range(batch, min(N, batch + 250))))
        elapsed = time.monotonic() - started
        # everyone is reachable: the last user calls the first, seed-style, and trickles a candidate
        last, key = f"user{N - 1}", name_key(f"user{N - 1}")
        await clients[-1].send(json.dumps({"type": "offer", "to": "user0", "sdp": "v=0"}))
        await clients[-1].send(json.dumps({"type": "candidate", "to": "user0", "candidate": None}))
        offer = json.loads(await asyncio.wait_for(clients[0].recv(), 10))
        relayed = json.loads(await asyncio.wait_for(clients[0].recv(), 10))
        assert offer == {"type": "offer", "from": last, "sdp": "v=0", "from_key": key}
        assert relayed == {"type": "candidate", "from": last, "candidate": None, "from_key": key}
        await asyncio.sleep(0.5)
        updates = [m for m in watcher.pending() if m["type"] == "presence"]
        joined = len({name for m in updates for name in m.get("joined", [])} - {"watcher"})
        await watcher.send({"type": "list"})
        online = (await watcher.expect("users"))["online"]
        await asyncio.gather(*(ws.close() for ws in clients))
    assert joined == N
    return online, len(updates), elapsed


@pytest.mark.slow
def test_five_thousand_registered_connections() -> None:
    port = free_port()
    with serving(nbcall_server_cmd(port, "--log-level", "WARNING"), port) as proc:
        online, updates, elapsed = asyncio.run(five_thousand(f"ws://127.0.0.1:{port}"))
        assert online == N + 1
        # Presence is batched (one message per 250 ms at most), not one message per join.
        assert updates <= elapsed / 0.25 + 3
        assert proc.poll() is None
