"""The server hands out user keys, so clients never derive identity from a name themselves.

Against the real websockets server on 127.0.0.1.  The page compares these keys (js/ has no
name rule of its own): the case that broke it was "Straße" leaving and "STRASSE" joining in
one presence batch — one user to the server (NFKC + casefold), two to a page that
lower-cased names, so its call to the stale "Straße" never matched STRASSE's accept.
"""

from __future__ import annotations

import asyncio

from nbcall.signaling import Limits, SignalingClient, SignalingServer
from nbcall.signaling.names import name_key

STRASSE = name_key("Straße")  # == name_key("STRASSE"): one user
SDP = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}


async def test_registered_and_users_carry_keys_parallel_to_names(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "Straße") as a, SignalingClient(server.url, "Ελένη") as b:
        reg = b.registration
        assert reg is not None
        assert reg["key"] == name_key("Ελένη")
        keys = dict(zip(reg["users"], reg["keys"], strict=True))
        assert keys == {"Straße": name_key("Straße"), "Ελένη": name_key("Ελένη")}
        await a.send({"type": "list"})
        users = await a.expect("users")
        assert dict(zip(users["users"], users["keys"], strict=True))["Straße"] == name_key("STRASSE")


async def test_a_leave_and_a_join_of_one_key_in_one_batch_is_one_user(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = await server_factory(limits=Limits(presence_interval=0.3))
    async with SignalingClient(server.url, "watcher") as watcher:
        old = SignalingClient(server.url, "Straße")
        await old.connect()
        joined: list[str] = []
        while STRASSE not in joined:
            joined += (await watcher.expect("presence"))["joined_keys"]
        # Within one batch interval: Straße leaves, STRASSE (the same key) joins.
        await old.close()
        async with SignalingClient(server.url, "STRASSE"):
            update = await watcher.expect("presence")
            assert update["joined"] == ["STRASSE"]
            assert update["joined_keys"] == [STRASSE]
            assert update["left"] == update["left_keys"] == []


async def test_every_message_naming_a_user_carries_its_key(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "STRASSE") as callee, SignalingClient(server.url, "Caller") as caller:
        # The caller's page still lists the stale display name "Straße": same key, same user.
        await caller.send({"type": "invite", "to": "Straße", "call_id": "c1"})
        ringing = await caller.expect("ringing")
        assert (ringing["from"], ringing["from_key"]) == ("STRASSE", STRASSE)
        invite = await callee.expect("invite")
        assert (invite["from"], invite["from_key"]) == ("Caller", name_key("Caller"))
        await callee.send({"type": "accept", "to": "caller"})
        accept = await caller.expect("accept")
        assert (accept["from"], accept["from_key"]) == ("STRASSE", STRASSE)
        await caller.send({"type": "offer", "to": "Straße", "sdp": SDP})
        offer = await callee.expect("offer")
        assert offer["from_key"] == name_key("caller")
        await callee.send({"type": "hangup", "to": "CALLER"})
        hangup = await caller.expect("hangup")
        assert hangup["from_key"] == STRASSE


async def test_a_reconnect_learns_its_calls_peer_key(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "Bob") as bob:
        alice = SignalingClient(server.url, "Alice")
        reg = await alice.connect()
        assert reg is not None
        await alice.send({"type": "invite", "to": "bob"})
        await bob.expect("invite")
        await bob.send({"type": "accept", "to": "alice"})
        await alice.expect("accept")
        again = SignalingClient(server.url, "alice", credential=reg["credential"])
        reg2 = await again.connect()
        assert reg2 is not None
        assert reg2["call"]["peer"] == "Bob"
        assert reg2["call"]["peer_key"] == name_key("Bob")
        await asyncio.gather(again.close(), alice.close())


async def test_seed_clients_still_get_the_seed_shapes_without_keys(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "seedy", seed=True) as seed, SignalingClient(server.url, "w") as widget:
        await widget.send({"type": "offer", "to": "seedy", "sdp": SDP})
        offer = await seed.expect("offer")
        assert list(offer) == ["type", "from", "sdp"]
