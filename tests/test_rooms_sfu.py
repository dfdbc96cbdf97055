"""Rooms that outgrow the mesh move to a real Janus (LocalJanus on 127.0.0.1, stopped by pid).

The server creates the Janus room with a token per member, tells everyone where to go, and
keeps Janus's ``allowed`` list equal to the room's members; a token not on it is refused by
Janus itself, and a Janus that is down leaves the mesh as it was.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nbcall.sfu import LocalJanus, RoomAdmin, SfuConfig, VideoRoom
from nbcall.signaling import SignalingClient, SignalingServer

from .room_helpers import SDP, drain, in_room, join, refused, users

pytestmark = pytest.mark.janus

NAMES = ["ann", "ben", "cat", "dan", "eve", "fay", "gus"]


@pytest.fixture(scope="module")
def janus() -> Iterator[LocalJanus]:
    with LocalJanus() as server:
        yield server


@pytest.fixture
async def sfu_server(server_factory: Any, janus: LocalJanus) -> SignalingServer:
    server: SignalingServer = await server_factory(sfu=SfuConfig.of(janus))
    return server


def janus_room(server: SignalingServer, room: str) -> VideoRoom:
    made = server.hub.rooms.rooms[room].janus
    assert made is not None
    return made


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps({"transaction": secrets.token_hex(6), **body}).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read()))


def janus_join(janus: LocalJanus, sfu: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Join as a publisher the way a page does, over Janus's HTTP API; VideoRoom's answer."""
    session = _post(janus.http_url, {"janus": "create"})["data"]["id"]
    handle = _post(f"{janus.http_url}/{session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"})["data"]["id"]
    body = {"request": "join", "ptype": "publisher", "room": sfu["room"], "pin": sfu["pin"], "id": sfu["id"],
            "token": sfu["token"], "display": "page", **changes}  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}  # None: leave the field out
    reply = _post(f"{janus.http_url}/{session}/{handle}", {"janus": "message", "body": body})
    if reply.get("janus") == "ack":  # join is asynchronous: its answer is an event
        with urllib.request.urlopen(f"{janus.http_url}/{session}?maxev=1", timeout=35) as response:
            reply = json.loads(response.read())
    return dict(reply.get("plugindata", {}).get("data", reply))


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not within the timeout"
        await asyncio.sleep(0.05)


async def test_the_fifth_join_moves_the_room_to_the_sfu(sfu_server: SignalingServer, janus: LocalJanus) -> None:
    admin = RoomAdmin(janus.http_url, janus.admin_key)
    async with users(sfu_server.url, *NAMES[:6]) as clients:
        first, newcomer, later = clients[:4], clients[4], clients[5]
        await in_room("big", *first)
        joined = await join(newcomer, "big")
        assert joined["topology"] == "sfu" and joined["sfu"] is not None
        assert [m["offer"] for m in joined["members"]] == [False] * 4  # no mesh links on the SFU
        sfus = {newcomer.username: joined["sfu"]}
        # Nobody is told another's publisher id before it is in use in Janus.
        assert [m["sfu_id"] for m in joined["members"]] == [None] * 4
        for client in first:
            moved = await client.expect("room_topology")
            assert (moved["room"], moved["topology"]) == ("big", "sfu")
            sfus[client.username] = moved["sfu"]
            assert [m["sfu_id"] for m in moved["members"]] == [None] * 3
            came = await client.expect("member_joined")
            assert (came["from"], came["sfu_id"], came["offer"]) == (newcomer.username, None, False)
        ids = {name: s["id"] for name, s in sfus.items()}
        assert len(set(ids.values())) == 5 and len({s["token"] for s in sfus.values()}) == 5
        assert {(s["url"], s["room"], s["pin"]) for s in sfus.values()} == {(janus.ws_url, sfus["ann"]["room"],
                                                                             sfus["ann"]["pin"])}  # fmt: skip

        # Janus has the room, with exactly these tokens.
        made = janus_room(sfu_server, "big")
        assert made.name == sfus["ann"]["room"] and admin.exists(made.name)
        assert sorted(admin.allowed(made)) == sorted(s["token"] for s in sfus.values())
        assert admin.participants(made) == []
        # A wrong token is refused by Janus; the right one with the given id gets in.
        for wrong in ({"token": "guess"}, {"token": sfus["ann"]["token"] + "x"}, {"token": None}):
            assert (await asyncio.to_thread(janus_join, janus, sfus["ann"], **wrong))["error_code"] == 433
        inside = await asyncio.to_thread(janus_join, janus, sfus["ann"])
        assert (inside.get("videoroom"), inside.get("id")) == ("joined", sfus["ann"]["id"]), inside
        # ann's id is in use in Janus now: the others are told it, and only it.
        for client in [*first[1:], newcomer]:
            told = await client.expect("room_topology")
            assert {m["name"]: m["sfu_id"] for m in told["members"]} == {
                name: (ids["ann"] if name == "ann" else None) for name in ids if name != client.username
            }

        # A later joiner gets its token and id at once.
        late = await join(later, "big")
        assert late["topology"] == "sfu" and late["sfu"]["room"] == made.name
        assert {m["name"]: m["sfu_id"] for m in late["members"]} == {n: ids["ann"] if n == "ann" else None for n in ids}
        assert late["sfu"]["token"] in await asyncio.to_thread(admin.allowed, made)
        assert (await first[1].expect("member_joined"))["sfu_id"] is None

        # Leaving removes the token and the publisher.
        await first[0].send({"type": "room_leave", "room": "big"})
        await first[0].expect("room_left")

        async def ann_is_out() -> bool:
            allowed = await asyncio.to_thread(admin.allowed, made)
            present = await asyncio.to_thread(admin.participants, made)
            return sfus["ann"]["token"] not in allowed and all(p["id"] != sfus["ann"]["id"] for p in present)

        await eventually(ann_is_out)
        assert (await asyncio.to_thread(janus_join, janus, sfus["ann"]))["error_code"] == 433  # no way back
        assert len(await asyncio.to_thread(admin.allowed, made)) == 5

        # The room empties: its Janus room is destroyed.
        for client in clients[1:]:
            await client.send({"type": "room_leave", "room": "big"})
            await client.expect("room_left")

        async def destroyed() -> bool:
            return not await asyncio.to_thread(admin.exists, made.name)

        await eventually(destroyed)
        assert sfu_server.hub.rooms.rooms == {} and sfu_server.hub.rooms.sfu is not None
        assert sfu_server.hub.rooms.sfu.rooms == set()


class Looks:
    """Counts the server's looks at who is in its Janus rooms (``RoomAdmin.participants``),
    each once it has returned."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, admin: RoomAdmin) -> None:
        self.count = 0
        real = admin.participants

        def counted(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            self.count += 1
            return result

        monkeypatch.setattr(admin, "participants", counted)


async def test_a_member_cannot_publish_as_another(
    sfu_server: SignalingServer, janus: LocalJanus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attacker's test: ben would show his camera as ann's tile.  He never learns ann's
    publisher id before ann holds it in Janus; once he does, Janus refuses it to him; and an
    id he makes up (with ann's display name) is never told to anyone."""
    async with users(sfu_server.url, *NAMES[:5]) as clients:
        await in_room("big", *clients[:4])
        joined = await join(clients[4], "big")
        sfus = {clients[4].username: joined["sfu"]}
        for client in clients[:4]:
            sfus[client.username] = (await client.expect("room_topology"))["sfu"]
        ben = clients[1]
        early = await drain(ben, *clients)  # nobody is in Janus yet: no id is told
        assert all(msg.get("sfu_id") is None for msg in early)
        assert all(m["sfu_id"] is None for msg in early for m in msg.get("members", []))
        inside = await asyncio.to_thread(janus_join, janus, sfus["ann"])
        assert inside.get("videoroom") == "joined", inside
        told = await ben.expect("room_topology")
        assert {m["name"]: m["sfu_id"] for m in told["members"]}["ann"] == sfus["ann"]["id"]
        taken = await asyncio.to_thread(janus_join, janus, sfus["ben"], id=sfus["ann"]["id"])
        assert taken.get("error_code") == 436, taken  # "ID already exists"
        made_up = "f" * 16
        assert sfu_server.hub.rooms.sfu is not None
        looks = Looks(monkeypatch, sfu_server.hub.rooms.sfu.admin)
        fake = await asyncio.to_thread(janus_join, janus, sfus["ben"], id=made_up, display="ann")
        assert (fake.get("videoroom"), fake.get("id")) == ("joined", made_up), fake
        # Three looks returned since: the second began after the made-up id was in Janus, and
        # the watch acted on what it saw before it began the third.
        start = looks.count
        await eventually(lambda: asyncio.sleep(0, looks.count >= start + 3))
        for client in clients:
            for message in await drain(client):
                assert made_up not in json.dumps(message), message
        assert sfu_server.hub.rooms.rooms["big"].members["ben"].sfu_seen is False


class Gate:
    """Holds one of the server's real Janus calls until the test opens it: what clients do
    while Janus works can then be sent for sure before Janus answers."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, admin: RoomAdmin, method: str) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        real = getattr(admin, method)

        def held(*args: Any, **kwargs: Any) -> Any:
            self.entered.set()
            self.open.wait(10)
            return real(*args, **kwargs)

        monkeypatch.setattr(admin, method, held)

    async def reached(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10)


async def test_joins_and_leaves_during_the_move_keep_their_order(
    sfu_server: SignalingServer, janus: LocalJanus, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = RoomAdmin(janus.http_url, janus.admin_key)
    assert sfu_server.hub.rooms.sfu is not None
    gate = Gate(monkeypatch, sfu_server.hub.rooms.sfu.admin, "create")
    async with users(sfu_server.url, *NAMES) as clients:
        await in_room("busy", *clients[:4])
        await clients[4].send({"type": "room_join", "room": "busy"})
        await gate.reached()  # Janus is creating the room: two more join, one leaves
        for client in clients[5:]:
            await client.send({"type": "room_join", "room": "busy"})
        room = sfu_server.hub.rooms.rooms["busy"]
        await eventually(lambda: asyncio.sleep(0, len(room.joining) == 3))
        await clients[0].send({"type": "room_leave", "room": "busy"})
        await clients[0].expect("room_left")  # a leave is at once, even while the room moves
        gate.open.set()
        for client in clients[4:]:
            joined = await client.expect("room_joined", timeout=10)
            assert joined["topology"] == "sfu" and joined["sfu"]["token"]
        moved = await clients[1].expect("room_topology")
        assert [m["name"] for m in moved["members"]] == ["cat", "dan"]  # ann left before the move
        assert [(await clients[1].expect("member_joined"))["from"] for _ in range(3)] == ["eve", "fay", "gus"]
        made = janus_room(sfu_server, "busy")
        expected = sorted(m.token for m in room.members.values() if m.token)

        async def settled() -> bool:  # ann's token was in the create; it is removed after it
            return sorted(await asyncio.to_thread(admin.allowed, made)) == expected

        await eventually(settled)
        assert len(expected) == 6


async def test_a_joiner_that_leaves_while_it_waits_for_janus_gets_no_token(
    sfu_server: SignalingServer, janus: LocalJanus, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = RoomAdmin(janus.http_url, janus.admin_key)
    async with users(sfu_server.url, *NAMES[:6]) as clients:
        await in_room("r", *clients[:5])
        assert sfu_server.hub.rooms.sfu is not None
        gate = Gate(monkeypatch, sfu_server.hub.rooms.sfu.admin, "allow")
        await clients[5].send({"type": "room_join", "room": "r"})
        await gate.reached()
        await clients[5].close()  # gone before its join is done
        await eventually(lambda: asyncio.sleep(0, "fay" not in sfu_server.hub.rooms.where))
        gate.open.set()
        made = janus_room(sfu_server, "r")
        room = sfu_server.hub.rooms.rooms["r"]

        async def idle() -> bool:
            return not room.work.busy

        await eventually(idle)
        assert len(await asyncio.to_thread(admin.allowed, made)) == 5  # its token was added, then removed
        assert all(m["type"] != "member_joined" for m in await drain(clients[0]))


async def test_a_stopped_janus_refuses_the_move_and_the_mesh_goes_on(server_factory: Any, tmp_path: Path) -> None:
    janus = LocalJanus(tmp_path / "janus").start()
    try:
        server = await server_factory(sfu=SfuConfig.of(janus))
    finally:
        janus.stop()
    async with users(server.url, *NAMES[:5]) as clients:
        await in_room("r", *clients[:4])
        error = await refused(clients[4], {"type": "room_join", "room": "r"})
        assert (error["code"], error["request"]) == ("sfu_unavailable", "room_join")
        assert server.hub.errors["sfu_unavailable"] == 1
        for member in clients[:4]:
            assert await drain(member, clients[4]) == []  # no topology change, nobody joined
        room = server.hub.rooms.rooms["r"]
        assert room.topology == "mesh" and room.janus is None and len(room.members) == 4
        assert all(m.token is None and m.sfu_id is None for m in room.members.values())
        await clients[3].send({"type": "offer", "to": "ann", "sdp": SDP, "room": "r"})
        assert (await clients[0].expect("offer"))["from"] == "dan"  # the mesh carries on
        assert "eve" not in server.hub.rooms.where
        assert (await join(clients[4], "elsewhere"))["topology"] == "mesh"


async def test_the_server_stops_its_janus_rooms_with_it(server_factory: Any, janus: LocalJanus) -> None:
    admin = RoomAdmin(janus.http_url, janus.admin_key)
    server = await server_factory(sfu=SfuConfig.of(janus), limits=None)
    async with users(server.url, *NAMES[:5]) as clients:
        await in_room("r", *clients)
        made = janus_room(server, "r")
        await server.stop()
    assert not await asyncio.to_thread(admin.exists, made.name)


async def test_a_member_of_an_sfu_room_is_still_busy_and_offers_stay_within(sfu_server: SignalingServer) -> None:
    async with users(sfu_server.url, *NAMES[:6]) as clients:
        await in_room("r", *clients[:5])
        await clients[5].send({"type": "invite", "to": "ann"})
        assert (await clients[5].expect("busy"))["from"] == "ann"
        error = await refused(clients[5], {"type": "offer", "to": "ann", "sdp": SDP, "room": "r"})
        assert error["code"] == "no_call"


def test_sfu_configuration_is_checked() -> None:
    from nbcall.sfu.config import resolve

    good = '{"admin_url": "http://127.0.0.1:8088/janus", "public_url": "wss://sfu.example", "admin_key": "k"}'
    config, owned = resolve(good)
    assert owned is None and config == SfuConfig("http://127.0.0.1:8088/janus", "wss://sfu.example", "k")
    assert "'k'" not in repr(config)  # the admin key stays out of logs
    for bad in ("{", "[]", '{"admin_url": "x"}', good.replace("http://", "ftp://"), good.replace('"k"', '""'),
                good.replace('"k"', "1"), "lokal"):  # fmt: skip
        with pytest.raises(ValueError):
            resolve(bad)
    assert resolve(None) == (None, None)


def test_nbcall_server_refuses_a_bad_sfu(capsys: pytest.CaptureFixture[str]) -> None:
    from nbcall.cli import main

    assert main(["--port", "0", "--sfu", '{"admin_url": 1}']) == 2
    assert "SFU" in capsys.readouterr().err


def test_serve_local_owns_its_janus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbcall.signaling import embedded

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    previous = embedded.current()
    if previous is not None:
        previous.stop()
    handle = embedded.serve(port=0, sfu="local")
    try:
        assert handle.sfu is not None and handle.sfu.public_url.startswith("ws://127.0.0.1:")
        server = handle._server
        assert server is not None and server.owned_janus is not None
        proc = server.owned_janus.proc
        assert proc is not None and proc.poll() is None
        assert asyncio.run(_joins_fifth(handle.url)) == "sfu"
    finally:
        handle.stop()
    assert proc.poll() is not None  # stopped with the server


def test_nbcall_sfu_names_the_sfu_of_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, janus: LocalJanus) -> None:
    from nbcall.signaling import embedded

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("NBCALL_SFU", json.dumps({"admin_url": janus.http_url, "public_url": janus.ws_url,
                                                 "admin_key": janus.admin_key}))  # fmt: skip
    previous = embedded.current()
    if previous is not None:
        previous.stop()
    handle = embedded.serve(port=0)
    try:
        assert handle.sfu == SfuConfig.of(janus)
        assert handle._server is not None and handle._server.owned_janus is None  # not ours to stop
    finally:
        handle.stop()
    assert janus.proc is not None and janus.proc.poll() is None


async def _joins_fifth(url: str) -> str:
    async with users(url, *NAMES[:5]) as clients:
        await in_room("r", *clients[:4])
        topology: str = (await join(clients[4], "r"))["topology"]
        return topology


async def test_a_seed_client_is_unaffected(sfu_server: SignalingServer) -> None:
    """Seed clients never see rooms: a 1:1 seed-style call next to a room is forwarded as before."""
    async with users(sfu_server.url, *NAMES[:2]) as clients:
        await in_room("r", *clients)
        async with (
            SignalingClient(sfu_server.url, "seedpage", seed=True) as seed,
            SignalingClient(sfu_server.url, "widget") as widget,
        ):
            await seed.send({"type": "offer", "to": "widget", "sdp": SDP})
            assert await widget.expect("offer") == {"type": "offer", "from": "seedpage", "sdp": SDP,
                                                    "from_key": "seedpage"}  # fmt: skip
            await widget.send({"type": "answer", "to": "seedpage", "sdp": SDP})
            answer = await seed.expect("answer")  # the seed's shape: no key, no room, in this order
            assert list(answer.items()) == [("type", "answer"), ("from", "widget"), ("sdp", SDP)]


def test_nbcall_server_sfu_local_starts_and_stops_its_janus() -> None:
    import os
    import signal
    import subprocess

    from .conftest import nbcall_server_cmd, stop_process

    proc = subprocess.Popen(nbcall_server_cmd(0, "--sfu", "local"), stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(b"nbcall signaling server on ws://127.0.0.1:")
        assert proc.stdout.readline().startswith(b"rooms past the mesh limit use the SFU at ws://127.0.0.1:")
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 1  # its janus
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert not os.path.exists(f"/proc/{children[0]}")  # stopped with it
    finally:
        stop_process(proc)
