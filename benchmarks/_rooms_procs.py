"""CPU time of the processes the rooms benchmark measures, from /proc: Chromium (by browser), Janus.

Every figure is utime+stime of whole processes (all their threads, /proc/PID/stat) between
two readings.  A process that starts or ends between them counts from its first reading.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from ._proc_cpu import CLK_TCK, descendants, read_all_cpu


@dataclass
class Proc:
    pid: int
    ppid: int
    ticks: int
    cmd: list[str]
    name: str = ""


NOBODY = Proc(0, 0, 0, [])


def processes() -> dict[int, Proc]:
    """Every process we can read: pid -> ppid, CPU ticks, command line."""
    out: dict[int, Proc] = {}
    for pid, cpu in read_all_cpu().items():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
        except OSError:
            continue
        if len(cmd) == 1:  # Chromium's children rewrite their title: one string, spaces between
            cmd = cmd[0].split(" ")
        out[pid] = Proc(pid, cpu.ppid, cpu.ticks, cmd, cpu.name)
    return out


def is_chromium(p: Proc) -> bool:
    return p.name.startswith("chrom")


def chromium_roots() -> set[int]:
    """Browser processes under this one (Playwright's driver starts them): Chromium whose parent is not."""
    procs = processes()
    mine = set(descendants(procs, os.getpid()))
    return {pid for pid in mine if is_chromium(procs[pid]) and not is_chromium(procs.get(procs[pid].ppid, NOBODY))}


def janus_pid(server_pid: int) -> int | None:
    """The janus that the nbcall server (``--sfu local``) started."""
    procs = processes()
    for pid in descendants(procs, server_pid):
        if procs[pid].cmd and os.path.basename(procs[pid].cmd[0]) == "janus":
            return pid
    return None


@dataclass
class CpuReading:
    """CPU ticks per process group at one moment."""

    at: float
    groups: dict[str, dict[int, int]] = field(default_factory=dict)
    everyone: dict[int, tuple[int, str]] = field(default_factory=dict)  # pid -> (ticks, name), if asked


class CpuMeter:
    """CPU of named process groups between two readings, in % of one core.

    Groups: ``renderers`` (Chromium's ``--type=renderer`` processes of one browser: the pages'
    own processes, where WebRTC encodes, decodes and packetises), ``chromium`` (every process of
    that browser: also its browser, GPU, network service and video capture processes, which all
    pages share), ``janus``, ``server`` (the nbcall signaling server).
    """

    def __init__(self, browser_root: int, server_pid: int, janus: int | None) -> None:
        self.browser_root, self.server_pid, self.janus = browser_root, server_pid, janus

    def read(self, *, everyone: bool = False) -> CpuReading:
        """Now; with ``everyone`` also every process's ticks (to tell who else used the CPU)."""
        procs = processes()
        browser = [self.browser_root, *descendants(procs, self.browser_root)]
        groups = {
            "chromium": {pid: procs[pid].ticks for pid in browser if pid in procs},
            "renderers": {
                pid: procs[pid].ticks for pid in browser if pid in procs and "--type=renderer" in procs[pid].cmd
            },
            "server": {pid: procs[pid].ticks for pid in (self.server_pid,) if pid in procs},
            "janus": {pid: procs[pid].ticks for pid in (self.janus,) if pid is not None and pid in procs},
        }
        reading = CpuReading(time.monotonic(), groups)
        if everyone:
            reading.everyone = {pid: (p.ticks, p.name) for pid, p in procs.items()}
        return reading

    @staticmethod
    def ours() -> set[int]:
        """This process and everything under it (browsers, servers, Janus)."""
        return {os.getpid(), *descendants(processes(), os.getpid())}

    @staticmethod
    def percent(before: CpuReading, after: CpuReading) -> dict[str, float]:
        """% of one core per group (ticks of processes present at the end, less their ticks at the start)."""
        seconds = max(1e-3, after.at - before.at)
        out: dict[str, float] = {}
        for name, now in after.groups.items():
            then = before.groups.get(name, {})
            used = sum(t - then.get(pid, t) for pid, t in now.items())
            out[name] = round(100 * used / CLK_TCK / seconds, 1)
        busy = 0.05 * CLK_TCK * seconds  # a renderer over 5% of a core: a page in the room
        then = before.groups["renderers"]
        out["busy_renderers"] = float(
            sum(1 for pid, t in after.groups["renderers"].items() if t - then.get(pid, t) > busy)
        )
        return out
