"""A chat flood cannot freeze the other side (issue 12, item 6): real JupyterLab, two pages
and two kernels in a real call; the attacker's page throws 1,000 chat lines of 4 KB at the
victim over the RTCDataChannel itself (past its own widget's limits) in a tight loop, while
the victim page is probed with ``page.evaluate("1")``.  The victim keeps answering, its
kernel's ``messages`` stays within the bound, the drops are counted and shown once, and
markup and non-ASCII arrive as text.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from nbcall._messages import CHAT_BURST, CHAT_RATE, MAX_CHAT_BYTES, MAX_CHAT_LINES
from nbcall._testing.lab import Lab, Notebook

pytestmark = pytest.mark.asyncio(loop_scope="session")

MAL, VIC = "mal-flood", "vic-flood"
LINES = 1000

# The attacker: its data channel straight from the page (window.__nbcall.phones[user].call).
_CHANNEL_OPEN = "(u) => window.__nbcall.phones[u]?.call?.channel?.readyState === 'open'"
_FLOOD = """([u, n]) => {
  const channel = window.__nbcall.phones[u].call.channel;
  const filler = 'A'.repeat(4000 - 7);
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    channel.send(JSON.stringify({ kind: 'chat', text: `${String(i).padStart(6, '0')} ${filler}`.slice(0, 4000),
                                  time: Date.now() / 1000, from: 'admin' }));
  }
  return { ms: performance.now() - start, buffered: channel.bufferedAmount };
}"""
# Main-thread tasks over 50 ms in the victim's page (the browser's own measure, free of
# the probe's round trip through Playwright and a busy machine).
_WATCH_LONG_TASKS = """(u) => {
  window.__longTasks = [];
  window.__channelMessages = 0;  // every message event on the victim's channel, to tell delivery from handling
  window.__nbcall.phones[u].call.channel.addEventListener('message', () => { window.__channelMessages += 1; });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push([Math.round(e.startTime), Math.round(e.duration)]);
  }).observe({ type: 'longtask' });
  return performance.now();
}"""
BYTES = "from nbcall._in_call import line_bytes\nprint(len(vic.messages), sum(map(line_bytes, vic.messages)))"
_SEND_RAW = "([u, data]) => window.__nbcall.phones[u].call.channel.send(data)"
# The victim's chat, found through the page-wide map of model contexts.
_VICTIM_CHAT = """(u) => {
  const ctx = [...window.__nbcallModels.values()].find((c) => c.phone.user === u);
  const chat = ctx.features.chat;
  return { lines: chat.lines.length, accepted: chat.receivedTotal,
           dropped: { ...chat.droppedTotal }, notice: chat.notice,
           shown: document.querySelectorAll(`.nbcall-root[data-user="${u}"] .nbcall-chat-line`).length };
}"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pages(lab: Lab) -> AsyncIterator[tuple[Notebook, Notebook]]:
    victim = await lab.open(
        lab.widgets_notebook("flood_victim", [VIC], extra=["got = []\nvic.on_chat(got.append)"]), users=[VIC]
    )
    attacker = await lab.open(lab.widgets_notebook("flood_attacker", [MAL]), users=[MAL])
    try:
        await attacker.wait_py(f"{VIC!r} in mal.peers", "True")
        assert await attacker.py(f"mal.call({VIC!r})") == ""
        await victim.wait_py("vic.state", "ringing")
        await victim.py("vic.accept()")
        await victim.wait_py("vic.state", "connected")
        await attacker.wait_py("mal.state", "connected")
        await attacker.wait_js(_CHANNEL_OPEN, MAL)
        yield victim, attacker
    finally:
        await attacker.close()
        await victim.close()


async def probe(page: Notebook, until: asyncio.Event, out: list[float], at: list[float] | None = None) -> None:
    """Time page.evaluate("1") round trips on the victim until ``until`` is set."""
    while not until.is_set():
        t0 = time.perf_counter()
        await page.page.evaluate("1")
        out.append((time.perf_counter() - t0) * 1000)
        if at is not None:
            at.append(t0)
        await asyncio.sleep(0.005)


async def test_a_flood_of_1000_lines_leaves_the_victim_responsive(pages: tuple[Notebook, Notebook]) -> None:
    victim, attacker = pages
    baseline: list[float] = []
    done = asyncio.Event()
    baseline_task = asyncio.create_task(probe(victim, done, baseline))
    await asyncio.sleep(1.0)
    done.set()
    await baseline_task

    during: list[float] = []
    at: list[float] = []
    done = asyncio.Event()
    probing = asyncio.create_task(probe(victim, done, during, at))
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    p0 = time.perf_counter()
    page_t0 = await victim.page.evaluate(_WATCH_LONG_TASKS, VIC)
    sent = await attacker.page.evaluate(_FLOOD, [MAL, LINES])
    # Until the victim has seen every line (kept or dropped), and a second more.
    seen = {}
    deadline = time.monotonic() + 180  # 4 MB over SCTP: ~9 s on a quiet 2-core machine, 90 s+ on a busy one
    total, moved = 0, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - moved < 60:
        seen = await victim.page.evaluate(_VICTIM_CHAT, VIC)
        now_total = seen["accepted"] + seen["dropped"]["flood"] + seen["dropped"]["malformed"]
        if now_total >= LINES:
            break
        if now_total != total:
            total, moved = now_total, time.monotonic()
        await asyncio.sleep(0.05)
    handled_s = time.monotonic() - t0
    channels = {
        "victim_events": await victim.page.evaluate("window.__channelMessages"),
        "attacker_buffered": await attacker.page.evaluate(
            "(u) => window.__nbcall.phones[u].call.channel.bufferedAmount", MAL
        ),
    }
    print("channels after the wait:", channels)
    await asyncio.sleep(1.0)
    done.set()
    await probing

    p50, worst = statistics.median(during), max(during)
    p95 = statistics.quantiles(during, n=20)[-1]
    print(
        f"\nflood: {LINES} x 4 KB sent in {sent['ms']:.0f} ms (buffered {sent['buffered']} B); victim saw all in "
        f"{handled_s:.2f} s; evaluate('1') baseline p50 {statistics.median(baseline):.1f} ms max {max(baseline):.1f}"
        f" ms; during the flood ({len(during)} probes) p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms;"
        f" victim chat {seen}"
    )
    slow = sorted(zip(during, at, strict=True), reverse=True)[:5]
    print("slowest probes (ms, s after the flood began):", [(round(ms), round(t - p0, 2)) for ms, t in slow])
    long_tasks = [
        (round((start - page_t0) / 1000, 2), ms) for start, ms in await victim.page.evaluate("window.__longTasks")
    ]
    print("victim page long tasks (s after the flood began, ms):", long_tasks)
    assert seen["accepted"] + seen["dropped"]["flood"] == LINES, seen
    # The burst, and what the rate refilled while the flood trickled in (SCTP takes seconds for 4 MB);
    # the history keeps what fits in its bounds (65 lines of 4 KB fill its 256 KiB).
    assert CHAT_BURST <= seen["accepted"] <= CHAT_BURST + CHAT_RATE * (handled_s + 1), seen
    assert seen["shown"] == seen["lines"] == min(seen["accepted"], MAX_CHAT_BYTES // (4000 + len(MAL))), seen
    assert re.fullmatch(rf"{seen['dropped']['flood']} messages from {MAL} were dropped \(flood\)", seen["notice"])
    notice = victim.page.locator(f'.nbcall-root[data-user="{VIC}"] .nbcall-chat-notice').first
    assert await notice.is_visible() and "dropped (flood)" in await notice.inner_text()
    # The page keeps answering.  The round trip also crosses Playwright, the browser process and
    # this test's own loop, which a machine busy with other tests stalls now and then (the
    # baseline's max shows it), so its tail is judged by p95; what the page itself did is
    # judged by its long tasks (before: one of ~29 s; a 4000-character line laid out whole
    # took ~50 ms, a burst of 20 of them a second).
    assert p50 < 100 and p95 < 100, (p50, p95, sorted(during)[-5:])
    assert max((ms for _, ms in long_tasks), default=0) < 500, long_tasks

    # The victim's kernel: a bounded history, one on_chat per kept line, the drops counted.
    kept = seen["accepted"]
    await victim.wait_py("len(got)", str(kept))
    await victim.wait_py("vic.chat_dropped['flood']", str(LINES - kept))
    count, size = map(int, (await victim.py(BYTES)).split())
    print(f"victim kernel: len(vic.messages) = {count} ({size} B), on_chat calls = {kept}, dropped = {LINES - kept}")
    assert count == seen["lines"] <= MAX_CHAT_LINES and size <= MAX_CHAT_BYTES
    # The sender is the call's peer, whatever the message said.
    assert (await victim.py("print({m['from'] for m in vic.messages})")).strip() == repr({MAL})


async def test_markup_and_non_ascii_arrive_as_text(pages: tuple[Notebook, Notebook]) -> None:
    victim, attacker = pages
    await asyncio.sleep(1.0)  # the bucket refills after the flood
    text = "<img src=x onerror=alert(1)> <b>bold</b> 你好 👋 — ça va?"
    raw = '{"kind": "chat", "text": ' + json.dumps(text) + ', "time": 1e400, "from": "admin"}'  # 1e400: Infinity
    await attacker.page.evaluate(_SEND_RAW, [MAL, raw])
    await attacker.page.evaluate(_SEND_RAW, [MAL, "not json at all"])
    await victim.wait_py("vic.messages[-1]['text']", text)
    log = victim.page.locator(f'.nbcall-root[data-user="{VIC}"] .nbcall-chat-log')
    lines = await log.locator(".nbcall-chat-text").all_text_contents()
    assert lines[-1] == text
    assert await log.locator("img, b:not(.nbcall-chat-from)").count() == 0, "markup became elements"
    # An impossible time is replaced by the receiver's clock; the malformed line is counted.
    assert (await victim.py("import time; print(abs(vic.messages[-1]['time'] - time.time()) < 60)")).strip() == "True"
    seen = await victim.page.evaluate(_VICTIM_CHAT, VIC)
    assert seen["dropped"]["malformed"] >= 1, seen
    assert "malformed message" in seen["notice"], seen
