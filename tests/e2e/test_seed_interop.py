"""The seed's own client code (a plain page) calls a CallWidget, and a CallWidget calls it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from playwright.async_api import Page

from nbcall._testing.lab import Lab, Notebook

pytestmark = pytest.mark.asyncio(loop_scope="session")

WIDGET = "小文111"  # the seed's own names


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def wen(lab: Lab) -> AsyncIterator[Notebook]:
    path = lab.widgets_notebook("seed_interop", {"wen": WIDGET})
    nb = await lab.open(path, users=[WIDGET])
    yield nb
    await nb.close()


async def open_seed_page(lab: Lab, seed_page_url: str, me: str) -> Page:
    context = await lab.browser.new_context()
    page = await context.new_page()
    await page.goto(f"{seed_page_url}?{urlencode({'ws': lab.signaling_url, 'me': me, 'peer': WIDGET})}")
    return page


async def seed_frames_rising(page: Page, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    first = await page.evaluate("framesDecoded()")
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = int(await page.evaluate("framesDecoded()"))
        if first > 0 and now >= first + 5:
            width = await page.evaluate("document.getElementById('localVideo').videoWidth")
            assert width > 0, width  # 640 from the fake camera, or less while bandwidth ramps up
            return now
        first = first or now
    raise AssertionError(f"the seed page decodes no video (frames {first})")


async def test_seed_client_calls_the_widget(lab: Lab, wen: Notebook, seed_page_url: str) -> None:
    seed_name = "小文222"
    page = await open_seed_page(lab, seed_page_url, seed_name)
    try:
        await wen.wait_py(f"{seed_name!r} in wen.peers", "True")
        await page.evaluate("openCamera()")  # the seed's "call" button: a plain offer, no invite
        await wen.wait_py("wen.state, wen.incoming", f"('ringing', {seed_name!r})")
        await wen.py("wen.accept()")
        await wen.wait_py("wen.state, wen.peer", f"('connected', {seed_name!r})")
        await wen.assert_video_flows(WIDGET)  # the seed's camera reaches the widget
        await seed_frames_rising(page)  # and the widget's camera reaches the seed page
        await wen.py("wen.hangup()")
        await wen.wait_py("wen.state, wen.end_reason", "('ended', 'hangup')")
    finally:
        await page.context.close()


async def test_widget_calls_a_seed_client(lab: Lab, wen: Notebook, seed_page_url: str) -> None:
    seed_name = "小文333"
    page = await open_seed_page(lab, seed_page_url, seed_name)
    try:
        await wen.wait_py(f"{seed_name!r} in wen.peers", "True")
        await wen.py(f"wen.call({seed_name!r})")  # invite -> server accepts for the seed -> offer
        await wen.wait_py("wen.state, wen.peer", f"('connected', {seed_name!r})")
        assert await page.evaluate("localPeer.connectionState") == "connected"
        await seed_frames_rising(page)
        # The seed page answered receive-only: the widget says so, in the page and in Python.
        await wen.wait_py("wen.remote_video", "False")
        off = wen.page.locator(f'.nbcall-root[data-user="{WIDGET}"] .nbcall-remote-off')
        await off.wait_for(state="visible")
        assert await off.inner_text() == "the other side sends no video"
        # Its user presses its call button: a new offer renegotiates the same call, no new ring.
        await page.evaluate("openCamera()")
        await wen.wait_py("wen.remote_video, wen.state", "(True, 'connected')")
        await wen.assert_video_flows(WIDGET)
        await off.wait_for(state="hidden")
        # The seed page's connection closes with the page: the widget ends within seconds.
        t0 = time.monotonic()
        await page.context.close()
        await wen.wait_py("wen.state, wen.end_reason", "('ended', 'disconnected')", timeout=10)
        print(f"seed page closed -> widget ended in {time.monotonic() - t0:.2f} s")
    finally:
        await page.context.close()
