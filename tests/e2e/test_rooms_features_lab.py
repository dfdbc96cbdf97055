"""In-call features in rooms, in real JupyterLab: recordings of the grid and of one member
(the WebM decoded with PyAV, frames looked at), and on a real Janus, each member's quality
and who speaks.

A three-member mesh in one Lab page: ann records the grid while ben is in the room, cat
joins and leaves meanwhile, and the recording shows cat's tile come and go while it goes
on; then ann records ben alone.  ben sends 4:3 (320x240) and the others 16:9, so a
recording of ben's size and shape is ben's picture.  Then a room of three moved to a
local Janus (``--room-mesh-limit 2``): every member's ``quality`` is judged from the
SFU's numbers, every member hears the others speak (the level from the subscription's
receivers, no AudioContext),
and a member's recording works there too.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import pytest_asyncio

from nbcall._testing.lab import Lab, Notebook, write_notebook
from nbcall._testing.processes import free_port, nbcall_server_cmd, serving
from nbcall.sfu import janus_binary

from .test_rooms_lab import assert_tiles_flow, members

pytestmark = pytest.mark.asyncio(loop_scope="session")

A, B, C = "ann-x", "ben-x", "cat-x"
ROOM = "features-x"
WIDE = "{'width': 320, 'height': 180, 'fps': 15}"
FOUR_THREE = "{'width': 320, 'height': 240, 'fps': 15}"
TILE = np.array([42, 42, 46])  # grid_canvas.js's empty tile (#2a2a2e)
# Where the grid's third tile (cat's) has its picture, and the first tile's video leaves
# the tile empty while there are two (1280x720, 2 columns: grid_canvas.js's layout).
THIRD_TILE = (slice(560, 680), slice(10, 630))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def room(lab: Lab) -> AsyncIterator[Notebook]:
    cells = [f"import nbcall\nSERVER = {lab.signaling_url!r}\nrecorded = []"]
    for var, user, size in (("ann", A, WIDE), ("ben", B, FOUR_THREE), ("cat", C, WIDE)):
        cells.append(f"{var} = nbcall.CallWidget({user!r}, server=SERVER, room_video={size})\n{var}")
    cells.append("ann.on_recording(recorded.append)")
    write_notebook(lab.root / "rooms_features.ipynb", cells)
    nb = await lab.open("rooms_features.ipynb", users=[A, B, C])
    yield nb
    await nb.close()


def decode(data: bytes, look: Callable[[np.ndarray], Any] = lambda pixels: pixels) -> dict[str, Any]:
    """The recording's streams, and each video frame's size, time and ``look(its RGB pixels)``
    (every frame; a grid's frames are 2.8 MB each: ``look`` keeps what a test needs of them)."""
    with av.open(io.BytesIO(data)) as container:
        assert container.format.name.startswith("matroska"), container.format.name
        kinds = [s.type for s in container.streams]
        stream = container.streams.video[0]
        frames = [
            (f.width, f.height, float(f.pts * stream.time_base), look(f.to_ndarray(format="rgb24")))
            for f in container.decode(stream)
        ]
    return {"kinds": kinds, "codec": stream.codec_context.name, "frames": frames}


def tile_filled(pixels: np.ndarray) -> float:
    """How far the third tile's region is from an empty tile (mean absolute difference per channel)."""
    return float(np.abs(pixels[THIRD_TILE].astype(float) - TILE).mean())


def grid_look(pixels: np.ndarray) -> tuple[float, float, float]:
    """What the grid test looks at in a frame: the third tile's fill, and how much picture the
    first two tiles (ann's, ben's) have."""
    left, right = pixels[200:520, 40:600], pixels[200:520, 760:1160]
    return tile_filled(pixels), float(left.std()), float(right.std())


async def record(nb: Notebook, who: str, which: str, target: Path, during: Any = None, seconds: float = 3.0) -> bytes:
    """``who.start_recording(which)``, ``during()`` or a few seconds, ``stop_recording(target)``; the file."""
    count = int((await nb.py("print(len(recorded))")).strip())
    assert await nb.py(f"{who}.start_recording({which!r})") == ""
    await nb.wait_py(f"{who}.recording_state", "recording")
    if during is not None:
        await during()
    else:
        await asyncio.sleep(seconds)
    assert await nb.py(f"{who}.stop_recording({str(target)!r})") == ""
    await nb.wait_py(f"{who}.recording_state, len(recorded)", f"('done', {count + 1})")
    return target.read_bytes()


async def test_the_grid_recording_shows_members_come_and_go_and_goes_on(room: Notebook, tmp_path: Path) -> None:
    assert await room.py(f"ann.join({ROOM!r})\nben.join({ROOM!r})") == ""
    await room.wait_py(members("ann"), str([(B, "connected")]), timeout=30)
    await assert_tiles_flow(room, A, [B])
    marks: dict[str, float] = {}

    async def cat_comes_and_goes() -> None:
        start = time.monotonic()
        await asyncio.sleep(2.5)
        marks["join"] = time.monotonic() - start
        assert await room.py(f"cat.join({ROOM!r})") == ""
        await room.wait_py(members("ann"), str([(B, "connected"), (C, "connected")]), timeout=30)
        await assert_tiles_flow(room, A, [B, C])
        await asyncio.sleep(2.5)
        marks["leave"] = time.monotonic() - start
        assert await room.py("cat.leave()") == ""
        await room.wait_py(members("ann"), str([(B, "connected")]))
        await asyncio.sleep(2.5)

    data = await record(room, "ann", "grid", tmp_path / "grid.webm", during=cat_comes_and_goes)
    got = decode(data, grid_look)
    frames = got["frames"]
    seconds = frames[-1][2] - frames[0][2]
    filled = [round(f[3][0], 1) for f in frames]
    print(f"grid: {len(data)} bytes, {len(frames)} frames over {seconds:.1f} s, marks {marks}; third tile {filled}")
    assert got["codec"] in ("vp8", "vp9") and got["kinds"] == ["video", "audio"], got["kinds"]
    assert {(f[0], f[1]) for f in frames} == {(1280, 720)}, "every frame at the grid's size"
    # The canvas is drawn at 20 fps; a loaded machine records fewer, never none for long.
    assert seconds >= marks["leave"] + 1 and len(frames) >= 2 * seconds, "it went on through the join and the leave"
    # Empty at first, cat's picture once in, empty again once gone (an empty tile decodes
    # ~13 away from its colour, the fake camera's picture ~75).
    assert max(filled[:5]) < 25 and max(filled[-5:]) < 25, filled
    assert sum(f > 45 for f in filled) >= 5, filled
    # ann's and ben's tiles have a picture (not an empty tile, not black), before and after cat.
    early = min(frames, key=lambda f: abs(f[2] - frames[0][2] - 1.5))
    for _, _, _, (_, left_std, right_std) in (early, frames[-1]):
        assert left_std > 10 and right_std > 10, (left_std, right_std)


async def test_a_members_recording_is_that_members_picture(room: Notebook, tmp_path: Path) -> None:
    await room.wait_py(members("ann"), str([(B, "connected")]), timeout=30)
    data = await record(room, "ann", B, tmp_path / "ben.webm")
    got = decode(data)
    frames = got["frames"]
    sizes = {(f[0], f[1]) for f in frames}
    print(f"ben alone: {len(data)} bytes, {len(frames)} frames, sizes {sizes}")
    assert got["kinds"] == ["video", "audio"], got["kinds"]
    # ben's 4:3 camera (the others send 16:9) in its shape, 640 px wide: one size all along.
    assert sizes == {(640, 480)}, sizes
    assert len(frames) > 20 and frames[-1][3].std() > 10
    # ben leaving ends a recording of ben; the file still arrives.
    assert await room.py(f"ann.start_recording({B!r})") == ""
    await room.wait_py("ann.recording_state", "recording")
    await asyncio.sleep(1.5)  # a few half-second chunks before ben goes
    await room.py("ben.leave()")
    await room.wait_py("ann.recording_state, ann.room", f"('done', {ROOM!r})")
    assert await room.py("print(len(recorded[-1]) > 1000)") == "True\n"
    # Outside a room the grid is refused in words.
    await room.py("ann.leave()")
    await room.wait_py("ann.room", "")
    out = await room.py("ann.start_recording('grid')")
    assert "CallError" in out and "in no room" in out, out


# -- on the SFU ---------------------------------------------------------------------------------

SFU_NAMES = {"p": "pia-x", "q": "quin-x", "r": "rey-x"}
SFU_ROOM = "features-sfu-x"

# What member `u`'s levels come from: no AudioContext was made for them.
_NO_AUDIO_CONTEXT = "(u) => window.__nbcall.phones[u].room.watch.meter.context === null"

# The names ``u``'s page marks as speaking at some moment within 15 s (the fake microphones
# beep twice a second), sampled every 50 ms.
_HEARD = """async ([u, others]) => {
  const room = window.__nbcall.phones[u].room;
  const heard = new Set();
  const until = performance.now() + 15000;
  while (performance.now() < until && heard.size < others.length) {
    for (const m of room.members) if (m.speaking) heard.add(m.name);
    await new Promise((r) => setTimeout(r, 50));
  }
  return [...heard].sort();
}"""


@pytest.fixture(scope="module")
def small_sfu_server(sandbox_env: dict[str, str]) -> Iterator[str]:
    """An nbcall server whose rooms move to a local Janus past two members."""
    port = free_port()
    cmd = nbcall_server_cmd(port, "--log-level", "WARNING", "--sfu", "local", "--room-mesh-limit", "2")
    with serving(cmd, port, env=sandbox_env):
        yield f"ws://127.0.0.1:{port}"


@pytest.mark.janus
@pytest.mark.skipif(janus_binary() is None, reason="janus is not installed (./dev setup installs it)")
async def test_on_the_sfu_quality_speaking_and_a_recording(lab: Lab, small_sfu_server: str, tmp_path: Path) -> None:
    cells = [f"import nbcall\nrecorded = []\nSMALL = {WIDE}"]
    for var, user in SFU_NAMES.items():
        cells.append(f"{var} = nbcall.CallWidget({user!r}, server={small_sfu_server!r}, room_video=SMALL)\n{var}")
    cells.append("p.on_recording(recorded.append)")
    write_notebook(lab.root / "rooms_features_sfu.ipynb", cells)
    nb = await lab.open("rooms_features_sfu.ipynb", users=list(SFU_NAMES.values()), silent_playback=True)
    try:
        for var in "pqr":
            assert await nb.py(f"{var}.join({SFU_ROOM!r})") == ""
            await nb.wait_py(f"{var}.room", SFU_ROOM, timeout=30)
        await nb.wait_py("[w.topology for w in (p, q, r)]", str(["sfu"] * 3), timeout=40)
        others = {v: sorted((u, "connected") for w, u in SFU_NAMES.items() if w != v) for v in SFU_NAMES}
        for var in "pqr":
            await nb.wait_py(members(var), str(others[var]), timeout=40)
        for var, user in SFU_NAMES.items():
            await assert_tiles_flow(nb, user, [u for v, u in SFU_NAMES.items() if v != var], timeout=30, mesh=False)
        # Quality from the SFU's numbers, for every member on every page.
        judged = "all(m['quality'] in ('good', 'fair', 'poor') for w in (p, q, r) for m in w.participants)"
        await nb.wait_py(judged, "True", timeout=20)
        print("quality on the SFU:", await nb.py("print([(m['name'], m['quality']) for m in p.participants])"))
        # Who speaks on the SFU is read from the subscription's receivers, with no AudioContext:
        # every member hears both others' beeps.
        for user in SFU_NAMES.values():
            others = sorted(u for u in SFU_NAMES.values() if u != user)
            assert await nb.page.evaluate(_HEARD, [user, others]) == others, user
            assert await nb.page.evaluate(_NO_AUDIO_CONTEXT, user), user
        # A member's recording through the SFU: its frames at its size.
        data = await record(nb, "p", SFU_NAMES["q"], tmp_path / "quin.webm")
        got = decode(data)
        sizes = {(f[0], f[1]) for f in got["frames"]}
        print(f"quin through the SFU: {len(got['frames'])} frames, sizes {sizes}")
        assert sizes == {(640, 360)} and len(got["frames"]) > 20 and got["frames"][-1][3].std() > 10, sizes
        await nb.py("for w in (p, q, r):\n    w.leave()")
        await nb.wait_py("[w.room for w in (p, q, r)]", str([""] * 3))
    finally:
        await nb.close()
