"""The wire's declarations (nbcall/signaling/wire.py): what they accept, and that they are enforced.

The whole suite runs with NBCALL_WIRE_CHECK=1 (tests/__init__.py), so every frame a server
sends in a test is checked against :data:`wire.SERVER_MESSAGES`; these tests show that a
server message with an undeclared or ill-typed field is caught, and pin down the checker.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

from nbcall.signaling import SignalingClient, SignalingServer, wire
from nbcall.signaling import protocol as p
from nbcall.signaling.hub import Hub


def test_every_type_the_protocol_names_is_declared_once_per_direction() -> None:
    assert {"register", "offer", "answer", "candidate"} <= wire.CLIENT_TYPES
    assert {"offer", "answer", "candidate"} == wire.SEED_FORWARDED
    assert {"room_join", "room_leave", "room_invite", "room_decline", "room_state", "room_chat"} == wire.ROOM_REQUESTS
    assert "room_topology" in wire.ROOM_EVENTS and "room_chat" in wire.ROOM_EVENTS
    for table in (wire.CLIENT_MESSAGES, wire.SERVER_MESSAGES):
        for kind, message in table.items():
            assert message.type == kind
            names = [f.name for f in message.fields]
            assert len(names) == len(set(names)), f"{kind} declares a field twice"


def test_the_seed_shapes_are_declared_seed_fields_in_the_seeds_order() -> None:
    for kind, payload in wire.PAYLOAD_FIELD.items():
        sent = wire.SERVER_MESSAGES[kind]
        assert [f.name for f in sent.fields if f.seed] == ["from", payload]
        assert sent.seed and wire.CLIENT_MESSAGES[kind].seed


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"type": "pong", "extra": 1}, "undeclared field 'extra'"),
        ({"type": "nonsense"}, "undeclared message type 'nonsense'"),
        ({"type": "users", "users": [], "keys": []}, "required field 'online' is missing"),
        ({"type": "users", "users": "ann", "keys": [], "online": 1}, "users: str is not names"),
        ({"type": "users", "users": [], "keys": [], "online": True}, "online: bool is not integer"),
        ({"type": "hangup", "from": "a", "from_key": "a", "call_id": "c", "reason": "bored"}, "'bored' is not one of"),
        ({"type": "error", "code": "made_up", "message": "m"}, "'made_up' is not one of"),
        ({"type": "candidate", "from": "a", "candidate": {"candidate": "x", "pad": 1}}, "dict is not candidate"),
        (
            {"type": "room_left", "room": "r", "reason": None},
            "room_left.reason is null",
        ),
    ],
)
def test_problems_names_what_is_wrong(message: dict[str, Any], problem: str) -> None:
    found = wire.problems(message)
    assert any(problem in text for text in found), found


def test_nested_objects_are_checked_field_by_field() -> None:
    member = {"name": "ann", "key": "ann", "audio": True, "video": True, "offer": False, "sfu_id": None}
    joined = {
        "type": "room_joined", "room": "r", "room_key": "r", "topology": "mesh", "members": [member],
        "ringing": [], "mesh_limit": 4, "max_members": 50, "sfu": None,
    }  # fmt: skip
    assert wire.problems(joined) == []
    assert wire.problems({**joined, "members": [{**member, "secret": "x"}]}) == [
        "room_joined.members[0]: undeclared field 'secret'"
    ]
    assert wire.problems({**joined, "sfu": {"url": "ws://x"}})[0].startswith("room_joined.sfu: required field")
    assert wire.problems({**joined, "members": [{**member, "sfu_id": 7}]}) == [
        "room_joined.members[0].sfu_id: int is not string"
    ]


def test_a_seed_client_gets_no_key_and_that_is_declared() -> None:
    seed_shape = {"type": "offer", "from": "小文111", "sdp": {"type": "offer", "sdp": "v=0"}}
    assert wire.problems(seed_shape) == []
    assert wire.problems({**seed_shape, "from_key": "小文111", "call_id": "c"}) == []


def test_check_sent_remembers_and_raises() -> None:
    wire.violations.clear()
    with pytest.raises(wire.WireViolation, match="undeclared field 'leak'"):
        wire.check_sent(orjson.dumps({"type": "pong", "leak": "secret"}))
    assert len(wire.violations) == 1
    wire.check_sent(b'{"type":"pong","x":1}', fail=False)  # a reader's check: remembered only
    assert len(wire.violations) == 2
    wire.violations.clear()


def test_the_bound_on_remembered_violations() -> None:
    for _ in range(wire.MAX_VIOLATIONS + 20):
        wire.check_sent(b'{"type":"pong","x":1}', fail=False)
    assert len(wire.violations) == wire.MAX_VIOLATIONS
    wire.violations.clear()


async def test_a_server_message_with_an_undeclared_field_fails_the_suite(
    server: SignalingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What 'adding a field to one server message without declaring it' does in this suite:
    the real server's send is refused (the request costs an internal_error reply) and the
    violation is remembered, which tests/conftest.py's wire_as_declared turns into a failure."""
    users_reply = Hub._users_reply

    def with_a_new_field(self: Hub, kind: str) -> dict[str, Any]:
        return {**users_reply(self, kind), "mood": "new"}

    monkeypatch.setattr(Hub, "_users_reply", with_a_new_field)
    async with SignalingClient(server.url, client="test") as ann:
        await ann.send({"type": "register", "username": "ann"})
        reply = await ann.recv()
    assert reply["type"] == "error" and reply["code"] == p.ErrorCode.INTERNAL
    assert any("registered: undeclared field 'mood'" in v for v in wire.violations)
    wire.violations.clear()  # seen: this test expects it


async def test_a_client_records_what_it_receives_off_the_wire() -> None:
    """SignalingClient checks what it reads, so a server in another process (a kernel's, a
    Jupyter server's) is checked too: here a stand-in server sends an undeclared message."""

    async def undeclared(ws: ServerConnection) -> None:
        await ws.send('{"type":"pong","shadow":true}')
        await ws.wait_closed()

    async with serve(undeclared, "127.0.0.1", 0) as stand_in:
        port = next(iter(stand_in.sockets)).getsockname()[1]
        async with SignalingClient(f"ws://127.0.0.1:{port}") as client:
            assert (await client.recv())["type"] == "pong"  # still delivered: the reader goes on
    assert any("undeclared field 'shadow'" in v for v in wire.violations)
    wire.violations.clear()


async def test_a_client_skips_frames_that_are_not_json_objects_and_reads_on() -> None:
    """A hostile or broken server's garbage costs nothing but a count (nbcall.Peer reads
    through this client): the message after it arrives, and messages() ends at the close."""

    async def garbage(ws: ServerConnection) -> None:
        for frame in ("not json", "[1, 2]", '"text"', '{"type":"pong"}'):
            await ws.send(frame)
        await ws.close()

    async with serve(garbage, "127.0.0.1", 0) as stand_in:
        port = next(iter(stand_in.sockets)).getsockname()[1]
        async with SignalingClient(f"ws://127.0.0.1:{port}") as client:
            got = [message async for message in client.messages()]
    assert got == [{"type": "pong"}]
    assert client.malformed == 3
    assert len(wire.violations) == 3  # each also reported as off the wire
    wire.violations.clear()
