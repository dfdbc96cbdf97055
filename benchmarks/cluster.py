"""Cluster mode: what a hop through Redis costs.  Pairs of clients on one node against pairs
split across two nodes of one cluster (``nbcall-server --redis``, a real redis-server).

    .venv/bin/python -m benchmarks.cluster --json benchmarks/results/cluster.json   # ~2 min

Pinned like ``benchmarks.forwarding``: both nodes and Redis on CPU 0 (``--server-cpus``),
this process (the load generator) on CPU 1.  The same offer/answer ping-pong with ~3 KB
SDPs (``forwarding.Pair``), in two loads:

- **paced**: every pair does ``--rate`` (20) offer/answer round trips a second: latency
  at a realistic load, where the goal is cross-node p99 <= same-node p99 + 2 ms;
- **closed loop**: each answer triggers the next offer: throughput; here the servers and
  Redis saturate CPU 0 and p99 measures time-slicing (reported, not judged).

Per relayed message: CPU of the nodes + Redis (``/proc``), Redis commands (``INFO
commandstats``) and bytes in and out (``INFO stats``).  Then memory per idle registered
connection: a single server and a cluster node, ``--idle`` connections each.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis as redis_sync

from nbcall._testing.processes import free_port, nbcall_server_cmd, serving
from nbcall._testing.redis import Node, RedisServer

from . import wsbench as wb
from .forwarding import Pair, Stats, dumps, register

FAST = ("--rate", "1000000", "--burst", "1000000")  # as forwarding.py: no throttling


def pin(pid: int, cpus: set[int]) -> None:
    os.sched_setaffinity(pid, cpus)


def redis_counts(client: redis_sync.Redis) -> tuple[int, int]:
    commands = client.info("commandstats")
    stats = client.info("stats")
    calls = sum(int(v["calls"]) for k, v in commands.items() if k not in ("cmdstat_info", "cmdstat_config"))
    return calls, int(stats["total_net_input_bytes"]) + int(stats["total_net_output_bytes"])


async def run_load(args: argparse.Namespace, ports: tuple[int, int], pids: list[int], paced: bool) -> dict[str, Any]:
    stats = Stats()
    tag = secrets.token_hex(2)
    pairs = [Pair(i, stats, tag) for i in range(args.pairs)]
    clients = []
    for pair in pairs:
        pair.a = await register(ports[0], pair.names[0])
        pair.b = await register(ports[1], pair.names[1])
        clients += [pair.a, pair.b]
    await asyncio.sleep(0.3)  # joins reach the other node in ~50 ms
    running = True
    waiting: dict[Pair, asyncio.Event] = {}

    if paced:

        def on_a(pair: Pair) -> Any:
            def handle(client: wb.WSClient, payload: bytearray) -> None:
                if payload == pair.expect_answer:
                    stats.msgs += 1
                    if stats.measuring:
                        stats.latencies.append(time.perf_counter() - pair.t0)
                    waiting[pair].set()
                else:
                    stats.odd(payload)

            return handle

        async def pace(pair: Pair) -> None:
            # Each pair's offers keep to its own grid, ``period`` apart from a random phase:
            # timed from the last send instead, every late wake-up moved a pair's phase, and
            # pairs delayed by the same burst fell into step (60% of milliseconds without a
            # send, up to 98 sends in one, gaps of 15 ms): a burst load, not a paced one.
            period = 1.0 / args.rate
            due = time.perf_counter() + period * secrets.randbelow(1000) / 1000
            while running:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                started = time.perf_counter()
                waiting[pair] = asyncio.Event()
                pair.t0 = started
                pair.a.send(pair.offer_frame)
                await waiting[pair].wait()
                due += period
                if due < time.perf_counter():  # an answer later than a period: skip, keep the grid
                    due += period * ((time.perf_counter() - due) // period + 1)

        for pair in pairs:
            pair.a.on_message, pair.b.on_message = on_a(pair), pair.on_b
        tasks = [asyncio.create_task(pace(p)) for p in pairs]
    else:
        for pair in pairs:
            pair.a.on_message, pair.b.on_message = pair.on_a, pair.on_b
            pair.t0 = time.perf_counter()
            pair.a.send(pair.offer_frame)
        tasks = []
    gc.collect()
    gc.freeze()  # as forwarding.py: the generator's own collections are not the servers' latency
    await asyncio.sleep(args.warmup)
    rc = redis_sync.Redis(port=args.redis_port)
    rc.config_resetstat()
    m0, w0, c0 = stats.msgs, time.perf_counter(), sum(wb.cpu_seconds(pid) for pid in pids)
    g0 = wb.cpu_seconds(os.getpid())
    d0 = [wb.run_delay_seconds(pid) for pid in pids]
    r0 = redis_counts(rc)
    stats.measuring = True
    await asyncio.sleep(args.duration)
    stats.measuring = False
    m1, w1, c1 = stats.msgs, time.perf_counter(), sum(wb.cpu_seconds(pid) for pid in pids)
    g1 = wb.cpu_seconds(os.getpid())
    d1 = [wb.run_delay_seconds(pid) for pid in pids]
    r1 = redis_counts(rc)
    running = False
    for event in waiting.values():
        event.set()
    await asyncio.gather(*tasks)
    for client in clients:
        client.close()
    await asyncio.sleep(0.5)
    msgs = max(1, m1 - m0)
    waited = sum(b[0] - a[0] for a, b in zip(d0, d1, strict=True))
    slices = sum(b[1] - a[1] for a, b in zip(d0, d1, strict=True))
    lat = sorted(stats.latencies)
    return {
        "msgs_per_s": (m1 - m0) / (w1 - w0),
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
        "cpu_us_per_msg": (c1 - c0) / msgs * 1e6,
        "cpu_share": (c1 - c0) / (w1 - w0),
        "generator_cpu_share": (g1 - g0) / (w1 - w0),  # this process: the load generator
        "redis_cmds_per_msg": (r1[0] - r0[0]) / msgs,
        "redis_bytes_per_msg": (r1[1] - r0[1]) / msgs,
        # Waiting for the core: run-queue time of the nodes and Redis per relayed message,
        # and per time one of them was put on the CPU (mostly: per wake-up).
        "run_wait_us_per_msg": waited / msgs * 1e6,
        "run_wait_us_per_slice": waited / max(1, slices) * 1e6,
        "slices_per_msg": slices / msgs,
        "unexpected": stats.unexpected,
        "latencies": lat,
    }


def pct(lat: list[float], q: float) -> float:
    """The ``q`` quantile of sorted latencies (seconds), in ms."""
    return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of one placement: percentiles of all their latencies, means of the rest."""
    lat = sorted(x for r in runs for x in r["latencies"])
    means = [k for k in runs[0] if k not in ("latencies", "unexpected")]
    out: dict[str, Any] = {k: sum(r[k] for r in runs) / len(runs) for k in means}
    out.update(p50_ms=pct(lat, 0.5), p99_ms=pct(lat, 0.99), unexpected=sum(r["unexpected"] for r in runs))
    out["p99_ms_runs"] = [r["p99_ms"] for r in runs]
    return out


async def idle_memory(port: int, pid: int, count: int) -> float:
    """KiB of RSS per idle registered connection (``count`` of them, after a settle)."""
    await asyncio.sleep(0.5)
    before = wb.memory_kib(pid)["rss"]
    tag = secrets.token_hex(2)
    clients = []
    for i in range(count):
        client = await wb.connect(lambda c, p: None, port)
        client.send(wb.mask_frame(dumps({"type": "register", "username": f"{tag}idle{i}", "client": "bench"})))
        clients.append(client)
    await asyncio.sleep(2.0)
    after = wb.memory_kib(pid)["rss"]
    for client in clients:
        client.close()
    return (after - before) / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="round trips a second per pair (paced)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--idle", type=int, default=2000, help="idle connections for the memory figure")
    parser.add_argument("--repeat", type=int, default=3, help="runs per placement and load, alternating, pooled")
    parser.add_argument(
        "--slice-us", type=int, default=0,
        help="scheduler slice of the nodes and Redis (sched_setattr; 0: the kernel's default)",
    )  # fmt: skip
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--redis-cpus", default="", help="Redis's CPUs (default: --server-cpus)")
    parser.add_argument("--generator-cpus", default="1")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    server_cpus = wb.parse_cpus(args.server_cpus)
    pin(0, wb.parse_cpus(args.generator_cpus))
    loop = wb.new_event_loop()
    results: dict[str, Any] = {"code": wb.code_version(), "args": {k: str(v) for k, v in vars(args).items()}}
    redis = RedisServer()
    redis.start()
    assert redis.proc is not None
    pin(redis.proc.pid, wb.parse_cpus(args.redis_cpus) if args.redis_cpus else server_cpus)
    args.redis_port = redis.port
    nodes = [Node(redis.url, f"bench{i}", *FAST) for i in range(2)]
    try:
        for node in nodes:
            pin(node.proc.pid, server_cpus)
        pids = [redis.proc.pid, *(n.proc.pid for n in nodes)]
        if args.slice_us:
            for pid in pids:
                wb.set_slice(pid, args.slice_us * 1000)
        placements = {"same": (nodes[0].port, nodes[0].port), "cross": (nodes[0].port, nodes[1].port)}
        for load in ("paced", "closed"):
            runs: dict[str, list[dict[str, Any]]] = {"same": [], "cross": []}
            for rep in range(args.repeat):
                for where in ("same", "cross") if rep % 2 == 0 else ("cross", "same"):
                    result = loop.run_until_complete(run_load(args, placements[where], pids, load == "paced"))
                    runs[where].append(result)
                    shown = {k: v for k, v in result.items() if k != "latencies"}
                    wb.log(f"{load:6} {where:5} " + "  ".join(f"{k} {v:.3g}" for k, v in shown.items()))
            for where, rs in runs.items():
                results[f"{load}_{where}"] = pooled(rs)
            # Each repeat's cross and same ran back to back: their ratio is the one least moved
            # by other jobs on the machine, which slow both alike (seen: same-node 43-67 µs/msg
            # in one run of this benchmark).
            results[f"{load}_cpu_ratio_runs"] = [
                c["cpu_us_per_msg"] / s["cpu_us_per_msg"] for s, c in zip(runs["same"], runs["cross"], strict=True)
            ]
        fresh = Node(redis.url, "bench-idle")  # a fresh process, as the single server below
        pin(fresh.proc.pid, server_cpus)
        try:
            results["idle_kib_cluster"] = loop.run_until_complete(idle_memory(fresh.port, fresh.proc.pid, args.idle))
        finally:
            fresh.stop()
    finally:
        for node in nodes:
            node.stop()
        redis.close()
    port = free_port()
    with serving(nbcall_server_cmd(port), port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as single:
        pin(single.pid, server_cpus)
        results["idle_kib_single"] = loop.run_until_complete(idle_memory(port, single.pid, args.idle))
    wb.log(f"idle KiB/connection: single {results['idle_kib_single']:.2f}, cluster {results['idle_kib_cluster']:.2f}")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def table(r: dict[str, Any]) -> str:
    rows = ["| load | pairs on | msgs/s | p50 ms | p99 ms | CPU µs/msg (nodes+Redis) | run-queue µs/msg "
            "| Redis cmds/msg | Redis B/msg |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for load in ("paced", "closed"):
        for where in ("same", "cross"):
            x = r[f"{load}_{where}"]
            rows.append(f"| {load} | {'one node' if where == 'same' else 'two nodes'} | {x['msgs_per_s']:,.0f} | "
                        f"{x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['cpu_us_per_msg']:.1f} | "
                        f"{x.get('run_wait_us_per_msg', float('nan')):.1f} | "
                        f"{x['redis_cmds_per_msg']:.2f} | {x['redis_bytes_per_msg']:,.0f} |")  # fmt: skip
    p, c = r["paced_same"], r["paced_cross"]
    rows.append("")
    for load in ("paced", "closed"):
        ratios = r.get(f"{load}_cpu_ratio_runs", [])
        if ratios:
            each = ", ".join(f"{x:.2f}x" for x in ratios)
            rows.append(f"CPU per message cross/same, {load}, run by run (each pair back to back): {each}; "
                        f"median {statistics.median(ratios):.2f}x")  # fmt: skip
    rows.append(f"paced p99: cross {c['p99_ms']:.2f} ms vs same {p['p99_ms']:.2f} ms + 2 ms -> "
                f"{'met' if c['p99_ms'] <= p['p99_ms'] + 2 else 'NOT met'}; CPU per message cross/same: "
                f"paced {c['cpu_us_per_msg'] / p['cpu_us_per_msg']:.2f}x, closed "
                f"{r['closed_cross']['cpu_us_per_msg'] / r['closed_same']['cpu_us_per_msg']:.2f}x; idle KiB per "
                f"connection single {r['idle_kib_single']:.2f}, cluster {r['idle_kib_cluster']:.2f} "
                f"(+{r['idle_kib_cluster'] - r['idle_kib_single']:.2f})")  # fmt: skip
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
