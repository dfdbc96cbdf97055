"""Server processes on 127.0.0.1: free ports, waiting until one listens, stopping by pid."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

HOST = "127.0.0.1"  # tests and benchmarks never listen on anything else


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 10.0) -> None:
    """Return once something accepts connections on 127.0.0.1:port.

    Raises RuntimeError if ``proc`` exits first, TimeoutError after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout} s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds: by pid, never by name."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@contextlib.contextmanager
def serving(cmd: list[str], port: int, **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server command until it listens on 127.0.0.1:port; stop it by pid afterwards."""
    proc = subprocess.Popen(cmd, **popen)
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        stop_process(proc)


def nbcall_server_cmd(port: int, *args: str, python: str = sys.executable) -> list[str]:
    """The standalone signaling server (``python -m nbcall``, i.e. nbcall-server) on 127.0.0.1:port."""
    return [python, "-m", "nbcall", "--host", HOST, "--port", str(port), *args]
