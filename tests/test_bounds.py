"""Bounds on sockets (issue 12): ping floods, descriptors, registration deadline, per-address caps.

The flood and descriptor tests run the standalone server as a process (``python -m nbcall``)
and read its memory from /proc; the rest use an in-process server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from nbcall.signaling import SignalingClient, SignalingServer, probe
from nbcall.signaling.admission import (
    CLOSE_FULL,
    CLOSE_NOT_REGISTERED,
    DESCRIPTOR_RESERVE,
    REFUSAL_ROOM,
    Admission,
    address_key,
    connection_limit,
    descriptor_limit,
)

from .conftest import free_port, nbcall_server_cmd, serving

MIB = 1 << 20
FLOOD_RSS_BOUND = 64 * MIB  # docs/protocol.md, "Limits"


# -- raw websocket pieces ---------------------------------------------------------------


def upgrade_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def raw_websocket(port: int) -> socket.socket:
    """A websocket opened by hand: the 101 is read, nothing after it ever is."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(upgrade_request(port))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection during the upgrade"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def masked_frame(opcode: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + body


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def closed_by_peer(sock: socket.socket, timeout: float = 3.0) -> bool:
    """Read until EOF or a reset; False if the socket is still open after ``timeout``."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


async def register_via(url: str, name: str, **kwargs: Any) -> ClientConnection:
    ws = await connect(url, **kwargs)
    await ws.send(json.dumps({"type": "register", "username": name}))
    reply = json.loads(await ws.recv())
    assert reply["type"] == "registered", reply
    return ws


async def close_code_of(ws: ClientConnection, timeout: float = 5.0) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


# -- 1. a ping flood --------------------------------------------------------------------


def test_a_ping_flood_is_cut_off_before_it_costs_memory(tmp_path: Path) -> None:
    """websockets answers pings by itself; a client that pings and never reads its pongs
    used to grow the server by the size of its flood (+680 MB for 400 MB of pings)."""
    port = free_port()
    log = tmp_path / "server.log"
    with (
        log.open("wb") as out,
        serving(nbcall_server_cmd(port, "--log-level", "WARNING"), port, stdout=out, stderr=subprocess.STDOUT) as proc,
    ):

        async def warm_up() -> None:
            async with SignalingClient(f"ws://127.0.0.1:{port}", "warm") as warm:
                await warm.send({"type": "ping"})
                await warm.expect("pong")

        asyncio.run(warm_up())
        before = rss_bytes(proc.pid)
        sock = raw_websocket(port)  # and it never reads
        chunk = masked_frame(0x9, b"p" * 125) * 8000  # 8,000 pings, ~1 MiB
        sent, error, started = 0, None, time.monotonic()
        while sent < 200 * MIB and time.monotonic() - started < 10:
            try:
                sock.sendall(chunk)
            except OSError as exc:
                error = exc
                break
            sent += len(chunk)
        after = rss_bytes(proc.pid)
        sock.close()
        assert proc.poll() is None
    growth = after - before
    print(f"\nping flood: sent {sent / MIB:.1f} MiB; server RSS {before / MIB:.1f} -> {after / MIB:.1f} MiB")
    assert growth < FLOOD_RSS_BOUND, f"RSS grew {growth / MIB:.0f} MiB under a ping flood of {sent / MIB:.0f} MiB"
    assert isinstance(error, (ConnectionResetError, BrokenPipeError)), f"the flooder was not cut off: {error!r}"
    assert "too many pings" in log.read_text()


async def test_a_client_within_the_ping_budget_keeps_its_connection(server: SignalingServer) -> None:
    async with connect(server.url, ping_interval=None) as ws:
        for _ in range(10):
            latency = await asyncio.wait_for(await ws.ping(), 2)
            assert latency < 1
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] == "pong"


# -- 2. descriptors ---------------------------------------------------------------------


def _raise_own_descriptor_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.fail(f"this test opens {wanted} sockets; the hard descriptor limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@pytest.mark.slow
def test_sockets_that_never_register_cannot_take_every_descriptor(tmp_path: Path) -> None:
    """1,010 sockets that never register against a server limited to 1,024 descriptors: a
    legitimate client still registers, /health answers, and the sockets are closed after
    the registration deadline.  (Before: accept() failed with EMFILE and nobody got in.)"""
    _raise_own_descriptor_limit(4096)
    port, deadline = free_port(), 3.0
    log = tmp_path / "server.log"
    cmd = ["prlimit", "--nofile=1024:1024", *nbcall_server_cmd(port, "--register-timeout", str(deadline))]
    sockets: list[socket.socket] = []
    with log.open("wb") as out, serving(cmd, port, stdout=out, stderr=subprocess.STDOUT) as proc:
        started = time.monotonic()
        for i in range(1010):
            sock = socket.socket()
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
            if i % 2:  # half ask for the upgrade (and never register), half never say anything
                sock.sendall(upgrade_request(port))
            sockets.append(sock)
            if i % 100 == 99:
                time.sleep(0.01)
        last_opened = time.monotonic()
        # Once the oldest have had a quarter of the deadline to register, newcomers crowd them out.
        time.sleep(max(0.0, deadline / 4 + 0.1 - (last_opened - started)))

        async def legitimate() -> None:
            async with SignalingClient(f"ws://127.0.0.1:{port}", "legit") as legit:
                assert legit.registration is not None

        asyncio.run(legitimate())
        info = probe("127.0.0.1", port, timeout=5)
        assert info is not None and info["server"] == "nbcall"
        time.sleep(max(0.0, last_opened + deadline + 0.5 - time.monotonic()))
        still_open = sum(1 for sock in sockets if not closed_by_peer(sock))
        for sock in sockets:
            sock.close()
        assert proc.poll() is None
    text = log.read_text()
    assert still_open == 0, f"{still_open} sockets that never registered are still open after the deadline"
    assert f"at most {1024 - DESCRIPTOR_RESERVE - REFUSAL_ROOM} connections" in text
    assert "Too many open files" not in text and "Traceback" not in text


def test_max_connections_follows_the_descriptor_limit() -> None:
    soft = descriptor_limit()
    assert soft is not None
    room = soft - DESCRIPTOR_RESERVE - REFUSAL_ROOM
    assert connection_limit(None) == min(room, 20_000)
    assert connection_limit(10) == 10
    assert connection_limit(room + 1000) == room  # never above it


# -- registration deadline and per-address caps -----------------------------------------


async def test_a_socket_that_does_not_register_in_time_is_closed(server_factory: Any) -> None:
    server = await server_factory(register_timeout=0.5)
    async with SignalingClient(server.url, "prompt") as prompt:
        silent = await connect(server.url)
        asking = await connect(server.url)  # asks things, but never registers
        await asking.send(json.dumps({"type": "list"}))
        raw = socket.create_connection(("127.0.0.1", server.port))  # never sends its HTTP request
        raw.setblocking(False)
        started = time.monotonic()
        for ws in (silent, asking):
            code, reason = await close_code_of(ws, timeout=3)
            assert code == CLOSE_NOT_REGISTERED and "register within 0.5 s" in reason
        assert time.monotonic() - started < 2
        # Closed by the server: the end of the stream comes (rather than waiting for a request).
        assert await asyncio.wait_for(asyncio.get_running_loop().sock_recv(raw, 10), 3) == b""
        raw.close()
        await prompt.send({"type": "ping"})  # the registered one stays
        assert await prompt.expect("pong")


async def test_per_address_caps_crowd_out_the_oldest_unregistered(server_factory: Any) -> None:
    server = await server_factory(
        cap_loopback=True, max_per_address=4, max_unregistered_per_address=2, register_timeout=2.0
    )  # a socket has had its chance to register after 2.0 / 4 s
    a_host = {"local_addr": ("127.0.0.2", 0)}
    first, second = await connect(server.url, **a_host), await connect(server.url, **a_host)
    with pytest.raises(InvalidStatus) as refused:  # both are young: the newcomer is refused
        await connect(server.url, **a_host)
    assert refused.value.response.status_code == 503
    assert json.loads(refused.value.response.body)["code"] == "server_full"
    assert b"your address" in refused.value.response.body
    async with SignalingClient(server.url, "elsewhere"):  # 127.0.0.1 is another address
        pass
    await asyncio.sleep(0.6)
    third = await register_via(server.url, "third", **a_host)  # two unregistered: crowds out the oldest
    assert (await close_code_of(first))[0] == CLOSE_FULL
    fourth = await register_via(server.url, "fourth", **a_host)
    fifth = await register_via(server.url, "fifth", **a_host)
    sixth = await register_via(server.url, "sixth", **a_host)  # four connections: crowds out `second`
    assert (await close_code_of(second))[0] == CLOSE_FULL
    # Four registered: the address is full, and nobody is left to crowd out.
    with pytest.raises(InvalidStatus) as full:
        await connect(server.url, **a_host)
    assert full.value.response.status_code == 503
    for ws in (third, fourth, fifth, sixth):
        await ws.close()


async def test_the_server_crowds_out_the_oldest_unregistered_when_full(server_factory: Any) -> None:
    server = await server_factory(max_connections=3, register_timeout=2.0)
    idle = [await connect(server.url) for _ in range(3)]
    with pytest.raises(InvalidStatus):
        await connect(server.url)  # all three are young
    await asyncio.sleep(0.6)
    async with SignalingClient(server.url, "late") as late:
        assert late.registration is not None
    assert (await close_code_of(idle[0]))[0] == CLOSE_FULL
    for ws in idle[1:]:
        await ws.close()


def test_admission_counts_ipv6_by_64_and_exempts_loopback() -> None:
    assert address_key("2001:db8:1:2:3:4:5:6") == address_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"

    class Conn:
        def __init__(self) -> None:
            self.evicted: str | None = None

        def registered(self) -> bool:
            return False

        def evict(self, reason: str) -> None:
            self.evicted = reason

    clock = [0.0]
    admission = Admission(100, per_address=3, unregistered_per_address=2, grace=1.0, clock=lambda: clock[0])
    conns = [Conn() for _ in range(6)]
    assert [admission.admit(c, "::1") for c in conns[:5]] == [0] * 5  # loopback: not capped
    assert admission.count("::1") == 0 and len(admission) == 5
    remote = [Conn() for _ in range(3)]
    assert admission.admit(remote[0], "2001:db8::1") == 0
    assert admission.admit(remote[1], "2001:db8::2") == 0
    assert admission.admit(remote[2], "2001:db8::3") != 0  # the same /64, and both are young
    clock[0] = 1.0
    late = Conn()
    assert admission.admit(late, "2001:db8::4") == 0
    assert remote[0].evicted is not None and admission.count("2001:db8::9") == 3
    for conn in [*conns, *remote, late]:
        admission.release(conn)
    assert len(admission) == 0 and admission.count("2001:db8::1") == 0
