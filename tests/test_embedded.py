"""Embedded mode: one server per process, reused, stopped, restarted; shared across processes
of the same user only when the server on the port proves it is theirs."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as sync_serve

import nbcall
from nbcall.signaling import SignalingClient, current, embedded, probe
from nbcall.signaling.embedded import proof, runtime_file

from .conftest import free_port, stop_process


@pytest.fixture(autouse=True)
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A Jupyter runtime directory of this test's own (inherited by the processes it starts)."""
    directory = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(directory))
    monkeypatch.setattr(embedded, "FILE_WAIT", 0.3)
    yield directory
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


def get_json(port: int, path: str) -> dict[str, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())  # type: ignore[no-any-return]
    finally:
        conn.close()


def dead_pid() -> int:
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(out.stdout)


class Squatter:
    """Another user's server on the port: answers /health like nbcall (or relays it, challenge
    included, to a real server on ``relay_to``), accepts websockets, and records everything."""

    def __init__(self, port: int, relay_to: int | None = None) -> None:
        self.requests: list[str] = []
        self.upgrades: list[str] = []
        self.messages: list[str | bytes] = []

        def process_request(connection: ServerConnection, request: Request) -> Response | None:
            self.requests.append(request.path)
            if urlsplit(request.path).path != "/health":
                self.upgrades.append(request.path)
                return None  # accept the websocket, to see what a victim would send
            if relay_to is None:
                body = {"server": "nbcall", "version": nbcall.__version__, "protocol": 1, "online": 0}
            else:
                body = get_json(relay_to, request.path)
            data = json.dumps(body).encode()
            headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return Response(200, "OK", headers, data)

        def handler(ws: ServerConnection) -> None:
            for message in ws:
                self.messages.append(message)

        self.server = sync_serve(handler, "127.0.0.1", port, process_request=process_request)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def squat() -> Iterator[type[Squatter]]:
    started: list[Squatter] = []

    def start(port: int, relay_to: int | None = None) -> Squatter:
        squatter = Squatter(port, relay_to)
        started.append(squatter)
        return squatter

    yield start  # type: ignore[misc]
    for squatter in started:
        squatter.stop()


class OtherProcess:
    """``nbcall.serve(port)`` in another process of this user; stops (cleanly) when told."""

    CODE = (
        "import nbcall, sys; h = nbcall.serve(port=int(sys.argv[1])); print(h.port, h.owned, flush=True); "
        "sys.stdin.readline(); h.stop(); print('stopped', flush=True)"
    )

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.CODE, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().split() == [str(port), "True"]
        self.port = port

    def stop(self) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        out = self.proc.stdout.read()
        self.proc.wait(10)
        return out


@pytest.fixture
def other_process() -> Iterator[type[OtherProcess]]:
    started: list[OtherProcess] = []

    def start(port: int) -> OtherProcess:
        other = OtherProcess(port)
        started.append(other)
        return other

    yield start  # type: ignore[misc]
    for other in started:
        stop_process(other.proc)  # type: ignore[arg-type]


# -- one server per process ------------------------------------------------------------


def test_start_reuse_stop_release_restart() -> None:
    port = free_port()
    first = nbcall.serve(port=port)
    assert first.owned and not first.adopted and first.running and first.url == f"ws://127.0.0.1:{port}"
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


# -- the runtime file and the proof ----------------------------------------------------


def test_the_runtime_file_is_private_and_removed_on_stop(runtime: Path) -> None:
    handle = nbcall.serve(port=0)
    path = runtime_file(handle.port)
    assert handle.runtime_file == path and path.parent == runtime
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(runtime.stat().st_mode) == 0o700
    record = json.loads(path.read_text())
    assert record["port"] == handle.port and record["pid"] == os.getpid() and len(record["secret"]) == 64
    handle.stop()
    assert not path.exists()
    assert list(runtime.iterdir()) == []  # no temporary file left behind either


def test_a_stale_runtime_file_is_replaced(runtime: Path) -> None:
    port = free_port()
    runtime.mkdir(mode=0o700)
    stale = {"port": port, "pid": dead_pid(), "secret": "00" * 32}
    runtime_file(port).write_text(json.dumps(stale))
    handle = nbcall.serve(port=port)
    assert handle.owned and handle.port == port
    record = json.loads(runtime_file(port).read_text())
    assert record["pid"] == os.getpid() and record["secret"] != stale["secret"]
    assert stat.S_IMODE(runtime_file(port).stat().st_mode) == 0o600


def test_health_answers_a_challenge_with_a_proof_bound_to_its_port() -> None:
    handle = nbcall.serve(port=0)
    secret = bytes.fromhex(json.loads(runtime_file(handle.port).read_text())["secret"])
    nonce = "ab" * 16
    info = get_json(handle.port, f"/health?challenge={nonce}")
    assert info["server"] == "nbcall" and info["online"] == 0  # the usual record, plus the proof
    assert info["proof"] == proof(secret, handle.port, nonce) != proof(secret, handle.port + 1, nonce)
    assert "proof" not in get_json(handle.port, "/health")
    assert "proof" not in get_json(handle.port, "/health?challenge=not-hex")


# -- another process of the same user --------------------------------------------------


def test_a_second_process_uses_the_running_server() -> None:
    port = free_port()
    handle = nbcall.serve(port=port)
    code = (
        f"import nbcall; h = nbcall.serve(port={port}); print(h.owned, h.adopted, h.url, h.running); "
        "h.stop(); print(h.running)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    # stop() leaves another's server alone
    assert out.stdout.split() == ["False", "True", handle.url, "True", "True"], out.stderr
    assert handle.running
    assert runtime_file(port).exists()


def test_a_real_server_of_another_process_is_adopted(other_process: type[OtherProcess]) -> None:
    port = free_port()
    other = other_process(port)
    handle = nbcall.serve(port=port)
    assert handle.adopted and not handle.owned and handle.port == port and handle.url == f"ws://127.0.0.1:{port}"
    assert f"pid {other.proc.pid}" in handle.note
    assert asyncio.run(registers(handle.url, "dave"))
    handle.stop()  # leaves the other process's server (and its file) alone
    assert probe("127.0.0.1", port) is not None and runtime_file(port).exists()
    assert other.stop().split() == ["stopped"]
    assert not runtime_file(port).exists()  # removed by the process that wrote it


# -- squatters -------------------------------------------------------------------------


def assert_started_elsewhere(handle: nbcall.ServerHandle, port: int, caplog: pytest.LogCaptureFixture) -> None:
    assert handle.owned and not handle.adopted and handle.port not in (0, port)
    assert f"port {port} on 127.0.0.1 is taken by" in handle.note and f"on port {handle.port} instead" in handle.note
    assert handle.note in [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert asyncio.run(registers(handle.url, "erin"))  # the widget's server works, on its own port


def test_a_squatter_is_not_adopted(squat: type[Squatter], caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    squatter = squat(port)
    assert probe("127.0.0.1", port) is not None  # it looks like nbcall
    handle = nbcall.serve(port=port)
    assert_started_elsewhere(handle, port, caplog)
    assert "does not prove it is this user's: there is no" in handle.note
    assert squatter.upgrades == [] and squatter.messages == []
    assert all(urlsplit(path).path == "/health" for path in squatter.requests)


@pytest.mark.parametrize("file", ["stale", "copied"])
def test_a_squatter_relaying_a_real_servers_health_is_not_adopted(
    file: str,
    runtime: Path,
    squat: type[Squatter],
    other_process: type[OtherProcess],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The squatter answers with a real server's exact /health body, challenge and proof
    included.  Our file for its port is either stale (from a dead server) or, as if the
    same secret were in both, a copy of the real server's: the proof is for the wrong port."""
    real, port = free_port(), free_port()
    other_process(real)
    record = json.loads(runtime_file(real).read_text())
    record["port"] = port
    if file == "stale":
        record["pid"], record["secret"] = dead_pid(), "11" * 32
    runtime_file(port).write_text(json.dumps(record))
    runtime_file(port).chmod(0o600)
    squatter = squat(port, relay_to=real)
    assert get_json(port, "/health") == get_json(real, "/health")
    handle = nbcall.serve(port=port)
    assert_started_elsewhere(handle, port, caplog)
    reason = "is stale" if file == "stale" else "no valid proof of the secret"
    assert reason in handle.note
    if file == "copied":
        assert any("challenge=" in path for path in squatter.requests)  # it saw, and relayed, the challenge
    assert squatter.upgrades == [] and squatter.messages == []


def test_a_port_held_by_something_else_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        handle = nbcall.serve(port=port)
    assert_started_elsewhere(handle, port, caplog)
    assert "does not answer as an nbcall server" in handle.note


@pytest.mark.parametrize("tamper", ["mode", "owner", "symlink", "directory"])
def test_an_untrustworthy_runtime_file_is_ignored(
    tamper: str, runtime: Path, other_process: type[OtherProcess], caplog: pytest.LogCaptureFixture
) -> None:
    """The server on the port is real and would prove itself: the file is what is wrong."""
    port = free_port()
    other_process(port)
    path = runtime_file(port)
    if tamper == "mode":
        path.chmod(0o644)
        reason = "readable or writable by other users (mode 644)"
    elif tamper == "owner":
        if os.geteuid() != 0:
            pytest.skip("chown to another user needs root")
        os.chown(path, 65534, -1)
        reason = "belongs to uid 65534"
    elif tamper == "symlink":
        target = runtime / "elsewhere.json"
        path.rename(target)
        path.symlink_to(target)
        reason = "is a symlink"
    else:
        runtime.chmod(0o777)
        reason = "is writable by other users (mode 777)"
    handle = nbcall.serve(port=port)
    assert_started_elsewhere(handle, port, caplog)
    assert reason in handle.note
