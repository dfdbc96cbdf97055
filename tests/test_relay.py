"""The kernel relay carries a page's frames to a real server and back, in order."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from nbcall.relay import KernelRelay
from nbcall.signaling import ServerHandle, serve


@pytest.fixture
def handle() -> Iterator[ServerHandle]:
    h = serve(port=0)
    yield h
    h.stop()


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []
        self.closed: tuple[int, str] | None = None
        self.event = threading.Event()

    def on_message(self, frame: str) -> None:
        self.messages.append(json.loads(frame))
        self.event.set()

    def on_closed(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.event.set()

    def wait_for(self, kind: str, timeout: float = 5.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages:
                if message.get("type") == kind:
                    self.messages.remove(message)
                    return message
            self.event.wait(0.05)
            self.event.clear()
        raise TimeoutError(f"no {kind} within {timeout} s: {self.messages}")


def test_relay_registers_calls_and_keeps_frame_order(handle: ServerHandle) -> None:
    alice, bob = Recorder(), Recorder()
    a = KernelRelay(handle.url, alice.on_message, alice.on_closed)
    b = KernelRelay(handle.url, bob.on_message, bob.on_closed)
    # sent before the sockets are open: queued, not lost
    a.send(json.dumps({"type": "register", "username": "alice", "client": "test"}))
    b.send(json.dumps({"type": "register", "username": "bob", "client": "test", "presence": True}))
    alice.wait_for("registered")
    bob.wait_for("registered")
    for i in range(50):
        a.send(json.dumps({"type": "candidate", "to": "bob", "candidate": {"candidate": f"c{i}", "sdpMid": "0"}}))
    got = [bob.wait_for("candidate")["candidate"] for _ in range(50)]
    assert [c["candidate"] for c in got] == [f"c{i}" for i in range(50)]  # type: ignore[index]
    a.close()
    a.wait_closed(5)
    assert alice.closed is not None and alice.closed[0] == 1000
    while "alice" not in bob.wait_for("presence")["left"]:  # type: ignore[operator]
        pass  # earlier batches carry the joins
    b.close()
    b.wait_closed(5)


def test_unreachable_server_reports_a_close_with_the_reason() -> None:
    rec = Recorder()
    relay = KernelRelay("ws://127.0.0.1:9", rec.on_message, rec.on_closed, open_timeout=2)
    relay.wait_closed(5)
    assert rec.closed is not None and rec.closed[0] == 1006 and "could not connect" in rec.closed[1]
    assert not relay.open
