"""The same seed-client script against the seed's node server and against nbcall's.

Seed clients understand only offer/answer/candidate; those must arrive identically,
byte for byte, from both servers.  nbcall's extra replies (registered, error, ...) are
messages a seed page ignores.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from nbcall.signaling import SignalingServer

SEED_TYPES = {"offer", "answer", "candidate"}
OFFER = {"type": "offer", "sdp": "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
CANDIDATE = {
    "candidate": "candidate:842163049 1 udp 1677729535 127.0.0.1 46154 typ srflx raddr 0.0.0.0 rport 0",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "xQ+z",
}


def js(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


# The seed page's messages, in order: (sender, frame).  Names are the seed's own.
SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("a", {"type": "register", "id": "wzh111", "username": "小文111"}),
    ("b", {"type": "register", "id": "wzh222", "username": "小文222"}),
    ("a", {"type": "offer", "sdp": OFFER, "from": "小文111", "to": "小文222"}),
    ("a", {"type": "candidate", "candidate": CANDIDATE, "from": "小文111", "to": "小文222"}),
    ("b", {"type": "answer", "sdp": ANSWER, "from": "小文222", "to": "小文111"}),
    ("b", {"type": "candidate", "candidate": CANDIDATE, "from": "小文222", "to": "小文111"}),
    ("a", {"type": "offer", "sdp": OFFER, "from": "小文111", "to": "nobody"}),  # unknown peer
    ("a", {"type": "candidate", "candidate": None, "from": "小文111", "to": "小文222"}),  # end of candidates
]


@pytest.fixture(params=["seed", "nbcall"])
async def server_url(request: pytest.FixtureRequest, server_factory: Any) -> AsyncIterator[str]:
    if request.param == "seed":
        yield request.getfixturevalue("seed_server_url")
    else:
        server: SignalingServer = await server_factory()
        yield server.url


# After the script, each side sends the other one more end-of-candidates.  Both servers
# handle a connection's frames in order and forward at once, so a side has everything the
# other sent it once this last one arrives: a barrier both servers have (the seed's knows no
# ping), instead of waiting for a quiet spell.
LAST = {"a": ("小文111", "小文222"), "b": ("小文222", "小文111")}


def last_frame(sender: str, to: str) -> dict[str, Any]:
    return {"type": "candidate", "candidate": None, "from": sender, "to": to}


async def until_last(ws: ClientConnection, sender: str) -> list[str]:
    """The frames ``ws`` got up to ``sender``'s last one (which is left out)."""
    frames: list[str] = []
    last = js({"type": "candidate", "from": sender, "candidate": None})
    while True:
        frame = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(frame, str)
        if frame == last and frames.count(last) == EXPECTED_ENDS[sender]:
            return frames
        frames.append(frame)


async def run_script(url: str) -> dict[str, list[str]]:
    async with connect(url) as a, connect(url) as b:
        clients = {"a": a, "b": b}
        for who, message in SCRIPT:
            await clients[who].send(js(message))
            await asyncio.sleep(0.02)  # the seed page is one human, not a burst
        for who, (sender, to) in LAST.items():
            await clients[who].send(js(last_frame(sender, to)))
        received = {"b": await until_last(b, "小文111"), "a": await until_last(a, "小文222")}
    return {who: [f for f in frames if json.loads(f).get("type") in SEED_TYPES] for who, frames in received.items()}


EXPECTED = {
    "b": [
        js({"type": "offer", "from": "小文111", "sdp": OFFER}),
        js({"type": "candidate", "from": "小文111", "candidate": CANDIDATE}),
        js({"type": "candidate", "from": "小文111", "candidate": None}),
    ],
    "a": [
        js({"type": "answer", "from": "小文222", "sdp": ANSWER}),
        js({"type": "candidate", "from": "小文222", "candidate": CANDIDATE}),
    ],
}


# How many end-of-candidates from each sender the script itself has (its last one is the barrier's).
EXPECTED_ENDS = {
    sender: sum(1 for who, m in SCRIPT if m["type"] == "candidate" and m["candidate"] is None and m["from"] == sender)
    for sender in ("小文111", "小文222")
}


async def test_seed_script_gets_the_same_answers(server_url: str) -> None:
    assert await run_script(server_url) == EXPECTED
