"""One room of the rooms benchmark: build it, time its last member's joins, measure a steady window."""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from statistics import mean
from typing import Any

from playwright.async_api import TimeoutError as PlaywrightTimeout

from ._rooms_page import Member, gather
from ._rooms_procs import CLK_TCK, CpuMeter, CpuReading
from ._rooms_trace import render
from ._setup_measure import Load, loadavg, log

# A member is in the room, on the topology wanted, with every other member connected, and
# (on the SFU) its mesh links gone (the move's handover is over).
SETTLED = """(s, [n, topology]) => s.phase === "in" && s.topology === topology && s.members === n
  && s.connected === n && s.streams === n && (topology === "mesh" || s.links === 0)"""


@dataclass
class Topology:
    """The pages of one topology: their server (its mesh limit decides mesh or SFU), browser, CPU meter."""

    name: str  # "mesh" | "sfu"
    members: list[Member]
    meter: CpuMeter


def last(values: list[float | None]) -> float | None:
    """The latest of these times, or None when one of them never came."""
    known = [v for v in values if v is not None]
    return max(known) if known and len(known) == len(values) else None


def since(t: float | None, t0: float) -> float | None:
    return None if t is None else round(t - t0, 1)


def expected(topology: str, size: int) -> str:
    """What a room of ``size`` is on: the SFU server's mesh limit is 2."""
    return "sfu" if topology == "sfu" and size >= 3 else "mesh"


async def settled(members: list[Member], topology: str, timeout: float) -> None:
    n = len(members) - 1
    want = expected(topology, len(members))
    await gather(*(m.wait_state(SETTLED, [n, want], timeout) for m in members))


async def build(topo: Topology, room: str, n: int, timeout: float) -> list[dict[str, Any]]:
    """Members 0..n-1 join one after the other, each once the previous one sees everybody's frames."""
    members = topo.members[:n]
    out = []
    for i, m in enumerate(members):
        t0 = await m.join(room, i)
        got = await m.frames()
        out.append({"into": i + 1, "all_frames_ms": since(last([got["first"].get(o.key) for o in members[:i]]), t0)})
    await settled(members, topo.name, timeout)
    return out


async def leave_all(members: list[Member], timeout: float) -> None:
    for m in members:
        try:
            await m.leave()
        except Exception as exc:
            log(f"{m.user}: leave failed: {exc}")
    await gather(*(m.wait_state("(s) => s.phase === 'out'", None, timeout) for m in members))


async def timed_join(topo: Topology, room: str, n: int, trace: bool = False) -> dict[str, Any]:
    """The last member joins the room of n-1 (all flowing): join() to the first frame of every other member.

    ``newcomer_ms``: at the newcomer, from its RoomClient.join call to the first frame from the
    last of the others; ``room_ms``: until, in addition, every other member showed the
    newcomer's first frame (one clock: epoch ms of each page, one machine).
    """
    newcomer, others = topo.members[n - 1], topo.members[: n - 1]
    # The join that moves the room to the SFU gives the others a new stream of everyone.
    moves = expected(topo.name, n) != expected(topo.name, n - 1)
    await gather(*(o.arm(n - 1 if moves else 1) for o in others))
    t0 = await newcomer.join(room, n - 1)
    mine = await newcomer.frames()
    theirs = await gather(*(o.frames() for o in others))
    at_newcomer = [mine["first"].get(o.key) for o in others]
    at_others = [t["first"].get(newcomer.key) for t in theirs]
    if trace:
        log(render(f"{newcomer.user} joins (newcomer)", await newcomer.events(t0)))
        for o in others:
            log(render(o.user, await o.events(t0)))
    return {
        "newcomer_ms": since(last(at_newcomer), t0),
        "room_ms": since(last(at_newcomer + at_others), t0),
        "each_ms": [since(f, t0) for f in at_newcomer],
        "seen_by_others_ms": [since(f, t0) for f in at_others],
        "topology": (await newcomer.state())["topology"],
        "moves_to_sfu": moves,
    }


def foreign(before: CpuReading, after: CpuReading, mine: set[int], threshold: float = 10.0) -> list[str]:
    """Processes not of this benchmark that used more than ``threshold`` % of a core in the window."""
    seconds = max(1e-3, after.at - before.at)
    out = []
    for pid, (ticks, name) in after.everyone.items():
        if pid in mine or pid not in before.everyone:
            continue
        pct = 100 * (ticks - before.everyone[pid][0]) / CLK_TCK / seconds
        if pct > threshold:
            out.append(f"{name}[{pid}] {pct:.0f}%")
    return out


def layer_rates(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What each sent video stream (an SFU simulcast layer, or a mesh link) carried over the window."""
    then = {lay["ssrc"]: lay["bytes"] for lay in before["out"]["layers"]}
    seconds = max(1e-3, (after["t"] - before["t"]) / 1000)
    return [
        {"rid": lay["rid"], "width": lay["width"], "fps": lay["fps"], "limited": lay["limited"],
         "kbps": round(8 * (lay["bytes"] - then.get(lay["ssrc"], lay["bytes"])) / 1000 / seconds, 1)}
        for lay in sorted(after["out"]["layers"], key=lambda lay: (lay["rid"], lay["ssrc"]))
    ]  # fmt: skip


def rate_kbps(before: dict[str, Any], after: dict[str, Any], field: str) -> float:
    """kbps: bits per millisecond between two samples (page times in ms)."""
    return float(8 * (after["out"][field] - before["out"][field]) / max(1.0, after["t"] - before["t"]))


async def window(topo: Topology, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Uplink, received frames and CPU over ``args.window`` seconds, ``args.warmup`` s after the room flows."""
    members = topo.members[:n]
    await asyncio.sleep(args.warmup)
    load = Load()
    c0 = topo.meter.read(everyone=True)
    s0 = await gather(*(m.sample() for m in members))
    await asyncio.sleep(args.window)
    s1 = await gather(*(m.sample() for m in members))
    c1 = topo.meter.read(everyone=True)
    busy = load.done()
    cpu = CpuMeter.percent(c0, c1)
    audio = [rate_kbps(a, b, "audio") for a, b in zip(s0, s1, strict=True)]
    video = [rate_kbps(a, b, "video") for a, b in zip(s0, s1, strict=True)]
    fps_in = [
        1000 * (b["inbound"]["frames"] - a["inbound"]["frames"]) / max(1.0, b["t"] - a["t"]) / max(1, n - 1)
        for a, b in zip(s0, s1, strict=True)
    ]
    downlink = [
        8 * (b["inbound"]["bytes"] - a["inbound"]["bytes"]) / max(1.0, b["t"] - a["t"])
        for a, b in zip(s0, s1, strict=True)
    ]
    streams = n * (n - 1)
    through = (sum(audio) + sum(video) + sum(downlink)) / 1000  # Mbps into and out of Janus, on the SFU
    janus = cpu.get("janus", 0.0)
    return {
        "seconds": round((s1[0]["t"] - s0[0]["t"]) / 1000, 2),
        "uplink_kbps": [round(a + v, 1) for a, v in zip(audio, video, strict=True)],
        "uplink_video_kbps": [round(v, 1) for v in video],
        "uplink_audio_kbps": [round(a, 1) for a in audio],
        "uplink_kbps_mean": round(mean(a + v for a, v in zip(audio, video, strict=True)), 1),
        "links": [s["links"] for s in s1],
        "layers": [layer_rates(a, b) for a, b in zip(s0, s1, strict=True)],
        "quality_limited": sorted({r for s in s1 for r in s["out"]["limited"]}),
        "camera": s1[0]["camera"],
        "received_fps_per_stream": [round(f, 1) for f in fps_in],
        "received_widths": sorted({w for s in s1 for w in s["inbound"]["widths"]}),
        "topology": sorted({s["topology"] for s in s1}),
        "cpu_pct": cpu,
        "renderer_cpu_pct_per_member": round(cpu["renderers"] / n, 1),
        "chromium_cpu_pct_per_member": round(cpu["chromium"] / n, 1),
        "janus_cpu_pct_per_stream": round(janus / streams, 2) if topo.name == "sfu" else None,
        "janus_cpu_pct_per_mbps": round(janus / through, 2) if topo.name == "sfu" and through > 0 else None,
        "downlink_kbps": [round(d, 1) for d in downlink],
        "video_streams": streams,
        "load": {**busy, "loadavg": loadavg()},
        "foreign": foreign(c0, c1, topo.meter.ours()),
    }


async def one_room(topo: Topology, n: int, rnd: int, tag: str, args: argparse.Namespace) -> dict[str, Any]:
    """Rooms of n, ``args.joins`` times: n-1 members join, then the timed join of the n-th; the last
    one is measured for ``args.window`` s; everyone leaves after each.

    A fresh room per timed join, never a member leaving and joining again: on the SFU the
    others' subscriptions reuse the leaver's m-lines for the next publisher, and the pages
    then do not show it (seen with Janus 1.1 and this bundle; see benchmarks/README.md).
    """
    started = time.monotonic()
    result: dict[str, Any] = {"topology": topo.name, "members": n, "round": rnd, "builds": [], "joins": []}
    members = topo.members[:n]
    step = "start"
    try:
        for j in range(args.joins):
            room = f"bench-{topo.name}-{n}-r{rnd}-{j}-{tag}"
            step = f"build {j}"
            result["builds"].append(await build(topo, room, n - 1, args.timeout))
            await asyncio.sleep(args.settle)
            step = f"join {j}"
            result["joins"].append(await timed_join(topo, room, n, args.trace))
            step = f"settle {j}"
            try:
                await settled(members, topo.name, args.timeout)
            except PlaywrightTimeout:  # measured all the same, and said
                now = [await m.state() for m in members]
                result.setdefault("unsettled", []).append({"join": j, "states": now})
                log(f"{topo.name} {n} r{rnd}: not settled after join {j} in {args.timeout} s: {now}")
            if j == args.joins - 1:
                step = "window"
                result["window"] = await window(topo, n, args)
            step = f"leave {j}"
            await leave_all(members, args.timeout)
            await asyncio.sleep(args.settle)
    except Exception as exc:  # one room failing must not lose the run: say so in the JSON
        result["error"] = f"{step}: {type(exc).__name__}: {exc}"[:500]
        states: list[Any] = await asyncio.gather(*(m.state() for m in members), return_exceptions=True)
        result["states"] = [s if isinstance(s, dict) else repr(s) for s in states]
        log(f"{topo.name} {n} r{rnd}: FAILED {result['error']} {result['states']}")
        try:
            await leave_all(members, args.timeout)
        except Exception as exc2:
            log(f"{topo.name} {n}: not everyone left: {exc2}")
        await asyncio.sleep(args.settle)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result
