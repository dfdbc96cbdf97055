"""A kernel socket carries a page's frames to a real server and back, in order."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from nbcall._kernel_socket import KernelSocket
from nbcall.signaling import ServerHandle, serve
from nbcall.signaling.forwarding import PAGE_MAX_BYTES


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


def test_kernel_socket_registers_calls_and_keeps_frame_order(handle: ServerHandle) -> None:
    alice, bob = Recorder(), Recorder()
    a = KernelSocket(handle.url, alice.on_message, alice.on_closed)
    b = KernelSocket(handle.url, bob.on_message, bob.on_closed)
    # sent before the sockets are open: queued, not lost
    a.send(json.dumps({"type": "register", "username": "alice", "client": "test"}))
    b.send(json.dumps({"type": "register", "username": "bob", "client": "test", "presence": True}))
    alice.wait_for("registered")
    bob.wait_for("registered")
    a.send(json.dumps({"type": "offer", "to": "bob", "sdp": "v=0"}))  # a (seed-style) call: candidates go to it
    bob.wait_for("offer")
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
    socket = KernelSocket("ws://127.0.0.1:9", rec.on_message, rec.on_closed, open_timeout=2)
    socket.wait_closed(5)
    assert rec.closed is not None and rec.closed[0] == 1006 and "could not connect" in rec.closed[1]
    assert not socket.open


def test_kernel_sockets_carry_a_widgets_signaling_as_comm_messages(handle: ServerHandle) -> None:
    """The multiplexer of one widget: kernel_socket_* messages in, kernel_socket_* commands out."""
    from nbcall import CallWidget

    w = CallWidget("kira", server=handle.url)
    out: list[dict[str, object]] = []
    arrived = threading.Event()

    def capture(content: dict[str, object]) -> None:
        out.append(content)
        arrived.set()

    def wait_for(kind: str) -> dict[str, object]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = [c for c in list(out) if c["kind"] == kind]
            if found:
                return found[0]
            arrived.wait(0.05)
            arrived.clear()
        raise TimeoutError(f"no {kind}: {out}")

    w.send = capture  # type: ignore[method-assign]
    w._handle_custom_msg({"kind": "kernel_socket_open", "id": "p1"}, [])
    register = json.dumps({"type": "register", "username": "kira", "client": "test"})
    w._handle_custom_msg({"kind": "kernel_socket_send", "id": "p1", "data": register}, [])
    assert wait_for("kernel_socket_opened") == {"kind": "kernel_socket_opened", "id": "p1"}
    reply = wait_for("kernel_socket_message")
    assert reply["id"] == "p1" and json.loads(str(reply["data"]))["type"] == "registered"
    w._handle_custom_msg({"kind": "kernel_socket_close", "id": "p1"}, [])
    closed = wait_for("kernel_socket_closed")
    assert closed["id"] == "p1" and closed["code"] == 1000 and not w._page_problems
    w.close()


def test_a_page_flooding_a_server_that_never_answers_is_bounded_and_told() -> None:
    """The kernel transport's queue is the Jupyter endpoint's bounded FramePump: frames sent
    while the server has not answered the upgrade wait, up to PAGE_MAX_FRAMES / PAGE_MAX_BYTES;
    past that they are dropped and the page hears rate_limited (once a second, not per frame)."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        rec = Recorder()
        ks = KernelSocket(f"ws://127.0.0.1:{port}", rec.on_message, rec.on_closed, open_timeout=3)
        frame = json.dumps({"type": "ping", "pad": "x" * 1000})
        for _ in range(3000):
            ks.send(frame)
        error = rec.wait_for("error")
        assert error["code"] == "rate_limited"
        assert ks._pump.queued_bytes <= PAGE_MAX_BYTES
        assert sum(1 for m in rec.messages if m.get("type") == "error") == 0  # one warning, not 2000
        ks.abort()  # still connecting: the attempt is cancelled, and on_closed says so
        deadline = time.monotonic() + 10
        while rec.closed is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rec.closed is not None and rec.closed[0] == 1006
    finally:
        listener.close()
