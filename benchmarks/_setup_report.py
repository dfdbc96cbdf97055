"""The call set-up benchmark's tables: first-frame percentiles per setting, and phases."""

from __future__ import annotations

import statistics
from typing import Any

# The settings in the order of the tables (and the default order of a run).
SETTINGS = ("plain", "plain2p", "lab", "lab-direct", "seed", "floor")


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
        (("seed", "callee"), ("floor", "callee")),
        (("plain", "callee"), ("floor", "callee")),
    ):
        if num in p50s and den in p50s:
            ratios.append(f"{num[0]} {num[1]} / {den[0]} {den[1]}: {p50s[num] / p50s[den]:.2f}x")
    if ratios:
        lines.append("p50 ratios: " + "; ".join(ratios))
    return "\n".join(lines)


def phase_table(result: dict[str, Any]) -> str:
    names = [
        "kmsg:call",
        "alice:calling",
        "bob:ringing",
        "ksend:ringing",
        "kmsg:accept",
        "accept_sent",
        "bob:connecting",
        "alice:connecting",
        "gum_start",
        "gum_end",
        "alice:media",
        "alice:pc",
        "bob:media",
        "bob:pc",
        "alice:first_candidate",
        "alice:ice_connected",
        "alice:connected",
        "bob:connected",
        "alice:remote_stream",
        "bob:remote_stream",
        "caller:gum_end",
        "caller:pc_connected",
        "callee:ontrack",
        "callee:pc_connected",
        "floor:media",
        "floor:negotiated",
        "floor:connected",
    ]
    lines = ["| setting | phase (first time reached) | p50 ms from t0 |", "|---|---|---:|"]
    for setting in SETTINGS:
        cs = result["calls"].get(setting) or []
        for name in names:
            v = mark_values(cs, name)
            if v:
                lines.append(f"| {setting} | {name} | {pct(v, 50):.1f} |")
    return "\n".join(lines)


def brief(r: dict[str, Any]) -> str:
    parts = [f"{side} {r[side]['rvfc']} ms" for side in ("caller", "callee") if side in r]
    return ", ".join(parts) + f", busy {r['busy_cpus']} CPUs (foreign {r.get('foreign_cpus')})"
