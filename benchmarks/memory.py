"""Server memory per idle registered connection: nbcall's signaling server and the seed's node server.

For each server in turn (its own process, started here on a free 127.0.0.1 port): measure
VmRSS (/proc/PID/status) and Pss (/proc/PID/smaps_rollup) of the fresh server, open N
websocket connections (default 5,000) that each register a name, hold them open and idle,
and measure again at every checkpoint (every 1,000 connections) and at the end.

Each connection proves it is registered: it sends a ``candidate`` to its own name and waits
for the server to route it back (the seed's server does not reply to ``register``); for
nbcall it must also receive ``registered`` with its name.  At the end an offer from the
first connection must reach the last one.

    .venv/bin/python -m benchmarks.memory
    .venv/bin/python -m benchmarks.memory --connections 2000 --servers nbcall
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nbcall._testing.processes import free_port

from . import wsbench as wb


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
        elif payload.startswith(b'{"type":"offer"'):
            self.relayed = True


async def open_idle(port: int, name: str) -> Idle:
    idle = Idle(name)
    idle.client = await wb.connect(idle.on_message, port)
    idle.client.send(wb.mask_frame(dumps({"type": "register", "username": name})))
    idle.client.send(wb.mask_frame(dumps({"type": "candidate", "to": name, "from": name, "candidate": CANDIDATE})))
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
            return await open_idle(server.port, f"idle{i:05d}")

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
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    wb.pin_self(args.client_cpus or None)

    logdir = Path(tempfile.mkdtemp(prefix="nbcall-memory-"))
    results = []
    code = wb.code_version()
    wb.log(f"nbcall at {code['commit'][:12]}{' + uncommitted changes' if code['dirty'] else ''}")
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
    ok = True
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
        out = {"args": vars(args) | {"json": str(args.json)}, "code": code, "results": results}
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
