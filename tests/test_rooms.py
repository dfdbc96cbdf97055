"""Rooms on a real signaling server on 127.0.0.1 (docs/rooms.md): joining and leaving, who
offers to whom, forwarding within a room only, names, limits, invitations, busy, disconnects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nbcall.signaling import Limits, SignalingClient, SignalingError, SignalingServer

from .conftest import FakeClock
from .room_helpers import CANDIDATE, SDP, drain, in_room, join, refused, users


def limits(**overrides: Any) -> Limits:
    return Limits(presence_interval=0.05, **overrides)


async def test_join_and_leave_tell_everyone(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "carol") as (alice, bob, carol):
        first = await join(alice, "Standup")
        assert first == {
            "type": "room_joined", "room": "Standup", "room_key": first["room_key"], "topology": "mesh",
            "members": [], "ringing": [], "mesh_limit": 4, "max_members": 50, "sfu": None,
        }  # fmt: skip
        second = await join(bob, "standup")
        assert second["room"] == "Standup"  # the room keeps its first member's spelling
        assert second["members"] == [
            {"name": "alice", "key": alice.registration["key"], "audio": True, "video": True, "offer": True,  # type: ignore[index]
             "sfu_id": None}
        ]  # fmt: skip
        joined = await alice.expect("member_joined")
        assert joined == {"type": "member_joined", "room": "Standup", "from": "bob", "from_key": "bob",
                          "audio": True, "video": True, "offer": False, "sfu_id": None}  # fmt: skip
        third = await join(carol, "STANDUP")
        assert [(m["name"], m["offer"]) for m in third["members"]] == [("alice", True), ("bob", True)]
        for member in (alice, bob):
            assert (await member.expect("member_joined"))["from"] == "carol"

        await bob.send({"type": "room_leave", "room": "Standup"})
        assert await bob.expect("room_left") == {"type": "room_left", "room": "Standup", "reason": "left"}
        for member in (alice, carol):
            left = await member.expect("member_left")
            assert (left["from"], left["from_key"], left["reason"]) == ("bob", "bob", "left")
        assert await drain(bob, alice, carol) == []
        assert set(server.hub.rooms.rooms["standup"].members) == {"aiice", "caroi"}  # keys


async def test_the_newcomer_offers_to_every_member_and_links_forward_within_the_room(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "carol", "dave") as (alice, bob, carol, dave):
        await in_room("r", alice, bob)
        joined = await join(carol, "r")
        assert all(m["offer"] for m in joined["members"])
        assert (await alice.expect("member_joined"))["offer"] is False
        await carol.send({"type": "offer", "to": "alice", "sdp": SDP, "room": "r"})
        assert await alice.expect("offer") == {"type": "offer", "from": "carol", "sdp": SDP, "room": "r",
                                               "from_key": "caroi"}  # fmt: skip
        await alice.send({"type": "answer", "to": "carol", "sdp": {**SDP, "type": "answer"}, "room": "R"})
        assert (await carol.expect("answer"))["from"] == "alice"
        await carol.send({"type": "candidate", "to": "bob", "candidate": CANDIDATE, "room": "r", "call_id": "x1"})
        got = await bob.expect("candidate")
        assert (got["candidate"], got["call_id"], got["room"]) == (CANDIDATE, "x1", "r")
        # Not to someone outside the room, and not with another room's name.
        for message in (
            {"type": "offer", "to": "dave", "sdp": SDP, "room": "r"},
            {"type": "candidate", "to": "bob", "candidate": CANDIDATE, "room": "other"},
            {"type": "candidate", "to": "carol", "candidate": CANDIDATE, "room": "r"},  # to yourself
        ):
            error = await refused(carol, message)
            assert (error["code"], error["request"]) == ("no_call", message["type"])
        assert await drain(dave, carol) == [] and await drain(bob, carol) == []
        assert server.hub.calls == {}  # a room's links are not 1:1 calls


async def test_look_alike_room_names_are_one_room(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "carol", "dave") as clients:
        await join(clients[0], "Hall")
        for client, spelling in zip(
            clients[1:], ["HaII", "ＨＡＬＬ", "ha1l"], strict=True
        ):  # capital I, full width, one
            assert (await join(client, spelling))["room"] == "Hall"
        assert len(server.hub.rooms.rooms) == 1


@pytest.mark.parametrize(
    "room",
    ["", "   ", "a" * 65, "bad\u200bname", "x<y>", "\u3164", "Ρaypal", 7, None, ["r"], {"r": 1}],
)
async def test_room_names_follow_the_name_rules(server: SignalingServer, room: object) -> None:
    async with users(server.url, "alice") as (alice,):
        for kind in ("room_join", "room_leave", "room_chat", "room_state"):
            error = await refused(alice, {"type": kind, "room": room, "text": "hi", "audio": True, "video": True})
            assert (error["code"], error["request"]) == ("invalid_room", kind)
        error = await refused(alice, {"type": "offer", "to": "bob", "sdp": SDP, "room": room if room else 0})
        assert error["code"] == "invalid_room"
        assert server.hub.rooms.rooms == {}


async def test_a_room_holds_max_members(server_factory: Any) -> None:
    server = await server_factory(limits=limits(room_max_members=3, room_mesh_limit=3))
    async with users(server.url, "a1", "b2", "c3", "d4") as clients:
        await in_room("r", *clients[:3])
        error = await refused(clients[3], {"type": "room_join", "room": "r"})
        assert error["code"] == "room_full" and "full" in error["message"]
        assert (await join(clients[3], "elsewhere"))["members"] == []


async def test_without_an_sfu_the_fifth_member_is_refused_with_how_to_get_one(server: SignalingServer) -> None:
    async with users(server.url, "a1", "b2", "c3", "d4", "e5") as clients:
        await in_room("r", *clients[:4])
        error = await refused(clients[4], {"type": "room_join", "room": "r"})
        assert error["code"] == "room_full" and "sfu" in error["message"].lower()
        assert "nbcall-server --sfu" in error["message"]
        for member in clients[:4]:
            assert await drain(member, clients[4]) == []  # the members hear nothing of it
        assert server.hub.rooms.rooms["r"].topology == "mesh"


async def test_an_invite_only_room_needs_an_invitation(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "carol") as (alice, bob, carol):
        await join(alice, "secret", access="invite")
        assert (await refused(bob, {"type": "room_join", "room": "secret"}))["code"] == "not_invited"
        await alice.send({"type": "room_invite", "room": "secret", "to": "carol"})
        invite = await carol.expect("room_invite")
        assert invite == {"type": "room_invite", "room": "secret", "from": "alice", "from_key": "aiice", "members": 1}
        ringing = await alice.expect("member_ringing")
        assert (ringing["from"], ringing["from_key"], ringing["by"]) == ("carol", "caroi", "alice")
        joined = await join(carol, "secret")
        assert joined["ringing"] == [] and [m["name"] for m in joined["members"]] == ["alice"]
        assert (await alice.expect("member_joined"))["from"] == "carol"
        assert (await refused(bob, {"type": "room_join", "room": "secret"}))["code"] == "not_invited"


async def test_a_password_room(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "carol") as (alice, bob, carol):
        await join(alice, "club", password="swordfish")
        for password in (None, "", "Swordfish", "swordfish "):
            message = {"type": "room_join", "room": "club", **({"password": password} if password is not None else {})}
            assert (await refused(bob, message))["code"] == "not_invited", password
        assert len((await join(bob, "club", password="swordfish"))["members"]) == 1
        await alice.send({"type": "room_invite", "room": "club", "to": "carol"})
        await carol.expect("room_invite")
        await join(carol, "club")  # the invited need no password


async def test_leaving_twice_is_not_in_room(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob") as (alice, bob):
        await in_room("r", alice, bob)
        await alice.send({"type": "room_leave", "room": "r"})
        await alice.expect("room_left")
        error = await refused(alice, {"type": "room_leave", "room": "r"})
        assert (error["code"], error["request"]) == ("not_in_room", "room_leave")
        assert (await bob.expect("member_left"))["reason"] == "left"
        assert await drain(bob, alice) == []  # told once


async def test_the_last_member_leaving_ends_the_room(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob") as (alice, bob):
        await join(alice, "r", access="invite", password="pw")
        await alice.send({"type": "room_leave", "room": "r"})
        await alice.expect("room_left")
        assert server.hub.rooms.rooms == {} and server.hub.rooms.where == {}
        assert (await join(bob, "r"))["members"] == []  # a new room: open, no password


async def test_invitations_ring_and_time_out(server_factory: Any) -> None:
    server = await server_factory(limits=limits(ring_timeout=0.4))
    async with users(server.url, "alice", "bob", "carol") as (alice, bob, carol):
        await in_room("r", alice, bob)
        await bob.send({"type": "room_invite", "room": "r", "to": "carol"})
        assert (await carol.expect("room_invite"))["members"] == 2
        for member in (alice, bob):
            assert (await member.expect("member_ringing"))["by"] == "bob"
        dave = SignalingClient(server.url, "dave", presence=False)
        async with dave:
            assert (await join(dave, "r"))["ringing"] == [{"name": "carol", "key": "caroi"}]
            for client in (alice, bob, carol, dave):
                declined = await client.expect("member_declined", timeout=2)
                assert (declined["from"], declined["reason"]) == ("carol", "timeout")
        assert server.hub.rooms.rung == {}


async def test_an_invitation_declined(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "carol") as (alice, bob, carol):
        await in_room("r", alice, bob)
        await alice.send({"type": "room_invite", "room": "r", "to": "carol"})
        await carol.expect("room_invite")
        await carol.send({"type": "room_decline", "room": "R"})
        for client in (alice, bob, carol):
            declined = await client.expect("member_declined")
            assert declined == {"type": "member_declined", "room": "r", "from": "carol", "from_key": "caroi",
                                "reason": "rejected"}  # fmt: skip
        assert (await refused(carol, {"type": "room_decline", "room": "r"}))["code"] == "not_invited"


async def test_an_invitee_that_goes_away_or_calls_someone_is_declined(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "carol") as (alice, bob, carol):
        await join(alice, "r")
        invitee = SignalingClient(server.url, "dave", presence=False)
        await invitee.connect()
        await alice.send({"type": "room_invite", "room": "r", "to": "dave"})
        await invitee.expect("room_invite")
        await invitee.close()
        assert (await alice.expect("member_declined"))["reason"] == "left"
        await alice.send({"type": "room_invite", "room": "r", "to": "carol"})
        await carol.expect("room_invite")
        await carol.send({"type": "invite", "to": "bob"})  # a 1:1 call instead
        assert (await alice.expect("member_declined"))["reason"] == "busy"
        await bob.expect("invite")


async def test_busy_both_ways(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "carol", "dave") as (alice, bob, carol, dave):
        await join(alice, "r")
        # A member is busy for 1:1 calls, and cannot start one.
        await carol.send({"type": "invite", "to": "alice"})
        assert (await carol.expect("busy"))["from"] == "alice"
        await carol.send({"type": "offer", "to": "alice", "sdp": SDP})
        assert (await carol.expect("busy"))["from"] == "alice"
        for message in ({"type": "invite", "to": "carol"}, {"type": "offer", "to": "carol", "sdp": SDP}):
            assert (await refused(alice, message))["code"] == "busy"
        assert await drain(alice, carol) == [] and server.hub.calls == {}
        # Someone in a 1:1 call cannot join a room or be invited to one.
        await carol.send({"type": "invite", "to": "dave"})
        await dave.expect("invite")
        assert (await refused(carol, {"type": "room_join", "room": "r"}))["code"] == "busy"
        assert (await refused(alice, {"type": "room_invite", "room": "r", "to": "dave"}))["code"] == "busy"
        # Nor is a member of one room invited to another, or join two.
        await join(bob, "other")
        assert (await refused(alice, {"type": "room_invite", "room": "r", "to": "bob"}))["code"] == "busy"
        assert (await refused(bob, {"type": "room_join", "room": "r"}))["code"] == "busy"
        assert (await refused(bob, {"type": "room_join", "room": "other"}))["code"] == "busy"


async def test_a_disconnect_is_told_at_once_closed_or_dropped(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "carol") as (alice, bob, carol):
        await in_room("r", alice, bob, carol)
        await bob.close()  # a close frame: it left on purpose
        left = await alice.expect("member_left", timeout=2)
        assert (left["from"], left["reason"]) == ("bob", "closed")
        assert (await carol.expect("member_left", timeout=2))["reason"] == "closed"
        carol.ws.transport.abort()  # no close frame: a drop, and no grace in a room
        left = await alice.expect("member_left", timeout=2)
        assert (left["from"], left["reason"]) == ("carol", "disconnected")
        assert set(server.hub.rooms.rooms["r"].members) == {"aiice"}


async def test_a_takeover_with_the_credential_leaves_the_room(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob") as (alice, bob):
        await in_room("r", alice, bob)
        async with SignalingClient(server.url, "bob", credential=bob.credential, presence=False):
            left = await alice.expect("member_left")
            assert (left["from"], left["reason"]) == ("bob", "disconnected")
            assert "bob" not in server.hub.rooms.where


async def test_state_and_chat_reach_the_others(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "carol") as (alice, bob, carol):
        await in_room("r", alice, bob, carol)
        await bob.send({"type": "room_state", "room": "r", "audio": False, "video": True})
        for member in (alice, carol):
            state = await member.expect("member_state")
            assert state == {"type": "member_state", "room": "r", "from": "bob", "from_key": "bob", "audio": False,
                             "video": True}  # fmt: skip
        await bob.send({"type": "room_chat", "room": "r", "text": "hello <b>all</b> 👋"})
        for member in (alice, carol):
            chat = await member.expect("room_chat")
            assert (chat["from"], chat["text"]) == ("bob", "hello <b>all</b> 👋")
        assert await drain(bob, alice, carol) == []  # not echoed
        dave = SignalingClient(server.url, "dave", presence=False)
        async with dave:
            member = next(m for m in (await join(dave, "r"))["members"] if m["name"] == "bob")
            assert (member["audio"], member["video"]) == (False, True)


async def test_join_errors_leave_nothing_behind(server: SignalingServer) -> None:
    async with users(server.url, "alice") as (alice,):
        with pytest.raises(SignalingError):
            await join(alice, "r", access="everyone")
        assert server.hub.rooms.rooms == {} and server.hub.rooms.where == {}


@pytest.mark.slow
def test_a_cluster_node_refuses_rooms_with_a_clear_error(tmp_path: Any) -> None:
    """Rooms are one server's (docs/rooms.md, "Cluster mode"): a node says so, and 1:1 calls go on."""

    from nbcall._testing.redis import Node, redis_server

    async def try_rooms(url: str) -> None:
        async with users(url, "alice", "bob") as (alice, bob):
            error = await refused(alice, {"type": "room_join", "room": "r"})
            assert (error["code"], error["request"]) == ("rooms_unavailable", "room_join")
            assert "cluster" in error["message"]
            error = await refused(alice, {"type": "offer", "to": "bob", "sdp": SDP, "room": "r"})
            assert error["code"] == "no_call"
            await alice.send({"type": "invite", "to": "bob"})
            await bob.expect("invite")

    with redis_server() as redis:
        node = Node(redis.url, "n1", log=tmp_path / "n1.log")
        try:
            asyncio.run(try_rooms(node.url))
        finally:
            node.stop()


async def test_a_member_that_dropped_may_join_its_invite_only_room_again_within_the_grace(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A page whose signaling dropped reconnects and rejoins: an invite-only room lets it back in
    for the reconnect grace (as a 1:1 call would wait for it), not after, and never a stranger."""
    clock = FakeClock()
    server = await server_factory(limits=Limits(presence_interval=0.05, reconnect_grace=0.6), clock=clock)
    async with users(server.url, "alice", "bob", "eve") as (alice, bob, eve):
        await join(alice, "r", access="invite")
        await alice.send({"type": "room_invite", "room": "r", "to": "bob"})
        await bob.expect("room_invite")
        await join(bob, "r")
        bob.ws.transport.abort()  # a drop
        assert (await alice.expect("member_left", timeout=2))["reason"] == "disconnected"
        async with SignalingClient(server.url, "bob", credential=bob.credential, presence=False) as again:
            await join(again, "r")  # uninvited, within the grace
            assert (await alice.expect("member_joined", timeout=2))["from"] == "bob"
            again.ws.transport.abort()  # drops again, and stays away past the grace
            assert (await alice.expect("member_left", timeout=2))["reason"] == "disconnected"
            clock.advance(0.8)
        async with SignalingClient(server.url, "bob", credential=again.credential, presence=False) as late:
            assert (await refused(late, {"type": "room_join", "room": "r"}))["code"] == "not_invited"
        assert (await refused(eve, {"type": "room_join", "room": "r"}))["code"] == "not_invited"
