"""Several views of one widget, ICE restarts (including both sides at once), closing a widget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from nbcall._testing.lab import Lab, Notebook

pytestmark = pytest.mark.asyncio(loop_scope="session")

VIC, WES = "vic-d", "wes-d"

_UFRAG = "(u) => (window.__nbcall.phones[u].pc.remoteDescription.sdp.match(/a=ice-ufrag:(\\S+)/) || [])[1]"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pair(lab: Lab) -> AsyncIterator[Notebook]:
    # vic is shown twice: two views of one widget.
    path = lab.widgets_notebook("details", [VIC, WES], extra=["vic"])
    nb = await lab.open(path, users=[VIC, WES])
    await nb.wait_js(f"() => document.querySelectorAll('.nbcall-root[data-user=\"{VIC}\"]').length === 2")
    await nb.call_and_connect("vic", "wes", WES)
    yield nb
    await nb.close()


async def test_two_views_show_the_same_call(pair: Notebook) -> None:
    await pair.assert_video_flows(VIC)
    views = await pair.page.evaluate(
        """(u) => [...document.querySelectorAll(`.nbcall-root[data-user="${u}"]`)].map((root) => {
             const v = root.querySelector('video.nbcall-remote');
             return { width: v.videoWidth, same: v.srcObject === root.nbcall.remoteStream, muted: v.muted,
                      status: root.querySelector('.nbcall-status').textContent };
           })""",
        VIC,
    )
    assert len(views) == 2
    assert all(v["same"] and v["width"] > 0 and v["status"] == f"In a call with {WES}" for v in views), views
    # Only one view plays the remote audio (the other would echo it).
    assert sorted(v["muted"] for v in views) in ([False, True], [True, True]), views


async def test_ice_restart_renegotiates_and_media_continues(pair: Notebook) -> None:
    before = await pair.page.evaluate(_UFRAG, WES)
    await pair.page.evaluate("(u) => window.__nbcall.phones[u].call.restartIce()", VIC)
    await pair.wait_js(f"(b) => ({_UFRAG})('{WES}') !== b", before, timeout=10)
    await pair.assert_video_flows(WES)
    await pair.assert_video_flows(VIC)
    await pair.wait_py("vic.state, wes.state", "('connected', 'connected')")


async def test_simultaneous_restarts_resolve_by_perfect_negotiation(pair: Notebook) -> None:
    # Both sides offer at once: the impolite caller wins, the polite callee rolls back.
    before = await pair.page.evaluate(f"() => [({_UFRAG})('{VIC}'), ({_UFRAG})('{WES}')]")
    await pair.page.evaluate("(us) => us.forEach((u) => window.__nbcall.phones[u].call.restartIce())", [VIC, WES])
    await pair.wait_js(
        f"(b) => ({_UFRAG})('{VIC}') !== b[0] && ({_UFRAG})('{WES}') !== b[1] && "
        f"['{VIC}', '{WES}'].every((u) => window.__nbcall.phones[u].pc.signalingState === 'stable')",
        before,
        timeout=10,
    )
    await asyncio.sleep(0.5)
    await pair.assert_video_flows(WES)
    await pair.assert_video_flows(VIC)
    errors = await pair.py("print(repr(vic.error), repr(wes.error))")
    assert errors.strip() == "'' ''", errors


async def test_signaling_socket_drop_reconnects_and_re_registers(pair: Notebook) -> None:
    # A socket that drops (here: closed with no status, as a blip does) does not end the call
    # (docs/protocol.md, "Calls and outages"): the widget comes back under its own name by
    # itself, the call stays connected with its media, and it can hang up and call again.
    await pair.wait_py("vic.state, wes.state", "('connected', 'connected')")
    drop = "(u) => { window.__dropped = window.__nbcall.phones[u].signaling.ws; __dropped.close(); }"
    await pair.page.evaluate(drop, WES)
    # registered again, on a new socket
    await pair.wait_js(
        f"() => {{ const s = window.__nbcall.phones['{WES}'].signaling; return s.registered && s.ws !== __dropped; }}",
        timeout=10,
    )
    await pair.wait_py("vic.state, wes.state, wes.error", "('connected', 'connected', '')", timeout=10)
    await pair.wait_py("vic.peer_status, wes.peer_status", "('connected', 'connected')", timeout=10)
    await pair.assert_video_flows(VIC)
    await pair.py("wes.hangup()")
    await pair.wait_py("vic.state, vic.end_reason", "('ended', 'hangup')", timeout=10)
    await pair.call_and_connect("vic", "wes", WES)
    await pair.assert_video_flows(VIC)


async def test_closing_the_widget_ends_the_call(pair: Notebook) -> None:
    await pair.wait_py("vic.state, wes.state", "('connected', 'connected')")
    await pair.py("vic.close()")  # the comm closes: the page's model is destroyed
    await pair.wait_py("wes.state, wes.end_reason", "('ended', 'closed')", timeout=10)
    await pair.wait_js(f"() => !window.__nbcall.phones['{VIC}']")
    await pair.wait_py(f"{VIC!r} in wes.peers", "False")


async def test_preview_keeps_the_camera_on_between_calls_and_off_by_default(lab: Lab) -> None:
    """`preview=True` opens the camera while idle, shows it, and a call uses it (still on after
    the call); False, the default, films nothing outside a call."""
    path = lab.widgets_notebook("preview", ["pia-t", "pio-t"])
    nb = await lab.open(path, users=["pia-t", "pio-t"])
    tracks = (
        "(u) => { const s = window.__nbcall.phones[u].localStream;"
        " return s ? s.getTracks().map((t) => t.readyState) : []; }"
    )
    shown = "(u) => document.querySelector(`.nbcall-root[data-user=\"${u}\"] video.nbcall-local`).videoWidth > 0"
    try:
        assert await nb.page.evaluate(tracks, "pia-t") == [], "no camera before a call by default"
        await nb.py("pia.preview = pio.preview = True")
        for user in ("pia-t", "pio-t"):
            await nb.wait_js(f"(u) => ({tracks})(u).includes('live')", user)
            await nb.wait_js(shown, user)
        await nb.wait_py("'pio-t' in pia.peers", "True")
        await nb.py("pio.on_incoming(lambda caller: pio.accept())\npia.call('pio-t')")
        await nb.wait_py("pia.state, pio.state", "('connected', 'connected')")
        await nb.assert_video_flows("pia-t")
        await nb.assert_video_flows("pio-t")
        await nb.py("pia.hangup()")
        await nb.wait_py("pia.state, pio.state", "('ended', 'ended')")
        assert "live" in await nb.page.evaluate(tracks, "pia-t"), "the preview stays on after the call"
        await nb.py("pia.preview = False")
        await nb.wait_js(f"(u) => !({tracks})(u).includes('live')", "pia-t")
        local = nb.page.locator('.nbcall-root[data-user="pia-t"] video.nbcall-local')
        await local.wait_for(state="hidden")
    finally:
        await nb.close()


async def test_auto_answer_accepts_in_the_page_and_the_kernel_still_hears_the_ring(lab: Lab) -> None:
    """`auto_answer=True`: the page accepts as the call rings (no accept() from Python);
    on_incoming still runs in the kernel, and an accept() there is no error."""
    path = lab.widgets_notebook("auto_answer", ["ada-t", "abe-t"])
    nb = await lab.open(path, users=["ada-t", "abe-t"])
    try:
        await nb.wait_py("'abe-t' in ada.peers", "True")
        await nb.py("rang = []\nabe.auto_answer = True\nabe.on_incoming(lambda c: (rang.append(c), abe.accept()))")
        await nb.py("ada.call('abe-t')")
        await nb.wait_py("ada.state, abe.state", "('connected', 'connected')")
        await nb.assert_video_flows("ada-t")
        await nb.assert_video_flows("abe-t")
        assert await nb.py("print(rang, repr(abe.error), repr(ada.error))") == "['ada-t'] '' ''\n"
        await nb.py("ada.hangup()")
        await nb.wait_py("ada.state, abe.state", "('ended', 'ended')")
    finally:
        await nb.close()
