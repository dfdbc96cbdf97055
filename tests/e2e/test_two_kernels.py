"""Widgets in different notebooks (different kernels, different pages) sharing one server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from nbcall._testing.lab import Lab, Notebook

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANN, BEN, DORA = "ann-k", "ben-k", "dora-k"

# What a browser does when the user blocks the camera: getUserMedia rejects with NotAllowedError.
DENY_CAMERA = """
navigator.mediaDevices.getUserMedia = async () => {
  throw new DOMException('Permission denied', 'NotAllowedError');
};
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ann(lab: Lab) -> AsyncIterator[Notebook]:
    nb = await lab.open(lab.widgets_notebook("kernel_ann", [ANN]), users=[ANN])
    yield nb
    await nb.close()


async def test_two_kernels_call_and_a_closing_page_ends_the_call(lab: Lab, ann: Notebook) -> None:
    ben = await lab.open(lab.widgets_notebook("kernel_ben", [BEN]), users=[BEN])
    try:
        await ann.wait_py(f"{BEN!r} in ann.peers", "True")
        t0 = time.monotonic()
        await ann.py(f"ann.call({BEN!r})")
        await ben.wait_py("ben.state, ben.incoming", f"('ringing', {ANN!r})")  # in the other kernel
        await ben.py("ben.accept()")
        await ben.wait_py("ben.state", "connected")
        await ann.wait_py("ann.state", "connected")
        print(f"two kernels: call -> connected in both kernels {time.monotonic() - t0:.2f} s")
        await ann.assert_video_flows(ANN)
        await ben.assert_video_flows(BEN)
        # The callee's page goes away mid-call: the caller's call ends within seconds.
        t0 = time.monotonic()
        await ben.close()
        await ann.wait_py("ann.state, ann.end_reason", "('ended', 'disconnected')", timeout=10)
        print(f"callee page closed -> caller ended (seen in Python) in {time.monotonic() - t0:.2f} s")
        await ann.wait_py(f"{BEN!r} in ann.peers", "False")
    finally:
        await ben.close()


async def test_camera_denied_shows_why_and_still_receives(lab: Lab, ann: Notebook) -> None:
    context = await lab.browser.new_context(viewport={"width": 1200, "height": 1400})
    await context.add_init_script(DENY_CAMERA)
    dora = await lab.open(lab.widgets_notebook("kernel_dora", [DORA]), users=[DORA], context=context)
    try:
        await ann.wait_py(f"{DORA!r} in ann.peers", "True")
        await ann.py(f"ann.call({DORA!r})")
        await dora.wait_py("dora.state", "ringing")
        await dora.py("dora.accept()")
        await dora.wait_py("dora.state", "connected")
        await ann.wait_py("ann.state", "connected")
        # Python and the widget both say why nothing is sent ...
        error = (await dora.py("print(dora.error)")).strip()
        assert "permission denied" in error and "receiving only" in error, error
        shown = dora.page.locator(f'.nbcall-root[data-user="{DORA}"] .nbcall-error')
        assert await shown.is_visible()
        assert "permission denied" in await shown.inner_text()
        # ... and the call still works receive-only: ann's camera plays at dora's.
        await dora.assert_video_flows(DORA)
        assert (await ann.video_stats(ANN))["frames"] == 0
        await ann.py("ann.hangup()")
        await dora.wait_py("dora.state, dora.end_reason", "('ended', 'hangup')")
    finally:
        await dora.close()


async def test_kernel_restart_releases_the_name(lab: Lab, ann: Notebook) -> None:
    eve = await lab.open(lab.widgets_notebook("kernel_eve", ["eve-k"]), users=["eve-k"])
    try:
        await ann.wait_py("'eve-k' in ann.peers", "True")
        await eve.page.evaluate("window.__panel.sessionContext.session.kernel.restart()")
        # The widget's model is disposed with the old kernel: its cleanup closes the websocket.
        await eve.wait_js("() => !window.__nbcall.phones['eve-k']", timeout=20)
        await ann.wait_py("'eve-k' in ann.peers", "False")
        old_view = eve.page.locator('.nbcall-root[data-user="eve-k"] .nbcall-error').first
        assert "kernel restarted" in await old_view.inner_text()
        # Running the notebook again in the new kernel takes the name back at once.
        await eve.wait_js("() => window.__panel.sessionContext.session.kernel.status === 'idle'")
        await eve.run_all(["eve-k"])
        await ann.wait_py("'eve-k' in ann.peers", "True")
        await eve.wait_py("eve.state", "idle")
    finally:
        await eve.close()


async def test_name_taken_and_server_unreachable_are_explained(lab: Lab, ann: Notebook) -> None:
    from ..conftest import free_port

    dead = f"ws://127.0.0.1:{free_port()}"  # nothing listens there
    path = lab.widgets_notebook(
        "kernel_trouble",
        {"dup": ANN},  # ann's name, held by the other kernel's widget
        extra=[f"lost = nbcall.CallWidget('lost-k', server={dead!r})\nlost"],
    )
    nb = await lab.open(path, users=[], run_all=False)
    try:
        await nb.run_all([])
        await nb.wait_py("dup.state", "error")
        error = (await nb.py("print(dup.error)")).strip()
        assert error.startswith(f"cannot register as {ANN}: name_taken"), error
        shown = nb.page.locator(f'.nbcall-root[data-user="{ANN}"] .nbcall-error')
        assert "name_taken" in await shown.inner_text()
        out = await nb.py("dup.call('anyone')")
        assert "CallError: cannot call while error: cannot register as" in out, out
        await nb.wait_py("lost.state", "error")
        error = (await nb.py("print(lost.error)")).strip()
        assert error.startswith(f"signaling server {dead} unreachable") and "retrying in" in error, error
        # Each way in is named with its own reason; the Jupyter endpoint's refusal is one of them.
        assert "same-origin: upstream_unreachable" in error and "direct:" in error, error
        # The name holder was not disturbed.
        await ann.wait_py("ann.state", "ended")
    finally:
        await nb.close()


async def test_a_replacing_widget_waits_for_its_name_instead_of_failing(lab: Lab) -> None:
    """A widget that replaces one of its name (a cell run again) gets a few seconds for the old
    registration to leave; here the name is held by another connection that lets go late."""
    from nbcall.signaling import SignalingClient

    name = "grace-k"
    async with SignalingClient(lab.signaling_url, name):
        path = lab.widgets_notebook(
            "name_grace", [], extra=[f"w = nbcall.CallWidget({name!r}, server=SERVER, _replaces=True)\nw"]
        )
        nb = await lab.open(path, users=[], run_all=False)
        try:
            await nb.run_all([])
            # The name is still taken: the page keeps asking rather than giving up.
            await nb.wait_js("(u) => window.__nbcall?.phones[u]?.nameRetry", name)
            assert await nb.js_state(name) == "registering"
            assert (await nb.py("print(repr(w.error))")).strip() == "''"
            release_at = time.monotonic()
        except BaseException:
            await nb.close()
            raise
    try:
        await nb.wait_py("w.state", "idle")
        print(f"name free -> registered {time.monotonic() - release_at:.2f} s")
    finally:
        await nb.close()
