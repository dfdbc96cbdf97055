"""A real Janus started by the test on 127.0.0.1: only the server can make rooms, only PIN holders join.

What a page can do is tried as a page would: over Janus's WebSockets API (the one the
widget's janus-gateway client speaks), with nothing but what a page could know.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from nbcall.sfu import JanusError, LocalJanus, Room, RoomAdmin

pytestmark = pytest.mark.janus

REFUSED = (429, 433)  # VideoRoom: a missing pin/secret/key, a wrong one


@pytest.fixture(scope="module")
def janus() -> Iterator[LocalJanus]:
    with LocalJanus() as server:
        yield server


@pytest.fixture
def room(janus: LocalJanus) -> Iterator[Room]:
    admin = RoomAdmin(janus.http_url, janus.admin_key)
    made = admin.create(f"room-{secrets.token_hex(3)}", publishers=5)
    yield made
    if admin.exists(made.name):
        admin.destroy(made)


class Page:
    """A page's Janus client: one WebSockets session with the VideoRoom plugin attached."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.session = 0
        self.handle = 0

    async def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send a request; return Janus's answer to it (an event for asynchronous plugin requests)."""
        transaction = secrets.token_hex(6)
        ids = {"session_id": self.session, "handle_id": self.handle}
        await self.ws.send(json.dumps({"transaction": transaction, **{k: v for k, v in ids.items() if v}, **body}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("transaction") != transaction or reply.get("janus") == "ack":
                continue
            return dict(reply)

    async def plugin(self, body: dict[str, Any]) -> dict[str, Any]:
        reply = await self.send({"janus": "message", "body": body})
        return dict(reply.get("plugindata", {}).get("data", {}))


@pytest_asyncio.fixture
async def page(janus: LocalJanus) -> AsyncIterator[Page]:
    async with connect(janus.ws_url, subprotocols=["janus-protocol"]) as ws:  # type: ignore[list-item]
        client = Page(ws)
        client.session = (await client.send({"janus": "create"}))["data"]["id"]
        client.handle = (await client.send({"janus": "attach", "plugin": "janus.plugin.videoroom"}))["data"]["id"]
        yield client


def test_janus_runs_only_what_rooms_need_on_loopback(janus: LocalJanus) -> None:
    info = janus.info()
    assert sorted(info["plugins"]) == ["janus.plugin.videoroom"]  # type: ignore[call-overload]
    assert sorted(info["transports"]) == ["janus.transport.http", "janus.transport.websockets"]  # type: ignore[call-overload]
    assert janus.proc is not None
    listening = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, check=True).stdout
    mine = [line for line in listening.splitlines() if f"pid={janus.proc.pid}," in line]
    assert mine, listening
    for line in mine:  # every TCP port Janus listens on is bound to 127.0.0.1
        assert line.split()[3].startswith("127.0.0.1:"), line


def test_rooms_need_the_admin_key(janus: LocalJanus) -> None:
    with pytest.raises(JanusError, match="433"):
        RoomAdmin(janus.http_url, "a page's guess").create("mine")
    admin = RoomAdmin(janus.http_url, janus.admin_key)
    room = admin.create("standup")
    try:
        with pytest.raises(JanusError, match=r"exists|already"):
            admin.create("standup")
    finally:
        admin.destroy(room)
    assert not admin.exists("standup")


async def test_a_page_without_the_pin_cannot_join(page: Page, room: Room) -> None:
    for pin in (None, "", "wrong", room.pin.upper() if room.pin.upper() != room.pin else room.pin + "x"):
        body = {"request": "join", "ptype": "publisher", "room": room.name, "display": "mallory"}
        if pin is not None:
            body["pin"] = pin
        reply = await page.plugin(body)
        assert reply.get("error_code") in REFUSED, reply
    joined = await page.plugin({"request": "join", "ptype": "publisher", "room": room.name, "pin": room.pin,
                                "display": "alice"})  # fmt: skip
    assert joined.get("videoroom") == "joined" and joined.get("room") == room.name, joined


async def test_a_page_cannot_destroy_list_or_create_rooms(page: Page, room: Room, janus: LocalJanus) -> None:
    assert (await page.plugin({"request": "destroy", "room": room.name}))["error_code"] in REFUSED
    assert (await page.plugin({"request": "destroy", "room": room.name, "secret": "guess"}))["error_code"] == 433
    listed = await page.plugin({"request": "list"})
    assert room.name not in json.dumps(listed.get("list", [])), listed  # private rooms are not listed
    made = await page.plugin({"request": "create", "room": "squat", "publishers": 100})
    assert made.get("error_code") in REFUSED, made
    made = await page.plugin({"request": "create", "room": "squat", "admin_key": "guess"})
    assert made.get("error_code") == 433, made
    assert RoomAdmin(janus.http_url, janus.admin_key).exists(room.name)


def test_a_stopped_janus_is_gone(tmp_path: Any) -> None:
    server = LocalJanus(tmp_path / "janus").start()
    proc = server.proc
    assert proc is not None and proc.poll() is None
    server.stop()
    assert proc.poll() is not None
    with pytest.raises(OSError):
        server.info()


def _answer_candidates(janus: LocalJanus, room: Room, offer_sdp: str) -> list[str]:
    """Publish with ``offer_sdp`` over Janus's HTTP API; the host addresses of Janus's answer."""
    import urllib.request

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        message = json.dumps({"transaction": secrets.token_hex(6), **body}).encode()
        request = urllib.request.Request(
            janus.http_url + path, data=message, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    session = post("", {"janus": "create"})["data"]["id"]
    handle = post(f"/{session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"})["data"]["id"]
    body = {"request": "joinandconfigure", "ptype": "publisher", "room": room.name, "pin": room.pin, "audio": True}
    post(f"/{session}/{handle}", {"janus": "message", "body": body, "jsep": {"type": "offer", "sdp": offer_sdp}})
    for _ in range(20):
        with urllib.request.urlopen(f"{janus.http_url}/{session}?maxev=1", timeout=5) as response:
            event = json.loads(response.read())
        if isinstance(event, dict) and event.get("jsep"):
            lines = event["jsep"]["sdp"].splitlines()
            return [line.split()[4] for line in lines if line.startswith("a=candidate:")]
    raise AssertionError("janus sent no answer")


@pytest.mark.skipif(os.geteuid() != 0, reason="the ICE link needs root (CI runs as root)")
async def test_janus_offers_media_only_on_a_loopback_range_address(janus: LocalJanus, room: Room) -> None:
    """libnice never gathers on `lo`: LocalJanus gives it an interface of its own with a
    127.x address (nbcall/sfu/ice_link.py), so every candidate of its answer is one of those."""
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        hosts = _answer_candidates(janus, room, pc.localDescription.sdp)
    finally:
        await pc.close()
    assert hosts and all(host.startswith("127.") for host in hosts), hosts
    assert janus.ice.address in hosts and janus.ice_interface is not None


@pytest.mark.skipif(os.geteuid() != 0, reason="the ICE link needs root (CI runs as root)")
def test_links_left_by_a_killed_process_are_swept_and_live_ones_kept() -> None:
    from nbcall.sfu.ice_link import IceLink, sweep

    dead = f"tunj{0xFFFFFE:x}beef"  # a pid no process has here
    live = IceLink()
    try:
        assert live.open() is not None
        subprocess.run(["ip", "link", "add", dead, "type", "veth", "peer", "name", "tunkbeef"], check=True)
        assert sweep() == 1
        names = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        assert dead not in names and str(live.name) in names
    finally:
        live.close()
        subprocess.run(["ip", "link", "del", dead], capture_output=True)
