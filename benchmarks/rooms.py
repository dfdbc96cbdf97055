"""Rooms (issue 10): mesh and SFU side by side, 2 to 6 members, each member in its own headless page.

    .venv/bin/python -m benchmarks.rooms --json benchmarks/results/rooms-N.json      # ~9.5 min
    .venv/bin/python -m benchmarks.rooms --summarise benchmarks/results/rooms-1.json  # its table again

Two real nbcall servers on 127.0.0.1: the **mesh** one with ``--room-mesh-limit 6`` (so six
members stay a mesh), the **SFU** one with ``--room-mesh-limit 2 --sfu local`` (its own Janus):
every room of 3 and more is on Janus from its third join on (a mesh limit under 2 is refused,
so an SFU room of 2 cannot be had).  One headless Chromium per topology (the tests' flags, one
fake camera), six pages each, one widget per page: the built bundle on the fake anywidget
model (``rooms_harness.html``), capturing ``--video`` (the ``room_video`` trait).

Per room size, per round, ``--joins`` times: in a fresh room, n-1 members join one after the
other, then the n-th joins, timed from its ``RoomClient.join`` call to the first frame
(``requestVideoFrameCallback`` on a probe <video>) from every other member; after the last,
``--warmup`` s later, a ``--window`` s window: each member's uplink (getStats outbound-rtp
bytesSent, audio and video: every mesh link, or the SFU publisher's simulcast layers), the CPU
time of the Chromium renderer processes (and of all Chromium's, and of Janus) from /proc.  Rounds alternate
the order (sizes up / down, mesh / SFU first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright

from nbcall._testing import chromium
from nbcall._testing.processes import HOST, free_port, nbcall_server_cmd
from nbcall._testing.sandbox import sandbox_env

from ._rooms_measure import Topology, one_room
from ._rooms_page import Member, serve_pages
from ._rooms_procs import CpuMeter, chromium_roots, janus_pid
from ._rooms_report import summarise, table
from ._setup_measure import BUNDLE, bundle_size, loadavg, log
from .wsbench import PYTHON, ServerProcess, code_version


def sizes(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1)) if "," not in text else [int(x) for x in text.split(",")]


def video(text: str) -> dict[str, int]:
    size, _, fps = text.partition("@")
    w, _, h = size.partition("x")
    return {"width": int(w), "height": int(h), "fps": int(fps or 15)}


def server(name: str, port: int, workdir: Path, *flags: str) -> ServerProcess:
    cmd = nbcall_server_cmd(port, "--log-level", "WARNING", *flags, python=PYTHON)
    return ServerProcess(name, cmd, None, workdir / f"{name}.log", port)


def plan(args: argparse.Namespace) -> list[tuple[str, int]]:
    """The rooms measured each round: ``--rooms`` (topology:size, ...), else every size x topology."""
    if args.rooms:
        return [(t, int(n)) for t, _, n in (item.partition(":") for item in args.rooms.split(","))]
    topologies = [t for t in ("mesh", "sfu") if t in args.topologies.split(",")]
    # The SFU server's mesh limit is 2 (Limits.check refuses less): a room of 2 is a mesh there.
    return [(t, n) for n in args.sizes for t in topologies if not (t == "sfu" and n < 3)]


def order(rooms: list[tuple[str, int]], rnd: int) -> list[tuple[str, int]]:
    """Round 0: sizes up, mesh first; round 1: sizes down, SFU first; and so on."""
    return sorted(rooms, key=lambda r: (r[1], r[0]), reverse=rnd % 2 == 1)


async def open_topology(
    pw: Any, env: dict[str, str], name: str, s: ServerProcess, size: int, base: str, tag: str, args: argparse.Namespace
) -> tuple[Browser, Topology]:
    """A browser of its own (so its processes are this topology's), ``size`` pages, each registered."""
    known = chromium_roots()
    browser = await chromium.launch(pw, env, cameras=1)  # Chromium's default single fake camera
    (root,) = chromium_roots() - known
    url = f"ws://{HOST}:{s.port}"
    members = [Member(browser, base, f"r{name[0]}{tag}-{i}", url, args.video, trace=args.trace) for i in range(size)]
    vw, _, vh = args.viewport.partition("x")
    for m in members:  # one at a time: each page registers before the next loads
        await m.open((int(vw), int(vh)))
    return browser, Topology(name, members, CpuMeter(root, s.pid, janus_pid(s.pid) if name == "sfu" else None))


async def idle_cpu(topos: list[Topology], seconds: float) -> dict[str, Any]:
    """Every page registered, in no room: what the idle pages cost (per browser)."""
    before = [t.meter.read() for t in topos]
    await asyncio.sleep(seconds)
    return {t.name: CpuMeter.percent(b, t.meter.read()) for t, b in zip(topos, before, strict=True)}


async def measure(topos: dict[str, Topology], rooms: list[tuple[str, int]], tag: str, args: argparse.Namespace,
                  result: dict[str, Any]) -> None:  # fmt: skip
    await asyncio.sleep(1.0)  # the last pages finish loading
    result["idle_cpu_pct"] = await idle_cpu(list(topos.values()), min(3.0, args.window))
    if args.warmup_rooms:  # not counted: each page's first camera; janus.js and Janus's first room
        brief_args = argparse.Namespace(**{**vars(args), "joins": 1, "window": 1.0})
        for topo in topos.values():
            pages = topo.members
            # Meshes of two (every page opens its camera once), or one SFU room of all.
            pairs = [pages[i : i + 2] if i + 2 <= len(pages) else pages[-2:] for i in range(0, len(pages), 2)]
            for group in pairs if topo.name == "mesh" else [pages]:
                r = await one_room(Topology(topo.name, group, topo.meter), len(group), -1, tag, brief_args)
                result.setdefault("warmup", []).append(r)
                log(f"warm-up {topo.name} {len(group)}: {r.get('error') or 'ok'} in {r['seconds']} s")
    for rnd in range(args.rounds):
        for name, n in order(rooms, rnd):
            r = await one_room(topos[name], n, rnd, tag, args)
            result["rooms"].append(r)
            log(brief(r))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tag = secrets.token_hex(2)
    result: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "code": code_version(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_start": loadavg()},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "bundle": bundle_size(),
        "rooms": [],
    }
    version = subprocess.run([chromium.CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    result["machine"]["chromium"] = version
    rooms = plan(args)
    sizes = {t: max(n for name, n in rooms if name == t) for t, _ in rooms}
    result["plan"] = rooms
    workdir = Path(tempfile.mkdtemp(prefix="nbcall-rooms-bench-"))
    env = sandbox_env(workdir)
    flags = {"mesh": ["--room-mesh-limit", str(max(2, sizes.get("mesh", 2)))],
             "sfu": ["--room-mesh-limit", "2", "--sfu", "local"]}  # fmt: skip
    servers = {t: server(t, free_port(), workdir, *flags[t]) for t in ("mesh", "sfu") if t in sizes}
    result["servers"] = {k: v.command for k, v in servers.items()}
    httpd, base = serve_pages()
    topos: dict[str, Topology] = {}
    browsers: list[Browser] = []
    try:
        for s in servers.values():
            s.wait_ready(30)
        async with async_playwright() as pw:
            try:
                for name, s in servers.items():
                    browser, topos[name] = await open_topology(pw, env, name, s, sizes[name], base, tag, args)
                    browsers.append(browser)
                log(f"{sum(len(t.members) for t in topos.values())} pages registered")
                await measure(topos, rooms, tag, args, result)
            finally:
                for topo in topos.values():
                    for m in topo.members:
                        with contextlib.suppress(Exception):
                            await m.close()
                for browser in browsers:
                    await browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
        for s in servers.values():
            s.stop()
    if any("error" in r for r in result["rooms"]):
        log(f"kept the servers' logs in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["machine"]["loadavg_end"] = loadavg()
    return result


def brief(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{r['topology']} {r['members']} r{r['round']}: error {r['error']}"
    w = r["window"]
    joins = [j["newcomer_ms"] for j in r["joins"]]
    return (
        f"{r['topology']} {r['members']} r{r['round']}: joins {joins} ms, uplink {w['uplink_kbps_mean']} kbps, "
        f"renderer CPU {w['renderer_cpu_pct_per_member']}%/member, janus {w['cpu_pct'].get('janus')}%, "
        f"foreign {w['load']['foreign_cpus']} {w['foreign']} ({r['seconds']} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes, default=sizes("2-6"), help="room sizes: 2-6 or 2,4 (default 2-6)")
    parser.add_argument("--topologies", default="mesh,sfu")
    parser.add_argument("--rooms", help="instead of sizes x topologies: mesh:2,sfu:3 ...")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--joins", type=int, default=2, help="timed joins of the last member per room and round")
    parser.add_argument("--warmup", type=float, default=2.0, help="s after the last join before the window")
    parser.add_argument("--window", type=float, default=5.0, help="s measured")
    parser.add_argument("--settle", type=float, default=1.0, help="s after a leave before the next join")
    parser.add_argument("--timeout", type=float, default=30.0, help="s for a room to settle")
    parser.add_argument("--video", type=video, default=video("320x180@15"), help="room_video: WxH@FPS")
    parser.add_argument("--viewport", default="1000x700", help="each page's size (the grid, thus the SFU layers)")
    parser.add_argument("--trace", action="store_true", help="print the pages events of each timed join")
    parser.add_argument("--no-warmup-rooms", dest="warmup_rooms", action="store_false")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--summarise", type=Path, help="print the tables of a saved run and exit")
    args = parser.parse_args()
    if args.summarise:
        print(table(summarise(json.loads(args.summarise.read_text()))))
        return
    if not BUNDLE.exists():
        parser.error(f"{BUNDLE} is missing: npm run build")
    result = asyncio.run(run(args))
    result["summary"] = summarise(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(table(result["summary"]))


if __name__ == "__main__":
    main()
