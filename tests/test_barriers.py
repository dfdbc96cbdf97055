"""SignalingClient.round_trip, the barrier the tests use instead of sleeping (tests/barriers.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nbcall.signaling import Limits, SignalingClient, SignalingServer

from .barriers import settle
from .conftest import FakeClock


async def test_a_round_trip_comes_after_every_reply_to_what_was_sent_before(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "alice", presence=False) as alice:
        for _ in range(50):
            await alice.send({"type": "list"})
        await alice.round_trip()
        kinds = [m["type"] for m in alice.pending()]
        assert kinds == ["users"] * 50  # every reply queued, in order, and the pong not
        await alice.send({"type": "ping"})  # a ping of the client's own is queued as ever
        assert await alice.expect("pong") == {"type": "pong"}


async def test_settle_covers_what_one_client_sent_another(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "alice") as alice, SignalingClient(server.url, "bob") as bob:
        offer = {"type": "offer", "sdp": "v=0\r\n"}
        for _ in range(30):
            await alice.send({"type": "offer", "to": "bob", "sdp": offer})
        await settle(alice, bob)
        assert [m["type"] for m in bob.pending() if m["type"] != "presence"] == ["offer"] * 30


async def test_a_round_trip_past_the_rate_limit_is_retried(server_factory: Any) -> None:
    clock = FakeClock()  # stands still: no token comes back until the test advances it
    server = await server_factory(limits=Limits(rate=20, burst=5, presence_interval=0.05), clock=clock)
    async with SignalingClient(server.url, "flood", presence=False) as flood:
        for _ in range(10):
            await flood.send({"type": "list"})
        with pytest.raises(TimeoutError):  # every ping dropped
            await flood.round_trip(timeout=0.5, retry_every=0.1)
        dropped = server.hub.errors["rate_limited"]
        retried = asyncio.create_task(flood.round_trip(timeout=5, retry_every=0.1))
        while server.hub.errors["rate_limited"] < dropped + 2:  # two more of its pings dropped
            await asyncio.sleep(0.02)
        assert not retried.done()
        clock.advance(1.0)
        await retried  # the next ping is answered
        # Its earlier pings were dropped, but the client cannot know: no barrier after this one.
        with pytest.raises(RuntimeError, match="no barrier after it"):
            await flood.round_trip()
