"""A room of five in real JupyterLab through a real Janus: the mesh-to-SFU move, simulcast.

The signaling server of this module is started with ``--sfu local`` (it starts and stops a
Janus on 127.0.0.1 of its own).  Four widgets join: a mesh.  The fifth moves the room to
Janus: nobody is dropped (no ``on_leave`` anywhere), every member decodes frames from every
other through the SFU afterwards, and a member's simulcast layer follows its tile's size.
Small capture (320x180 at 15 fps, the ``room_video`` trait): five members share one page.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio

from nbcall._testing.lab import Lab, Notebook, write_notebook
from nbcall._testing.processes import free_port, nbcall_server_cmd, serving
from nbcall.sfu import janus_binary

from .test_rooms_lab import assert_tiles_flow, members

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.janus,
    pytest.mark.skipif(janus_binary() is None, reason="janus is not installed (./dev setup installs it)"),
]

NAMES = {"a": "amy-s", "b": "bo-s", "c": "cy-s", "d": "di-s", "e": "ed-s"}
ROOM = "bigroom-s"

# What member `u` receives from each publisher through Janus: frames, width, layer.
_SFU_FEEDS = """
async (u) => {
  const room = window.__nbcall.phones[u].room;
  const session = room.sfu && room.sfu.session;
  if (!session) return null;
  const { feeds } = await session.stats();
  const byName = {};
  for (const m of room.participants()) {
    const member = room.members.get(m.key);
    const feed = member && feeds[String(member.sfuId)];
    if (feed) byName[m.name] = feed;
  }
  const ids = room.participants().map((m) => [m.name, String(room.members.get(m.key)?.sfuId)]);
  return { feeds: byName, mesh: room.mesh ? room.mesh.links.size : 0, raw: Object.keys(feeds), ids };
}
"""


@pytest.fixture(scope="module")
def sfu_server(sandbox_env: dict[str, str]) -> Iterator[str]:
    """An nbcall server with a local Janus (both stopped by pid when the module ends)."""
    port = free_port()
    with serving(nbcall_server_cmd(port, "--log-level", "WARNING", "--sfu", "local"), port, env=sandbox_env):
        yield f"ws://127.0.0.1:{port}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def five(lab: Lab, sfu_server: str) -> AsyncIterator[Notebook]:
    cells = ["import nbcall\nSMALL = {'width': 320, 'height': 180, 'fps': 15}"]
    for var, user in NAMES.items():
        cells.append(f"{var} = nbcall.CallWidget({user!r}, server={sfu_server!r}, room_video=SMALL)\n{var}")
    write_notebook(lab.root / "rooms_five.ipynb", cells)
    nb = await lab.open("rooms_five.ipynb", users=list(NAMES.values()))
    yield nb
    await nb.close()


def others(var: str, present: str = "abcde") -> str:
    return str(sorted((NAMES[v], "connected") for v in present if v != var))


async def test_the_fifth_member_moves_the_room_to_the_sfu_and_nobody_is_dropped(five: Notebook) -> None:
    await five.py("left = []\nfor w in (a, b, c, d):\n    w.on_leave(left.append)")
    for var in "abcd":
        assert await five.py(f"{var}.join({ROOM!r})") == ""
    for var in "abcd":
        await five.wait_py(members(var), others(var, "abcd"), timeout=40)
    await five.wait_py("a.topology, d.topology", "('mesh', 'mesh')")
    await assert_tiles_flow(five, NAMES["a"], [NAMES[v] for v in "bcd"])

    start = time.monotonic()
    assert await five.py(f"e.join({ROOM!r})") == ""
    await five.wait_py("[w.topology for w in (a, b, c, d, e)]", str(["sfu"] * 5), timeout=30)
    for var in "abcde":
        await five.wait_py(members(var), others(var), timeout=40)
    print(f"the fifth join to every member on the SFU: {time.monotonic() - start:.1f} s")
    assert (await five.py("print(left)")).strip() == "[]"

    # Every member decodes every other's frames, through Janus: the mesh links are gone.
    for var, user in NAMES.items():
        await assert_tiles_flow(five, user, [NAMES[v] for v in NAMES if v != var], timeout=30, mesh=False)
        deadline = time.monotonic() + 15
        while True:
            got = await five.page.evaluate(_SFU_FEEDS, user)
            flowing = got and got["mesh"] == 0 and len(got["feeds"]) == 4
            if flowing and all(f["framesDecoded"] > 0 and f["width"] > 0 for f in got["feeds"].values()):
                break
            assert time.monotonic() < deadline, (user, got)
            await five.page.wait_for_timeout(500)


async def test_a_members_layer_follows_its_tile_size(five: Notebook) -> None:
    await five.wait_py("a.topology", "sfu")
    amy, bo = NAMES["a"], NAMES["b"]

    async def width_of_bo() -> int:
        got = await five.page.evaluate(_SFU_FEEDS, amy)
        return int(got["feeds"][bo]["width"]) if got and bo in got["feeds"] else 0

    tile = f'.nbcall-root[data-user="{amy}"] .nbcall-tile[data-name="{bo}"]'

    async def wait_width(wanted: Callable[[int], bool], words: str, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            width = await width_of_bo()
            if width and wanted(width):
                return width
            assert time.monotonic() < deadline, f"width of bo at amy is {width}, wanted {words}"
            await five.page.wait_for_timeout(500)

    size = "(el, w) => { el.style.width = w; el.style.justifySelf = 'start'; }"
    # A big tile asks Janus for the top layer ...
    await five.page.eval_on_selector(tile, size, "600px")
    big = await wait_width(lambda w: w >= 300, "the top layer (320 px)")
    # ... a small one for the lowest ...
    await five.page.eval_on_selector(tile, size, "90px")
    small = await wait_width(lambda w: w < big, f"less than {big}")
    # ... and a big one for the top layer again.
    await five.page.eval_on_selector(tile, size, "600px")
    again = await wait_width(lambda w: w > small, f"more than {small}", timeout=40)
    print(f"bo's video at amy: {big} px wide in a 600 px tile, {small} in a 90 px tile, {again} after")


async def test_a_member_that_leaves_and_rejoins_the_sfu_room_is_seen_again(five: Notebook) -> None:
    await five.wait_py("a.topology", "sfu")
    await five.py("c.leave()")
    await five.wait_py(members("a"), others("a", "abde"), timeout=20)
    await five.py(f"c.join({ROOM!r})")
    for var in "abcde":
        await five.wait_py(members(var), others(var), timeout=40)
    # The others' subscriptions take cy's new feed (Janus may recycle the m-lines it had).
    for var in "abde":
        await assert_tiles_flow(five, NAMES[var], [NAMES[v] for v in NAMES if v != var], timeout=30, mesh=False)
    await assert_tiles_flow(five, NAMES["c"], [NAMES[v] for v in "abde"], timeout=30, mesh=False)
    await five.py("for w in (a, b, c, d, e):\n    w.leave()")
    await five.wait_py("[w.room for w in (a, b, c, d, e)]", str([""] * 5))
