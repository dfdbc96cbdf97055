"""The forwarding shared by the standalone server and the Jupyter endpoint, without sockets."""

from __future__ import annotations

import asyncio
import logging

import pytest
from websockets.exceptions import ConnectionClosed

from nbcall import __version__
from nbcall.signaling import protocol as p
from nbcall.signaling.forwarding import (
    DEFAULT_MAX_BUFFER,
    TOO_SLOW_REASON,
    ForwardingConnection,
    FramePump,
    health_body,
)
from nbcall.signaling.hub import Hub

PONG = b'{"type":"pong"}'  # any declared message (tests check what servers send: tests/__init__.py)


class FakePeer(ForwardingConnection):
    """A transport of three primitives: a write buffer nobody drains."""

    def __init__(self, hub: Hub, max_buffer: int) -> None:
        self.hub, self.max_buffer = hub, max_buffer
        self.session = hub.connect(self)
        self.open, self.backlog = True, 0
        self.written: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    def is_open(self) -> bool:
        return self.open

    def unsent_bytes(self) -> int:
        return self.backlog

    def write_text(self, data: bytes) -> None:
        self.written.append(data)
        self.backlog += len(data)

    def close_now(self, code: int, reason: str) -> None:
        self.closed, self.open = (code, reason), False


def online(hub: Hub) -> set[str | None]:
    return {s.name for s in hub.users.values()}


async def test_a_receiver_over_its_bound_is_closed_as_too_slow_and_leaves_the_hub(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub()
    peer = FakePeer(hub, max_buffer=100)
    hub.receive(peer.session, '{"type":"register","username":"slow"}')
    assert peer.written and "slow" in online(hub)
    peer.written.clear()
    peer.backlog = 100  # at the bound: still written
    assert peer.send_bytes(PONG) and peer.written == [PONG]
    with caplog.at_level(logging.WARNING, "nbcall.server"):
        assert not peer.send_bytes(PONG)  # over it: dropped, closed, gone
    assert peer.written == [PONG]
    assert peer.closed == (p.CLOSE_TOO_SLOW, TOO_SLOW_REASON) and p.CLOSE_TOO_SLOW == 4008
    assert "slow" not in online(hub)
    assert "closing slow: it does not read its messages" in caplog.text
    assert not peer.send_bytes(PONG) and peer.written == [PONG]  # closed: nothing more


def test_the_default_bound_is_the_standalone_servers() -> None:
    from nbcall.signaling import ServerConfig

    assert ForwardingConnection.max_buffer == ServerConfig().max_buffer == DEFAULT_MAX_BUFFER == 1 << 20


def test_health_body() -> None:
    hub = Hub()
    peer = FakePeer(hub, max_buffer=DEFAULT_MAX_BUFFER)
    hub.receive(peer.session, '{"type":"register","username":"alice"}')
    assert health_body(hub) == {"server": "nbcall", "version": __version__, "protocol": p.PROTOCOL_VERSION, "online": 1}


class FakeUpstream:
    def __init__(self, fail_at: int | None = None) -> None:
        self.sent: list[str] = []
        self.fail_at = fail_at

    async def send(self, message: str) -> None:
        if len(self.sent) == self.fail_at:
            raise ConnectionClosed(None, None)
        await asyncio.sleep(0)  # a write that yields, like a real one under backpressure
        self.sent.append(message)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_pump_sends_in_order_including_frames_put_before_it_started() -> None:
    pump, upstream = FramePump(), FakeUpstream()
    assert pump.put("1") and pump.put("2")
    pump.start(upstream)
    assert pump.put("3")
    await settle()
    assert pump.put("4")
    await settle()
    assert upstream.sent == ["1", "2", "3", "4"]
    pump.stop()
    await settle()
    assert pump.put("5")
    await settle()
    assert upstream.sent == ["1", "2", "3", "4"]


async def test_a_bounded_pump_refuses_frames_when_full_and_stops_when_the_upstream_closes() -> None:
    pump, upstream = FramePump(maxsize=2), FakeUpstream(fail_at=1)
    assert pump.put("1") and pump.put("2")
    assert not pump.put("3")
    pump.start(upstream)
    await settle()
    assert upstream.sent == ["1"]  # "2" met the closed connection; the pump ended there
    assert pump.put("4")
    await settle()
    assert upstream.sent == ["1"]
