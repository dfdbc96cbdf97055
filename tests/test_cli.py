"""The standalone server command: starts, serves, and shuts down cleanly on signals."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbcall.signaling import SignalingClient
from nbcall.signaling.ownership import runtime_file

from .conftest import free_port, stop_process, wait_for_port


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_standalone_server_serves_and_stops_cleanly(sig: signal.Signals) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbcall", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_port(port, proc)

        async def call() -> str:
            async with SignalingClient(f"ws://127.0.0.1:{port}", "alice") as alice:
                assert alice.registration is not None
                proc.send_signal(sig)
                await asyncio.wait_for(alice.closed.wait(), 5)
                return str(alice.ws.close_code)

        assert asyncio.run(call()) == "1001"  # going away: the server told the client
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert f"ws://127.0.0.1:{port}" in out
        assert "shutting down" in err and "Traceback" not in err
    finally:
        stop_process(proc)


def test_bad_configuration_is_refused_with_a_reason() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nbcall", "--token", "short"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2 and "at least 8" in out.stderr


def test_port_in_use_is_reported() -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "nbcall", "--port", str(port)], capture_output=True, text=True, timeout=30
        )
    assert out.returncode == 1 and "cannot listen" in out.stderr


@pytest.mark.slow
def test_a_kernel_of_the_same_user_adopts_the_standalone_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nbcall-server proves itself like an embedded server, and removes its file on stop."""
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbcall", "--port", str(port), "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        deadline = time.monotonic() + 5
        while not runtime_file(port).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        kernel = subprocess.run(
            [sys.executable, "-c", f"import nbcall; h = nbcall.serve(port={port}); print(h.adopted, h.port)"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert kernel.stdout.split() == ["True", str(port)], kernel.stderr
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert not runtime_file(port).exists()
    finally:
        stop_process(proc)
