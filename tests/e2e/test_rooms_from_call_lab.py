"""A 1:1 call that becomes a room, in real JupyterLab pages (docs/rooms.md "From a call").

ann calls ben (one Lab page for both), the call connects and its video flows; ann invites
cat (another Lab page) from Python: the call turns into a room without a hang-up, the call's
RTCPeerConnection goes on as the ann-ben mesh link (the same object, still connected, its
frames never stopping), and once cat accepts, all three decode frames from both others,
``topology`` is ``mesh`` and ``participants`` are right in Python on all three.  The time
from cat's accept to frames from everyone is printed (the report's number).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from nbcall._testing.lab import Lab, Notebook

from .test_rooms_lab import MESH_DECODED, assert_tiles_flow, members

pytestmark = pytest.mark.asyncio(loop_scope="session")

A, B, C = "ann-m", "ben-m", "cat-m"

# Watches ann's page across the move, every 50 ms: the call's connection's inbound video
# (frames decoded, and Chrome's own freeze counters: a freeze is a frame shown much later
# than the ones before it), when the room came, when ben's tile in the room's grid played.
_WATCH = """
([a, b]) => {
  const pc = window.__nbcall.phones[a].pc;
  const w = { samples: [], roomAt: 0, tileAt: 0, inviteAt: 0 };
  window.__moveWatch = w;
  w.timer = setInterval(async () => {
    const report = await pc.getStats();
    const now = { at: performance.now(), frames: 0, freezes: 0, frozen: 0 };
    report.forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== "video") return;
      now.frames += s.framesDecoded || 0; now.freezes += s.freezeCount || 0; now.frozen += s.totalFreezesDuration || 0;
    });
    w.samples.push(now);
    if (!w.roomAt && window.__nbcall.phones[a].room.name) w.roomAt = now.at;
    const tile = document.querySelector(`.nbcall-root[data-user="${a}"] .nbcall-tile[data-name="${b}"] video`);
    const playing = tile && tile.videoWidth > 0 && tile.getVideoPlaybackQuality().totalVideoFrames > 0;
    if (!w.tileAt && playing) w.tileAt = now.at;
  }, 50);
}
"""

_WATCHED = """
() => {
  const w = window.__moveWatch;
  clearInterval(w.timer);
  const first = w.samples[0], last = w.samples[w.samples.length - 1];
  const atInvite = w.samples.filter((s) => s.at <= w.inviteAt).pop() || first;
  const atRoom = w.samples.filter((s) => s.at <= w.roomAt).pop() || atInvite;
  const ms = (x) => Math.round(x * 1000);
  return {
    roomAfterInviteMs: Math.round(w.roomAt - w.inviteAt), tileAfterRoomMs: Math.round(w.tileAt - w.roomAt),
    before: { ms: Math.round(atInvite.at - first.at), freezes: atInvite.freezes - first.freezes,
              frozenMs: ms(atInvite.frozen - first.frozen) },
    move: { ms: Math.round(last.at - atInvite.at), freezes: last.freezes - atInvite.freezes,
            frozenMs: ms(last.frozen - atInvite.frozen), framesAfterRoom: last.frames - atRoom.frames },
  };
}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pages(lab: Lab) -> AsyncIterator[tuple[Notebook, Notebook]]:
    one = await lab.open(lab.widgets_notebook("from_call_ab", {"ann": A, "ben": B}), users=[A, B])
    two = await lab.open(lab.widgets_notebook("from_call_c", {"cat": C}), users=[C])
    yield one, two
    await one.close()
    await two.close()


async def decoding(nb: Notebook, users: list[str], since: dict[str, dict[str, int]]) -> bool:
    """Every one of ``users`` decodes frames from two others, more than ``since`` (updated)."""
    ok = True
    for user in users:
        now = await nb.page.evaluate(MESH_DECODED, user) or {}
        before = since.setdefault(user, {})
        ok = ok and len(now) == 2 and all(frames > before.get(key, 0) and frames > 0 for key, frames in now.items())
        if not before:
            since[user] = now
    return ok


async def test_a_call_becomes_a_room_and_a_third_joins(pages: tuple[Notebook, Notebook]) -> None:
    one, two = pages
    await one.call_and_connect("ann", "ben", B)
    await one.assert_video_flows(B)
    await one.assert_video_flows(A)
    await one.wait_py("ann.topology, ben.topology", "('p2p', 'p2p')")
    await one.page.evaluate("(a) => { window.__callPc = window.__nbcall.phones[a].pc; }", A)
    before = (await one.video_stats(B))["frames"]

    await one.page.evaluate(_WATCH, [A, B])
    await asyncio.sleep(4)  # the call's own freezes over as long as the move is watched, for comparison
    await one.page.evaluate("() => { window.__moveWatch.inviteAt = performance.now(); }")
    assert await one.py(f"ann.invite({C!r})") == ""
    moved = await one.wait_py("ann.topology, ben.topology", "('mesh', 'mesh')")
    await one.wait_py("ann.state, ann.end_reason, ben.state, ben.end_reason", "('ended', 'moved', 'ended', 'moved')")
    await one.wait_py("ann.room != '' and ann.room == ben.room and ann.room.startswith('call-')", "True")
    # The call's connection is the ann-ben link: the same object, connected, still decoding.
    link = await one.page.evaluate(
        """([a, b]) => {
          const phone = window.__nbcall.phones[a];
          const key = phone.room.members.map.keys().next().value;
          const pc = phone.room.mesh.links.get(key).call.pc;
          return { same: pc === window.__callPc, state: pc.connectionState, b: phone.room.members.get(key).name };
        }""",
        [A, B],
    )
    assert link == {"same": True, "state": "connected", "b": B}, link
    after = await one.page.evaluate(MESH_DECODED, B)
    assert next(iter(after.values())) > before, (before, after)
    await assert_tiles_flow(one, A, [B], timeout=5)
    await assert_tiles_flow(one, B, [A], timeout=5)
    await one.wait_py(members("ann"), str([(B, "connected"), (C, "ringing")]))
    await one.wait_py(members("ben"), str([(A, "connected"), (C, "ringing")]))
    await asyncio.sleep(1)
    watched = await one.page.evaluate(_WATCHED)
    print(f"the call became a room in Python within {moved:.2f} s of invite(); in ann's page: {watched}")
    # The same connection goes on decoding; the grid shows its stream at once.  The move adds
    # less than a second of freezes to what the call had by itself (a loaded machine freezes
    # calls too: `before`).
    move, alone = watched["move"], watched["before"]
    assert move["framesAfterRoom"] > 10 and move["frozenMs"] < alone["frozenMs"] + 1000, watched
    assert 0 <= watched["tileAfterRoomMs"] < 1000, watched

    # cat accepts: she joins the room and links to both.
    await two.wait_py("cat.room_invite.get('from')", A)
    start = time.monotonic()
    assert await two.py("cat.accept()") == ""
    seen: dict[str, dict[str, int]] = {}
    while not (await decoding(one, [A, B], seen) and await decoding(two, [C], seen)):
        assert time.monotonic() - start < 20, seen
        await asyncio.sleep(0.1)
    all_frames = time.monotonic() - start
    print(f"cat accepted: frames from everyone on all three pages within {all_frames:.2f} s")
    await assert_tiles_flow(one, A, [B, C])
    await assert_tiles_flow(one, B, [A, C])
    await assert_tiles_flow(two, C, [A, B])
    for nb, var, others in ((one, "ann", [B, C]), (one, "ben", [A, C]), (two, "cat", [A, B])):
        await nb.wait_py(members(var), str([(name, "connected") for name in others]), timeout=15)
        await nb.wait_py(f"{var}.topology", "mesh")
    room = (await one.py("print(ann.room)")).strip()
    assert (await two.py("print(cat.room)")).strip() == room

    # The old call is over on the server: the room's rules apply (hang up has nothing to end).
    out = await one.py("ann.hangup()")
    assert "CallError" in out and "no call to hang up" in out, out
    await one.py("ann.leave()")
    await one.wait_py(members("ben"), str([(C, "connected")]))
    await two.wait_py(members("cat"), str([(B, "connected")]))
    await one.py("ben.leave()")
    await two.py("cat.leave()")
    await one.wait_py("ann.room, ben.room, ann.topology", "('', '', '')")
