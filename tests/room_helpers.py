"""What the room tests share: joining, expecting a refusal, collecting what arrived."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from nbcall.signaling import SignalingClient

from . import barriers

SDP = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


@asynccontextmanager
async def users(url: str, *names: str) -> AsyncIterator[list[SignalingClient]]:
    """Registered clients, closed (cleanly) when the block ends."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(SignalingClient(url, name, presence=False)) for name in names]


async def join(client: SignalingClient, room: str, **fields: Any) -> dict[str, Any]:
    """``room_join`` answered with ``room_joined`` (an error raises SignalingError)."""
    await client.send({"type": "room_join", "room": room, **fields})
    return await client.expect("room_joined", timeout=10)


async def refused(client: SignalingClient, message: dict[str, Any]) -> dict[str, Any]:
    """Send ``message``; return the ``error`` it gets."""
    await client.send(message)
    return await client.expect("error", timeout=10)


async def drain(client: SignalingClient, *others: SignalingClient, flooded: bool = False) -> list[dict[str, Any]]:
    """What reached ``client`` because of what it and ``others`` sent before (registration and
    presence left out): after round trips through them (barriers.py), not after a sleep."""
    return [
        m for m in await barriers.drain(client, *others, flooded=flooded) if m["type"] not in ("presence", "registered")
    ]


async def in_room(room: str, *clients: SignalingClient) -> None:
    """Each client joins ``room`` in turn; everything they were told meanwhile is taken."""
    for client in clients:
        await join(client, room)
    await barriers.settle(*clients)
    for client in clients:
        client.pending()
