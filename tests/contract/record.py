"""Play each scripted session (sessions.py) against the real signaling server and record
what every client received: ``python -m tests.contract.record`` writes
``tests/contract/sessions/<name>.json``; tests/test_contract.py records again in memory and
fails when a stored file no longer matches, and js/test/contract.test.js replays the files
into the JS fake server.

The server is the real one (SignalingServer on 127.0.0.1, the clients SignalingClients
sending the scripted frames as they are).  Two of its limits are set so that a recording
is deterministic and within what the fake models:

- ``presence_interval`` is an hour, and the recorder flushes the presence batch itself
  once a step's frame is handled: each step's presence changes are one batch, sent
  before the step's barrier.
- ``reconnect_grace`` is 0: a dropped socket is released at once (the fake has no grace;
  its ``disconnect()`` is the moment the server gives up on a user).

A step ends at a barrier, not after a sleep: the sender pings and waits for its pong (the
server handles one connection's frames in order, and whatever they cause is queued to the
other connections by then), and then every other client does the same.  The pongs of the
barrier are not recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from nbcall.signaling import Limits, ServerConfig, SignalingClient, SignalingServer

from .normalise import Normaliser, sent_literals
from .sessions import SESSIONS, Session

SESSIONS_DIR = Path(__file__).resolve().parent / "sessions"
LIMITS = Limits(presence_interval=3600.0, reconnect_grace=0.0)
# The limits a replay gives the fake (the ones its answers carry or obey).
LIMITS_TOLD = {
    "ring_timeout": LIMITS.ring_timeout,
    "reconnect_grace": LIMITS.reconnect_grace,
    "room_mesh_limit": LIMITS.room_mesh_limit,
    "room_max_members": LIMITS.room_max_members,
}
TIMEOUT = 5.0  # a barrier's pong, a drop noticed by the server: far more than either takes


async def _until_pong(client: SignalingClient, *, answers: int = 0) -> list[dict[str, Any]]:
    """Ping, and take what arrives up to the pong (or up to the socket's end, if the server
    closed it); the first ``answers`` pongs answer the script's own pings and are kept."""
    with contextlib.suppress(ConnectionClosed):  # the server closed it: what came is all
        await client.send({"type": "ping"})
    got: list[dict[str, Any]] = []

    def take(item: dict[str, Any]) -> bool:
        """Keep ``item``; True once it is the barrier's pong."""
        nonlocal answers
        if item.get("type") == "pong":
            if answers == 0:
                return True
            answers -= 1
        got.append(item)
        return False

    closed = asyncio.ensure_future(client.closed.wait())
    try:
        while True:
            message = asyncio.ensure_future(client.recv(timeout=TIMEOUT))
            done, _ = await asyncio.wait({message, closed}, return_when=asyncio.FIRST_COMPLETED)
            if message in done:
                if take(message.result()):
                    return got
                continue
            # The socket ended.  A cancelled recv may still have taken a message (3.11's
            # wait_for returns it rather than raise): keep it, then whatever is queued.
            message.cancel()
            results = await asyncio.gather(message, return_exceptions=True)
            rest = [item for item in results if isinstance(item, dict)]
            for item in rest + client.pending():
                if take(item):
                    break
            return got
    finally:
        closed.cancel()


class Recorder:
    """One session against one server: its clients, by label, in the order they connected."""

    def __init__(self, server: SignalingServer, session: Session) -> None:
        self.server = server
        self.session = session
        self.clients: dict[str, SignalingClient] = {}
        self.keys: dict[str, str] = {}  # label -> the user key its last registered reply gave
        self.gone: set[str] = set()  # dropped by the script or closed by the server
        sent = [step["send"] for step in session.steps if "send" in step]
        self.names = Normaliser(sent_literals(sent))

    async def _client(self, label: str) -> SignalingClient:
        client = self.clients.get(label)
        if client is None:
            client = self.clients[label] = SignalingClient(self.server.url)
            await client.connect()
        return client

    async def _noticed_gone(self, label: str) -> None:
        """Wait until the server has released the client's user (a condition, not a sleep)."""
        key = self.keys.get(label)
        if key is None:
            return
        hub = self.server.hub
        held = hub.users.get(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while hub.users.get(key) is held and held is not None:
            if loop.time() > deadline:
                raise TimeoutError(f"the server did not notice that {label} is gone")
            await asyncio.sleep(0.005)

    async def step(self, step: dict[str, Any]) -> dict[str, Any]:
        label = step["client"]
        client = await self._client(label)
        received: dict[str, list[dict[str, Any]]] = {other: [] for other in self.clients if other not in self.gone}
        if "send" in step:
            await client.send(self.names.resolve(step["send"]))
            pings = 1 if step["send"].get("type") == "ping" else 0
            received[label] += await _until_pong(client, answers=pings)
        else:  # a drop (the socket dies without a close frame) or a close with a code
            if "close" in step:
                await client.ws.close(step["close"])
            else:
                client.ws.transport.abort()
            await self._noticed_gone(label)
            self.gone.add(label)
            del received[label]
        self.server.hub.presence.flush()
        for other in received:
            if other not in self.gone:
                received[other] += await _until_pong(self.clients[other])
        closed: dict[str, int | None] = {}
        for other in received:
            client = self.clients[other]
            if client.closed.is_set():
                closed[other] = client.ws.close_code
                self.gone.add(other)
        for other, messages in received.items():
            for message in messages:
                if message.get("type") == "registered":
                    self.keys[other] = message["key"]
        out: dict[str, Any] = dict(step)
        out["received"] = {other: [self.names.received(m) for m in messages] for other, messages in received.items()}
        if closed:
            out["closed"] = closed
        return out

    async def close(self) -> None:
        for label, client in self.clients.items():
            if label not in self.gone:
                await client.close()


async def record(session: Session) -> dict[str, Any]:
    """``session`` played against a fresh real server: the recording, as stored."""
    server = SignalingServer(ServerConfig(host="127.0.0.1", port=0, limits=LIMITS))
    await server.start()
    try:
        recorder = Recorder(server, session)
        try:
            steps = [await recorder.step(step) for step in session.steps]
        finally:
            await recorder.close()
    finally:
        await server.stop()
    return {"name": session.name, "about": session.about, "limits": LIMITS_TOLD, "steps": steps}


def dumps(recording: dict[str, Any]) -> str:
    """A recording as stored: JSON with one step, and one message, per line (non-ASCII kept)."""

    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = ["{", *(f" {one(k)}: {one(recording[k])}," for k in ("name", "about", "limits")), ' "steps": [']
    for i, step in enumerate(recording["steps"]):
        head = {k: v for k, v in step.items() if k not in ("received", "closed")}
        lines.append(f"  {{{one(head)[1:-1]},")
        if "closed" in step:
            lines.append(f'   "closed": {one(step["closed"])},')
        lines.append('   "received": {')
        clients = list(step["received"].items())
        for j, (client, messages) in enumerate(clients):
            comma = "," if j < len(clients) - 1 else ""
            if not messages:
                lines.append(f"    {one(client)}: []{comma}")
                continue
            lines.append(f"    {one(client)}: [")
            lines.extend(f"     {one(m)}{',' if k < len(messages) - 1 else ''}" for k, m in enumerate(messages))
            lines.append(f"    ]{comma}")
        lines.append("   }")
        lines.append("  }" + ("," if i < len(recording["steps"]) - 1 else ""))
    lines += [" ]", "}"]
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == recording
    return text


def path_of(session: Session) -> Path:
    return SESSIONS_DIR / f"{session.name}.json"


async def record_all() -> list[Path]:
    SESSIONS_DIR.mkdir(exist_ok=True)
    written = []
    for session in SESSIONS:
        path = path_of(session)
        path.write_text(dumps(await record(session)), encoding="utf-8")
        written.append(path)
    stale = {p for p in SESSIONS_DIR.glob("*.json")} - set(written)
    for path in stale:  # a session removed from the script
        path.unlink()
    return written


def main() -> None:
    for path in asyncio.run(record_all()):
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path, file=sys.stderr)


if __name__ == "__main__":
    main()
