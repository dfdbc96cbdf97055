"""One room member per page (benchmarks/rooms_harness.html): the static server and the page driver."""

from __future__ import annotations

import asyncio
import json
import secrets
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anywidget
from playwright.async_api import Browser, BrowserContext, Page

from nbcall.widget import CallWidget

from ._rooms_trace import TRACE_SCRIPT, events_since
from ._static import serve_files

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FILES = {
    "/rooms_harness.html": HERE / "rooms_harness.html",
    "/widget.js": ROOT / "nbcall" / "static" / "widget.js",
    "/widget.css": ROOT / "nbcall" / "static" / "widget.css",
    "/fake_model.js": ROOT / "js" / "test" / "fakes" / "model.js",
}


def serve_pages() -> tuple[ThreadingHTTPServer, str]:
    """The harness, the built bundle and the fake model, on 127.0.0.1."""
    return serve_files(FILES)


def widget_attrs(user: str, server: str, room_video: dict[str, int]) -> dict[str, Any]:
    """The model's attributes: CallWidget's own synced traits at their defaults, then this member's."""
    base = set(anywidget.AnyWidget.class_traits(sync=True))
    attrs = {k: t.default() for k, t in CallWidget.class_traits(sync=True).items() if k not in base}
    credential = secrets.token_urlsafe(18)
    attrs.update(user=user, server=server, connect_via="direct", room_video=room_video, _credential=credential)
    return attrs


class Member:
    """One page, one CallWidget, one room member (``window.bench`` of the harness)."""

    def __init__(
        self, browser: Browser, base: str, user: str, server: str, room_video: dict[str, int], *, trace: bool = False
    ) -> None:
        self.browser, self.base, self.user, self.trace = browser, base, user, trace
        self.attrs = widget_attrs(user, server, room_video)
        self.context: BrowserContext | None = None
        self.page: Page | None = None
        self.key = ""

    async def open(self, viewport: tuple[int, int], timeout: float = 30.0) -> None:
        self.context = await self.browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        await self.context.add_init_script(f"window.__benchAttrs = {json.dumps(self.attrs)};")
        if self.trace:
            await self.context.add_init_script(TRACE_SCRIPT)
        self.page = await self.context.new_page()
        await self.page.goto(f"{self.base}/rooms_harness.html")
        await self.page.wait_for_function("() => window.bench && window.bench.ready()", timeout=timeout * 1000)
        self.key = await self.page.evaluate("() => bench.key()")

    @property
    def p(self) -> Page:
        assert self.page is not None, "open() first"
        return self.page

    async def join(self, room: str, expect: int) -> float:
        """RoomClient.join in the page (watching for ``expect`` members' first frames): epoch ms of the call."""
        got = await self.p.evaluate("([room, expect]) => bench.join(room, expect)", [room, expect])
        if got["why"]:
            raise RuntimeError(f"{self.user} could not join {room}: {got['why']}")
        return float(got["t"])

    async def arm(self, expect: int) -> None:
        await self.p.evaluate("(n) => bench.arm(n)", expect)

    async def frames(self) -> dict[str, Any]:
        """{first: {member key: epoch ms of its first frame here}, done} once the watch ends."""
        result: dict[str, Any] = await self.p.evaluate("() => bench.frames()")
        return result

    async def events(self, t0: float) -> list[tuple[float, str, str]]:
        """With ``trace``: what the page recorded from epoch ms ``t0`` on (see _rooms_trace)."""
        trace = await self.p.evaluate("() => window.__trace || []")
        return events_since(trace, t0)

    async def leave(self) -> None:
        await self.p.evaluate("() => bench.leave()")

    async def state(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.p.evaluate("() => bench.state()")
        return result

    async def sample(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.p.evaluate("() => bench.sample()")
        return result

    async def wait_state(self, check: str, arg: Any = None, timeout: float = 20.0) -> None:
        """Until ``check`` (a JS function of bench.state() and ``arg``) is true."""
        await self.p.wait_for_function(f"(arg) => ({check})(bench.state(), arg)", arg=arg, timeout=timeout * 1000)

    async def close(self) -> None:
        if self.context is not None:
            await self.context.close()


async def gather(*jobs: Any) -> list[Any]:
    return list(await asyncio.gather(*jobs))
