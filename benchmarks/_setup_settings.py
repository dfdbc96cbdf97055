"""The call set-up benchmark's settings outside JupyterLab: the bundle in plain pages, the seed, the floor.

Each setting sets itself up once (pages, widgets), then measures one call per ``one_call()``:
from t0 to the first remote video frame, with the phase marks of the probe (_setup_probes).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page

from ._setup_measure import Load, frame_times, loadavg, log, long_tasks, nbcall_result, rel, two_page_result
from ._setup_probes import (
    ACCEPT_JS,
    ARM_NBCALL_JS,
    ARM_SIDE_JS,
    IDLE_BOTH,
    PROBE_JS,
    RESULT_JS,
    SIDE_RESULT_JS,
    place_call_js,
)


class Setting:
    """One way of placing a call: ``setup()`` once, ``one_call()`` per measured call, ``teardown()``."""

    name = ""

    async def setup(self) -> None: ...

    async def one_call(self) -> dict[str, Any]:
        raise NotImplementedError

    async def teardown(self) -> None: ...


async def wait_for(page: Page, predicate: str, arg: Any = None, timeout: float = 20.0) -> None:
    """Wait until a synchronous JS predicate holds in ``page`` (polled every 20 ms)."""
    await page.wait_for_function(predicate, arg=arg, timeout=timeout * 1000, polling=20)


class PlainSetting(Setting):
    """The bundle in a plain page, two widgets, one real nbcall server."""

    name = "plain"

    def __init__(self, browser: Browser, pages: str, server_url: str, args: argparse.Namespace) -> None:
        self.browser, self.pages, self.server_url, self.args = browser, pages, server_url, args
        tag = secrets.token_hex(3)
        self.alice, self.bob = f"alice-p{tag}", f"bob-p{tag}"
        self.context: BrowserContext | None = None
        self.page: Page | None = None
        self.load: dict[str, Any] = {}

    async def setup(self) -> None:
        self.context = await self.browser.new_context(viewport={"width": 1000, "height": 1200})
        await self.context.add_init_script(PROBE_JS)
        self.page = page = await self.context.new_page()
        page.on("pageerror", lambda exc: log(f"[plain] page error: {exc}"))
        url = f"{self.pages}/call_harness.html?server={self.server_url}&alice={self.alice}&bob={self.bob}"
        t = time.monotonic()
        await page.goto(url)
        await wait_for(page, "() => window.harness || window.harnessError")
        err = await page.evaluate("() => window.harnessError")
        if err:
            raise RuntimeError(f"harness: {err}")
        await wait_for(
            page,
            "([a, b]) => { const p = window.__nbcall.phones; return p[a]?.state === 'idle' && p[b]?.state === 'idle'"
            " && p[a].peers.keyOf(b) && p[b].peers.keyOf(a); }",
            [self.alice, self.bob],
        )
        self.load = dict(await page.evaluate("() => ({ importMs: harness.importMs, startMs: harness.startMs })"))
        self.load["goto_to_idle_ms"] = round((time.monotonic() - t) * 1000, 1)
        self.load["transport"] = await page.evaluate("(a) => window.__nbcall.phones[a].transport", self.alice)
        # bob answers as soon as his phone rings, with the message CallWidget.accept() sends.
        await page.evaluate(ACCEPT_JS, self.bob)

    async def one_call(self) -> dict[str, Any]:
        page = self.page
        assert page is not None
        args = self.args
        load = Load()
        t0 = await page.evaluate(
            place_call_js(ARM_NBCALL_JS, "[a, b, pollMs, timeoutMs]"),
            [self.alice, self.bob, args.poll_ms, args.timeout * 1000],
        )
        res = await page.evaluate(RESULT_JS)
        busy = load.done()
        out = nbcall_result(res, t0, busy)
        await page.evaluate("() => harness.models.alice.custom({ kind: 'hangup' })")
        await wait_for(page, IDLE_BOTH, [self.alice, self.bob])
        return out

    async def teardown(self) -> None:
        if self.context:
            await self.context.close()


class TwoPageSetting(Setting):
    """The bundle in two plain pages (two browser contexts, one widget each), like the seed's two pages."""

    name = "plain2p"

    def __init__(self, browser: Browser, pages: str, server_url: str, args: argparse.Namespace) -> None:
        self.browser, self.pages, self.server_url, self.args = browser, pages, server_url, args
        tag = secrets.token_hex(3)
        self.alice, self.bob = f"alice-q{tag}", f"bob-q{tag}"
        self.contexts: list[BrowserContext] = []
        self.pa: Page | None = None
        self.pb: Page | None = None

    async def setup(self) -> None:
        pages = []
        for role, user in (("alice", self.alice), ("bob", self.bob)):
            ctx = await self.browser.new_context(viewport={"width": 1000, "height": 1000})
            await ctx.add_init_script(PROBE_JS)
            self.contexts.append(ctx)
            page = await ctx.new_page()
            await page.goto(f"{self.pages}/call_harness.html?server={self.server_url}&{role}={user}")
            pages.append(page)
        self.pa, self.pb = pages
        for page, me, other in ((self.pa, self.alice, self.bob), (self.pb, self.bob, self.alice)):
            await wait_for(
                page,
                "([a, b]) => { const p = window.__nbcall?.phones;"
                " return p?.[a]?.state === 'idle' && p[a].peers.keyOf(b); }",
                [me, other],
            )
        await self.pb.evaluate(ACCEPT_JS, self.bob)

    async def one_call(self) -> dict[str, Any]:
        pa, pb = self.pa, self.pb
        assert pa is not None and pb is not None
        a = self.args
        await pb.evaluate(ARM_SIDE_JS, ["bob", self.bob, a.poll_ms, a.timeout * 1000])
        load = Load()
        t0 = await pa.evaluate(
            place_call_js(ARM_SIDE_JS, "['alice', a, pollMs, timeoutMs]"),
            [self.alice, self.bob, a.poll_ms, a.timeout * 1000],
        )
        ra = await pa.evaluate(SIDE_RESULT_JS)
        rb = await pb.evaluate(SIDE_RESULT_JS)
        busy = load.done()
        out = two_page_result(ra, rb, t0, busy)
        await pa.evaluate("() => harness.models.alice.custom({ kind: 'hangup' })")
        for page, user in ((pa, self.alice), (pb, self.bob)):
            await wait_for(
                page,
                "(u) => ['ended', 'idle'].includes(window.__nbcall.phones[u].state) && !window.__nbcall.phones[u].pc",
                user,
            )
        return out

    async def teardown(self) -> None:
        for ctx in self.contexts:
            await ctx.close()


class SeedSetting(Setting):
    """The seed's client page calling the seed's client page through the seed's node server.

    t0 is its user's click on the caller page's call button; the end is the callee's first
    decoded frame (the seed's callee answers without media: only it receives video).
    """

    name = "seed"

    def __init__(self, browser: Browser, pages: str, seed_url: str, args: argparse.Namespace) -> None:
        self.browser, self.pages, self.seed_url, self.args = browser, pages, seed_url, args
        self.contexts: list[BrowserContext] = []
        self.n = 0
        self.tag = secrets.token_hex(3)

    async def setup(self) -> None:
        for _ in range(2):
            ctx = await self.browser.new_context(viewport={"width": 800, "height": 600})
            await ctx.add_init_script(PROBE_JS)
            self.contexts.append(ctx)

    async def one_call(self) -> dict[str, Any]:
        # The seed's page has one RTCPeerConnection for its lifetime and no hang-up: two fresh
        # pages (fresh names) per call.
        self.n += 1
        a_name, b_name = f"seedA{self.tag}{self.n}", f"seedB{self.tag}{self.n}"
        callee = await self.contexts[1].new_page()
        caller = await self.contexts[0].new_page()
        try:
            await callee.goto(f"{self.pages}/seed_page.html?ws={self.seed_url}&me={b_name}&peer={a_name}")
            await caller.goto(f"{self.pages}/seed_page.html?ws={self.seed_url}&me={a_name}&peer={b_name}")
            for page in (callee, caller):
                await wait_for(page, "() => ws.readyState === 1")
            await asyncio.sleep(0.1)  # both registrations processed by the server
            await callee.evaluate(
                """([pollMs, timeoutMs]) => { const p = window.__probe; p.reset(); p.role = 'callee';
                   p.hookPc('callee', localPeer);
                   p.pending = p.firstFrame('callee', () => document.getElementById('localVideo').srcObject,
                                            () => localPeer, pollMs, timeoutMs); }""",
                [self.args.poll_ms, self.args.timeout * 1000],
            )
            # t0 is the seed user's click on the page's call button (its onclick is openCamera):
            # the click event's own timeStamp, read by a capture listener that runs first.
            await caller.evaluate(
                """() => { const p = window.__probe; p.reset(); p.role = 'caller'; p.hookPc('caller', localPeer);
                   p.clickAt = null;
                   document.getElementById('openCamera').addEventListener('click', (e) => {
                     p.clickAt = e.timeStamp; p.markAt('t0', e.timeStamp); }, { capture: true, once: true }); }"""
            )
            load = Load()
            await caller.click("#openCamera")
            t0 = await caller.evaluate("() => performance.timeOrigin + window.__probe.clickAt")
            res = await callee.evaluate(SIDE_RESULT_JS)
            busy = load.done()
            caller_marks = await caller.evaluate("() => ({ marks: __probe.marks, origin: performance.timeOrigin })")
            marks = {
                f"caller:{k}" if ":" not in k else k: caller_marks["origin"] + v - t0
                for k, v in caller_marks["marks"].items()
            }
            marks.update({k if ":" in k else f"callee:{k}": res["origin"] + v - t0 for k, v in res["marks"].items()})
            return {
                "long_tasks": long_tasks(res, t0 - res["origin"]),
                "callee": frame_times(res["frames"], res["origin"], t0),
                "marks": {k: round(v, 1) for k, v in sorted(marks.items(), key=lambda kv: kv[1])},
                **busy,
                "loadavg": loadavg(),
            }
        finally:
            await caller.close()
            await callee.close()

    async def teardown(self) -> None:
        for ctx in self.contexts:
            await ctx.close()


class FloorSetting(Setting):
    """Two RTCPeerConnections in one page: getUserMedia, offer/answer and candidates by function call."""

    name = "floor"

    def __init__(self, browser: Browser, pages: str, args: argparse.Namespace) -> None:
        self.browser, self.pages, self.args = browser, pages, args
        self.context: BrowserContext | None = None
        self.page: Page | None = None

    async def setup(self) -> None:
        self.context = await self.browser.new_context(viewport={"width": 800, "height": 600})
        await self.context.add_init_script(PROBE_JS)
        self.page = await self.context.new_page()
        await self.page.goto(f"{self.pages}/call_harness.html?mode=floor")
        await wait_for(self.page, "() => typeof window.floorCall === 'function'")

    async def one_call(self) -> dict[str, Any]:
        page = self.page
        assert page is not None
        load = Load()
        t0 = await page.evaluate(
            """([pollMs, timeoutMs]) => {
              const p = window.__probe; p.reset();
              p.pending = p.firstFrame('b', () => window.floor && window.floor.remote(),
                                       () => window.floor && window.floor.b, pollMs, timeoutMs);
              const t0 = p.epoch(); p.mark('t0');
              window.floorCall().then((m) => p.hookPc('callee', window.floor.b));
              return t0;
            }""",
            [self.args.poll_ms, self.args.timeout * 1000],
        )
        res = await page.evaluate(
            "async () => ({ frames: await __probe.pending, marks: { ...__probe.marks, ...Object.fromEntries("
            "Object.entries(floor.marks).map(([k, v]) => ['floor:' + k, v])) }, origin: performance.timeOrigin })"
        )
        busy = load.done()
        await page.evaluate("() => floorHangup()")
        return {
            "callee": frame_times(res["frames"], res["origin"], t0),
            "marks": rel(res["marks"], t0 - res["origin"]),
            **busy,
            "loadavg": loadavg(),
        }

    async def teardown(self) -> None:
        if self.context:
            await self.context.close()
