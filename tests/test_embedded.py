"""Embedded mode: one server per process, reused, stopped, restarted; shared across processes."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

import nbcall
from nbcall.signaling import SignalingClient, current, probe

from .conftest import free_port


@pytest.fixture(autouse=True)
def no_server_left() -> Iterator[None]:
    yield
    handle = current()
    if handle is not None:
        handle.stop()


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the port now (as servers do, with SO_REUSEADDR,
    which the closed connections' TIME_WAIT does not block)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        sock.listen()
        return True


async def registers(url: str, name: str) -> bool:
    async with SignalingClient(url, name) as client:
        return client.registration is not None


def test_start_reuse_stop_release_restart() -> None:
    port = free_port()
    first = nbcall.serve(port=port)
    assert first.owned and first.running and first.url == f"ws://127.0.0.1:{port}"
    assert nbcall.serve(port=port) is first  # one per process
    assert asyncio.run(registers(first.url, "alice"))
    first.stop()
    assert not first.running
    assert port_is_free(port)
    assert probe("127.0.0.1", port) is None
    second = nbcall.serve(port=port)  # restart in the same process, same port
    assert second is not first and second.running
    assert asyncio.run(registers(second.url, "bob"))
    second.stop()
    assert port_is_free(port)


def test_free_port_with_port_zero() -> None:
    handle = nbcall.serve(port=0)
    assert handle.port > 0 and handle.owned
    assert asyncio.run(registers(handle.url, "carol"))


def test_a_second_process_uses_the_running_server() -> None:
    port = free_port()
    handle = nbcall.serve(port=port)
    code = (
        f"import nbcall; h = nbcall.serve(port={port}); print(h.owned, h.url, h.running); h.stop(); print(h.running)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.split() == ["False", handle.url, "True", "True"]  # stop() leaves another's server alone
    assert handle.running


def test_a_port_held_by_something_else_is_a_clear_error() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(OSError, match="not an nbcall server"):
            nbcall.serve(port=port)
    assert current() is None
