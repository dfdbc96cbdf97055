"""The same-origin endpoint: signaling through a real Jupyter server, with its auth."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from nbcall.signaling import SignalingClient
from nbcall.signaling import protocol as p
from nbcall.signaling.forwarding import TOO_SLOW_REASON

from .conftest import free_port, stop_process, wait_for_port


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    home = tmp_path_factory.mktemp("jupyter")
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env[var] = str(home / var.lower())
    port, token = free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip", "127.0.0.1", f"--port={port}",
         "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home}"],
        env=env, stdout=subprocess.DEVNULL, stderr=(home / "server.log").open("wb"),
    )  # fmt: skip
    try:
        wait_for_port(port, proc, timeout=30)
        yield port, token
    finally:
        urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{port}/api/shutdown?token={token}", method="POST"), timeout=5
        ).close()
        proc.wait(10)
        stop_process(proc)
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


async def test_a_receiver_that_does_not_read_is_closed_as_too_slow(jupyter_server: tuple[int, str]) -> None:
    """The standalone server's slow-receiver rule, on tornado: over 1 MiB unsent, close 4008, leave the hub."""
    port, token = jupyter_server
    url = f"ws://127.0.0.1:{port}/nbcall/signal?token={token}"
    # A small, fixed receive buffer (no autotuning) so the server's side fills quickly.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(("127.0.0.1", port))
    sleeper = await connect(url, sock=sock, max_queue=1)
    await sleeper.send(json.dumps({"type": "register", "username": "jsleeper"}))
    assert json.loads(await sleeper.recv())["type"] == "registered"
    async with SignalingClient(url, "jsender") as sender:
        sleeper.transport.pause_reading()  # a client that stops reading
        sdp = {"type": "offer", "sdp": "a" * 40_000}
        hangup = None
        for _ in range(1000):  # the endpoint's hub has the default rate limit: a burst of 200, then 50/s
            await sender.send({"type": "offer", "to": "jsleeper", "sdp": sdp})
            replies = sender.pending()
            hangup = next((m for m in replies if m["type"] == "hangup"), None)
            if hangup is not None:
                break
            if any(m.get("code") == "rate_limited" for m in replies):
                await asyncio.sleep(0.05)
        # The sleeper left the hub, which ended the (seed-style) call it was in.
        assert hangup is not None and hangup["from"] == "jsleeper" and hangup["reason"] == "disconnected"
    sleeper.transport.resume_reading()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await sleeper.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (p.CLOSE_TOO_SLOW, TOO_SLOW_REASON)


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


@pytest.mark.parametrize(
    ("upstream", "code"),
    [
        ("ws://10.1.2.3:9900", "unauthorized"),
        ("http://127.0.0.1:1", "unauthorized"),
        ("ws://127.0.0.1:9", "upstream_unreachable"),
    ],
)
async def test_upstream_must_be_a_reachable_loopback_server(
    jupyter_server: tuple[int, str], upstream: str, code: str
) -> None:
    port, token = jupyter_server
    async with connect(f"ws://127.0.0.1:{port}/nbcall/signal?token={token}&upstream={upstream}") as ws:
        reply = json.loads(await ws.recv())
        assert reply["type"] == "error" and reply["code"] == code
        with pytest.raises(ConnectionClosed):
            await ws.recv()


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
