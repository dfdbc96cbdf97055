"""The page's SFU client (js/room/sfu.js) against a real Janus, in real headless Chromium pages.

A LocalJanus on 127.0.0.1, a room made with RoomAdmin (PIN, and tokens: Janus's ``allowed``
list), and pages that each load tests/e2e/sfu_harness.html: one member each, the fake camera
at 320x180 and 15 fps, the real SfuSession bundled by esbuild.  Proven here: every member
decodes every other member's camera (frames rising, the fake camera's picture), a tile's
size picks the simulcast layer (the decoded and shown width follows), a wrong token is
refused in words, Janus's HTTP API works as well as its websocket, and a member that closes
is gone for the others (and for Janus), and one that comes back is seen again.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page

from nbcall._testing.processes import free_port
from nbcall.sfu import LocalJanus, Room, RoomAdmin, janus_binary

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.janus,
    pytest.mark.skipif(janus_binary() is None, reason="janus is not installed (apt-get install janus)"),
]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ESBUILD = REPO / "node_modules" / ".bin" / "esbuild"


@pytest.fixture(scope="module")
def janus() -> Iterator[LocalJanus]:
    with LocalJanus() as server:
        yield server


@pytest.fixture(scope="module")
def admin(janus: LocalJanus) -> RoomAdmin:
    return RoomAdmin(janus.http_url, janus.admin_key)


@pytest.fixture(scope="module")
def harness_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """sfu_harness.html and its bundle (sfu_harness.js + js/room/sfu.js + janus-gateway) on a local HTTP server."""
    if not ESBUILD.exists():
        pytest.skip("node_modules/.bin/esbuild is missing: npm ci")
    folder = tmp_path_factory.mktemp("sfu-harness")
    # The flags of `npm run build` (package.json), into the fixture's folder.
    subprocess.run(
        [str(ESBUILD), str(HERE / "sfu_harness.js"), "--bundle", "--format=esm", "--target=es2020",
         "--define:define=undefined", f"--outfile={folder / 'sfu_harness.bundle.js'}", "--log-level=warning"],
        cwd=REPO, check=True, timeout=60,
    )  # fmt: skip
    shutil.copy(HERE / "sfu_harness.html", folder / "sfu_harness.html")
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/sfu_harness.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


def allow(admin: RoomAdmin, room: Room, tokens: list[str]) -> None:
    """Only these tokens may publish in ``room`` (Janus's ``allowed`` list)."""
    base = {"request": "allowed", "room": room.name, "secret": room.secret}
    admin.request({**base, "action": "enable", "allowed": []})
    admin.request({**base, "action": "add", "allowed": tokens})


@dataclass
class Member:
    """One page (its own browser context) that is one member of the room."""

    id: str
    token: str
    context: BrowserContext
    page: Page
    joined: bool = False

    async def js(self, expr: str, arg: Any = None) -> Any:
        return await self.page.evaluate(expr, arg)


class SfuRoom:
    """The module's room: five members, each with its own token and page (joined when a test needs them)."""

    def __init__(self, browser: Browser, url: str, janus: LocalJanus, room: Room) -> None:
        self.browser, self.url, self.janus, self.room = browser, url, janus, room
        self.members: list[Member] = []

    async def open(self, member_id: str, token: str) -> Member:
        context = await self.browser.new_context()
        page = await context.new_page()
        await page.goto(self.url)
        await page.wait_for_function("() => !!window.harness")
        return Member(member_id, token, context, page)

    async def join(self, member: Member, *, token: str | None = None, url: str | None = None) -> dict[str, Any]:
        cfg = {"url": url or self.janus.ws_url, "room": self.room.name, "token": token or member.token,
               "pin": self.room.pin, "id": member.id}  # fmt: skip
        result = dict(await member.js("(cfg) => window.harness.join(cfg)", cfg))
        member.joined = bool(result["ok"])
        return result

    async def ensure(self, members: list[Member]) -> None:
        """These members are in the room (a test run alone joins what earlier tests would have)."""
        results = await asyncio.gather(*(self.join(m) for m in members if not m.joined))
        assert all(r["ok"] for r in results), results

    async def close(self) -> None:
        for member in self.members:
            await member.context.close()
        self.members.clear()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def room(browser: Browser, harness_url: str, janus: LocalJanus, admin: RoomAdmin) -> AsyncIterator[SfuRoom]:
    made = await asyncio.to_thread(admin.create, f"sfu-{secrets.token_hex(3)}", 6)
    tokens = {f"m{i}": secrets.token_urlsafe(12) for i in range(1, 6)}
    await asyncio.to_thread(allow, admin, made, list(tokens.values()))
    sfu_room = SfuRoom(browser, harness_url, janus, made)
    try:
        for member_id, token in tokens.items():
            sfu_room.members.append(await sfu_room.open(member_id, token))
        yield sfu_room
    finally:
        await sfu_room.close()
        await asyncio.to_thread(admin.destroy, made)


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"not within {timeout} s: {what}; last {last}")


async def stats(member: Member) -> dict[str, Any]:
    return dict(await member.js("() => window.harness.stats()") or {})


async def assert_everyone_sees_everyone(members: list[Member]) -> dict[str, dict[str, Any]]:
    """Every member decodes every other member's camera: frames rising, and the fake camera's picture."""

    async def all_flowing(member: Member) -> dict[str, Any] | None:
        s = await stats(member)
        others = {m.id for m in members} - {member.id}
        feeds = s.get("feeds", {})
        ok = set(feeds) >= others and all(feeds[o]["framesDecoded"] > 0 and feeds[o]["videoWidth"] > 0 for o in others)
        return s if ok else None

    async def flowing(member: Member) -> dict[str, Any]:
        try:
            return dict(await until(partial(all_flowing, member), f"{member.id} decodes the others"))
        except AssertionError as err:  # say what the page knows
            known = await member.js("() => window.harness.debug()")
            raise AssertionError(f"{err}: {await stats(member)}; {known}") from None

    firsts = await asyncio.gather(*(flowing(m) for m in members))

    def risen(first: dict[str, Any], later: dict[str, Any], member: Member) -> bool:
        return all(
            later["feeds"][o.id]["framesDecoded"] >= first["feeds"][o.id]["framesDecoded"] + 8
            for o in members
            if o is not member
        )

    # Eight more frames from everyone (half a second at 15 fps; a loaded machine takes longer).
    deadline = asyncio.get_running_loop().time() + 8
    while True:
        await asyncio.sleep(0.5)
        laters = [await stats(m) for m in members]
        done = all(risen(f, lt, m) for m, f, lt in zip(members, firsts, laters, strict=True))
        if done or asyncio.get_running_loop().time() > deadline:
            break
    seen: dict[str, dict[str, Any]] = {}
    for member, first, later in zip(members, firsts, laters, strict=True):
        for other in members:
            if other is member:
                continue
            before, after = first["feeds"][other.id], later["feeds"][other.id]
            assert after["framesDecoded"] >= before["framesDecoded"] + 8, (member.id, other.id, before, after)
            picture = await member.js("(id) => window.harness.pixels(id)", other.id)
            # Chromium's fake camera: mostly its green background (0, 135, 0), with a moving disc.
            assert picture and picture["green"] > 0.5, (member.id, other.id, picture)
            assert picture["g"] > picture["r"] + 40 and picture["g"] > picture["b"] + 40, (member.id, other.id, picture)
            seen[f"{member.id}<-{other.id}"] = {**after, "green": round(picture["green"], 2)}
        assert later["uplinkKbps"] > 0, later
    return seen


async def test_three_members_decode_each_other(room: SfuRoom) -> None:
    trio = room.members[:3]
    t0 = time.monotonic()
    joined = await asyncio.gather(*(room.join(m) for m in trio))
    assert all(j["ok"] and j["state"] == "connected" for j in joined), joined
    seen = await assert_everyone_sees_everyone(trio)
    print(f"3 members: joined and decoding each other in {time.monotonic() - t0:.1f} s: {seen}")


async def test_tile_size_picks_the_simulcast_layer(room: SfuRoom) -> None:
    await room.ensure(room.members[:3])
    viewer, sender = room.members[0], room.members[1]

    async def width_for(tile: tuple[int, int], layer: int, width: int) -> dict[str, Any]:
        asked = await viewer.js("([id, w, h]) => window.harness.setTileSize(id, w, h)", [sender.id, *tile])
        assert asked == layer, (tile, asked)

        seen: list[dict[str, Any]] = []

        async def arrived() -> dict[str, Any] | None:
            feed = (await stats(viewer))["feeds"][sender.id]
            seen.append(feed)
            shown = feed["width"] == feed["videoWidth"] == width  # decoded, and the <video> shows it
            return feed if shown and feed["received"] == layer else None

        try:
            return dict(await until(arrived, f"layer {layer} ({width} px wide) for a {tile} tile"))
        except AssertionError as err:
            raise AssertionError(f"{err}: {seen[-1]}; sender {await stats(sender)}") from None

    t0 = time.monotonic()
    small = await width_for((160, 90), 0, 80)
    medium = await width_for((400, 225), 1, 160)
    large = await width_for((960, 540), 2, 320)
    back = await width_for((200, 112), 0, 80)
    print(f"simulcast layers at the viewer: {small}, {medium}, {large}, back to {back}; {time.monotonic() - t0:.1f} s")

    # The third member, whose tiles were not resized, gets the top layer (Janus's default).
    async def third_on_top() -> dict[str, Any] | None:
        feed = (await stats(room.members[2]))["feeds"][sender.id]
        return feed if feed["width"] == 320 and feed["received"] == 2 else None

    await until(third_on_top, "the top layer where no tile size was set")


async def test_a_wrong_token_is_refused_in_words(room: SfuRoom) -> None:
    stranger = room.members[3]
    refused = await room.join(stranger, token="not-a-member's-token")
    assert not refused["ok"] and refused["state"] == "failed", refused
    assert refused["words"].startswith("the SFU refused to let this member in: wrong or missing PIN or token"), refused
    log = await stranger.js("() => window.harness.log")
    assert log["states"][-1].startswith("failed: the SFU refused"), log
    assert log["errors"] == [refused["words"]], log
    closed = await stranger.js("() => window.harness.close()")
    assert closed == {"state": "closed", "timers": 0}, closed
    # Nobody saw it: the members in the room still have exactly each other.
    inside = [m for m in room.members if m.joined]
    for member in inside:
        assert sorted((await stats(member))["feeds"]) == sorted(m.id for m in inside if m is not member)
    # Unreachable: failed with words at once, not a hang.
    await stranger.page.reload()
    await stranger.page.wait_for_function("() => !!window.harness")
    gone = await room.join(stranger, url=f"ws://127.0.0.1:{free_port()}")  # nothing listens there
    assert not gone["ok"] and gone["words"].startswith("could not reach the SFU at ws://127.0.0.1:"), gone
    await stranger.page.reload()
    await stranger.page.wait_for_function("() => !!window.harness")


async def test_five_members_then_one_leaves(room: SfuRoom, janus: LocalJanus, admin: RoomAdmin) -> None:
    await room.ensure(room.members[:3])
    four, five = room.members[3], room.members[4]
    t0 = time.monotonic()
    # The fifth comes in over Janus's HTTP API (long polls) rather than its websocket.
    joined = await asyncio.gather(room.join(four), room.join(five, url=janus.http_url))
    assert all(j["ok"] for j in joined), joined
    seen = await assert_everyone_sees_everyone(room.members)
    print(f"5 members: the two newcomers in and everyone decoding everyone in {time.monotonic() - t0:.1f} s: {seen}")
    leaver = room.members[2]
    closed = await leaver.js("() => window.harness.close()")
    assert closed == {"state": "closed", "timers": 0}, closed
    t1 = time.monotonic()
    for member in room.members:
        if member is leaver:
            continue

        async def saw_it_go(m: Member = member) -> bool:
            log = await m.js("() => window.harness.log")
            feeds = (await stats(m))["feeds"]
            return leaver.id in log["gone"] and leaver.id not in feeds

        await until(saw_it_go, f"{member.id} sees {leaver.id} go", timeout=10)
    print(f"{leaver.id} closed: gone at every other member within {time.monotonic() - t1:.1f} s")
    # Janus agrees: it left the room.
    ids = {str(p.get("id")) for p in await asyncio.to_thread(admin.participants, room.room)}
    assert ids == {"m1", "m2", "m4", "m5"}, ids


async def test_a_member_that_rejoins_is_seen_again(room: SfuRoom) -> None:
    """Leave and come back at once (the same id, then a new one): Janus recycles the others' m-lines for it."""
    trio = [room.members[0], room.members[1], room.members[3]]
    await room.ensure(trio)
    await assert_everyone_sees_everyone(trio)
    rejoiner = trio[2]
    for new_id in (rejoiner.id, f"{rejoiner.id}-again"):
        closed = await rejoiner.js("() => window.harness.close()")
        assert closed == {"state": "closed", "timers": 0}, closed
        before = [dict((await m.js("() => window.harness.log"))["arrived"]) for m in trio[:2]]
        rejoiner.id = new_id
        t0 = time.monotonic()
        joined = await room.join(rejoiner)
        assert joined["ok"] and joined["state"] == "connected", joined
        seen = await assert_everyone_sees_everyone(trio)
        for member, was in zip(trio[:2], before, strict=True):
            arrived = (await member.js("() => window.harness.log"))["arrived"]
            assert arrived.get(new_id, 0) > was.get(new_id, 0), (member.id, new_id, was, arrived)
        print(f"{new_id} rejoined: decoded by and decoding the others in {time.monotonic() - t0:.1f} s: {seen}")
