"""A real ``redis-server`` (Debian's) for tests and benchmarks: a free 127.0.0.1 port, no
persistence unless asked, stopped by pid; and cluster nodes (``nbcall-server --redis``)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .processes import HOST, free_port, nbcall_server_cmd, stop_process, wait_for_port


class RedisServer:
    """One redis-server process; :meth:`stop` and :meth:`start` again keep its port (an outage)."""

    def __init__(self, port: int | None = None, *, persist: bool = False) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server is not installed (./dev setup installs it)")
        self.binary = binary
        self.port = port or free_port()
        self.persist = persist
        self.dir = tempfile.mkdtemp(prefix="nbcall-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes"] if self.persist else ["--save", "", "--appendonly", "no"]
        cmd = [self.binary, "--port", str(self.port), "--bind", HOST, "--dir", self.dir, *persistence]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def redis_server(*, persist: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(persist=persist)
    server.start()
    try:
        yield server
    finally:
        server.close()


def node_cmd(port: int, redis_url: str, node_id: str, *args: str, python: str = sys.executable) -> list[str]:
    """``nbcall-server --redis`` on 127.0.0.1:port as cluster node ``node_id``."""
    return nbcall_server_cmd(port, "--redis", redis_url, "--node-id", node_id, *args, python=python)


class Node:
    """One cluster node process, stopped by pid (or killed, to test a crash)."""

    def __init__(self, redis_url: str, node_id: str, *args: str, log: Path | None = None) -> None:
        self.port = free_port()
        self.node_id = node_id
        self.url = f"ws://{HOST}:{self.port}"
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(node_cmd(self.port, redis_url, node_id, *args), stdout=out, stderr=out)
        wait_for_port(self.port, self.proc, timeout=20.0)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no goodbye to Redis or to anyone
        self.proc.wait(5)

    def stop(self) -> None:
        stop_process(self.proc)
