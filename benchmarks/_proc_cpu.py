"""Process CPU time from ``/proc``: the one reader the benchmarks use.

A process's CPU is utime + stime of ``/proc/PID/stat`` (all its threads), in clock ticks;
:data:`CLK_TCK` turns ticks into seconds.  The command name sits in parentheses and may itself
contain spaces and parentheses, so the fields are split after the *last* ``)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcCpu:
    """One reading of one process."""

    pid: int
    ppid: int
    name: str  # the comm field (Chromium's renderers say "chrome" or "chromium" here)
    ticks: int  # utime + stime, whole process

    @property
    def seconds(self) -> float:
        return self.ticks / CLK_TCK


def read_cpu(pid: int) -> ProcCpu:
    """``pid`` now; raises OSError if it is gone."""
    with open(f"/proc/{pid}/stat") as f:
        head, _, tail = f.read().rpartition(")")
    fields = tail.split()  # fields[0] is the state; ppid, ..., utime [11], stime [12]
    return ProcCpu(pid, int(fields[1]), head.partition("(")[2], int(fields[11]) + int(fields[12]))


def read_all_cpu() -> dict[int, ProcCpu]:
    """Every process that can be read; one that ends while /proc is walked is left out."""
    out: dict[int, ProcCpu] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = read_cpu(int(entry.name))
            except OSError:
                continue
    return out


class Process(Protocol):
    """Anything with a pid and its parent's (a :class:`ProcCpu`, or a richer record built on one)."""

    @property
    def pid(self) -> int: ...

    @property
    def ppid(self) -> int: ...


def descendants(procs: Mapping[int, Process], root: int) -> list[int]:
    """Every process under ``root`` in ``procs`` (children, their children, ...), not ``root`` itself."""
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
