"""Shared fixtures: real servers on 127.0.0.1 with free ports, stopped by pid."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
from websockets.asyncio.client import ClientConnection, connect

from nbcall._testing.processes import free_port, nbcall_server_cmd, serving, stop_process, wait_for_port
from nbcall._testing.redis import RedisServer, redis_server
from nbcall.signaling import Limits, ServerConfig, SignalingServer, wire

# Tests import these from here too.
__all__ = ["free_port", "nbcall_server_cmd", "serving", "stop_process", "wait_for_port"]

ROOT = Path(__file__).resolve().parent.parent
SEED_SERVER = ROOT.parent / "shared" / "seed" / "server.js"
E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tiers' markers (pyproject.toml; ``./dev test --fast`` leaves these out): every test
    under tests/e2e drives Chromium and is slow; a test that asks for a ``janus`` fixture
    runs Janus (modules that start one otherwise are marked by hand)."""
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
        if "janus" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.janus)


@pytest.fixture(autouse=True)
def wire_as_declared() -> Iterator[None]:
    """Fail a test in which a server in this process sent, or a SignalingClient received, a
    message the wire does not declare (nbcall/signaling/wire.py; NBCALL_WIRE_CHECK=1)."""
    assert wire.CHECKING, "tests/__init__.py sets NBCALL_WIRE_CHECK=1 before nbcall is imported"
    wire.violations.clear()
    yield
    found, wire.violations[:] = list(wire.violations), []
    assert not found, "messages the wire does not declare:\n" + "\n".join(found)


@pytest.fixture(scope="session", autouse=True)
def no_janus_links_left() -> Iterator[None]:
    """At the end, remove the ICE links (veth pairs) of local Janus servers whose owner is gone:
    a kernel or server killed by a test (SIGKILL, a notebook's kernel shut down) cannot."""
    yield
    from nbcall.sfu.ice_link import sweep

    sweep()


class FakeClock:
    """A hub's clock that moves only when the test says (``advance``): rate limits refill and
    a room's reconnect grace runs out without waiting.  (The hub's timers, ring timeout and
    a 1:1 call's grace, are the event loop's.)"""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def server_factory() -> AsyncIterator[type]:
    """Start in-process nbcall servers (on this test's loop) with custom limits (and ``clock``,
    a FakeClock, for the hub)."""
    started: list[SignalingServer] = []

    async def start(**kwargs: object) -> SignalingServer:
        limits = kwargs.pop("limits", None) or Limits(presence_interval=0.05)
        clock = kwargs.pop("clock", time.monotonic)
        config = ServerConfig(host="127.0.0.1", port=0, limits=limits, **kwargs)  # type: ignore[arg-type]
        server = SignalingServer(config, clock=clock)  # type: ignore[arg-type]
        await server.start()
        started.append(server)
        return server

    yield start  # type: ignore[misc]
    for server in started:
        await server.stop()


@pytest.fixture
async def server(server_factory) -> SignalingServer:  # type: ignore[no-untyped-def]
    return await server_factory()


@pytest.fixture(scope="session")
def seed_server_url() -> Iterator[str]:
    """The seed's own node server (../shared/seed/server.js with the `ws` package)."""
    node = shutil.which("node")
    ws_module = ROOT / "node_modules" / "ws"
    if node is None or not ws_module.exists() or not SEED_SERVER.exists():
        pytest.fail("the seed server needs node, npm's `ws` (run ./dev setup) and ../shared/seed/server.js")
    port = free_port()
    env = dict(os.environ, NODE_PATH=str(ROOT / "node_modules"))
    with serving([node, str(SEED_SERVER), str(port), "127.0.0.1"], port, env=env, stdout=subprocess.DEVNULL):
        yield f"ws://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Debian's coturn on 127.0.0.1 in TURN REST mode (use-auth-secret), stopped by pid."""
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail("coturn is not installed (./dev setup installs it)")
    home = tmp_path_factory.mktemp("coturn")
    port, secret = free_port(), "nbcall-test-" + os.urandom(8).hex()
    low = 40000 + (port % 200) * 100  # a relay port range of its own
    cmd = [
        binary, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
        f"--min-port={low}", f"--max-port={low + 99}", "--use-auth-secret", f"--static-auth-secret={secret}",
        "--realm=nbcall.test", "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint",
        "--no-multicast-peers", f"--pidfile={home / 'turn.pid'}", f"--userdb={home / 'turn.db'}",
        "--log-file=stdout", "--simple-log",
    ]  # fmt: skip
    with (home / "turn.log").open("wb") as log, serving(cmd, port, stdout=log, stderr=subprocess.STDOUT):
        yield {"url": f"turn:127.0.0.1:{port}?transport=udp", "secret": secret, "log": home / "turn.log"}


async def small_buffer_client(url: str, port: int, register: dict[str, object]) -> ClientConnection:
    """A websocket to 127.0.0.1:port with a small, fixed receive buffer (no autotuning), so the
    server's side fills quickly once the test pauses its reading; registered with ``register``."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(("127.0.0.1", port))
    client = await connect(url, sock=sock, max_queue=1)
    await client.send(json.dumps(register))
    assert json.loads(await client.recv())["type"] == "registered"
    return client


@pytest.fixture
def peers() -> Iterator[list[Any]]:
    """nbcall.Peer objects a test makes (append them): closed when it ends, whatever happened."""
    made: list[Any] = []
    yield made
    for peer in made:
        peer.close()


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """A redis-server shared by a module's tests (a module whose tests stop it has its own)."""
    with redis_server() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """Each test its own cluster on the module's Redis."""
    return f"t{os.urandom(3).hex()}"


@pytest.fixture
def sync(redis: RedisServer) -> Iterator[redis_sync.Redis]:
    """A plain client, to look at and set up the registry."""
    client = redis_sync.Redis(port=redis.port)
    yield client
    client.close()
