"""Calls that connect beyond localhost (issue #5): transports, TURN, Notebook 7.

The kernel transport is proven by taking both the same-origin endpoint and the direct
websocket away from the page; TURN by a relay-only call through a real coturn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Route, WebSocketRoute

from nbcall._testing.lab import Lab, Notebook, write_notebook
from nbcall.signaling import SignalingClient

pytestmark = pytest.mark.asyncio(loop_scope="session")

SELECTED_PAIR = """async (u) => {
  const pc = window.__nbcall.phones[u].pc;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      pair = [stats.get(s.localCandidateId).candidateType, stats.get(s.remoteCandidateId).candidateType];
    }
  });
  return pair;
}"""


def notebook(lab: Lab, name: str, users: dict[str, str], setup: str = "", widget_args: str = "") -> str:
    cells = ["import nbcall\nSERVER = " + json.dumps(lab.signaling_url) + "\n" + setup]
    for var, user in users.items():
        cells.append(f"{var} = nbcall.CallWidget({user!r}, server=SERVER{widget_args})\n{var}")
    path = f"{name}.ipynb"
    write_notebook(lab.root / path, cells)
    return path


async def screenshot(nb: Notebook, name: str, user: str | None = None) -> None:
    """For a person to look at, when NBCALL_SCREENSHOTS names a folder."""
    folder = os.environ.get("NBCALL_SCREENSHOTS")
    if not folder:
        return
    target = nb.page.locator(f'.nbcall-root[data-user="{user}"]') if user else nb.page
    await target.screenshot(path=os.path.join(folder, f"{name}.png"))


async def finish(nb: Notebook) -> None:
    """Close the notebook's widgets (names registered through the kernel leave the server) and its page."""
    await nb.py("[w.close() for w in list(globals().values()) if isinstance(w, nbcall.CallWidget)]")
    await nb.close()


async def call_and_connect(nb: Notebook, caller: str, callee: str, caller_user: str, callee_user: str) -> None:
    await nb.call_and_connect(caller, callee, callee_user, timeout=30)
    await nb.assert_video_flows(callee_user)
    await nb.assert_video_flows(caller_user)


@pytest_asyncio.fixture(loop_scope="session")
async def tidy() -> AsyncIterator[list[Notebook]]:
    """Notebooks a test opened: their widgets are closed and pages shut, pass or fail."""
    books: list[Notebook] = []
    yield books
    for nb in books:
        with contextlib.suppress(Exception):
            await finish(nb)


@pytest_asyncio.fixture(loop_scope="session")
async def blocked_page(lab: Lab) -> AsyncIterator[Any]:
    """A browser context that can reach neither the Jupyter endpoint nor the signaling port."""
    context = await lab.browser.new_context(viewport={"width": 1200, "height": 1400})
    port = lab.signaling_url.rsplit(":", 1)[1]
    refused: list[str] = []

    async def no_endpoint(route: Route) -> None:
        refused.append(route.request.url)
        await route.fulfill(status=404, body="not here")

    async def no_socket(ws: WebSocketRoute) -> None:
        refused.append(ws.url)
        await ws.close(code=1011, reason="unreachable (blocked by the test)")

    await context.route(re.compile(r".*/nbcall/info.*"), no_endpoint)
    await context.route_web_socket(re.compile(rf"^ws://127\.0\.0\.1:{port}.*"), no_socket)
    context.refused = refused  # type: ignore[attr-defined]
    yield context
    await context.close()


async def test_kernel_transport_carries_the_call_when_the_browser_cannot_reach_the_server(
    tidy: list[Notebook], lab: Lab, blocked_page: Any
) -> None:
    path = notebook(lab, "relayed", {"rho": "rho-r", "sam": "sam-r"})
    nb = await lab.open(path, users=["rho-r", "sam-r"], context=blocked_page)
    tidy.append(nb)
    assert any("nbcall/info" in u for u in blocked_page.refused)
    assert any(u.startswith("ws://") for u in blocked_page.refused)
    await nb.wait_py("(rho.transport, sam.transport)", "('kernel', 'kernel')")
    shown = await nb.page.locator('.nbcall-root[data-user="rho-r"] .nbcall-transport').inner_text()
    assert shown == "via kernel"
    await call_and_connect(nb, "rho", "sam", "rho-r", "sam-r")
    await screenshot(nb, "relayed-call")
    await nb.py("rho.hangup()")
    await nb.wait_py("(rho.state, sam.state)", "('ended', 'ended')")
    # The kernel holds the page's sockets; closing the page must still take the names offline.
    await nb.page.close(run_before_unload=True)
    async with SignalingClient(lab.signaling_url, "observer-r") as observer:
        for _ in range(50):
            await observer.send({"type": "list"})
            online = (await observer.expect("users"))["users"]
            if not {"rho-r", "sam-r"} & set(online):
                break
            await asyncio.sleep(0.1)
        assert not {"rho-r", "sam-r"} & set(online), online


async def test_same_origin_endpoint_is_preferred_in_lab(tidy: list[Notebook], lab: Lab) -> None:
    path = notebook(lab, "sameorigin", {"tia": "tia-s", "uli": "uli-s"})
    nb = await lab.open(path, users=["tia-s", "uli-s"])
    tidy.append(nb)
    await nb.wait_py("(tia.transport, uli.transport)", "('same-origin', 'same-origin')")
    url = await nb.page.evaluate("() => window.__nbcall.phones['tia-s'].signaling.ws.url")
    assert "/nbcall/signal?upstream=" in url
    await screenshot(nb, "idle")
    await nb.wait_py("'uli-s' in tia.peers", "True")
    await nb.py("tia.call('uli-s')")
    await nb.wait_py("uli.state", "ringing")
    await screenshot(nb, "ringing", "uli-s")
    await nb.py("uli.accept()")
    await nb.wait_py("(tia.state, uli.state)", "('connected', 'connected')", timeout=30)
    await nb.assert_video_flows("tia-s")
    await nb.assert_video_flows("uli-s")
    await nb.py("tia.hangup()")
    await nb.wait_py("(tia.state, uli.state)", "('ended', 'ended')")


async def test_forced_direct_transport(tidy: list[Notebook], lab: Lab) -> None:
    path = notebook(lab, "direct", {"val": "val-d", "wyn": "wyn-d"}, widget_args=", connect_via='direct'")
    nb = await lab.open(path, users=["val-d", "wyn-d"])
    tidy.append(nb)
    await nb.wait_py("(val.transport, wyn.transport)", "('direct', 'direct')")


async def test_relay_only_call_through_coturn_with_minted_credentials(
    tidy: list[Notebook], lab: Lab, coturn: dict[str, Any]
) -> None:
    setup = f"ICE = [nbcall.turn_credentials({str(coturn['secret'])!r}, {str(coturn['url'])!r}, user='nb', ttl=600)]"
    args = ", ice_servers=ICE, ice_transport_policy='relay'"
    path = notebook(lab, "turn", {"xia": "xia-t", "yoy": "yoy-t"}, setup=setup, widget_args=args)
    nb = await lab.open(path, users=["xia-t", "yoy-t"])
    tidy.append(nb)
    await call_and_connect(nb, "xia", "yoy", "xia-t", "yoy-t")
    for user in ("xia-t", "yoy-t"):
        assert await nb.page.evaluate(SELECTED_PAIR, user) == ["relay", "relay"]
    await nb.py("xia.hangup()")


async def test_wrong_turn_credentials_are_explained(tidy: list[Notebook], lab: Lab, coturn: dict[str, Any]) -> None:
    setup = f"ICE = [nbcall.turn_credentials('wrong-secret', {str(coturn['url'])!r}, ttl=600)]"
    args = ", ice_servers=ICE, ice_transport_policy='relay'"
    path = notebook(lab, "badturn", {"zed": "zed-b", "amy": "amy-b"}, setup=setup, widget_args=args)
    nb = await lab.open(path, users=["zed-b", "amy-b"])
    tidy.append(nb)
    await nb.wait_py("'amy-b' in zed.peers", "True")
    await nb.py("zed.call('amy-b')")
    await nb.wait_py("amy.state", "ringing")
    await nb.py("amy.accept()")
    await nb.wait_py("'TURN authentication failed (401)' in (zed.error + amy.error)", "True", timeout=25)
    await nb.wait_py("(zed.state, amy.state, zed.end_reason)", "('ended', 'ended', 'failed')")
    print(await nb.py("print(zed.error, '|', amy.error)"))


async def test_a_call_in_notebook_7(tidy: list[Notebook], lab: Lab) -> None:
    path = notebook(lab, "nb7", {"bea": "bea-7", "cyd": "cyd-7"})
    nb = await lab.open(path, users=["bea-7", "cyd-7"], ui="notebook7")
    tidy.append(nb)
    assert "/notebooks/" in nb.page.url
    await call_and_connect(nb, "bea", "cyd", "bea-7", "cyd-7")
    await nb.py("bea.hangup()")
    await nb.wait_py("(bea.state, cyd.state)", "('ended', 'ended')")
