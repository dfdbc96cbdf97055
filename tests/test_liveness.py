"""A peer that goes silent is noticed within ~2 s (issue 12), on both transports.

The silent peer is a real process running a SignalingClient, in a call with this test's
client, then stopped (SIGSTOP: no FIN, its kernel still ACKs), killed (SIGKILL), or closed
cleanly.  The partner must hear of it (``hangup`` with reason ``disconnected``, or, for a
connected call the hub holds for a reconnect, ``peer_status`` ``reconnecting``) well
within ``NOTICED_WITHIN`` seconds; before, it took 49 s on ``nbcall-server`` and never
happened through the Jupyter endpoint.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from nbcall._testing.jupyter import start_jupyter_server, stop_jupyter_server
from nbcall.signaling import SignalingClient
from nbcall.signaling.keepalive import Keepalive

from .conftest import free_port, nbcall_server_cmd, serving

NOTICED_WITHIN = 5.0  # seconds; the server's default keepalive takes 1 s + 1 s at most

CHILD = r"""
import asyncio, signal, sys
from nbcall.signaling import SignalingClient
from nbcall.signaling.keepalive import Keepalive

async def main(url, name, mode):
    async with SignalingClient(url, name) as me:
        print("registered", flush=True)
        if mode == "accept":
            invite = await me.expect("invite", timeout=30)
            await me.send({"type": "accept", "to": invite["from"]})
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await stop.wait()  # then leaves with a close frame

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def standalone_url() -> Iterator[str]:
    port = free_port()
    with serving(nbcall_server_cmd(port, "--log-level", "WARNING"), port):
        yield f"ws://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def jupyter_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("jupyter-liveness")
    proc, port, token = start_jupyter_server(home, home / "server.log")
    try:
        yield f"ws://127.0.0.1:{port}/nbcall/signal?token={token}"
    finally:
        stop_jupyter_server(proc, port, token)
    assert "Traceback" not in (home / "server.log").read_text()


@pytest.fixture(params=["standalone", "jupyter"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


class Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def said(self, line: str) -> None:
        assert self.proc.stdout is not None
        got = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        assert got.decode().strip() == line, got


@pytest.fixture
async def child_factory() -> AsyncIterator[Any]:
    children: list[asyncio.subprocess.Process] = []

    async def start(url: str, name: str, mode: str) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, url, name, mode, stdout=asyncio.subprocess.PIPE
        )
        children.append(proc)
        child = Child(proc)
        await child.said("registered")
        return child

    yield start
    for proc in children:  # SIGKILL ends a stopped process too
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def in_call(url: str, child_factory: Any, me: SignalingClient, name: str, *, accepted: bool) -> Child:
    child = await child_factory(url, name, "accept" if accepted else "ring")
    if not accepted:
        await child.said("ready")
    await me.send({"type": "invite", "to": name})
    await me.expect("ringing")
    if accepted:
        assert (await me.expect("accept"))["from"] == name
        await child.said("ready")
    return child


async def noticed(me: SignalingClient, name: str, act: Any) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    act()
    message = await me.expect("hangup", "peer_status", timeout=NOTICED_WITHIN + 5)
    elapsed = time.monotonic() - started
    assert message["from"] == name
    return message, elapsed


@pytest.mark.slow
@pytest.mark.parametrize("accepted", [False, True], ids=["ringing", "connected"])
async def test_a_stopped_peer_is_noticed_within_seconds(url: str, child_factory: Any, accepted: bool) -> None:
    name = f"frozen{secrets.token_hex(3)}"
    async with SignalingClient(url, f"partner{secrets.token_hex(3)}") as me:
        child = await in_call(url, child_factory, me, name, accepted=accepted)
        message, elapsed = await noticed(me, name, lambda: child.proc.send_signal(signal.SIGSTOP))
        state = "connected" if accepted else "ringing"
        print(f"\nSIGSTOP ({state}, {url.split('?')[0]}): {message} after {elapsed:.2f} s")
        if message["type"] == "hangup":
            assert message["reason"] == "disconnected"
        else:  # a connected call is held for a reconnect; the partner is told at once
            assert accepted and message["status"] == "reconnecting"
        assert elapsed < NOTICED_WITHIN


@pytest.mark.slow
async def test_a_stopped_idle_peer_is_noticed_once_someone_calls_it(url: str, child_factory: Any) -> None:
    """An idle connection is pinged every 10 s only; ringing it makes it due every second."""
    name = f"idle{secrets.token_hex(3)}"
    async with SignalingClient(url, f"caller{secrets.token_hex(3)}") as me:
        child = await child_factory(url, name, "ring")
        await child.said("ready")
        child.proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await me.send({"type": "invite", "to": name})
        message = await me.expect("hangup", "error", timeout=NOTICED_WITHIN + 5)
        elapsed = time.monotonic() - started
        print(f"\nSIGSTOP (idle, then invited, {url.split('?')[0]}): {message} after {elapsed:.2f} s")
        if message["type"] == "error":  # an idle ping happened to catch it before the invite
            assert message["code"] == "unknown_peer"
        else:
            assert message["reason"] == "disconnected" and message["from"] == name
        assert elapsed < NOTICED_WITHIN


async def test_a_killed_peer_is_noticed_at_once(url: str, child_factory: Any) -> None:
    name = f"killed{secrets.token_hex(3)}"
    async with SignalingClient(url, f"partner{secrets.token_hex(3)}") as me:
        child = await in_call(url, child_factory, me, name, accepted=False)
        message, elapsed = await noticed(me, name, child.proc.kill)
        print(f"\nSIGKILL (ringing, {url.split('?')[0]}): {message} after {elapsed:.2f} s")
        assert message["type"] == "hangup" and message["reason"] == "disconnected"
        assert elapsed < 1.5


async def test_a_peer_that_leaves_cleanly_ends_the_call_at_once(url: str, child_factory: Any) -> None:
    name = f"leaver{secrets.token_hex(3)}"
    async with SignalingClient(url, f"partner{secrets.token_hex(3)}") as me:
        child = await in_call(url, child_factory, me, name, accepted=True)
        message, elapsed = await noticed(me, name, child.proc.terminate)  # its close frame
        print(f"\nclean close (connected, {url.split('?')[0]}): {message} after {elapsed:.2f} s")
        assert message["type"] == "hangup" and message["reason"] == "disconnected"
        assert elapsed < 1.5


class FakePeer:
    def __init__(self, busy: bool = True) -> None:
        self.ping_sent = self.pinged_at = 0.0
        self.pings = 0
        self.dropped = False
        self.in_call = busy

    def busy(self) -> bool:
        return self.in_call

    def send_ping(self) -> bool:
        self.pings += 1
        return True

    def drop_silent(self) -> None:
        self.dropped = True

    def pong(self) -> None:
        self.ping_sent = 0.0


async def test_keepalive_pings_and_drops_only_the_silent() -> None:
    keepalive = Keepalive(0.2, 0.2)
    answering, silent = FakePeer(), FakePeer()
    keepalive.add(answering)
    keepalive.add(silent)
    for _ in range(6):
        await asyncio.sleep(0.2)
        answering.pong()
    assert answering.pings >= 4 and not answering.dropped
    assert silent.pings == 1 and silent.dropped and len(keepalive) == 1
    keepalive.discard(answering)
    assert len(keepalive) == 0


async def test_keepalive_pings_idle_peers_less_often() -> None:
    keepalive = Keepalive(0.1, 0.1, idle_interval=0.5)
    idle, calling = FakePeer(busy=False), FakePeer(busy=True)
    keepalive.add(idle)
    keepalive.add(calling)
    for _ in range(10):
        await asyncio.sleep(0.1)
        idle.pong()
        calling.pong()
    assert 1 <= idle.pings <= 3 and calling.pings >= 8
    idle.in_call = True  # someone calls it: from now on every tick
    pings = idle.pings
    await asyncio.sleep(0.35)
    assert idle.pings >= pings + 1 and idle.dropped  # and it did not answer: dropped
    keepalive.stop()


@pytest.mark.slow
async def test_a_blocked_loop_is_not_mistaken_for_silent_peers() -> None:
    """When the server's loop stalls, a pong that arrived meanwhile may still be unread when
    the late keepalive tick runs (uvloop runs due timers before polling sockets): that tick
    judges nobody."""
    loop = asyncio.get_running_loop()
    keepalive = Keepalive(0.5, 0.5)
    peer = FakePeer()
    keepalive.add(peer)
    await asyncio.sleep(0.55)  # the first tick has pinged
    assert peer.pings == 1 and peer.ping_sent
    loop.call_at(loop.time() + 0.5, peer.pong)  # due after the next tick, run after it
    time.sleep(1.5)  # the loop is blocked: the tick comes 1 s late, then the pong
    await asyncio.sleep(0.1)
    assert not peer.dropped and not peer.ping_sent
    keepalive.stop()
