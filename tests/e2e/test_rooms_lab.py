"""Rooms in real JupyterLab and Notebook 7 pages: a three-person mesh driven from Python.

ann and ben share one Lab page; cat is in a Notebook 7 page of her own (so her page can
close while the others stay).  Every member must decode frames from both others (frames
rising on every tile, its picture the fake camera's), ``participants`` must be right in
Python on all three, a member leaves and joins again without disturbing the other link,
and a page that closes is told to the room at once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from nbcall._testing.lab import Lab, Notebook

pytestmark = pytest.mark.asyncio(loop_scope="session")

A, B, C = "ann-r", "ben-r", "cat-r"
ROOM = "standup-r"

# Every remote tile of `user`'s widget: its member, decoded frames, size, and whether its
# picture has the fake camera's structure (not a flat black or grey frame).
_TILES = """
(u) => [...document.querySelectorAll(`.nbcall-root[data-user="${u}"] .nbcall-tile:not(.nbcall-tile-local)`)]
  .map((tile) => {
    const video = tile.querySelector("video");
    let spread = 0;
    if (video.videoWidth) {
      const canvas = document.createElement("canvas");
      canvas.width = 64; canvas.height = 36;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(video, 0, 0, 64, 36);
      const px = ctx.getImageData(0, 0, 64, 36).data;
      let lo = 255, hi = 0;
      for (let i = 0; i < px.length; i += 4) { const g = px[i + 1]; lo = Math.min(lo, g); hi = Math.max(hi, g); }
      spread = hi - lo;
    }
    return { name: tile.dataset.name, frames: video.getVideoPlaybackQuality().totalVideoFrames,
             width: video.videoWidth, spread };
  })
"""

# framesDecoded of every inbound video on `user`'s mesh links (getStats of each link).
MESH_DECODED = """
async (u) => {
  const room = window.__nbcall.phones[u].room;
  const out = {};
  for (const [key, link] of room.mesh ? room.mesh.links : []) {
    const report = await link.call.pc.getStats();
    let frames = 0;
    report.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0; });
    out[key] = frames;
  }
  return out;
}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rooms(lab: Lab) -> AsyncIterator[tuple[Notebook, Notebook]]:
    one = await lab.open(lab.widgets_notebook("rooms_ab", {"ann": A, "ben": B}), users=[A, B], silent_playback=True)
    two = await lab.open(lab.widgets_notebook("rooms_c", {"cat": C}), users=[C], ui="notebook7", silent_playback=True)
    yield one, two
    await one.close()
    await two.close()


def members(var: str) -> str:
    """A Python expression: the sorted (name, state) pairs of ``var``'s participants."""
    return f"sorted((p['name'], p['state']) for p in {var}.participants)"


async def assert_tiles_flow(
    nb: Notebook, user: str, others: list[str], timeout: float = 15.0, *, mesh: bool = True
) -> None:
    """``user``'s widget shows a playing tile for each of ``others``: frames rising, a real picture;
    with ``mesh``, every one of its mesh links decodes frames too (getStats)."""
    deadline = time.monotonic() + timeout
    first = {t["name"]: t for t in await nb.page.evaluate(_TILES, user)}
    decoded = await nb.page.evaluate(MESH_DECODED, user)
    while True:
        now = {t["name"]: t for t in await nb.page.evaluate(_TILES, user)}
        ok = sorted(now) == sorted(others) and all(
            now[n]["width"] > 0 and now[n]["spread"] > 20 and now[n]["frames"] >= first.get(n, now[n])["frames"] + 5
            for n in others
        )
        if ok:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{user}: tiles not playing: first {first}, now {now}")
        if any(n not in first or first[n]["frames"] == 0 for n in others):
            first = now
        await nb.page.wait_for_timeout(300)
    if not mesh:
        return
    later = await nb.page.evaluate(MESH_DECODED, user)
    assert len(later) == len(others), later
    assert all(later[k] > decoded.get(k, 0) for k in later), (decoded, later)


async def test_three_members_see_each_other(rooms: tuple[Notebook, Notebook]) -> None:
    one, two = rooms
    out = await one.py(
        f"joined, left = [], []\nann.on_join(joined.append)\nann.on_leave(left.append)\nann.join({ROOM!r})"
    )
    assert out == "", out
    await one.wait_py("ann.room, ann.topology", f"({ROOM!r}, 'mesh')")
    assert await one.py(f"ben.join({ROOM!r})") == ""
    assert await two.py(f"cat.join({ROOM!r})") == ""
    await one.wait_py(members("ann"), str([(B, "connected"), (C, "connected")]), timeout=30)
    await one.wait_py(members("ben"), str([(A, "connected"), (C, "connected")]), timeout=30)
    await two.wait_py(members("cat"), str([(A, "connected"), (B, "connected")]), timeout=30)
    await two.wait_py("cat.room, cat.topology", f"({ROOM!r}, 'mesh')")
    await assert_tiles_flow(one, A, [B, C])
    await assert_tiles_flow(one, B, [A, C])
    await assert_tiles_flow(two, C, [A, B])
    await one.wait_py("sorted(joined)", str(sorted([B, C])))
    # Chat goes to the whole room, and back into every kernel's history.
    assert await one.py("ann.send_chat('hello room 你好')") == ""
    await one.wait_py("[m['text'] for m in ben.messages if m['from'] == 'ann-r']", "['hello room 你好']")
    await two.wait_py("[m['text'] for m in cat.messages if m['from'] == 'ann-r']", "['hello room 你好']")
    # One member's frame into Python by name.
    await two.py("snap = cat.snapshot('ben-r')")
    await two.wait_py("bool(snap.ready and snap.array.shape[0] > 0 and snap.array.std() > 5)", "True")


async def test_the_grid_shows_who_is_there_what_they_send_and_who_speaks(rooms: tuple[Notebook, Notebook]) -> None:
    one, _ = rooms
    await one.wait_py(members("ann"), str([(B, "connected"), (C, "connected")]), timeout=30)
    root = f'.nbcall-root[data-user="{A}"]'
    assert await one.page.locator(f"{root} .nbcall-tile").count() == 3  # ann's own tile first
    columns = await one.page.eval_on_selector(
        f"{root} .nbcall-grid", "(el) => getComputedStyle(el).gridTemplateColumns.split(' ').length"
    )
    assert columns == 2  # three tiles: two by two
    people = await one.page.locator(f"{root} .nbcall-room-person").all_inner_texts()
    assert sorted(people) == [f"{B} — connected", f"{C} — connected"], people
    ben_tile = f'{root} .nbcall-tile[data-name="{B}"]'
    # ben mutes and turns his camera off: ann's tile for him says so, and so does Python.
    await one.py("ben.audio = False\nben.video = False")
    await one.wait_py(f"[(p['audio'], p['video']) for p in ann.participants if p['name'] == {B!r}]", "[(False, False)]")
    assert await one.page.locator(f"{ben_tile} .nbcall-badge-muted").is_visible()
    assert await one.page.locator(f"{ben_tile} .nbcall-badge-camera").is_visible()
    await one.py("ben.audio = True\nben.video = True")
    await one.wait_py(f"[(p['audio'], p['video']) for p in ann.participants if p['name'] == {B!r}]", "[(True, True)]")
    assert not await one.page.locator(f"{ben_tile} .nbcall-badge-muted").is_visible()
    # The fake microphone beeps: a member's tile is outlined as the speaker now and then.
    await one.wait_js("(r) => !!document.querySelector(`${r} .nbcall-tile.nbcall-speaking`)", root, timeout=20)
    # Quality on hover, once the links have stats.
    await one.wait_js("(t) => (document.querySelector(t).title || '').includes('quality')", ben_tile, timeout=15)


async def test_a_member_leaves_and_comes_back_without_disturbing_the_others(rooms: tuple[Notebook, Notebook]) -> None:
    one, two = rooms
    await two.wait_py(members("cat"), str([(A, "connected"), (B, "connected")]), timeout=30)
    # The ann–cat link is one RTCPeerConnection, before and after ben comes and goes.
    await one.page.evaluate(
        "([a, c]) => { window.__annCat = window.__nbcall.phones[a].room.mesh.links.get(c).call.pc; }", [A, C]
    )
    await one.py("ben.leave()")
    await one.wait_py("ben.room, ben.participants, ben.topology", "('', [], '')")
    await one.wait_py(members("ann"), str([(C, "connected")]))
    await two.wait_py(members("cat"), str([(A, "connected")]))
    await one.wait_py("left", str([B]))
    out = await one.py("ben.leave()")
    assert "CallError: not in a room" in out, out
    await one.py(f"ben.join({ROOM!r})")
    await one.wait_py(members("ben"), str([(A, "connected"), (C, "connected")]), timeout=30)
    await two.wait_py(members("cat"), str([(A, "connected"), (B, "connected")]), timeout=30)
    same = await one.page.evaluate(
        "([a, c]) => { const pc = window.__nbcall.phones[a].room.mesh.links.get(c).call.pc;"
        " return pc === window.__annCat && pc.connectionState; }",
        [A, C],
    )
    assert same == "connected", same
    await assert_tiles_flow(one, A, [B, C])
    await assert_tiles_flow(two, C, [A, B])


async def test_a_closed_page_is_told_to_the_room_at_once(rooms: tuple[Notebook, Notebook]) -> None:
    one, two = rooms
    await one.wait_py(members("ann"), str([(B, "connected"), (C, "connected")]), timeout=30)
    start = time.monotonic()
    await two.close()
    # Well inside the 15 s reconnect grace: a closed page leaves at once.
    await one.wait_py(members("ann"), str([(B, "connected")]), timeout=8)
    await one.wait_py(members("ben"), str([(A, "connected")]), timeout=8)
    print(f"cat's page closed: the room knew within {time.monotonic() - start:.2f} s")
    await assert_tiles_flow(one, A, [B])
    await one.py("ann.leave(); ben.leave()")
    await one.wait_py("ann.room, ben.room", "('', '')")
