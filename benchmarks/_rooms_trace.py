"""``--trace``: where a timed join's time goes, from events each page records about itself.

``rooms_trace.js`` (an init script) wraps the page's WebSocket, RTCPeerConnection and
getUserMedia and records each event on the page's epoch clock (one machine: the pages'
clocks agree); after each timed join the benchmark prints the newcomer's events and every
other member's from the moment of the join on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TRACE_SCRIPT = (Path(__file__).resolve().parent / "rooms_trace.js").read_text()


def events_since(trace: list[list[Any]], t0: float) -> list[tuple[float, str, str]]:
    """The page's events from epoch ms ``t0`` on, as (ms after t0, what, detail)."""
    return [(round(t - t0, 1), what, detail) for t, what, detail in trace if t >= t0 - 1]


def render(label: str, events: list[tuple[float, str, str]]) -> str:
    lines = [f"--- {label}"]
    lines += [f"{ms:8.1f}  {what:<14} {detail}" for ms, what, detail in events]
    return "\n".join(lines)
