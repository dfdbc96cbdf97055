"""What the call set-up benchmark measures besides first frames: CPU load, bundle size, times."""

from __future__ import annotations

import gzip
import os
import sys
import time
from typing import Any

from ._proc_cpu import CLK_TCK, descendants, read_all_cpu
from .wsbench import ROOT, cpu_busy_share, cpu_busy_ticks

BUNDLE = ROOT / "nbcall" / "static" / "widget.js"
CSS = ROOT / "nbcall" / "static" / "widget.css"


def process_role(pid: int) -> str:
    """What a process of the benchmark is, for the CPU breakdown: Chromium's processes by
    ``--type`` (a renderer per page, the browser, GPU, utilities), Lab, kernels, servers."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().rstrip(b"\0").split(b"\0")
    except OSError:
        return "gone"
    if len(argv) == 1:  # Chromium rewrites its processes' titles: one string, spaces between
        argv = argv[0].split(b" ")
    text = b" ".join(argv)
    if b"chromium" in argv[0] or b"chrome" in argv[0]:
        for arg in argv:
            if arg.startswith(b"--type="):
                kind = arg[7:].decode()
                if kind == "utility":
                    sub = next((a[24:].decode() for a in argv if a.startswith(b"--utility-sub-type=")), "")
                    return f"chromium {sub.rsplit('.', 1)[-1] or 'utility'}"
                return f"chromium {kind}"
        return "chromium browser"
    if b"ipykernel" in text:
        return "kernel"
    if b"jupyter" in text:
        return "jupyter server"
    if b"nbcall" in text:
        return "nbcall server"
    if b"node" in argv[0]:
        return "node (seed server, Playwright)"
    return "other"


def own_cpu_by_pid() -> dict[int, int]:
    """utime+stime ticks of each process of this benchmark's tree (itself included)."""
    procs = read_all_cpu()
    mine = {os.getpid(), *descendants(procs, os.getpid())}
    return {pid: p.ticks for pid, p in procs.items() if pid in mine}


class Load:
    """Busy CPUs over an interval: all processes, those not of this benchmark (foreign), and
    the benchmark's CPU-seconds by process role (``by_role``: where a call's CPU goes)."""

    def __init__(self) -> None:
        self.by_pid = own_cpu_by_pid()
        self.own = sum(self.by_pid.values())
        self.t = time.monotonic()
        self.cpus = cpu_busy_ticks()

    def done(self) -> dict[str, Any]:
        busy = sum(cpu_busy_share(self.cpus, cpu_busy_ticks()).values())
        after = own_cpu_by_pid()
        own = (sum(after.values()) - self.own) / CLK_TCK / max(1e-3, time.monotonic() - self.t)
        roles: dict[str, float] = {}
        for pid, ticks in after.items():
            used = ticks - self.by_pid.get(pid, 0)
            if used > 0:
                role = "benchmark" if pid == os.getpid() else process_role(pid)
                roles[role] = roles.get(role, 0.0) + used / CLK_TCK * 1000
        return {
            "busy_cpus": round(busy, 2),
            "own_cpus": round(own, 2),
            "foreign_cpus": round(max(0.0, busy - own), 2),
            "cpu_ms_by_role": {k: round(v) for k, v in sorted(roles.items(), key=lambda kv: -kv[1])},
        }


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def bundle_size() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in (BUNDLE, CSS):
        data = path.read_bytes()
        out[path.name] = {
            "bytes": len(data),
            "gzip6_bytes": len(gzip.compress(data, compresslevel=6, mtime=0)),
            "gzip9_bytes": len(gzip.compress(data, compresslevel=9, mtime=0)),
            "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(path.stat().st_mtime)),
        }
    return out


def log(*args: object) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def rel(marks: dict[str, float], t0: float) -> dict[str, float]:
    return {k: round(v - t0, 1) for k, v in sorted(marks.items(), key=lambda kv: kv[1])}


def frame_times(frames: dict[str, Any], origin: float, t0_epoch: float) -> dict[str, Any]:
    """ms from t0 (epoch ms) to the probe's events of one side (page times + its timeOrigin)."""
    out: dict[str, Any] = {"timeout": frames["timeout"]}
    for k in ("rvfc", "stats", "track", "receive", "presentation"):
        v = frames.get(k)
        out[k] = None if v is None else round(origin + v - t0_epoch, 1)
    out["size"] = f"{frames.get('width')}x{frames.get('height')}"
    return out


def nbcall_result(res: dict[str, Any], t0_epoch: float, busy: dict[str, Any]) -> dict[str, Any]:
    origin = res["origin"]
    t0_page = t0_epoch - origin
    return {
        "caller": frame_times(res["frames"]["alice"], origin, t0_epoch),
        "callee": frame_times(res["frames"]["bob"], origin, t0_epoch),
        "marks": rel(res["marks"], t0_page),
        "long_tasks": long_tasks(res, t0_page),
        **busy,
        "loadavg": loadavg(),
    }


def two_page_result(ra: dict[str, Any], rb: dict[str, Any], t0_epoch: float, busy: dict[str, float]) -> dict[str, Any]:
    """One call measured in two pages (SIDE_RESULT_JS of alice's and of bob's), on one epoch clock."""
    marks = {}
    for r, who in ((ra, "alice"), (rb, "bob")):
        for k, v in r["marks"].items():
            marks[k if ":" in k else f"{who}:{k}"] = round(r["origin"] + v - t0_epoch, 1)
    return {
        "caller": frame_times(ra["frames"], ra["origin"], t0_epoch),
        "callee": frame_times(rb["frames"], rb["origin"], t0_epoch),
        "marks": dict(sorted(marks.items(), key=lambda kv: kv[1])),
        **busy,
        "loadavg": loadavg(),
    }


def long_tasks(res: dict[str, Any], t0_page: float) -> list[list[float]]:
    """The page's long tasks (over 50 ms) as [start ms after t0, duration ms]."""
    return [[round(start - t0_page, 1), dur] for start, dur in res.get("long", [])]
