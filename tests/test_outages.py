"""Calls survive signaling outages: a dropped socket, a server restart.

Against the real websockets server on 127.0.0.1.  A client that closes its socket itself
(a close frame) has left: its call ends at once.  A socket that drops (no close frame) in
a connected call keeps its name and call for ``reconnect_grace`` seconds; the partner is
told ``peer_status`` and what it sends waits (bounded) for the reconnect.  After a restart
the server knows nobody: clients re-register announcing their call, and a call both sides
announce is restored.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from nbcall.signaling import Limits, ServerConfig, SignalingClient, SignalingError, SignalingServer
from nbcall.signaling import protocol as p
from nbcall.signaling.names import name_key

CANDIDATE = {"candidate": "candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


async def in_a_call(alice: SignalingClient, bob: SignalingClient, call_id: str = "call-1") -> None:
    await alice.send({"type": "invite", "to": bob.username, "call_id": call_id})
    await bob.expect("invite")
    await bob.send({"type": "accept", "to": alice.username})
    await alice.expect("accept")


def drop(client: SignalingClient) -> None:
    """The socket dies without a close frame: a crash, a network change, a frozen laptop."""
    client.ws.transport.abort()


async def bob_calls_then_drops(server: SignalingServer, alice: SignalingClient) -> SignalingClient:
    """bob joins, is in a call with alice, and his socket drops; alice has been told."""
    bob = SignalingClient(server.url, "bob")
    await bob.connect()
    await in_a_call(alice, bob)
    drop(bob)
    status = await alice.expect("peer_status", timeout=2)
    assert (status["from_key"], status["status"], status["call_id"]) == (name_key("bob"), "reconnecting", "call-1")
    return bob


async def test_a_dropped_socket_keeps_its_call_and_gets_what_was_sent_meanwhile(server_factory: Any) -> None:
    server = await server_factory(limits=Limits(presence_interval=0.05, reconnect_grace=5))
    async with SignalingClient(server.url, "alice") as alice:
        started = time.monotonic()
        bob = await bob_calls_then_drops(server, alice)
        assert time.monotonic() - started < 1.0  # the call set-up, the drop, and alice told
        with pytest.raises(SignalingError, match="name_taken"):  # the name is held for bob
            await SignalingClient(server.url, "bob").connect()
        await alice.send({"type": "candidate", "to": "bob", "candidate": CANDIDATE})  # waits for bob
        back = SignalingClient(server.url, "bob", credential=bob.credential)
        registered = await back.connect()
        assert registered is not None and registered["call"]["peer_key"] == name_key("alice")
        assert (await back.expect("candidate"))["candidate"] == CANDIDATE
        assert (await alice.expect("peer_status"))["status"] == "connected"
        await back.send({"type": "hangup", "to": "alice"})
        assert (await alice.expect("hangup"))["reason"] == "hangup"
        await back.close()


async def test_a_dropped_socket_that_does_not_come_back_ends_the_call_after_the_grace(server_factory: Any) -> None:
    server = await server_factory(limits=Limits(presence_interval=0.05, reconnect_grace=0.5))
    async with SignalingClient(server.url, "alice") as alice:
        await bob_calls_then_drops(server, alice)
        waited = time.monotonic()
        hangup = await alice.expect("hangup", timeout=3)
        assert hangup["reason"] == "disconnected" and 0.3 < time.monotonic() - waited < 2
        async with SignalingClient(server.url, "bob") as new_bob:  # the name is free again
            assert new_bob.registration is not None


async def test_a_ringing_call_or_a_clean_close_ends_at_once(server_factory: Any) -> None:
    server = await server_factory(limits=Limits(presence_interval=0.05, reconnect_grace=30))
    async with SignalingClient(server.url, "alice") as alice:
        bob = SignalingClient(server.url, "bob")
        await bob.connect()
        await alice.send({"type": "invite", "to": "bob"})
        await bob.expect("invite")
        drop(bob)  # still ringing: nothing to keep
        assert (await alice.expect("hangup", timeout=2))["reason"] == "disconnected"
        carol = SignalingClient(server.url, "carol")
        await carol.connect()
        await in_a_call(alice, carol)
        await carol.close()  # a close frame: carol left
        assert (await alice.expect("hangup", timeout=2))["reason"] == "disconnected"


async def test_what_waits_for_a_dropped_user_is_bounded(server_factory: Any) -> None:
    server = await server_factory(limits=Limits(rate=1e6, burst=1e6, presence_interval=0.05, reconnect_grace=5))
    async with SignalingClient(server.url, "alice") as alice:
        await bob_calls_then_drops(server, alice)
        for _ in range(p.MAX_AWAY_MESSAGES + 5):
            await alice.send({"type": "candidate", "to": "bob", "candidate": CANDIDATE})
        errors = []
        for _ in range(5):
            errors.append(await alice.expect("error"))
        assert {e["code"] for e in errors} == {"peer_reconnecting"}
        session = server.hub.users[name_key("bob")]
        assert len(session.outbox) == p.MAX_AWAY_MESSAGES


async def test_a_call_is_restored_after_a_server_restart_when_both_sides_announce_it(server_factory: Any) -> None:
    first = await server_factory()
    port = first.port
    alice = SignalingClient(first.url, "alice")
    bob = SignalingClient(first.url, "bob")
    await alice.connect()
    await bob.connect()
    await in_a_call(alice, bob, "c-42")
    await first.stop()
    await asyncio.gather(alice.close(), bob.close())
    second = SignalingServer(ServerConfig(port=port, limits=Limits(presence_interval=0.05)))
    await second.start()
    try:
        mallory = SignalingClient(second.url, "mallory")
        await mallory.connect()
        await mallory.send(
            {"type": "register", "username": "mallory", "client": "x", "call": {"peer": "alice", "call_id": "c-42"}}
        )
        await mallory.expect("registered")
        again = {}
        for name, peer in (("alice", "bob"), ("bob", "alice")):
            client = SignalingClient(second.url)
            await client.connect()
            await client.send(
                {"type": "register", "username": name, "client": "x", "call": {"peer": peer, "call_id": "c-42"}}
            )
            again[name] = (client, await client.expect("registered"))
        assert "call" not in again["alice"][1]  # bob had not announced it yet
        assert again["bob"][1]["call"] == {"call_id": "c-42", "peer": "alice", "peer_key": name_key("alice"),
                                           "state": "active"}  # fmt: skip
        status = await again["alice"][0].expect("peer_status")
        assert (status["status"], status["call_id"]) == ("connected", "c-42")
        call = second.hub.calls[name_key("alice")]
        assert second.hub.calls[name_key("bob")] is call and name_key("mallory") not in second.hub.calls
        await again["bob"][0].send({"type": "hangup", "to": "alice"})  # hanging up works again
        assert (await again["alice"][0].expect("hangup"))["reason"] == "hangup"
        for client in (mallory, again["alice"][0], again["bob"][0]):
            await client.close()
    finally:
        await second.stop()


async def test_a_call_ending_while_one_side_is_away_frees_that_name_at_once(server_factory: Any) -> None:
    """The name was held for the call only; a seed client, say, could never take it back."""
    server = await server_factory(limits=Limits(presence_interval=0.05, reconnect_grace=30))
    async with SignalingClient(server.url, "alice") as alice:
        await bob_calls_then_drops(server, alice)
        await alice.send({"type": "hangup", "to": "bob"})
        await alice.round_trip()  # the hang-up is handled
        assert name_key("bob") not in server.hub.users and server.hub.calls == {}
        async with SignalingClient(server.url, "bob") as new_bob:  # no credential needed
            assert new_bob.registration is not None and "call" not in new_bob.registration
