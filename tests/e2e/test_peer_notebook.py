"""notebooks/python_peer.ipynb cell by cell in real JupyterLab: the Peer mirrors the camera, the curve draws."""

from __future__ import annotations

import pytest

from nbcall._testing.lab import Lab

from .test_demo_notebooks import assert_no_failures, copy_demo, run_all_until_connected, run_cell

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_python_peer_notebook_cell_by_cell(lab: Lab) -> None:
    path = copy_demo(lab, "python_peer.ipynb")
    nb = await lab.open(path, users=[], run_all=False)
    try:
        await run_cell(nb, 1)  # the widget
        await nb.wait_py("me.state", "idle")
        await run_cell(nb, 3)  # the Peer, its effect and its preview
        await nb.wait_py("bot.state, 'mirror-bot' in me.peers", "('idle', True)")
        await run_cell(nb, 4)  # the call
        await nb.wait_py("me.state, bot.state", "('connected', 'connected')")
        await nb.assert_video_flows("you")  # the mirrored picture plays in the widget
        # What comes back is the camera (dark green background (0, 135, 0)) with red inverted: (255, 135, 0)-ish.
        await nb.wait_py("bot.latest_frame() is not None and int(np.median(bot.latest_frame().array[..., 0])) < 30",
                         "True")  # fmt: skip
        pixel = await nb.page.evaluate(
            """() => { const v = document.querySelector('.nbcall-root[data-user="you"] video.nbcall-remote');
                       const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
                       const ctx = c.getContext('2d'); ctx.drawImage(v, 0, 0);
                       return Array.from(ctx.getImageData(100, 301, 1, 1).data.slice(0, 3)); }"""
        )
        assert pixel[0] > 200 and 100 < pixel[1] < 170 and pixel[2] < 40, pixel  # red inverted by the effect
        await run_cell(nb, 6)  # the live curve
        await nb.wait_py("len(brightness) > 20 and '<polyline' in plot.value", "True")
        # The preview widget shows PNGs of what it receives and sends.
        await nb.wait_js("() => document.querySelectorAll('.jp-OutputArea-output img').length >= 2")
        out = await run_cell(nb, 7)
        assert "frames_received" in out, out
        await nb.py("bot.close()")  # what the last cell says
        await nb.wait_py("me.state, me.end_reason, bot.closed", "('ended', 'closed', True)")
    finally:
        await nb.close()


async def test_python_peer_notebook_run_all(lab: Lab) -> None:
    """Run All: the widget's call waits for its page, the Peer answers, the mirrored picture comes back."""
    nb = await run_all_until_connected(lab, "python_peer.ipynb", "me", "bot")
    try:
        await nb.assert_video_flows("you")
        await nb.wait_py("len(brightness) > 20 and '<polyline' in plot.value", "True")
        await assert_no_failures(nb, "me")
        await nb.py("bot.close()")
        await nb.wait_py("me.state, me.end_reason", "('ended', 'closed')")
    finally:
        await nb.close()
