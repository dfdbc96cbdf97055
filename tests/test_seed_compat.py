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


async def drain(ws: ClientConnection, quiet: float = 0.3) -> list[str]:
    frames: list[str] = []
    while True:
        try:
            frame = await asyncio.wait_for(ws.recv(), quiet)
        except TimeoutError:
            return frames
        assert isinstance(frame, str)
        frames.append(frame)


async def run_script(url: str) -> dict[str, list[str]]:
    async with connect(url) as a, connect(url) as b:
        clients = {"a": a, "b": b}
        for who, message in SCRIPT:
            await clients[who].send(js(message))
            await asyncio.sleep(0.02)  # the seed page is one human, not a burst
        received = {who: await drain(ws) for who, ws in clients.items()}
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


async def test_seed_script_gets_the_same_answers(server_url: str) -> None:
    assert await run_script(server_url) == EXPECTED
