"""What an attacker with a name on the same server tries against rooms (docs/rooms.md, "Bounds").

Against the real websockets server on 127.0.0.1: floods are dropped at the bound, outsiders
cannot reach a room's members, malformed fields are refused, and nothing grows without limit.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from nbcall.signaling import Limits, SignalingClient, SignalingServer
from nbcall.signaling.names import name_key

from .room_helpers import CANDIDATE, SDP, drain, in_room, join, refused, users


async def test_a_chat_flood_is_dropped_at_the_bound(server: SignalingServer) -> None:
    async with users(server.url, "alice", "mallory") as (alice, mallory):
        await in_room("r", alice, mallory)
        for i in range(100):
            await mallory.send({"type": "room_chat", "room": "r", "text": f"spam {i}"})
        got = [m for m in await drain(alice, mallory) if m["type"] == "room_chat"]
        assert 20 <= len(got) <= 24, len(got)  # the burst, and the trickle of 5/s while it was sent
        assert [m["text"] for m in got[:20]] == [f"spam {i}" for i in range(20)]
        warnings = [m for m in await drain(mallory) if m["type"] == "error"]
        assert [(w["code"], w["request"]) for w in warnings] == [("rate_limited", "room_chat")]  # one a second


async def test_leaving_and_joining_again_does_not_refill_the_chat_budget(server: SignalingServer) -> None:
    async with users(server.url, "alice", "mallory") as (alice, mallory):
        await in_room("r", alice, mallory)
        for round_ in range(3):
            for i in range(20):
                await mallory.send({"type": "room_chat", "room": "r", "text": f"{round_}-{i}"})
            await mallory.send({"type": "room_leave", "room": "r"})
            await mallory.send({"type": "room_join", "room": "r"})
            while (await mallory.expect("room_joined", "error"))["type"] != "room_joined":
                pass  # the one rate_limited warning
        got = [m for m in await drain(alice, mallory) if m["type"] == "room_chat"]
        assert len(got) <= 24, len(got)


async def test_a_state_flood_is_dropped_at_the_bound(server: SignalingServer) -> None:
    async with users(server.url, "alice", "mallory") as (alice, mallory):
        await in_room("r", alice, mallory)
        for i in range(100):
            await mallory.send({"type": "room_state", "room": "r", "audio": i % 2 == 0, "video": True})
        got = [m for m in await drain(alice, mallory) if m["type"] == "member_state"]
        assert 20 <= len(got) <= 24, len(got)
        assert await drain(mallory) == []  # dropped without a word


async def test_outsiders_cannot_send_room_links_to_members(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "mallory") as (alice, bob, mallory):
        await in_room("r", alice, bob)
        for message in (
            {"type": "offer", "to": "alice", "sdp": SDP, "room": "r"},
            {"type": "answer", "to": "alice", "sdp": SDP, "room": "r"},
            {"type": "candidate", "to": "bob", "candidate": CANDIDATE, "room": "r"},
        ):
            error = await refused(mallory, message)
            assert (error["code"], error["request"]) == ("no_call", message["type"])
        await in_room("other", mallory)  # a member of another room is an outsider too
        error = await refused(mallory, {"type": "candidate", "to": "bob", "candidate": CANDIDATE, "room": "r"})
        assert error["code"] == "no_call"
        # A member's answer or candidate without `room` is a 1:1 message: no call, no forward.
        await alice.send({"type": "candidate", "to": "bob", "candidate": CANDIDATE})
        assert (await alice.expect("error"))["code"] == "no_call"
        assert await drain(alice, mallory) == [] and await drain(bob, mallory, alice) == []


async def test_from_is_stamped_by_the_server(server: SignalingServer) -> None:
    async with users(server.url, "alice", "mallory") as (alice, mallory):
        await in_room("r", alice, mallory)
        await mallory.send({"type": "room_chat", "room": "r", "text": "hi", "from": "alice", "from_key": "aiice"})
        chat = await alice.expect("room_chat")
        assert (chat["from"], chat["from_key"]) == ("mallory", name_key("mallory"))
        await mallory.send({"type": "offer", "to": "alice", "sdp": SDP, "room": "r", "from": "bob", "pad": "x" * 999})
        offer = await alice.expect("offer")
        assert offer == {"type": "offer", "from": "mallory", "sdp": SDP, "room": "r", "from_key": name_key("mallory")}


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "room_chat", "room": "r", "text": "x" * 4001}, "too_large"),
        ({"type": "room_chat", "room": "r", "text": ""}, "bad_message"),
        ({"type": "room_chat", "room": "r", "text": ["x"]}, "bad_message"),
        ({"type": "room_chat", "room": "r"}, "bad_message"),
        ({"type": "room_state", "room": "r", "audio": "yes", "video": True}, "bad_message"),
        ({"type": "room_state", "room": "r", "audio": True}, "bad_message"),
        ({"type": "room_state", "room": "r", "audio": 1, "video": 0}, "bad_message"),
        ({"type": "room_join", "room": "s", "access": "secret"}, "bad_message"),
        ({"type": "room_join", "room": "s", "access": None}, "bad_message"),
        ({"type": "room_join", "room": "s", "password": "p" * 257}, "bad_message"),
        ({"type": "room_join", "room": "s", "password": 1234}, "bad_message"),
        ({"type": "room_invite", "room": "r", "to": "bad\u200bname"}, "bad_message"),
        ({"type": "room_invite", "room": "r"}, "bad_message"),
        ({"type": "room_join", "room": "r" * 65}, "invalid_room"),
        ({"type": "room_leave"}, "invalid_room"),
        ({"type": "offer", "to": "bob", "sdp": SDP, "room": {"name": "r"}}, "invalid_room"),
    ],
)
async def test_oversized_and_malformed_fields_are_refused(
    server: SignalingServer, message: dict[str, Any], code: str
) -> None:
    async with users(server.url, "alice", "bob") as (alice, bob):
        await in_room("r", alice, bob)
        error = await refused(alice, message)
        assert (error["code"], error["request"]) == (code, message["type"])
        assert await drain(bob, alice) == []
        assert set(server.hub.rooms.rooms) == {"r"}


async def test_a_non_member_cannot_chat_set_state_invite_or_leave(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "mallory") as (alice, bob, mallory):
        await in_room("r", alice)
        for message in (
            {"type": "room_chat", "room": "r", "text": "hi"},
            {"type": "room_state", "room": "r", "audio": True, "video": True},
            {"type": "room_invite", "room": "r", "to": "bob"},
            {"type": "room_leave", "room": "r"},
        ):
            error = await refused(mallory, message)
            assert (error["code"], error["request"]) == ("not_in_room", message["type"])
        await in_room("elsewhere", mallory)  # a member of another room, naming this one
        assert (await refused(mallory, {"type": "room_chat", "room": "r", "text": "hi"}))["code"] == "not_in_room"
        assert await drain(alice, mallory) == [] and await drain(bob, mallory) == []


async def test_not_registered_means_no_rooms(server: SignalingServer) -> None:
    async with SignalingClient(server.url) as anonymous:
        error = await refused(anonymous, {"type": "room_join", "room": "r"})
        assert error["code"] == "not_registered"
        assert server.hub.rooms.rooms == {}


async def test_rooms_on_a_server_are_bounded(server_factory: Any) -> None:
    """10,001 rooms would take 10,001 users (one user is in one room): checked with a small bound."""
    server = await server_factory(limits=Limits(presence_interval=0.05, max_rooms=2))
    async with users(server.url, "a1", "b2", "c3") as (a, b, c):
        await join(a, "r1")
        assert (await refused(a, {"type": "room_join", "room": "r2"}))["code"] == "busy"  # one room per user
        await join(b, "r2")
        error = await refused(c, {"type": "room_join", "room": "r3"})
        assert error["code"] == "room_full" and "rooms" in error["message"]
        await join(c, "r1")  # an existing room still takes members
        await a.send({"type": "room_leave", "room": "r1"})
        await c.send({"type": "room_leave", "room": "r1"})
        await a.expect("room_left")
        await c.expect("room_left")
        await join(c, "r3")  # r1 is gone: room for another
        assert set(server.hub.rooms.rooms) == {"r2", "r3"}


async def test_invitations_ringing_in_a_room_are_bounded(server_factory: Any) -> None:
    server = await server_factory(limits=Limits(presence_interval=0.05, room_max_ringing=2))
    async with users(server.url, "alice", "u1", "u2", "u3") as (alice, *invitees):
        await join(alice, "r")
        for invitee in invitees[:2]:
            await alice.send({"type": "room_invite", "room": "r", "to": invitee.username})
            await invitee.expect("room_invite")
        assert (await refused(alice, {"type": "room_invite", "room": "r", "to": "u3"}))["code"] == "room_full"
        await alice.send({"type": "room_invite", "room": "r", "to": "u1"})  # again: rings anew, no new slot
        await invitees[0].expect("room_invite")
        assert len(server.hub.rooms.rooms["r"].ringing) == 2
        assert await drain(invitees[2], alice) == []


async def test_inviting_yourself_the_absent_or_a_member(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob") as (alice, bob):
        await in_room("r", alice, bob)
        assert (await refused(alice, {"type": "room_invite", "room": "r", "to": "ALICE"}))["code"] == "self_call"
        assert (await refused(alice, {"type": "room_invite", "room": "r", "to": "nobody"}))["code"] == "unknown_peer"
        assert (await refused(alice, {"type": "room_invite", "room": "r", "to": "bob"}))["code"] == "busy"


async def test_a_decline_for_someone_else_does_nothing(server: SignalingServer) -> None:
    async with users(server.url, "alice", "bob", "mallory") as (alice, bob, mallory):
        await join(alice, "r")
        await alice.send({"type": "room_invite", "room": "r", "to": "bob"})
        await bob.expect("room_invite")
        assert (await refused(mallory, {"type": "room_decline", "room": "r"}))["code"] == "not_invited"
        assert all(m["type"] == "member_ringing" for m in await drain(alice, mallory))
        await join(bob, "r")  # bob's invitation still stands


async def test_a_member_that_does_not_read_misses_chat_but_keeps_its_connection(server_factory: Any) -> None:
    """What others say to a room never costs a member its connection: past max_forward_backlog
    unread bytes it misses lines (as a 1:1 receiver would be refused forwards)."""
    from .conftest import small_buffer_client

    bounds = Limits(presence_interval=0.05, max_forward_backlog=64 * 1024, rate=1e6, burst=1e6, room_chat_rate=1e6,
                    room_chat_burst=1e6)  # fmt: skip
    # No pings (a client that does not read misses pongs too), and a small slow-receiver limit.
    server = await server_factory(limits=bounds, ping_interval=None, max_buffer=256 * 1024)
    async with users(server.url, "alice", "bob") as (alice, bob):
        register: dict[str, object] = {"type": "register", "username": "slow", "client": "t"}
        slow = await small_buffer_client(server.url, server.port, register)
        try:
            await slow.send('{"type":"room_join","room":"r"}')
            assert json.loads(await slow.recv())["type"] == "room_joined"  # in the room before the others
            await in_room("r", alice, bob)
            slow.transport.pause_reading()
            for _ in range(1000):  # 8 MB for the slow reader: far past what the kernel and 256 KiB hold
                for sender in (alice, bob):
                    await sender.send({"type": "room_chat", "room": "r", "text": "y" * 4000})
            got = [m for m in await drain(alice, bob) if m["type"] == "room_chat"]
            assert len(got) == 1000  # the others got every line
            session = server.hub.users[name_key("slow")]  # not dropped as a slow receiver
            assert session.transport.unsent_bytes() <= bounds.max_forward_backlog + 8 * 1024
            assert set(server.hub.rooms.rooms["r"].members) == {"aiice", "bob", name_key("slow")}
        finally:
            slow.transport.abort()
