"""The same-origin endpoint: signaling through a real Jupyter server, with its auth."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from nbcall._testing.jupyter import start_jupyter_server, stop_jupyter_server
from nbcall.signaling import SignalingClient
from nbcall.signaling.admission import CLOSE_FULL, CLOSE_NOT_REGISTERED

from .conftest import free_port, small_buffer_client

pytestmark = pytest.mark.slow  # a real Jupyter server per module, seconds to start


@pytest.fixture(scope="module")
def jupyter_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's Jupyter server's directory; its log is ``server.log`` there."""
    return tmp_path_factory.mktemp("jupyter")


@pytest.fixture(scope="module")
def jupyter_server(jupyter_home: Path) -> Iterator[tuple[int, str]]:
    home = jupyter_home
    proc, port, token = start_jupyter_server(home, home / "server.log")
    try:
        yield port, token
    finally:
        stop_jupyter_server(proc, port, token)
        log = Path(home / "server.log").read_text()
        assert "nbcall: signaling endpoint at /nbcall/signal" in log
        assert "nbcall: kernel websockets send without Nagle's delay" in log


def test_the_extension_is_enabled_by_installing_the_package() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"], capture_output=True, text=True, timeout=60
    )
    listing = out.stdout + out.stderr
    assert "nbcall" in listing and "enabled" in listing.split("nbcall", 1)[1].splitlines()[0]


def test_info_needs_auth(jupyter_server: tuple[int, str]) -> None:
    port, token = jupyter_server
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/nbcall/info?token={token}", timeout=5) as reply:
        info = json.loads(reply.read())
    assert info["server"] == "nbcall" and info["path"] == "nbcall/signal"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/nbcall/info")
    refused = conn.getresponse()
    assert refused.status in (302, 403)  # to the login page, or forbidden: never the info
    assert b"nbcall" not in refused.read()
    conn.close()


async def test_unauthenticated_websocket_upgrades_are_refused(jupyter_server: tuple[int, str]) -> None:
    port, _ = jupyter_server
    for suffix in ("", "?token=wrong"):
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://127.0.0.1:{port}/nbcall/signal{suffix}")
        assert refused.value.response.status_code == 403


async def test_signaling_through_the_jupyter_origin(jupyter_server: tuple[int, str]) -> None:
    port, token = jupyter_server
    url = f"ws://127.0.0.1:{port}/nbcall/signal?token={token}"
    async with SignalingClient(url, "alice") as alice, SignalingClient(url, "bob") as bob:
        await alice.send({"type": "invite", "to": "bob"})
        assert (await bob.expect("invite"))["from"] == "alice"
        await bob.send({"type": "accept", "to": "alice"})
        await alice.expect("accept")
        await alice.send({"type": "offer", "to": "bob", "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
        assert (await bob.expect("offer"))["sdp"]["sdp"] == "v=0\r\n"
        await bob.send_raw("not json")
        assert (await bob.expect("error"))["code"] == "bad_message"
        await bob.close()
        assert (await alice.expect("hangup"))["reason"] == "disconnected"


async def test_a_partner_flooding_a_receiver_that_does_not_read_is_refused_on_tornado(
    jupyter_server: tuple[int, str],
) -> None:
    """On the endpoint too, what someone else sends never costs the receiver its connection:
    past the hub's max_forward_backlog (256 KiB) the sender is refused; the receiver stays."""
    port, token = jupyter_server
    url = f"ws://127.0.0.1:{port}/nbcall/signal?token={token}"
    sleeper = await small_buffer_client(url, port, {"type": "register", "username": "jsleeper"})
    async with SignalingClient(url, "jsender") as sender:
        sleeper.transport.pause_reading()  # a client that stops reading
        sdp = {"type": "offer", "sdp": "a" * 40_000}
        refused = False
        for _ in range(400):  # the endpoint's hub has the default rate limit: a burst of 200, then 50/s
            await sender.send({"type": "offer", "to": "jsleeper", "sdp": sdp})
            replies = sender.pending()
            assert not any(m["type"] == "hangup" for m in replies)  # the sleeper is never dropped
            refused = refused or any("not reading" in m.get("message", "") for m in replies)
            if refused:
                break
            if any(m.get("code") == "rate_limited" for m in replies):
                await asyncio.sleep(0.05)
        assert refused
        sleeper.transport.resume_reading()
        first = json.loads(await asyncio.wait_for(sleeper.recv(), 5))
        assert first["type"] == "offer"  # still connected, reading what was queued
    # Not close(): its handshake waits behind what the paused reader never read (10 s).
    sleeper.transport.abort()


async def test_upstream_mode_reaches_the_kernels_server(jupyter_server: tuple[int, str]) -> None:
    """A page on the Jupyter origin and a client of the loopback server meet on one hub."""
    port, token = jupyter_server
    from nbcall.signaling import serve

    handle = serve(port=0)
    try:
        via_jupyter = f"ws://127.0.0.1:{port}/nbcall/signal?token={token}&upstream={handle.url}"
        async with SignalingClient(via_jupyter, "alice") as alice, SignalingClient(handle.url, "bob") as bob:
            assert sorted(bob.registration["users"]) == ["alice", "bob"]  # type: ignore[index]
            await alice.send({"type": "invite", "to": "bob"})
            assert (await bob.expect("invite"))["from"] == "alice"
            await bob.send({"type": "accept", "to": "alice"})
            assert (await alice.expect("accept"))["from"] == "bob"
            await alice.close()
            assert (await bob.expect("hangup"))["reason"] == "disconnected"
    finally:
        handle.stop()


@pytest.fixture
async def bad_upstreams() -> AsyncIterator[dict[str, int]]:
    """Loopback ports that are no signaling server: one answers garbage, one a 101 with the
    wrong Sec-WebSocket-Accept, one is closed."""

    handlers: set[asyncio.Task[None]] = set()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x16\x03\x01garbage\r\n\r\n")
        writer.close()

    async def bad_101(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n"
            )
            await asyncio.wait_for(reader.read(), 5)  # until the endpoint gives up on us
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(handler, "127.0.0.1", 0) for handler in (garbage, bad_101)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    yield {"garbage": ports[0], "bad101": ports[1], "closed": free_port()}
    for server in servers:
        server.close()
    await asyncio.gather(*handlers)


@pytest.mark.parametrize(
    ("upstream", "code"),
    [
        ("ws://10.1.2.3:9900", "unauthorized"),
        ("http://127.0.0.1:1", "unauthorized"),
        ("ftp://127.0.0.1:{closed}", "unauthorized"),
        ("ws://evil@127.0.0.1:{bad101}", "unauthorized"),  # userinfo
        ("ws://user:secret@127.0.0.1:{closed}", "unauthorized"),
        ("ws://localhost.evil.com:{closed}", "unauthorized"),
        ("ws://127.0.0.1:99999", "unauthorized"),  # not a port
        ("ws://127.0.0.1:9", "upstream_unreachable"),
        ("ws://127.0.0.1:{closed}", "upstream_unreachable"),
        ("ws://[::1]:{closed}", "upstream_unreachable"),  # IPv6 loopback, nothing there
        ("ws://127.0.0.1:{garbage}", "upstream_unreachable"),  # not HTTP
        ("wss://127.0.0.1:{garbage}", "upstream_unreachable"),  # not TLS
        ("ws://127.0.0.1:{bad101}", "upstream_unreachable"),  # a 101 that is not a websocket's
    ],
)
async def test_upstream_must_be_a_reachable_loopback_server(
    jupyter_server: tuple[int, str], jupyter_home: Path, bad_upstreams: dict[str, int], upstream: str, code: str
) -> None:
    """Every bad ``?upstream=`` gets an answer, and none an uncaught exception in the server's log."""
    port, token = jupyter_server
    log_file = jupyter_home / "server.log"
    logged_before = len(log_file.read_text())
    target = quote(upstream.format(**bad_upstreams), safe="")
    async with connect(f"ws://127.0.0.1:{port}/nbcall/signal?token={token}&upstream={target}") as ws:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert reply["type"] == "error" and reply["code"] == code, reply
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    await asyncio.sleep(0.1)
    log = log_file.read_text()[logged_before:]
    assert "Traceback" not in log and "Uncaught exception" not in log, log


async def test_frames_waiting_for_the_upstream_are_bounded_in_bytes(jupyter_server: tuple[int, str]) -> None:
    """An upstream that stops reading: the page's frames wait in the bridge up to 1 MiB, then
    the page gets rate_limited (not a queue of 1,024 frames of up to 1 MiB each)."""
    port, token = jupyter_server
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited: a small window
    listener.bind(("127.0.0.1", 0))
    stuck = asyncio.Event()

    async def never_reads(connection: ServerConnection) -> None:
        connection.transport.pause_reading()
        await stuck.wait()
        connection.transport.abort()  # no closing handshake with a socket that does not read

    async with serve(never_reads, sock=listener, close_timeout=0.5) as upstream:
        target = f"ws://127.0.0.1:{upstream.sockets[0].getsockname()[1]}"
        async with connect(f"ws://127.0.0.1:{port}/nbcall/signal?token={token}&upstream={target}") as page:
            frame = json.dumps({"type": "ping", "pad": "x" * 60_000})
            sent, limited = 0, False
            while sent < 400 and not limited:
                await page.send(frame)
                sent += 1
                try:
                    reply = json.loads(await asyncio.wait_for(page.recv(), 0.005 if sent % 10 else 0.2))
                except TimeoutError:
                    continue
                limited = reply.get("code") == "rate_limited"
            stuck.set()
    print(f"\nrate_limited after {sent} frames of 60 KB")
    assert limited, f"{sent} frames of 60 KB were queued for an upstream that does not read"
    assert sent < 200  # ~1 MiB queued, plus what the sockets between hold


@pytest.fixture(scope="module")
def capped_jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Jupyter server whose endpoint caps loopback too: 3 connections, 2 unregistered, 1 s to register."""
    home = tmp_path_factory.mktemp("jupyter-capped")
    config_dir = home / "jupyter_config_dir"
    config_dir.mkdir()
    settings = {"cap_loopback": True, "max_per_address": 3, "max_unregistered_per_address": 2, "register_timeout": 1}
    config = {"ServerApp": {"tornado_settings": {"nbcall": settings}}}
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
    proc, port, token = start_jupyter_server(home, home / "server.log")
    try:
        yield f"ws://127.0.0.1:{port}/nbcall/signal?token={token}"
    finally:
        stop_jupyter_server(proc, port, token)
    assert "Traceback" not in (home / "server.log").read_text()


async def _closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_the_endpoint_has_per_address_caps_and_a_registration_deadline(capped_jupyter: str) -> None:
    first, second = await connect(capped_jupyter), await connect(capped_jupyter)
    async with connect(capped_jupyter) as third:  # two unregistered, both young: refused
        assert json.loads(await asyncio.wait_for(third.recv(), 5))["code"] == "server_full"
        assert (await _closed_with(third))[0] == CLOSE_FULL
    await asyncio.sleep(0.3)
    fourth = await connect(capped_jupyter)  # the oldest had its chance: crowded out
    assert (await _closed_with(first))[0] == CLOSE_FULL
    # Nobody registers: closed after the deadline.
    for ws in (second, fourth):
        code, reason = await _closed_with(ws)
        assert code == CLOSE_NOT_REGISTERED and "register within 1 s" in reason
    async with (
        SignalingClient(capped_jupyter, "one"),
        SignalingClient(capped_jupyter, "two"),
        SignalingClient(capped_jupyter, "three") as three,
    ):
        async with connect(capped_jupyter) as four:  # the address is full of registered users
            assert json.loads(await asyncio.wait_for(four.recv(), 5))["code"] == "server_full"
            assert (await _closed_with(four))[0] == CLOSE_FULL
        await three.send({"type": "ping"})
        assert await three.expect("pong")


def test_kernel_websockets_get_no_delay_only_over_the_default_class(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_server.gateway.connections import GatewayWebSocketConnection
    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

    from nbcall import _kernel_ws

    monkeypatch.delenv(_kernel_ws.ENV, raising=False)
    settings: dict[str, object] = {_kernel_ws.SETTING: ZMQChannelsWebsocketConnection}
    assert _kernel_ws.install(settings)
    assert settings[_kernel_ws.SETTING] is _kernel_ws.NoDelayKernelConnection
    assert issubclass(_kernel_ws.NoDelayKernelConnection, ZMQChannelsWebsocketConnection)
    # A deployment's own class (here the gateway's) is left alone.
    gateway: dict[str, object] = {_kernel_ws.SETTING: GatewayWebSocketConnection}
    assert not _kernel_ws.install(gateway) and gateway[_kernel_ws.SETTING] is GatewayWebSocketConnection
    # And it can be turned off.
    monkeypatch.setenv(_kernel_ws.ENV, "0")
    off: dict[str, object] = {_kernel_ws.SETTING: ZMQChannelsWebsocketConnection}
    assert not _kernel_ws.install(off) and off[_kernel_ws.SETTING] is ZMQChannelsWebsocketConnection
