"""nbcall.Peer (aiortc, in the test process) and a CallWidget in real JupyterLab with headless Chromium.

The widget's camera is Chromium's fake device: a dark green (0, 135, 0) picture with a
bright green (73, 255, 19) disc in the middle whose wedge turns, and a frame counter.  The
Peer checks that content in its numpy frames; it sends frames of known colours with a
counter in blocks, which the browser decodes and reads back from its canvas.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
import pytest_asyncio

from nbcall._testing.lab import Lab, Notebook
from nbcall.peer import Frame, Peer
from nbcall.peer._patterns import LEFT, READ_BITS_JS, RIGHT, pattern

pytestmark = pytest.mark.asyncio(loop_scope="session")

WIDGET = "wid-peer"
BACKGROUND = (0, 135, 0)
DISC = (73, 255, 19)

# Draw the widget's remote (or local) <video> into a canvas: pixels at points, and a 16-bit block row.
PIXELS_JS = """
([user, which, points, row, readBits]) => {
  const v = document.querySelector(`.nbcall-root[data-user="${user}"] video.nbcall-${which}`);
  if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(v, 0, 0);
  const px = points.map(([y, x]) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3)));
  const bits = row === null ? null : eval(readBits)(ctx, c.width, row);
  return { width: c.width, height: c.height, px, bits };
}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def nb(lab: Lab) -> AsyncIterator[Notebook]:
    path = lab.widgets_notebook("peer_lab", {"w": WIDGET})
    notebook = await lab.open(path, users=[WIDGET])
    yield notebook
    await notebook.close()


async def new_peer(peers: list[Peer], lab: Lab, name: str, **kwargs: Any) -> Peer:
    peer = await asyncio.to_thread(Peer, name, lab.signaling_url, **kwargs)
    peers.append(peer)
    return peer


async def until(check: Any, timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


async def settle(nb: Notebook) -> None:
    await nb.py("if w.state in ('calling', 'connecting', 'connected', 'ringing'): w.hangup()")
    await nb.wait_js("(u) => !['calling','connecting','connected','ringing'].includes(window.__nbcall.phones[u].state)",
                     WIDGET)  # fmt: skip


def camera_measures(frame: Frame) -> tuple[float, float, float]:
    """(bright, dark, disc): how much of a ring inside the disc is the disc's green, how much
    of a ring outside it is background, and how much of the picture is the disc's green."""
    image = frame.array.astype(int)
    assert frame.array.shape == (480, 640, 3), frame.array.shape
    background = image[300:360, 60:120].reshape(-1, 3).mean(axis=0)
    assert np.abs(background - BACKGROUND).max() < 25, background
    angles = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    inside = image[(240 + 80 * np.sin(angles)).astype(int), (320 + 80 * np.cos(angles)).astype(int)]
    outside = image[(240 + 150 * np.sin(angles)).astype(int), (320 + 150 * np.cos(angles)).astype(int)]
    bright = float((np.abs(inside - DISC).max(axis=1) < 40).mean())
    dark = float((np.abs(outside - BACKGROUND).max(axis=1) < 40).mean())
    disc = float((np.abs(image - DISC).max(axis=2) < 40).mean())
    return bright, dark, disc


def assert_fake_camera(frames: list[Frame]) -> None:
    """The last frames show Chromium's fake camera: its background, its disc, and a wedge (the
    disc's mouth) that opens and closes, so the frames differ: a live picture, not a still."""
    measures = [camera_measures(frame) for frame in frames[-12:]]
    assert len(measures) >= 6, len(measures)
    brights, darks, discs = zip(*measures, strict=True)
    assert min(darks) > 0.9, darks  # background all round the disc, in every frame
    # The disc (radius 120: about 15 % of the picture when whole) less its mouth, which opens
    # almost all the way round and closes again (seen: 1.7 % to 15.3 %).
    assert all(0.005 < d < 0.17 for d in discs), discs
    assert max(discs) > 0.08 and max(brights) > 0.4, (discs, brights)
    assert max(discs) - min(discs) > 0.005, discs  # the mouth moves: a live picture


async def page_pixels(nb: Notebook, which: str, points: list[tuple[int, int]], row: int | None = None) -> Any:
    return await nb.page.evaluate(PIXELS_JS, [WIDGET, which, points, row, READ_BITS_JS])


async def test_widget_calls_a_peer_frames_both_ways(lab: Lab, nb: Notebook, peers: list[Peer]) -> None:
    await settle(nb)
    peer = await new_peer(peers, lab, "py-peer1", video=lambda i, t: pattern(i, 640, 480), fps=30)
    peer.on_incoming(lambda caller: peer.accept())
    frames: list[Frame] = []
    peer.on_frame(frames.append)
    await nb.wait_py(f"{peer.name!r} in w.peers", "True")
    assert await nb.py(f"w.call({peer.name!r})") == ""
    await nb.wait_py("w.state, w.peer", f"('connected', {peer.name!r})")
    await until(lambda: len(frames) >= 5, what="first frames in Python")
    start, count = time.monotonic(), len(frames)
    await until(lambda: len(frames) - count >= 15, timeout=10, what="15 more frames in Python")
    rate = (len(frames) - count) / (time.monotonic() - start)
    print(f"frames into Python from the widget's camera: {rate:.1f} fps, stats {peer.stats}")
    assert_fake_camera(frames)
    assert not np.array_equal(frames[-1].array, frames[count].array)  # live, not a frozen picture
    # The browser decodes what the Peer sends: frames rising, the colours and the counter as sent.
    await nb.assert_video_flows(WIDGET)
    first = await page_pixels(nb, "remote", [(440, 160), (440, 480)], row=0)
    await asyncio.sleep(1.0)
    later = await page_pixels(nb, "remote", [(440, 160), (440, 480)], row=0)
    assert (later["width"], later["height"]) == (640, 480), later
    assert np.abs(np.array(later["px"][0]) - LEFT).max() < 35, later
    assert np.abs(np.array(later["px"][1]) - RIGHT).max() < 35, later
    assert later["bits"] > first["bits"], (first, later)
    await nb.py("w.hangup()")
    await until(lambda: peer.state == "ended", what="peer ended")
    assert peer.end_reason == "hangup"


async def test_transform_round_trip_is_visible_in_the_browser(lab: Lab, nb: Notebook, peers: list[Peer]) -> None:
    await settle(nb)

    def effect(image: np.ndarray) -> np.ndarray:
        out = 255 - image[:, ::-1]  # mirrored and inverted ...
        out[-60:] = (255, 255, 0)  # ... with a yellow band
        return out

    peer = await new_peer(peers, lab, "py-mirror", video_transform=effect)
    peer.on_incoming(lambda caller: peer.accept())
    await nb.wait_py(f"{peer.name!r} in w.peers", "True")
    await nb.py(f"w.call({peer.name!r})")
    await nb.wait_py("w.state", "connected")
    await nb.assert_video_flows(WIDGET)
    seen = await page_pixels(nb, "remote", [(330, 580), (450, 320)])
    local = await page_pixels(nb, "local", [(330, 60)])
    print(f"transform: local camera {local}, back from Python {seen}, stats {peer.stats}")
    assert np.abs(np.array(local["px"][0]) - BACKGROUND).max() < 35, local
    inverted = 255 - np.array(BACKGROUND)
    assert np.abs(np.array(seen["px"][0]) - inverted).max() < 35, seen  # the camera's background, inverted
    assert np.abs(np.array(seen["px"][1]) - (255, 255, 0)).max() < 35, seen  # the band
    assert peer.stats["transform_errors"] == 0 and peer.stats["frames_sent"] > 10
    await nb.py("w.hangup()")
    await until(lambda: peer.state == "ended")


async def test_peer_calls_the_widget_and_chat_goes_both_ways(lab: Lab, nb: Notebook, peers: list[Peer]) -> None:
    await settle(nb)
    peer = await new_peer(peers, lab, "py-peer2", video=lambda i, t: pattern(i, 320, 240))
    chats: list[dict[str, Any]] = []
    peer.on_chat(chats.append)
    frames: list[Frame] = []
    peer.on_frame(frames.append)
    await until(lambda: WIDGET in peer.peers, what="the widget online")
    peer.call(WIDGET)
    await nb.wait_py("w.state, w.incoming", f"('ringing', {peer.name!r})")
    await nb.py("w.accept()")
    await until(lambda: peer.state == "connected", what="connected")
    await nb.wait_py("w.state", "connected")
    await nb.assert_video_flows(WIDGET)
    await until(lambda: len(frames) >= 10, what="camera frames")
    assert_fake_camera(frames)
    await until(lambda: peer.stats["channel"]["open"], what="data channel")
    await nb.py("w.send_chat('héllo 小文 from the widget 👋')")
    await until(lambda: chats, what="chat from the widget")
    assert chats[0]["from"] == WIDGET and chats[0]["text"] == "héllo 小文 from the widget 👋"
    peer.send_chat("ça va? Ελλάδα from Python")
    await nb.wait_py("w.messages[-1]['text'], w.messages[-1]['from']", f"('ça va? Ελλάδα from Python', {peer.name!r})")
    # The widget hears the Peer's heartbeats (counted as they arrive, not inferred from a quiet
    # spell): several beats in, and it never thought the Peer was gone.
    beats = f"window.__nbcall.phones[{WIDGET!r}].heartbeat"
    start = await nb.page.evaluate(f"() => {beats}.received")
    await nb.wait_js(f"(n) => {beats}.received >= n + 3 && !{beats}.silent && !{beats}.lost", start, timeout=10)
    await nb.wait_py("w.peer_status", "connected", timeout=1)
    peer.hangup()
    await nb.wait_py("w.state, w.end_reason", "('ended', 'hangup')")


async def test_the_seed_client_calls_a_peer(lab: Lab, seed_page_url: str, peers: list[Peer]) -> None:
    peer = await new_peer(peers, lab, "py-seedcallee", video=lambda i, t: pattern(i, 320, 240))
    peer.on_incoming(lambda caller: peer.accept())
    frames: list[Frame] = []
    peer.on_frame(frames.append)
    context = await lab.browser.new_context()
    try:
        page = await context.new_page()
        query = urlencode({"ws": lab.signaling_url, "me": "seed-caller", "peer": peer.name})
        await page.goto(f"{seed_page_url}?{query}")
        await until(lambda: "seed-caller" in peer.peers, what="the seed page online")
        await page.evaluate("openCamera()")  # the seed's call: a plain offer, no invite
        await until(lambda: peer.state == "connected", what="seed call connected")
        assert peer.peer == "seed-caller"
        await until(lambda: len(frames) >= 10, what="the seed page's camera")
        assert_fake_camera(frames)
        first = await page.evaluate("framesDecoded()")
        deadline = time.monotonic() + 10  # framesDecoded() is async: no wait_for_function
        while await page.evaluate("framesDecoded()") < first + 5:  # the seed page decodes the Peer's video
            assert time.monotonic() < deadline, "the seed page decodes no video from the Peer"
            await asyncio.sleep(0.1)
    finally:
        await context.close()
    await until(lambda: peer.state == "ended", what="the seed page left")
    assert peer.end_reason == "disconnected"
