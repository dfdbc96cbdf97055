"""Server memory per idle registered connection: nbcall's signaling server and the seed's node server.

For each server in turn (its own process, started here on a free 127.0.0.1 port): measure
VmRSS (/proc/PID/status) and Pss (/proc/PID/smaps_rollup) of the fresh server, open N
websocket connections (default 5,000) that each register a name, hold them open and idle,
and measure again at every checkpoint (every 1,000 connections) and at the end.

Each connection proves it is registered: for the seed's server (which does not reply to
``register``) it sends a ``candidate`` to its own name and waits for it to come back; for
nbcall it must receive ``registered`` with its name (nbcall forwards candidates only within a
call now).  At the end an offer from the
first connection must reach the last one.

Two more parts (issue 12), nbcall only, with ``--parts``:

- ``flood``: a client that never reads sends masked PING frames (125-byte payloads, written
  by hand on a raw socket) as fast as it can; the server's RSS before, during (sampled) and
  after, and whether, when and after how many bytes it was disconnected.  Once disconnected
  it connects again and goes on, until ``--flood-seconds`` or ``--flood-bytes``.  Against
  the standalone server and the Jupyter server's endpoint (``--flood-targets``).
- ``unregistered``: ``--unregistered`` (5,000) websockets from 127.0.0.1 that complete the
  upgrade, answer pings and never register; three server configurations: the defaults
  (what the registration deadline does to them), ``--cap-loopback`` (the per-address caps
  as one remote address would meet them), and ``--register-timeout 3600`` (all held: RSS
  and KiB per socket).

    .venv/bin/python -m benchmarks.memory
    .venv/bin/python -m benchmarks.memory --connections 2000 --servers nbcall
    .venv/bin/python -m benchmarks.memory --parts flood,unregistered --json benchmarks/results/memory-3.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import os
import resource
import secrets
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nbcall._testing.processes import HOST, free_port, stop_process

from . import wsbench as wb
from .liveness import jupyter_command, wait_jupyter


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


class Idle:
    """One idle connection's client side: what it has seen."""

    __slots__ = ("client", "name", "probe", "probed", "registered", "relayed")

    def __init__(self, name: str) -> None:
        self.name = name
        self.probe = b'{"type":"candidate","from":"' + name.encode() + b'"'
        self.probed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.registered = False
        self.relayed = False
        self.client: wb.WSClient | None = None

    def on_message(self, client: wb.WSClient, payload: bytearray) -> None:
        if payload.startswith(self.probe):
            if not self.probed.done():
                self.probed.set_result(None)
        elif payload.startswith(b'{"type":"registered"'):
            self.registered = json.loads(payload).get("username") == self.name
            if self.registered and not self.probed.done():
                self.probed.set_result(None)  # nbcall: registered is the proof (see open_idle)
        elif payload.startswith(b'{"type":"offer"'):
            self.relayed = True


async def open_idle(port: int, name: str, kind: str = "seed") -> Idle:
    idle = Idle(name)
    idle.client = await wb.connect(idle.on_message, port)
    idle.client.send(wb.mask_frame(dumps({"type": "register", "username": name})))
    if kind == "seed":  # the seed does not reply to register: a candidate to itself proves it
        idle.client.send(wb.mask_frame(dumps({"type": "candidate", "to": name, "from": name, "candidate": CANDIDATE})))
    # nbcall now forwards a candidate only between the two sides of a call (a self-candidate
    # gets ``no_call``), so its ``registered`` reply with the name is the proof instead.
    await asyncio.wait_for(idle.probed, 60)
    return idle


async def measure(kind: str, server: wb.ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    pid = server.pid
    await asyncio.sleep(args.settle)
    base = wb.memory_kib(pid)
    wb.log(f"{kind}: fresh server: RSS {base['rss']} KiB, PSS {base['pss']} KiB")
    sem = asyncio.Semaphore(args.concurrency)

    async def one(i: int) -> Idle:
        async with sem:
            return await open_idle(server.port, f"idle{i:05d}", kind)

    idles: list[Idle] = []
    points: list[dict[str, Any]] = []
    step = args.checkpoint
    t0 = time.monotonic()
    while len(idles) < args.connections:
        n = min(step, args.connections - len(idles))
        idles += await asyncio.gather(*(one(len(idles) + i) for i in range(n)))
        await asyncio.sleep(args.settle)
        mem = wb.memory_kib(pid)
        points.append({"connections": len(idles), **mem})
        wb.log(f"{kind}: {len(idles):5d} connections: RSS {mem['rss']} KiB, PSS {mem['pss']} KiB")
    opened_s = time.monotonic() - t0

    # The last one is reachable: a relay from the first connection arrives.
    first, last = idles[0], idles[-1]
    assert first.client is not None
    offer = {"type": "offer", "sdp": "v=0\r\n"}
    first.client.send(wb.mask_frame(dumps({"type": "offer", "to": last.name, "from": first.name, "sdp": offer})))
    for _ in range(100):
        if last.relayed:
            break
        await asyncio.sleep(0.05)

    await asyncio.sleep(args.hold)
    final = wb.memory_kib(pid)
    open_now = sum(1 for i in idles if i.client is not None and not i.client.closed)
    n = len(idles)
    result = {
        "server": kind,
        "connections": n,
        "open_at_end": open_now,
        "probed": sum(1 for i in idles if i.probed.done()),
        "registered_replies": sum(1 for i in idles if i.registered),
        "final_relay_ok": last.relayed,
        "open_seconds": opened_s,
        "base": base,
        "final": final,
        "checkpoints": points,
        "rss_kib_per_conn": (final["rss"] - base["rss"]) / n,
        "pss_kib_per_conn": (final["pss"] - base["pss"]) / n,
    }
    if len(points) >= 2:  # the slope past the first checkpoint: fixed start-up costs excluded
        p0 = points[0]
        result["rss_kib_per_conn_marginal"] = (final["rss"] - p0["rss"]) / (n - p0["connections"])
        result["pss_kib_per_conn_marginal"] = (final["pss"] - p0["pss"]) / (n - p0["connections"])
    for idle in idles:
        if idle.client is not None:
            idle.client.close()
    await asyncio.sleep(0.5)
    return result


# -- ping flood (issue 12) ------------------------------------------------------------------


def vm_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak RSS so far) of a process, KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0][2:].lower()] = int(line.split()[1])
    return out


def raw_upgrade(port: int, path: str) -> socket.socket:
    """A websocket upgrade by hand on a blocking socket; returns it after the 101 (nothing else read)."""
    sock = socket.create_connection((HOST, port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:  # the response head only, byte by byte: no frame is read
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError("closed during the upgrade")
        head += byte
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status:
        raise ConnectionError(f"upgrade refused: {status!r}")
    return sock


def flood_once(port: int, path: str, pid: int, until: float, max_bytes: int, payload: int,
               samples: list[dict[str, Any]], t0: float) -> dict[str, Any]:  # fmt: skip
    """One flooding connection: PING frames as fast as the socket takes them, never a read."""
    sock = raw_upgrade(port, path)
    sock.setblocking(False)
    frame = wb.mask_frame(os.urandom(payload), wb.OP_PING)
    batch = memoryview(frame * max(1, 65536 // len(frame)))
    start = time.monotonic()
    sent = blocked = 0
    pending = batch
    outcome, error = "time limit", None
    next_sample = t0 + samples[-1]["t"] + 0.25 if samples else 0.0  # every 0.25 s across connections
    try:
        while True:
            now = time.monotonic()
            if now >= next_sample:
                samples.append({"t": now - t0, **vm_kib(pid)})
                next_sample = now + 0.25
            if now >= until or sent >= max_bytes:
                outcome = "time limit" if now >= until else "byte limit"
                break
            try:
                n = sock.send(pending)
            except BlockingIOError:
                blocked += 1
                select.select([], [sock], [], 0.05)
                continue
            except OSError as exc:  # ECONNRESET / EPIPE: the server dropped us
                outcome, error = "disconnected", type(exc).__name__
                break
            sent += n
            pending = pending[n:] if n < len(pending) else batch
    finally:
        sock.close()
    elapsed = time.monotonic() - start
    return {
        "outcome": outcome, "error": error, "seconds": elapsed, "bytes_sent": sent,
        "frames_sent": sent // len(frame), "frame_bytes": len(frame), "send_would_block": blocked,
    }  # fmt: skip


def flood(kind: str, port: int, path: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    time.sleep(args.settle)
    before = vm_kib(pid)
    wb.log(f"flood {kind}: before: RSS {before['rss']} KiB")
    samples: list[dict[str, Any]] = []
    t0 = time.monotonic()
    until = t0 + args.flood_seconds
    connections = []
    total = 0
    while time.monotonic() < until and total < args.flood_bytes:
        one = flood_once(port, path, pid, until, args.flood_bytes - total, args.flood_payload, samples, t0)
        connections.append(one)
        total += one["bytes_sent"]
        if one["outcome"] != "disconnected":
            break
    time.sleep(args.settle)
    after = vm_kib(pid)
    alive = os.path.exists(f"/proc/{pid}")
    first = connections[0]
    result = {
        "target": kind, "before": before, "after": after,
        "peak_rss_sampled": max(s["rss"] for s in samples), "samples": samples,
        "connections": connections[:20], "connections_count": len(connections),
        "outcomes": {o: sum(1 for c in connections if c["outcome"] == o) for o in {c["outcome"] for c in connections}},
        "bytes_per_connection_median": statistics.median(c["bytes_sent"] for c in connections),
        "bytes_total": total, "seconds": time.monotonic() - t0 - args.settle,
        "first_disconnected": first["outcome"] == "disconnected", "first_seconds": first["seconds"],
        "first_bytes": first["bytes_sent"], "first_frames": first["frames_sent"], "server_alive": alive,
    }  # fmt: skip
    wb.log(f"flood {kind}: {len(connections)} connection(s), {total / 1e6:.1f} MB; first: {first['outcome']} "
           f"after {first['seconds']:.3f} s, {first['frames_sent']} frames; RSS after {after['rss']} KiB, "
           f"peak {result['peak_rss_sampled']} KiB")  # fmt: skip
    return result


# -- unregistered sockets (issue 12) ------------------------------------------------------


class Unregistered(wb.WSClient):
    """A websocket that never registers: records its open, refusal, close code and close time."""

    def __init__(self, t_connect: float) -> None:
        super().__init__(lambda c, m: None)
        self.t_connect = t_connect
        self.t_closed: float | None = None
        self.close_code: int | None = None

    def _frame(self, b0: int, payload: bytearray) -> None:
        if b0 & 0x0F == wb.OP_CLOSE and len(payload) >= 2:
            self.close_code = int.from_bytes(payload[:2], "big")
        super()._frame(b0, payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.t_closed = time.monotonic()
        super().connection_lost(exc)


async def open_unregistered(port: int, n: int, concurrency: int) -> tuple[list[Unregistered], list[str]]:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(concurrency)
    clients: list[Unregistered] = []
    refusals: list[str] = []

    async def one() -> None:
        async with sem:
            t = time.monotonic()
            try:
                _, client = await loop.create_connection(lambda: Unregistered(t), HOST, port)
            except OSError as exc:
                refusals.append(f"connect: {type(exc).__name__}")
                return
            clients.append(client)
            try:
                await asyncio.wait_for(client.open, 30)
            except (ConnectionError, TimeoutError) as exc:
                refusals.append(str(exc)[:80])

    await asyncio.gather(*(one() for _ in range(n)))
    return clients, refusals


async def unregistered(label: str, server: wb.ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    """One wave of sockets; then, while the server has closed every one of them, further waves
    on the same server (``--unregistered-waves``): does RSS come back, or grow wave after wave?"""
    first = await unregistered_wave(label, server, args)
    waves = [first]
    while len(waves) < args.unregistered_waves and waves[-1]["open_at_end"] == 0:
        waves.append(await unregistered_wave(f"{label} wave {len(waves) + 1}", server, args))
    keep = ("upgraded", "open_after_settle", "closed_by_server", "lifetime_s", "base", "at_peak", "final")
    first["waves"] = [{k: w[k] for k in keep} for w in waves]
    return first


async def unregistered_wave(label: str, server: wb.ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    pid = server.pid
    await asyncio.sleep(args.settle)
    base = wb.memory_kib(pid)
    t0 = time.monotonic()
    samples: list[dict[str, Any]] = []
    clients: list[Unregistered] = []

    async def sample() -> None:
        while True:
            open_now = sum(1 for c in clients if c.open.done() and not c.open.exception() and not c.closed)
            samples.append({"t": time.monotonic() - t0, "open": open_now, **wb.memory_kib(pid)})
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    opened, refusals = await open_unregistered(server.port, args.unregistered, args.concurrency)
    clients.extend(opened)
    open_s = time.monotonic() - t0
    upgraded = [c for c in clients if c.open.done() and not c.open.exception()]
    await asyncio.sleep(args.settle)
    at_peak = wb.memory_kib(pid)
    open_at_peak = sum(1 for c in upgraded if not c.closed)
    wb.log(f"unregistered {label}: {len(upgraded)} upgraded, {len(refusals)} refused in {open_s:.1f} s; "
           f"{open_at_peak} open {args.settle:g} s later: RSS {at_peak['rss']} KiB")  # fmt: skip
    # Hold them, and watch what the server does (the registration deadline closes them).
    deadline = time.monotonic() + args.unregistered_hold
    while time.monotonic() < deadline and any(not c.closed for c in upgraded):
        await asyncio.sleep(0.25)
    await asyncio.sleep(args.settle)
    final = wb.memory_kib(pid)
    open_end = sum(1 for c in upgraded if not c.closed)
    sampler.cancel()
    await asyncio.gather(sampler, return_exceptions=True)
    lifetimes = [c.t_closed - c.t_connect for c in upgraded if c.t_closed is not None]
    codes: dict[str, int] = {}
    for c in upgraded:
        if c.closed:
            codes[str(c.close_code)] = codes.get(str(c.close_code), 0) + 1
    kinds: dict[str, int] = {}
    for r in refusals:
        kinds[r] = kinds.get(r, 0) + 1
    result = {
        "config": label, "command": server.command, "attempted": args.unregistered, "upgraded": len(upgraded),
        "refused": kinds, "open_seconds": open_s, "open_after_settle": open_at_peak,
        "peak_open_sampled": max((s["open"] for s in samples), default=0), "base": base, "at_peak": at_peak,
        "final": final, "open_at_end": open_end, "closed_by_server": codes,
        "lifetime_s": {"min": min(lifetimes), "median": statistics.median(lifetimes), "max": max(lifetimes)}
        if lifetimes else None,
        "rss_kib_per_socket": (at_peak["rss"] - base["rss"]) / max(1, open_at_peak),
        "pss_kib_per_socket": (at_peak["pss"] - base["pss"]) / max(1, open_at_peak),
        "samples": samples,
    }  # fmt: skip
    wb.log(f"unregistered {label}: closed by the server {codes}, lifetimes {result['lifetime_s']}, "
           f"{open_end} open at the end; RSS at the end {final['rss']} KiB")  # fmt: skip
    for c in clients:
        c.close()
    await asyncio.sleep(0.5)
    return result


UNREGISTERED_CONFIGS = {
    "defaults": [],
    "cap-loopback": ["--cap-loopback"],
    "held": ["--register-timeout", "3600"],
}


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


LOG_REASONS = {
    "too many pings": "too many pings",
    "does not read": "it does not read its messages",
    "ping timeout": "no pong within the ping timeout",
}


def log_reasons(path: Path) -> dict[str, int]:
    """How often the server logged each reason for closing a connection."""
    text = path.read_text(errors="replace")
    return {label: text.count(needle) for label, needle in LOG_REASONS.items()}


def run_flood(args: argparse.Namespace, logdir: Path) -> list[dict[str, Any]]:
    results = []
    for kind in [k.strip() for k in args.flood_targets.split(",") if k.strip()]:
        port = free_port()
        if kind == "nbcall":
            server = wb.ServerProcess(kind, wb.server_command(kind, port), args.server_cpus or None,
                                      logdir / "flood-nbcall.log", port)  # fmt: skip
            try:
                server.wait_ready()
                wb.log(f"flood nbcall: pid {server.pid}: {server.command}")
                results.append(flood(kind, port, "/", server.pid, args) | {"command": server.command})
            finally:
                server.stop()
            results[-1]["server_log"] = log_reasons(logdir / "flood-nbcall.log")
        elif kind == "jupyter":
            token = secrets.token_hex(16)
            cmd, env = jupyter_command(HOST, port, token, logdir / "jupyter-home")
            full = (["taskset", "-c", args.server_cpus] if args.server_cpus else []) + cmd
            log = open(logdir / "flood-jupyter.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen(full, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                wait_jupyter(proc, port, token, logdir / "flood-jupyter.log")
                wb.log(f"flood jupyter: pid {proc.pid}")
                shown = " ".join(full).replace(token, "T")
                results.append(flood(kind, port, f"/nbcall/signal?token={token}", proc.pid, args) | {"command": shown})
            finally:
                stop_process(proc, timeout=10)  # SIGTERM, then SIGKILL, by pid
                log.close()
            results[-1]["server_log"] = log_reasons(logdir / "flood-jupyter.log")
        else:
            raise ValueError(f"unknown flood target {kind!r}")
    return results


def run_unregistered(args: argparse.Namespace, logdir: Path) -> list[dict[str, Any]]:
    results = []
    for label in [k.strip() for k in args.unregistered_configs.split(",") if k.strip()]:
        port = free_port()
        cmd = wb.server_command("nbcall", port) + UNREGISTERED_CONFIGS[label]
        server = wb.ServerProcess("nbcall", cmd, args.server_cpus or None, logdir / f"unregistered-{label}.log", port)
        try:
            server.wait_ready()
            wb.log(f"unregistered {label}: pid {server.pid}: {server.command}")
            with asyncio.Runner(loop_factory=wb.new_event_loop) as runner:
                results.append(runner.run(unregistered(label, server, args)))
        finally:
            server.stop()
        gc.collect()
    return results


def print_flood(results: list[dict[str, Any]]) -> None:
    print("\nPing flood (one client, masked 125-byte PINGs, never reads):\n")
    print("| target | RSS before MiB | peak MiB (sampled) | RSS after MiB | first flooder | its bytes | "
          "its PINGs | connections | bytes in all | seconds | server logged 'too many pings' |")  # fmt: skip
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        first = r["connections"][0]
        fate = (f"disconnected after {first['seconds'] * 1000:.0f} ms ({first['error']})"
                if r["first_disconnected"] else f"not disconnected ({first['outcome']})")  # fmt: skip
        print(f"| {r['target']} | {r['before']['rss'] / 1024:.1f} | {r['peak_rss_sampled'] / 1024:.1f} "
              f"| {r['after']['rss'] / 1024:.1f} | {fate} | {first['bytes_sent']:,} | {first['frames_sent']:,} "
              f"| {r['connections_count']} | {r['bytes_total'] / 1e6:.1f} MB | {r['seconds']:.1f} "
              f"| {r.get('server_log', {}).get('too many pings', '?')} |")  # fmt: skip


def print_unregistered(results: list[dict[str, Any]]) -> None:
    print("\nUnregistered websockets from 127.0.0.1 (upgraded, answer pings, never register):\n")
    print("| config | attempted | upgraded | refused | open after settle | RSS before MiB | RSS then MiB "
          "| **RSS KiB/socket** | closed by the server (code: n) | lifetime s min/median/max | RSS at end MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|")
    later = []
    for r in results:
        for i, w in enumerate(r.get("waves", [])[1:], 2):
            later.append(f"- {r['config']}, wave {i} on the same server: {w['upgraded']} upgraded, RSS "
                         f"{w['base']['rss'] / 1024:.1f} → {w['at_peak']['rss'] / 1024:.1f} MiB with them open, "
                         f"{w['final']['rss'] / 1024:.1f} MiB after the server closed them "
                         f"({', '.join(f'{k}: {v}' for k, v in sorted(w['closed_by_server'].items()))})")  # fmt: skip
        life = r["lifetime_s"]
        life_s = f"{life['min']:.1f} / {life['median']:.1f} / {life['max']:.1f}" if life else "-"
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(r["closed_by_server"].items())) or "none"
        # Per socket only where enough are open for the figure to mean something.
        per = f"**{r['rss_kib_per_socket']:.1f}**" if r["open_after_settle"] >= 1000 else "-"
        print(
            f"| {r['config']} | {r['attempted']} | {r['upgraded']} | {sum(r['refused'].values())} "
            f"| {r['open_after_settle']} | {r['base']['rss'] / 1024:.1f} | {r['at_peak']['rss'] / 1024:.1f} "
            f"| {per} | {codes} | {life_s} | {r['final']['rss'] / 1024:.1f} |"
        )
    if later:
        print("\n" + "\n".join(later))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=5000)
    ap.add_argument("--checkpoint", type=int, default=1000, help="measure every this many connections")
    ap.add_argument("--concurrency", type=int, default=100, help="connections being opened at once")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds of quiet before each measurement")
    ap.add_argument("--hold", type=float, default=5.0, help="seconds the connections idle before the final one")
    ap.add_argument("--servers", default="nbcall,seed")
    ap.add_argument("--server-cpus", default="0", help="taskset CPU list for the servers ('' = no pinning)")
    ap.add_argument("--client-cpus", default="1", help="CPUs for this (client) process ('' = no pinning)")
    ap.add_argument("--parts", default="idle", help="idle (registered connections), flood, unregistered")
    ap.add_argument("--flood-targets", default="nbcall,jupyter")
    ap.add_argument("--flood-seconds", type=float, default=10.0)
    ap.add_argument("--flood-bytes", type=float, default=200e6)
    ap.add_argument("--flood-payload", type=int, default=125, help="bytes of each PING's payload (at most 125)")
    ap.add_argument("--unregistered", type=int, default=5000)
    ap.add_argument("--unregistered-configs", default=",".join(UNREGISTERED_CONFIGS))
    ap.add_argument("--unregistered-waves", type=int, default=2,
                    help="waves of sockets on one server, the next once the server closed the last")
    ap.add_argument("--unregistered-hold", type=float, default=15.0,
                    help="seconds to hold them (and watch the server close them) after they are open")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.flood_bytes = int(args.flood_bytes)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    wb.pin_self(args.client_cpus or None)
    raise_nofile()

    logdir = Path(tempfile.mkdtemp(prefix="nbcall-memory-"))
    results = []
    code = wb.code_version()
    wb.log(f"nbcall at {code['commit'][:12]}{' + uncommitted changes' if code['dirty'] else ''}")
    if parts - {"idle"}:
        from .liveness import code_state

        code = code_state()
    out: dict[str, Any] = {"args": vars(args) | {"json": str(args.json)}, "code": code,
                           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    ok = True
    if "flood" in parts:
        out["flood"] = run_flood(args, logdir)
        print_flood(out["flood"])
        ok &= all(r["first_disconnected"] and r["server_alive"] for r in out["flood"])
    if "unregistered" in parts:
        out["unregistered"] = run_unregistered(args, logdir)
        print_unregistered(out["unregistered"])
    if "idle" not in parts:
        if args.json:
            args.json.write_text(json.dumps(out, indent=2))
        return 0 if ok else 1
    for kind in [k.strip() for k in args.servers.split(",") if k.strip()]:
        port = free_port()
        server = wb.ServerProcess(kind, wb.server_command(kind, port), args.server_cpus or None,
                                  logdir / f"{kind}.log", port)
        try:
            server.wait_ready()
            wb.log(f"{kind}: pid {server.pid}: {server.command}")
            with asyncio.Runner(loop_factory=wb.new_event_loop) as runner:
                results.append(runner.run(measure(kind, server, args)))
        finally:
            server.stop()
        gc.collect()

    print(f"\n{args.connections} idle registered connections per server:\n")
    print("| server | RSS before MiB | RSS after MiB | RSS KiB/conn | PSS KiB/conn | marginal RSS KiB/conn "
          "| registered | final relay |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        checks = r["probed"] if r["server"] == "seed" else min(r["probed"], r["registered_replies"])
        ok &= checks == r["connections"] and r["final_relay_ok"] and r["open_at_end"] == r["connections"]
        print(
            f"| {r['server']} | {r['base']['rss'] / 1024:.1f} | {r['final']['rss'] / 1024:.1f} "
            f"| {r['rss_kib_per_conn']:.1f} | {r['pss_kib_per_conn']:.1f} "
            f"| {r.get('rss_kib_per_conn_marginal', float('nan')):.1f} | {checks}/{r['connections']} "
            f"| {'ok' if r['final_relay_ok'] else 'FAILED'} |"
        )
    if args.json:
        out["results"] = results
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
