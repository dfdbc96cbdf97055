"""A connected 1:1 call becomes a room (docs/rooms.md "From a call"), on a real signaling
server on 127.0.0.1: the move, the invitation, the third joining, who may do it, and what
the call's messages get afterwards."""

from __future__ import annotations

from typing import Any

from nbcall.signaling import SignalingClient, SignalingServer

from .cluster_helpers import in_a_call
from .room_helpers import CANDIDATE, SDP, drain, join, refused, users


def key(client: SignalingClient) -> str:
    assert client.registration is not None
    return str(client.registration["key"])


async def moved(client: SignalingClient) -> dict[str, Any]:
    """The ``room_joined`` that moves ``client``'s call into a room."""
    joined = await client.expect("room_joined")
    assert "from_call" in joined, joined
    return joined


async def test_a_call_becomes_a_room_and_the_third_rings(server: SignalingServer) -> None:
    async with users(server.url, "ann", "ben", "cat") as (ann, ben, cat):
        await in_a_call(ann, ben, "c1")
        await ben.send({"type": "room_invite", "to": "cat"})  # the callee invites: either side may
        for_ben, for_ann = await moved(ben), await moved(ann)
        room = for_ann["room"]
        assert room.startswith("call-") and for_ben["room"] == room and for_ann["room_key"] == for_ben["room_key"]
        # The caller offers to the callee, as in the call; nobody was told hangup.
        assert for_ann == {
            "type": "room_joined", "room": room, "room_key": for_ann["room_key"], "topology": "mesh",
            "members": [{"name": "ben", "key": key(ben), "audio": True, "video": True, "offer": True, "sfu_id": None}],
            "ringing": [], "mesh_limit": 4, "max_members": 50, "sfu": None,
            "from_call": {"peer": "ben", "peer_key": key(ben), "call_id": "c1"},
        }  # fmt: skip
        assert for_ben["members"] == [
            {"name": "ann", "key": key(ann), "audio": True, "video": True, "offer": False, "sfu_id": None}
        ]
        assert for_ben["from_call"] == {"peer": "ann", "peer_key": key(ann), "call_id": "c1"}
        invite = await cat.expect("room_invite")
        assert (invite["room"], invite["from"], invite["members"]) == (room, "ben", 2)
        for member in (ann, ben):
            ringing = await member.expect("member_ringing")
            assert (ringing["from"], ringing["by"]) == ("cat", "ben")
        assert server.hub.calls == {}
        assert server.hub.rooms.rooms[for_ann["room_key"]].access == "invite"
        # The third accepts by joining: both others hear it, and it offers to both.
        joined = await join(cat, room)
        assert [(m["name"], m["offer"]) for m in joined["members"]] == [("ben", True), ("ann", True)]
        assert "from_call" not in joined
        for member in (ann, ben):
            assert (await member.expect("member_joined"))["from"] == "cat"
        for client in (ann, ben, cat):
            assert [m["type"] for m in await drain(client, ann, ben, cat)] == []  # no hangup, nothing else


async def test_after_the_move_the_rules_are_the_rooms(server: SignalingServer) -> None:
    async with users(server.url, "ann", "ben", "cat", "dan") as (ann, ben, cat, dan):
        await in_a_call(ann, ben, "c1")
        await ann.send({"type": "room_invite", "to": "cat"})
        room = (await moved(ann))["room"]
        await moved(ben)
        # Offers and candidates between the two go only with `room` now.
        for message in (
            {"type": "candidate", "to": "ben", "candidate": CANDIDATE},
            {"type": "offer", "to": "ben", "sdp": SDP},
            {"type": "hangup", "to": "ben"},
        ):
            error = await refused(ann, message)
            assert (error["code"], error["request"]) == ("no_call" if message["type"] != "offer" else "busy",
                                                         message["type"])  # fmt: skip
        await ann.send({"type": "offer", "to": "ben", "sdp": SDP, "room": room})
        assert (await ben.expect("offer"))["room"] == room
        # The room behaves as any: the call cannot be moved again, a 1:1 call cannot start.
        assert (await refused(ann, {"type": "room_invite", "to": "dan"}))["code"] == "no_call"
        assert (await refused(ann, {"type": "invite", "to": "dan"}))["code"] == "busy"
        await ann.send({"type": "room_invite", "room": room, "to": "dan"})
        assert (await dan.expect("room_invite"))["room"] == room
        # Leaving works; the last one out ends the room and its invitations.
        await ben.send({"type": "room_leave", "room": room})
        assert (await ben.expect("room_left"))["reason"] == "left"
        assert (await ann.expect("member_left"))["from"] == "ben"
        await ann.send({"type": "room_leave", "room": room})
        await ann.expect("room_left")
        assert (await cat.expect("member_declined"))["reason"] == "left"
        assert server.hub.rooms.rooms == {} and server.hub.rooms.where == {}
        await in_a_call(ben, ann, "c2")  # both free for a call again


async def test_only_the_calls_own_sides_can_move_it(server: SignalingServer) -> None:
    async with users(server.url, "ann", "ben", "cat", "dan") as (ann, ben, cat, dan):
        await in_a_call(ann, ben, "c1")
        # An outsider names no call of its own: it cannot move anyone else's, nor ring into it.
        error = await refused(cat, {"type": "room_invite", "to": "ann"})
        assert (error["code"], error["request"]) == ("no_call", "room_invite")
        assert (await refused(cat, {"type": "room_invite", "to": "dan"}))["code"] == "no_call"
        # Inviting the other side, yourself, someone offline or busy: refused, the call unmoved.
        await in_a_call(cat, dan, "c2")
        for to, code in (("ben", "busy"), ("ann", "self_call"), ("nobody", "unknown_peer"), ("cat", "busy")):
            assert (await refused(ann, {"type": "room_invite", "to": to}))["code"] == code, to
        assert set(server.hub.calls) == {key(ann), key(ben), key(cat), key(dan)}
        assert server.hub.rooms.rooms == {}
        for client in (ann, ben, cat, dan):
            assert [m["type"] for m in await drain(client, ann, ben, cat, dan) if m["type"] != "error"] == []
        await ann.send({"type": "hangup", "to": "ben"})  # the call itself goes on as before
        assert (await ben.expect("hangup"))["reason"] == "hangup"


async def test_a_ringing_call_cannot_become_a_room(server: SignalingServer) -> None:
    async with users(server.url, "ann", "ben", "cat") as (ann, ben, _cat):
        await ann.send({"type": "invite", "to": "ben", "call_id": "c1"})
        await ben.expect("invite")
        for client in (ann, ben):
            error = await refused(client, {"type": "room_invite", "to": "cat"})
            assert error["code"] == "no_call" and "not answered" in error["message"]
        await ben.send({"type": "accept", "to": "ann"})
        await ann.expect("accept")
        await ann.send({"type": "room_invite", "to": "cat"})
        await moved(ann)


async def test_a_seed_style_call_or_one_with_a_seed_client_refuses(server: SignalingServer) -> None:
    async with (
        users(server.url, "ann", "ben", "cat") as (ann, ben, cat),
        SignalingClient(server.url, "sid", seed=True, presence=False) as seed,
    ):
        # A seed client calls the seed's way: a plain offer.
        await seed.send({"type": "offer", "to": "ann", "sdp": SDP})
        await ann.expect("offer")
        error = await refused(ann, {"type": "room_invite", "to": "cat"})
        assert error["code"] == "seed_call" and "seed" in error["message"]
        # An nbcall client calls a seed client (the server accepts for it).
        await ann.send({"type": "hangup", "to": "sid"})
        await ben.send({"type": "invite", "to": "sid"})
        assert (await ben.expect("accept"))["seed"] is True
        assert (await refused(ben, {"type": "room_invite", "to": "cat"}))["code"] == "seed_call"
        # Two nbcall clients in a seed-style call (a plain offer, no invite): no room either.
        await ben.send({"type": "hangup", "to": "sid"})
        await ann.send({"type": "offer", "to": "ben", "sdp": SDP})
        await ben.expect("offer")
        assert (await refused(ben, {"type": "room_invite", "to": "cat"}))["code"] == "seed_call"
        assert server.hub.rooms.rooms == {}
        assert await drain(cat, ann, ben, seed) == []


async def test_a_side_that_closes_its_socket_leaves_the_room_at_once(server: SignalingServer) -> None:
    async with users(server.url, "ann", "ben") as (ann, ben):
        cat = SignalingClient(server.url, "cat", presence=False)
        await cat.connect()
        await in_a_call(ann, cat, "c1")
        await cat.send({"type": "room_invite", "to": "ben"})
        room = (await moved(ann))["room"]
        await ben.expect("room_invite")
        await cat.close()  # a room has no reconnect grace: cat leaves at once
        left = await ann.expect("member_left")
        assert (left["from"], left["reason"]) == ("cat", "closed")
        # ben may still come in: the invitation stands while the room has a member.
        assert [m["name"] for m in (await join(ben, room))["members"]] == ["ann"]
