"""nbcall.Peer on loopback: frames into Python, the transform round trip, CPU; against browser <-> browser.

    .venv/bin/python -m benchmarks.peer [--seconds 8] [--warmup 3] [--json benchmarks/results/peer.json]

A page in headless Chromium draws 30 fps of known colours on a canvas, each frame stamped
with ``Date.now()`` in blocks (nbcall.peer._patterns), and calls the seed's way (plain
offer) through a real nbcall server:

- **browser -> Python**: a Peer reads the stamp in every frame its ``on_frame`` callback
  gets: rate at the callback and latency (callback time minus stamp, one clock);
- **browser -> browser**: the same page calls a second page, which reads the stamp of every
  decoded frame (``requestVideoFrameCallback`` + canvas): the same numbers for the browser;
- **transform round trip**: a Peer with ``video_transform`` sends each frame back; the first
  page reads the stamps of what returns (p50/p95).

CPU is that of this Python process (the Peer: decoding, conversion, callbacks, encoding)
and of all Chromium processes, over the measured seconds, in % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from playwright.async_api import Browser, Page, async_playwright

from nbcall._testing import chromium
from nbcall._testing.processes import free_port, nbcall_server_cmd, serving
from nbcall._testing.sandbox import sandbox_env
from nbcall.peer import Frame, Peer
from nbcall.peer._patterns import read_stamp

from ._peer_page import Cpu, chromium_pids, serve_page

SIZES = [(640, 480), (1280, 720)]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


async def open_page(browser: Browser, base: str, ws: str, me: str, peer: str, send: str = "") -> Page:
    page = await (await browser.new_context()).new_page()
    await page.goto(base + "?" + urlencode({"ws": ws, "me": me, "peer": peer, "send": send}))
    await page.wait_for_function("() => true")
    await asyncio.sleep(0.5)  # registered
    return page


async def measure(args: argparse.Namespace, pids: list[int], window: Any) -> dict[str, Any]:
    """Warm up, then run ``window()`` (returns samples) over the measured seconds with CPU readings."""
    await asyncio.sleep(args.warmup)
    python, browser = Cpu([__import__("os").getpid()]), Cpu(pids)
    python.start()
    browser.start()
    t0 = time.monotonic()
    before = await window(None)
    await asyncio.sleep(args.seconds)
    after = await window(before)
    elapsed = time.monotonic() - t0
    samples = after["latencies"]
    return {
        "fps": round(after["count"] / elapsed, 1),
        "latency_p50_ms": pct(samples, 0.5),
        "latency_p95_ms": pct(samples, 0.95),
        "size": after.get("size"),
        "python_cpu_pct": python.stop(),
        "chromium_cpu_pct": browser.stop(),
        **after.get("extra", {}),
    }


def page_window(page: Page) -> Any:
    async def window(before: Any) -> dict[str, Any]:
        n, size = await page.evaluate("() => [window.samples.length, window.size]")
        if before is None:
            return {"start": n}
        lat = await page.evaluate("(i) => window.samples.slice(i).map((s) => s[1])", before["start"])
        return {"count": n - before["start"], "latencies": [x for x in lat if 0 <= x < 10_000], "size": size}

    return window


async def into_python(args: argparse.Namespace, browser: Browser, base: str, ws: str, w: int, h: int) -> dict[str, Any]:
    got: list[tuple[float, int]] = []
    lock = __import__("threading").Lock()

    def on_frame(frame: Frame) -> None:
        stamp = read_stamp(frame.array)
        now = int(time.time() * 1000) % 2**32
        with lock:
            got.append(((now - stamp) % 2**32, frame.width))

    peer = await asyncio.to_thread(Peer, f"bench-py-{w}", ws)
    peer.on_incoming(lambda caller: peer.accept())
    peer.on_frame(on_frame)
    page = await open_page(browser, base, ws, f"bench-snd-{w}", peer.name, f"{w}x{h}")
    await page.evaluate("start()")

    async def window(before: Any) -> dict[str, Any]:
        with lock:
            n = len(got)
            lat = [float(x) for x, _ in got[before["start"] :]] if before else []
        if before is None:
            return {"start": n, "skipped": peer.stats["frames_skipped"]}
        stats = peer.stats
        return {
            "count": n - before["start"], "latencies": [x for x in lat if x < 10_000],
            "size": [stats["width"], stats["height"]],
            "extra": {"skipped": stats["frames_skipped"] - before["skipped"], "received_fps": stats["fps"]},
        }  # fmt: skip

    try:
        return await measure(args, chromium_pids(), window)
    finally:
        await page.context.close()
        await asyncio.to_thread(peer.close)


async def browser_to_browser(
    args: argparse.Namespace, browser: Browser, base: str, ws: str, w: int, h: int
) -> dict[str, Any]:
    receiver = await open_page(browser, base, ws, f"bench-rcv-{w}", f"bench-snd2-{w}")
    sender = await open_page(browser, base, ws, f"bench-snd2-{w}", f"bench-rcv-{w}", f"{w}x{h}")
    await sender.evaluate("start()")
    try:
        return await measure(args, chromium_pids(), page_window(receiver))
    finally:
        await sender.context.close()
        await receiver.context.close()


async def round_trip(args: argparse.Namespace, browser: Browser, base: str, ws: str, w: int, h: int) -> dict[str, Any]:
    def effect(image: Any) -> Any:
        out = image.copy()
        out[h // 2 :] = 255 - out[h // 2 :]  # an effect below the stamp rows
        return out

    peer = await asyncio.to_thread(Peer, f"bench-echo-{w}", ws, video_transform=effect)
    peer.on_incoming(lambda caller: peer.accept())
    page = await open_page(browser, base, ws, f"bench-snd3-{w}", peer.name, f"{w}x{h}")
    await page.evaluate("start()")
    try:
        return await measure(args, chromium_pids(), page_window(page))
    finally:
        await page.context.close()
        await asyncio.to_thread(peer.close)


def table(results: dict[str, Any]) -> str:
    rows = [
        "| size | path | fps | latency p50 / p95 (ms) | Python CPU % | Chromium CPU % | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, parts in results["sizes"].items():
        for path, r in parts.items():
            note = f"skipped {r['skipped']}" if "skipped" in r else ""
            note += f" received {r['size'][0]}x{r['size'][1]}" if r.get("size") else ""
            rows.append(
                f"| {size} | {path} | {r['fps']} | {r['latency_p50_ms']} / {r['latency_p95_ms']} | "
                f"{r['python_cpu_pct']} | {r['chromium_cpu_pct']} | {note.strip()} |"
            )
    return "\n".join(rows)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = sandbox_env(Path(tempfile.mkdtemp(prefix="nbcall-peer-bench-")))
    httpd, base = serve_page()
    port = free_port()
    results: dict[str, Any] = {"seconds": args.seconds, "warmup": args.warmup, "sizes": {}}
    try:
        with serving(nbcall_server_cmd(port, "--log-level", "WARNING"), port, stdout=subprocess.DEVNULL, env=env):
            ws = f"ws://127.0.0.1:{port}"
            async with async_playwright() as pw:
                browser = await chromium.launch(pw, env, cameras=1)
                try:
                    for w, h in SIZES:
                        parts: dict[str, Any] = {}
                        parts["browser -> Python"] = await into_python(args, browser, base, ws, w, h)
                        parts["browser -> browser"] = await browser_to_browser(args, browser, base, ws, w, h)
                        if w == 640 or args.round_trip_all:
                            parts["browser -> Python -> browser (round trip)"] = await round_trip(
                                args, browser, base, ws, w, h
                            )
                        results["sizes"][f"{w}x{h}"] = parts
                        print(json.dumps({f"{w}x{h}": parts}), file=sys.stderr)
                finally:
                    await browser.close()
    finally:
        httpd.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--round-trip-all", action="store_true", help="also the round trip at 1280x720")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
