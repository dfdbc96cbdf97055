"""Shared pieces of the signaling benchmarks: server processes and a lean websocket client.

The load generator speaks RFC 6455 directly on an asyncio ``Protocol`` (uvloop): client
frames are masked once, ahead of time, so sending a message is one ``transport.write``
of prepared bytes, and receiving one is a header parse plus a byte comparison.  That
keeps the generator several times cheaper per message than either server, so that the
server under test, not the generator, sets the pace.  The very same client code drives
both servers.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

# HOST: the benchmarks never talk to anything but 127.0.0.1.
from nbcall._testing.processes import HOST, nbcall_server_cmd, stop_process, wait_for_port

from ._proc_cpu import read_cpu

ROOT = Path(__file__).resolve().parent.parent
PYTHON = os.environ.get("NBCALL_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
SEED_SERVER = Path(os.environ.get("SEED_SERVER", ROOT.parent / "shared" / "seed" / "server.js"))
NODE_PATH = os.environ.get("NODE_PATH", str(ROOT / "node_modules"))

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


# -- servers --------------------------------------------------------------------------


def server_command(kind: str, port: int, *, rate: float | None = None, burst: float | None = None) -> list[str]:
    if kind == "nbcall":
        # ``python -m nbcall`` is ``nbcall-server``, and runs this checkout (PYTHONPATH) uninstalled.
        cmd = nbcall_server_cmd(port, python=PYTHON)
        if rate is not None:
            cmd += ["--rate", f"{rate:g}"]
        if burst is not None:
            cmd += ["--burst", f"{burst:g}"]
        return cmd
    if kind == "seed":
        node = shutil.which("node") or "node"
        return [node, str(SEED_SERVER), str(port), HOST]
    raise ValueError(f"unknown server {kind!r}")


class ServerProcess:
    """One server in its own process, optionally pinned to CPUs with ``taskset``."""

    def __init__(self, kind: str, cmd: list[str], cpus: str | None, log_path: Path, port: int) -> None:
        self.kind, self.port = kind, port
        full = (["taskset", "-c", cpus] if cpus else []) + cmd
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, NODE_PATH=NODE_PATH, PYTHONPATH=path)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        # taskset execs the server, so the pid is the server's own.
        self.proc = subprocess.Popen(full, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self.command = " ".join(full)

    def wait_ready(self, timeout: float = 15.0) -> None:
        try:
            wait_for_port(self.port, self.proc, timeout)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{self.kind} server: {exc}; see {self._log.name}") from None

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)  # SIGTERM, then SIGKILL, by pid
        self._log.close()


def code_version() -> dict[str, str]:
    """The nbcall commit under test and any uncommitted change to its server code."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    dirty = git("status", "--porcelain", "--", "nbcall/signaling", "nbcall/cli.py")
    return {"commit": git("rev-parse", "HEAD"), "dirty": dirty}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), in seconds."""
    return read_cpu(pid).seconds


def run_delay_seconds(pid: int) -> tuple[float, int]:
    """Time a whole process's threads spent runnable but waiting for a CPU, and how many times
    they were put on a CPU (``/proc/PID/task/*/schedstat``: on-CPU ns, run-queue ns, slices)."""
    waited, slices = 0, 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                fields = f.read().split()
        except OSError:  # a thread that ended meanwhile
            continue
        waited += int(fields[1])
        slices += int(fields[2])
    return waited / 1e9, slices


def set_slice(pid: int, ns: int) -> None:
    """Give every thread of ``pid`` a scheduler slice of ``ns`` (EEVDF's per-task slice, Linux
    6.12+: ``sched_setattr`` with ``sched_runtime`` for SCHED_OTHER; x86_64 only here)."""

    class SchedAttr(ctypes.Structure):
        _fields_ = [
            ("size", ctypes.c_uint32), ("policy", ctypes.c_uint32), ("flags", ctypes.c_uint64),
            ("nice", ctypes.c_int32), ("priority", ctypes.c_uint32), ("runtime", ctypes.c_uint64),
            ("deadline", ctypes.c_uint64), ("period", ctypes.c_uint64),
        ]  # fmt: skip

    libc = ctypes.CDLL(None, use_errno=True)
    for task in os.listdir(f"/proc/{pid}/task"):
        attr = SchedAttr(size=ctypes.sizeof(SchedAttr), policy=0, runtime=ns)
        if libc.syscall(314, int(task), ctypes.byref(attr), 0) != 0:  # SYS_sched_setattr on x86_64
            err = ctypes.get_errno()
            raise OSError(err, f"sched_setattr({task}): {os.strerror(err)}")


def cpu_busy_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU (busy, total) jiffies from /proc/stat; busy counts irq and softirq time too."""
    out: dict[int, tuple[int, int]] = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                ticks = [int(v) for v in vals[:8]]
                idle = ticks[3] + ticks[4]
                out[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return out


def cpu_busy_share(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> dict[int, float]:
    return {cpu: (after[cpu][0] - before[cpu][0]) / max(1, after[cpu][1] - before[cpu][1]) for cpu in sorted(after)}


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (status) and Pss (smaps_rollup) of a process, in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                out["pss"] = int(line.split()[1])
    return out


def pin_self(cpus: str | None) -> None:
    if cpus:
        os.sched_setaffinity(0, parse_cpus(cpus))


def parse_cpus(cpus: str) -> set[int]:
    out: set[int] = set()
    for part in cpus.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is one of nbcall's own dependencies
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


# -- a minimal websocket client --------------------------------------------------------


def mask_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One complete, masked client frame (FIN set) carrying ``payload``."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    if n:
        stream = (key * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    else:
        masked = b""
    return header + key + masked


OnMessage = Callable[["WSClient", bytearray], None]


class WSClient(asyncio.Protocol):
    """A websocket client connection: handshake, frame parsing, ping/pong, close.

    ``on_message(client, payload)`` is called for every complete text frame; ``send``
    writes a frame made by :func:`mask_frame`.
    """

    __slots__ = ("_buf", "_frag", "_handshake", "closed", "on_message", "open", "tag", "transport")

    def __init__(self, on_message: OnMessage, tag: object = None) -> None:
        self.on_message = on_message
        self.tag = tag
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._frag: list[bytearray] | None = None
        self._handshake = True
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                "GET / HTTP/1.1\r\n"
                f"Host: {HOST}\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.open.done():
            self.open.set_exception(ConnectionError(f"closed during the handshake: {exc}"))

    def send(self, frame: bytes) -> None:
        assert self.transport is not None
        self.transport.write(frame)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if self._handshake:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            self._handshake = False
            if b" 101 " not in status:
                self.open.set_exception(ConnectionError(f"handshake refused: {status!r}"))
                assert self.transport is not None
                self.transport.close()
                return
            self.open.set_result(None)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[start : start + 2], "big")
                start += 2
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[start : start + 8], "big")
                start += 8
            if b1 & 0x80:  # servers do not mask, but be correct anyway
                if size - start < 4 + n:
                    break
                key = bytes(buf[start : start + 4])
                start += 4
                raw = bytes(buf[start : start + n])
                payload = bytearray(c ^ key[i % 4] for i, c in enumerate(raw))
            else:
                if size - start < n:
                    break
                payload = buf[start : start + n]  # one copy; compares equal to bytes
            pos = start + n
            self._frame(b0, payload)
        if pos:
            del buf[:pos]

    def _frame(self, b0: int, payload: bytearray) -> None:
        opcode, fin = b0 & 0x0F, b0 & 0x80
        if opcode == OP_TEXT:
            if fin:
                self.on_message(self, payload)
            else:
                self._frag = [payload]
        elif opcode == OP_CONT and self._frag is not None:
            self._frag.append(payload)
            if fin:
                whole, self._frag = bytearray().join(self._frag), None
                self.on_message(self, whole)
        elif opcode == OP_PING:
            self.send(mask_frame(bytes(payload), OP_PONG))
        elif opcode == OP_CLOSE and not self.closed and self.transport is not None:
            self.send(mask_frame(bytes(payload[:2]), OP_CLOSE))
            self.transport.close()


async def connect(on_message: OnMessage, port: int, tag: object = None, timeout: float = 30.0) -> WSClient:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: WSClient(on_message, tag), HOST, port)
    await asyncio.wait_for(client.open, timeout)
    return client


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)
