"""The call set-up benchmark's tables: first-frame percentiles per setting, and phases."""

from __future__ import annotations

import statistics
from typing import Any

# The settings in the order of the tables (and the default order of a run).
SETTINGS = (
    "plain", "plain2p", "lab", "lab-direct", "lab-preview", "lab-auto", "lab-auto-preview", "lab2p", "lab2p-auto",
    "seed", "floor",
)  # fmt: skip


def pct(values: list[float], q: float) -> float:
    """Percentile with linear interpolation between order statistics (numpy's default)."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(pct(values, 50), 1),
        "p95": round(pct(values, 95), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "mean": round(statistics.fmean(values), 1),
    }


def side_values(calls: list[dict[str, Any]], side: str, key: str) -> list[float]:
    return [c[side][key] for c in calls if side in c and c[side].get(key) is not None and not c[side]["timeout"]]


def mark_values(calls: list[dict[str, Any]], name: str) -> list[float]:
    return [c["marks"][name] for c in calls if name in c.get("marks", {})]


QUIET = 0.25  # a call is "quiet" when other processes kept less than this many CPUs busy during it


def summarise(result: dict[str, Any]) -> str:
    calls = result["calls"]
    lines = [
        "| setting | side | n | p50 ms | p95 ms | min ms | max ms | p50 getStats ms | busy CPUs | foreign CPUs "
        "| quiet n | quiet p50 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    p50s: dict[tuple[str, str], float] = {}
    for setting in SETTINGS:
        cs = calls.get(setting) or []
        if not cs:
            continue
        for side in ("caller", "callee"):
            v = side_values(cs, side, "rvfc")
            if not v:
                continue
            s = summary(v)
            st = summary(side_values(cs, side, "stats"))
            p50s[(setting, side)] = s["p50"]
            busy = statistics.median(c["busy_cpus"] for c in cs)
            foreign = [c["foreign_cpus"] for c in cs if "foreign_cpus" in c]
            foreign_s = f"{statistics.median(foreign):.2f}" if foreign else "-"
            quiet = [c for c in cs if c.get("foreign_cpus", 9) < QUIET]
            qv = side_values(quiet, side, "rvfc")
            quiet_s = f"{len(qv)} | {pct(qv, 50):.1f}" if qv else "0 | -"
            timeouts = sum(1 for c in cs if side in c and c[side]["timeout"])
            note = f" ({timeouts} timed out)" if timeouts else ""
            lines.append(
                f"| {setting} | {side} | {s['n']}{note} | {s['p50']} | {s['p95']} | {s['min']} | {s['max']} | "
                f"{st.get('p50', '-')} | {busy:.2f} | {foreign_s} | {quiet_s} |"
            )
    lines.append("")
    ratios = []
    for num, den in (
        (("lab", "caller"), ("plain", "caller")),
        (("lab-direct", "caller"), ("plain", "caller")),
        (("plain", "callee"), ("seed", "callee")),
        (("plain2p", "callee"), ("seed", "callee")),
        (("lab", "callee"), ("seed", "callee")),
        (("plain", "caller"), ("seed", "callee")),
        (("lab", "caller"), ("seed", "callee")),
        (("lab-direct", "caller"), ("seed", "callee")),
        (("lab-preview", "caller"), ("seed", "callee")),
        (("lab-auto", "caller"), ("seed", "callee")),
        (("lab-auto-preview", "caller"), ("seed", "callee")),
        (("lab2p", "caller"), ("seed", "callee")),
        (("lab2p-auto", "caller"), ("seed", "callee")),
        (("seed", "callee"), ("floor", "callee")),
        (("plain", "callee"), ("floor", "callee")),
    ):
        if num in p50s and den in p50s:
            ratios.append(f"{num[0]} {num[1]} / {den[0]} {den[1]}: {p50s[num] / p50s[den]:.2f}x")
    if ratios:
        lines.append("p50 ratios: " + "; ".join(ratios))
    return "\n".join(lines)


# The phases of an nbcall call (caller alice, callee bob), in the order they happen on the
# critical path: (label, mark).  Marks are the probe's (_setup_probes): "kmsg:*" when a comm
# message reaches Lab's kernel connection, "<side>:send:<type>" / "<side>:recv:<type>" when a
# signaling message leaves / arrives on a side's socket, "<side>:<state>" phone states,
# "<side>:media" the side's camera open, "<side>:ice_*" / "<side>:pc_*" its connection.
NBCALL_PHASES = (
    ("`call` message reaches the page (kernel ran `call()`)", "kmsg:call"),
    ("alice's phone places the call", "alice:placeCall"),
    ("invite sent", "alice:send:invite"),
    ("bob rings (invite arrives)", "bob:recv:invite"),
    ("bob's `accept` message reaches the page (Lab: via `on_incoming` in the kernel)", "kmsg:accept"),
    ("bob's phone accepts", "bob:accept()"),
    ("accept sent", "bob:send:accept"),
    ("accept arrives at alice", "alice:recv:accept"),
    ("alice's camera open (started with the call)", "alice:media"),
    ("offer sent", "alice:send:offer"),
    ("offer arrives at bob", "bob:recv:offer"),
    ("answer sent", "bob:send:answer"),
    ("answer arrives at alice", "alice:recv:answer"),
    ("bob's camera open (started at accept)", "bob:media"),
    ("alice ICE connected", "alice:ice_connected"),
    ("alice connected (DTLS)", "alice:connected"),
    ("bob connected", "bob:connected"),
)
SEED_PHASES = (
    ("caller's camera open", "caller:gum_end"),
    ("offer sent", "caller:send:offer"),
    ("offer arrives at the callee", "callee:recv:offer"),
    ("answer sent", "callee:send:answer"),
    ("answer arrives at the caller", "caller:recv:answer"),
    ("callee ICE connected", "callee:ice_connected"),
    ("callee connected (DTLS)", "callee:pc_connected"),
)
FLOOR_PHASES = (
    ("camera open", "floor:media"),
    ("offer/answer applied", "floor:negotiated"),
    ("connected", "floor:connected"),
)


def phase_table(result: dict[str, Any], settings: tuple[str, ...] = SETTINGS) -> str:
    """p50 ms from t0 of each phase (first time reached), one column per setting."""
    calls = result["calls"]
    present = [s for s in settings if calls.get(s)]
    lines: list[str] = []
    for title, phases, group in (
        ("nbcall (alice calls bob)", NBCALL_PHASES, ("plain", "plain2p", "lab", "lab-direct", "lab-preview")),
        ("seed (click to the callee's first frame)", SEED_PHASES, ("seed",)),
        ("floor", FLOOR_PHASES, ("floor",)),
    ):
        cols = [s for s in present if s in group]
        if not cols:
            continue
        if lines:
            lines.append("")
        lines.append(f"| {title}: phase, p50 ms after t0 | " + " | ".join(cols) + " |")
        lines.append("|---|" + "---:|" * len(cols))
        for label, mark in phases:
            cells = []
            for setting in cols:
                v = mark_values(calls[setting], mark)
                cells.append(f"{pct(v, 50):.0f}" if v else "-")
            if any(c != "-" for c in cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        for side, label in (("caller", "**first remote frame, caller**"), ("callee", "first remote frame, callee")):
            cells = []
            for setting in cols:
                v = side_values(calls[setting], side, "rvfc")
                cells.append(f"{pct(v, 50):.0f}" if v else "-")
            if any(c != "-" for c in cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def brief(r: dict[str, Any]) -> str:
    parts = [f"{side} {r[side]['rvfc']} ms" for side in ("caller", "callee") if side in r]
    return ", ".join(parts) + f", busy {r['busy_cpus']} CPUs (foreign {r.get('foreign_cpus')})"


def cpu_table(result: dict[str, Any], settings: tuple[str, ...] = SETTINGS) -> str:
    """CPU-milliseconds per call by process role (p50 over the calls), from t0 to the first frames."""
    names = [s for s in settings if result["calls"].get(s) and "cpu_ms_by_role" in result["calls"][s][0]]
    if not names:
        return ""
    roles: dict[str, None] = {}
    for s in names:
        for c in result["calls"][s]:
            roles.update(dict.fromkeys(c["cpu_ms_by_role"]))
    rows = ["| CPU ms per call, p50 | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    first = result["calls"][names[0]]
    for role in sorted(roles, key=lambda r: -sum(c["cpu_ms_by_role"].get(r, 0) for c in first)):
        calls = [result["calls"][s] for s in names]
        cells = [f"{statistics.median(c['cpu_ms_by_role'].get(role, 0) for c in cs):.0f}" for cs in calls]
        rows.append(f"| {role} | " + " | ".join(cells) + " |")
    totals = [f"{statistics.median(sum(c['cpu_ms_by_role'].values()) for c in result['calls'][s]):.0f}" for s in names]
    rows.append("| **all** | " + " | ".join(totals) + " |")
    return "\n".join(rows)
