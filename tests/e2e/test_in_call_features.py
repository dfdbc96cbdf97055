"""In-call features on a real call between two widgets in one JupyterLab page (issue #4).

One call serves the whole module (setting up Lab pages costs seconds): stats and duration,
chat both ways (Python and the widget's text box, non-ASCII), camera/microphone toggles as
the *other* side sees them (pixels, audio energy, traits), a camera switch and screen
sharing mid-call (replaceTrack, no renegotiation), snapshots into numpy, recordings parsed
with PyAV, chat after an ICE restart, and the hang-up reason with the final duration.
Assertions are on media seen in the page or on what arrives in Python, not on return values.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
import pytest_asyncio

from nbcall._testing.lab import Lab, Notebook

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANN, BEN = "ann-f", "ben-f"

# Mean and spread of the remote <video>'s pixels, drawn into a small canvas.
_PIXELS = """(u) => {
  const v = document.querySelector(`.nbcall-root[data-user="${u}"] video.nbcall-remote`);
  if (!v || !v.videoWidth) return { mean: -1, std: -1, width: 0, height: 0 };
  const c = document.createElement('canvas'); c.width = 80; c.height = 60;
  const ctx = c.getContext('2d'); ctx.drawImage(v, 0, 0, 80, 60);
  const d = ctx.getImageData(0, 0, 80, 60).data;
  let sum = 0, sq = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) { const y = (d[i] + d[i + 1] + d[i + 2]) / 3; sum += y; sq += y * y; n++; }
  const mean = sum / n;
  return { mean, std: Math.sqrt(Math.max(0, sq / n - mean * mean)), width: v.videoWidth, height: v.videoHeight };
}"""

# Energy of the inbound audio (the fake microphone beeps); silence adds nothing.
_AUDIO_ENERGY = """async (u) => {
  const r = await window.__nbcall.phones[u].pc.getStats();
  let e = 0; r.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') e += s.totalAudioEnergy || 0; });
  return e;
}"""

WIDE = "abs(p['width'] / max(1, p['height']) - 16 / 9) < 0.05"
FOUR_THREE = "abs(p['width'] / max(1, p['height']) - 4 / 3) < 0.05"

_UFRAG = "(u) => (window.__nbcall.phones[u].pc.remoteDescription.sdp.match(/a=ice-ufrag:(\\S+)/) || [])[1]"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def call(lab: Lab) -> AsyncIterator[Notebook]:
    setup = "got = []\nben.on_chat(got.append)\nrecorded = []\nann.on_recording(recorded.append)"
    path = lab.widgets_notebook("features", [ANN, BEN], extra=[setup])
    nb = await lab.open(path, users=[ANN, BEN])
    await nb.call_and_connect("ann", "ben", BEN)
    await nb.assert_video_flows(BEN)
    yield nb
    await nb.close()


async def py_json(nb: Notebook, expr: str) -> Any:
    return json.loads((await nb.py(f"import json as _j\nprint(_j.dumps({expr}))")).strip())


async def wait_pixels(nb: Notebook, user: str, ok: str, timeout: float = 8.0) -> dict[str, Any]:
    """Poll the remote video's pixels until ``ok`` (a Python expression over p) holds."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = dict(await nb.page.evaluate(_PIXELS, user))
        if eval(ok, {}, {"p": last}):
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"{user}: remote pixels never satisfied {ok}: {last}")


async def audio_energy_gain(nb: Notebook, user: str, seconds: float = 2.5) -> float:
    before = float(await nb.page.evaluate(_AUDIO_ENERGY, user))
    await asyncio.sleep(seconds)
    return float(await nb.page.evaluate(_AUDIO_ENERGY, user)) - before


async def test_stats_quality_and_duration(call: Notebook) -> None:
    await call.wait_py("ann.stats.get('candidate_type')", "host", timeout=10)
    await call.wait_py("ann.stats.get('inbound_kbps', 0) > 0 and ann.stats.get('outbound_kbps', 0) > 0", "True")
    stats = await py_json(call, "ann.stats")
    print("stats", stats)
    assert 5 <= stats["fps"] <= 60, stats
    assert stats["rtt_ms"] is not None and stats["rtt_ms"] >= 0, stats
    # The fake camera is 640x480; the sender may scale it down while bandwidth ramps up or the CPU is busy.
    assert stats["width"] * 3 == stats["height"] * 4 and 160 <= stats["width"] <= 640, stats
    assert 0 <= stats["packet_loss_pct"] <= 100 and stats["quality"] in ("good", "fair", "poor"), stats
    # Refreshed about once a second: bytes keep rising (the next refreshes, within a few seconds).
    first = stats["bytes_received"]
    await call.wait_py(f"ann.stats['bytes_received'] > {first}", "True", timeout=5)
    # Duration in Python and as mm:ss in the widget.
    await call.wait_py("ann.duration >= 2 and ann.connected_at > 1.7e9", "True")
    shown = await call.page.locator(f'.nbcall-root[data-user="{ANN}"] .nbcall-duration').first.text_content()
    assert shown and len(shown) == 5 and shown[2] == ":" and shown.replace(":", "").isdigit(), shown
    dot = call.page.locator(f'.nbcall-root[data-user="{ANN}"] .nbcall-quality').first
    assert await dot.is_visible() and "ms" in (await dot.text_content() or "")


async def test_chat_both_ways_non_ascii(call: Notebook) -> None:
    text = "你好 👋 — ça va?"
    assert await call.py(f"ann.send_chat({text!r})") == ""
    await call.wait_py("ben.messages[-1]['text'] if ben.messages else ''", text)
    await call.wait_py("[(m['from'], m['text']) for m in got]", repr([(ANN, text)]))
    await call.wait_py("ann.messages[-1]['from'], ann.messages[-1]['text']", repr((ANN, text)))
    # The other way, typed into ben's widget.
    reply = "¡hola! Привет 🙂"
    root = f'.nbcall-root[data-user="{BEN}"]'
    await call.page.locator(f"{root} .nbcall-chat-input").first.fill(reply)
    await call.page.locator(f"{root} .nbcall-chat-send").first.click()
    await call.wait_py("ann.messages[-1]['from'], ann.messages[-1]['text']", repr((BEN, reply)))
    assert await call.py("print(len(got), abs(ann.messages[-1]['time'] - __import__('time').time()) < 60)") == (
        "1 True\n"
    )  # ben's own message is not "received" by ben
    lines = await call.page.locator(f'.nbcall-root[data-user="{ANN}"] .nbcall-chat-text').all_text_contents()
    assert lines[-2:] == [text, reply], lines


async def test_camera_and_mic_toggles_seen_by_the_other_side(call: Notebook) -> None:
    await wait_pixels(call, BEN, "p['mean'] > 20 and p['std'] > 10")
    sound = await audio_energy_gain(call, BEN)
    try:
        await call.py("ann.video = False\nann.audio = False")
        await call.wait_py("ben.remote_video, ben.remote_audio", "(False, False)")
        black = await wait_pixels(call, BEN, "p['mean'] < 5 and p['std'] < 3")
        # Audio still in ben's jitter buffer (or concealment of late packets on a loaded
        # machine) plays out for a moment: wait for a silent second, not the first second.
        deadline = time.monotonic() + 10
        gains = []
        while True:
            gains.append(await audio_energy_gain(call, BEN, 1.0))
            if gains[-1] < sound / 2.5 / 50 or time.monotonic() > deadline:
                break
        print(f"audio energy: {sound / 2.5:.4f}/s on, per second after muting {gains}; black frame {black}")
        assert sound > 0 and gains[-1] < sound / 2.5 / 50, (sound, gains)
        assert await call.page.locator(f'.nbcall-root[data-user="{BEN}"] .nbcall-remote-off').first.is_visible()
        # Back on, from ann's widget checkboxes this time.
        await call.click(ANN, ".nbcall-toggle:nth-of-type(1) input")
        await call.click(ANN, ".nbcall-toggle:nth-of-type(2) input")
        await call.wait_py("ann.audio, ann.video, ben.remote_video, ben.remote_audio", "(True, True, True, True)")
        await wait_pixels(call, BEN, "p['mean'] > 20 and p['std'] > 10")
        assert not await call.page.locator(f'.nbcall-root[data-user="{BEN}"] .nbcall-remote-off').first.is_visible()
        assert await audio_energy_gain(call, BEN) > sound / 10
    finally:
        await call.py("ann.video = True\nann.audio = True")  # a failure here must not spoil the next tests


async def test_snapshots_arrive_in_python_as_arrays(call: Notebook) -> None:
    # Within the cell that asks, nothing has arrived yet: the call returns at once, empty.
    out = await call.py(
        "snap = ann.snapshot('remote')\nmine = []\nlocal = ann.snapshot('local', callback=mine.append)\n"
        "print(snap.ready, snap.array, mine)"
    )
    assert out.strip() == "False None []", out
    await call.wait_py("snap.ready and local.ready", "True")
    out = await py_json(
        call,
        "[snap.array.shape, str(snap.array.dtype), float(snap.array.std()), snap.png[:8].hex(), "
        "local.array.shape, len(mine), len(ann.snapshots)]",
    )
    print("snapshots", out)
    # Local: the fake camera itself. Remote: what ben's decoder shows (the sender may scale a 4:3 frame down).
    assert out[4] == [480, 640, 3], out
    assert out[0][0] * 4 == out[0][1] * 3 and out[0][1] >= 160 and out[0][2] == 3, out
    assert out[1] == "uint8" and out[2] > 10, out
    assert out[3] == "89504e470d0a1a0a", out  # a PNG signature
    assert out[5] == 1 and out[6] >= 2, out
    # The PNG holds the same picture as the raw pixels.
    same = await call.py(
        "import numpy as np, av, io\n"
        "f = next(av.open(io.BytesIO(snap.png)).decode(video=0)).to_ndarray(format='rgb24')\n"
        "print(f.shape == snap.array.shape and bool(np.abs(f.astype(int) - snap.array).max() <= 2))"
    )
    assert same.strip() == "True", same
    # The widget's Snapshot button sends the remote frame to Python too.
    await call.click(ANN, ".nbcall-snapshot")
    await call.wait_py(
        "len(ann.snapshots), ann.snapshots[-1].which, ann.snapshots[-1].array.shape[2]", "(3, 'remote', 3)"
    )


async def test_camera_switch_and_screen_share_mid_call(call: Notebook) -> None:
    cameras = await py_json(call, "ann.cameras")
    assert len(cameras) == 3 and all(c["id"] and c["label"] for c in cameras), cameras
    # fake_device_1 is a Y16 depth camera that WebRTC cannot send (no frames, even between two
    # plain RTCPeerConnections): switch to fake_device_2.
    other = next(c for c in cameras if c["label"] == "fake_device_2")
    sdp_before = await call.page.evaluate("(u) => window.__nbcall.phones[u].pc.remoteDescription.sdp", BEN)
    sender = "(u) => window.__nbcall.phones[u].pc.getSenders().find((s) => s.track && s.track.kind === 'video').track"
    await call.py(f"ann.camera = {other['id']!r}")
    await call.wait_js(f"(id) => ({sender})('{ANN}').getSettings().deviceId === id", other["id"])
    await call.assert_video_flows(BEN)
    await wait_pixels(call, BEN, f"p['std'] > 10 and {FOUR_THREE}")
    # A screen instead of the camera: the fake screen is 1280x720 (16:9; the encoder may scale
    # it down a little), the cameras 640x480 (4:3), so ben's video changes shape.
    await call.py("ann.share_screen()")
    shared = await wait_pixels(call, BEN, f"p['width'] > 640 and {WIDE}")
    await call.wait_py("ann.screen_share", "True")
    await call.assert_video_flows(BEN)
    await call.py("ann.stop_sharing()")
    back = await wait_pixels(call, BEN, f"{FOUR_THREE} and p['std'] > 10")
    await call.wait_py("ann.screen_share, ann.error", "(False, '')")
    await call.wait_js(f"(id) => ({sender})('{ANN}').getSettings().deviceId === id", other["id"])
    print("screen", shared, "camera again", back)
    # All of it by replaceTrack: the offer ben holds was never renegotiated.
    sdp_after = await call.page.evaluate("(u) => window.__nbcall.phones[u].pc.remoteDescription.sdp", BEN)
    assert sdp_after == sdp_before
    # The widget offers the same: a camera list (plus "default camera"); choosing there switches too.
    select = call.page.locator(f'.nbcall-root[data-user="{ANN}"] select.nbcall-camera').first
    assert await select.locator("option").count() == len(cameras) + 1
    await select.select_option(cameras[0]["id"])
    await call.wait_py("ann.camera", cameras[0]["id"])
    await call.wait_js(f"(id) => ({sender})('{ANN}').getSettings().deviceId === id", cameras[0]["id"])
    await call.assert_video_flows(BEN)
    # The microphone too: another fake input, and ben still hears the beeps.
    mics = await py_json(call, "ann.microphones")
    assert len(mics) >= 2, mics
    await call.py(f"ann.microphone = {mics[-1]['id']!r}")
    mic = "(u) => window.__nbcall.phones[u].pc.getSenders().find((s) => s.track && s.track.kind === 'audio').track"
    await call.wait_js(f"(id) => ({mic})('{ANN}').getSettings().deviceId === id", mics[-1]["id"])
    assert await audio_energy_gain(call, BEN) > 0.01
    sdp_after = await call.page.evaluate("(u) => window.__nbcall.phones[u].pc.remoteDescription.sdp", BEN)
    assert sdp_after == sdp_before


def parse_webm(data: bytes) -> dict[str, Any]:
    with av.open(io.BytesIO(data)) as container:
        assert container.format.name.startswith("matroska"), container.format.name
        stream = container.streams.video[0]
        info: dict[str, Any] = {"codec": stream.codec_context.name, "kinds": [s.type for s in container.streams]}
        frames = 0
        first = last = None
        for frame in container.decode(stream):
            frames += 1
            info["width"], info["height"] = frame.width, frame.height
            t = float(frame.pts * stream.time_base)
            first = t if first is None else first
            last = t
        info["frames"] = frames
        info["seconds"] = (last or 0) - (first or 0)
        return info


async def test_recording_three_seconds_is_a_valid_webm(call: Notebook, tmp_path: Any) -> None:
    target = tmp_path / "call.webm"
    await call.py("ann.start_recording('remote')")
    await call.wait_py("ann.recording_state", "recording")
    await asyncio.sleep(3)
    await call.py(f"ann.stop_recording({str(target)!r})")
    await call.wait_py("ann.recording_state", "done")
    data = target.read_bytes()
    assert await call.py("print(ann.recording == open(" + repr(str(target)) + ", 'rb').read(), len(recorded))") == (
        "True 1\n"
    )
    info = parse_webm(data)
    print(f"recording {len(data)} bytes: {info}")
    assert info["codec"] in ("vp8", "vp9") and "video" in info["kinds"] and "audio" in info["kinds"], info
    assert info["width"] * 3 == info["height"] * 4 and 160 <= info["width"] <= 640, info  # ben's 4:3 camera
    assert info["frames"] > 10 and 1.5 <= info["seconds"] <= 4.5, info
    assert len(data) > 20_000


async def test_recording_from_the_widget_button_records_both(call: Notebook, tmp_path: Any) -> None:
    await call.click(ANN, ".nbcall-record")
    await call.wait_py("ann.recording_state", "recording")
    await asyncio.sleep(1.5)
    await call.click(ANN, ".nbcall-record")
    await call.wait_py("ann.recording_state, len(recorded)", "('done', 2)")
    target = tmp_path / "both.webm"
    await call.py(f"open({str(target)!r}, 'wb').write(recorded[-1])")
    info = parse_webm(target.read_bytes())
    assert info["frames"] > 5 and info["width"] * 3 == info["height"] * 4, info


async def test_chat_survives_an_ice_restart(call: Notebook) -> None:
    before = await call.page.evaluate(_UFRAG, BEN)
    await call.page.evaluate("(u) => window.__nbcall.phones[u].call.restartIce()", ANN)
    await call.wait_js(f"(b) => ({_UFRAG})('{BEN}') !== b", before, timeout=10)
    await call.wait_py("ann.state, ben.state", "('connected', 'connected')")
    await call.py("ben.send_chat('after restart ✓')")
    await call.wait_py("ann.messages[-1]['text']", "after restart ✓")
    await call.py("ann.send_chat('still here ✓')")
    await call.wait_py("got[-1]['text']", "still here ✓")


async def test_hangup_reason_and_final_duration(call: Notebook) -> None:
    await call.py("ann.hangup()")
    await call.wait_py("ann.end_reason, ben.end_reason", "('hangup', 'hangup')")
    # Stopped at the hang-up, seen without waiting for a tick that must not come: ben's page
    # has no clock ticking for it any more, its duration is now its end less its start, and
    # the kernel holds that figure.
    ticking, final = await call.page.evaluate(
        """(u) => {
          const f = [...window.__nbcallModels.values()].find((c) => c.phone.user === u).features;
          return [f.timer !== undefined || !f.endedAt, Math.round(f.duration * 10) / 10];
        }""",
        BEN,
    )
    assert not ticking and final > 5, (ticking, final)
    await call.wait_py("ben.duration", repr(float(final)))
    assert await call.py("ann.send('late')") != ""  # CallError: no connected call


async def test_camera_turned_on_in_a_call_that_started_without_it(call: Notebook) -> None:
    await call.wait_py("ann.state, ben.state", "('ended', 'ended')")
    await call.py(f"ben.video = False\nann.call({BEN!r})")
    await call.wait_py("ben.state", "ringing")
    await call.py("ben.accept()")
    await call.wait_py("ann.state, ben.state, ann.remote_video", "('connected', 'connected', False)")
    assert (await call.video_stats(ANN))["frames"] == 0  # ben sends no video at all
    await call.py("ben.video = True")  # opens the camera now; one (perfect) renegotiation
    await call.wait_py("ann.remote_video", "True")
    await call.assert_video_flows(ANN)
    await wait_pixels(call, ANN, f"p['std'] > 10 and {FOUR_THREE}")
    await call.py("ann.hangup()")
    await call.wait_py("ann.state, ben.state", "('ended', 'ended')")

async def test_demo_notebook_cell_by_cell(lab: Lab) -> None:
    """notebooks/in_call_features.ipynb, run the way a reader runs it: one cell at a time."""
    from .test_demo_notebooks import code_cells, copy_demo, run_cell

    path = copy_demo(lab, "in_call_features.ipynb")
    nb = await lab.open(path, users=[], run_all=False)
    # Before running a cell starting with a key: wait for what a reader would see first.
    before = {
        'alice.call("bob")': ("'bob' in alice.peers", "True"),
        "bob.remote_video, bob.remote_audio": ("bob.remote_video, bob.remote_audio", "(False, False)"),
        "alice.cameras": ("bob.remote_video and len(alice.cameras) == 3", "True"),
        "received = []": ("alice.camera == alice.cameras[-1]['id'] and not alice.error", "True"),
        "bob.messages, received": ("len(received)", "1"),
        "snap\n": ("snap.ready", "True"),
        "alice.stop_recording": ("alice.recording_state", "recording"),
        "alice.recording_state,": ("alice.recording_state", "done"),
        "{k: alice.stats": ("alice.stats.get('candidate_type')", "host"),
    }
    outputs: dict[str, str] = {}
    try:
        for index, source in code_cells(nb, lab.root / path):
            for key, (expr, expected) in before.items():
                if (source + "\n").startswith(key):
                    await nb.wait_py(expr, expected)
            if source.startswith("alice.stop_recording"):
                await asyncio.sleep(2)
            outputs[source] = await run_cell(nb, index)
            if source.startswith('alice.call("bob")'):
                await nb.wait_py("alice.state, bob.state", "('connected', 'connected')")

        def out(prefix: str) -> str:
            return next(text for src, text in outputs.items() if src.startswith(prefix))

        assert "(False, False)" in out("bob.remote_video, bob.remote_audio")
        assert "hello bob" in out("bob.messages, received"), out("bob.messages, received")
        assert "image/png" in outputs["snap"], outputs["snap"][:300]  # the cell that only shows it
        shape = re.search(r"\((\d+), (\d+), 3\)", out("(snap.array.shape"))
        assert shape and int(shape[1]) * 4 == int(shape[2]) * 3, out("(snap.array.shape")
        assert "'done'" in out("alice.recording_state")
        assert "'host'" in out("{k: alice.stats")
        size = await nb.py("print(len(open('call.webm', 'rb').read()) > 10_000)")
        assert size.strip() == "True"
    finally:
        await nb.close()


async def test_demo_notebook_run_all(lab: Lab) -> None:
    """notebooks/in_call_features.ipynb with Run All: what needs the call waits for it, in order."""
    from .test_demo_notebooks import assert_no_failures, hang_up, run_all_until_connected

    nb = await run_all_until_connected(lab, "in_call_features.ipynb", "alice", "bob")
    try:
        await nb.assert_video_flows("alice")
        await nb.assert_video_flows("bob")
        # Queued behind the call: the chat line, bob's snapshot, alice's (short) recording.
        await nb.wait_py("[(m['from'], m['text']) for m in received]", "[('alice', 'hello bob 👋 你好')]")
        await nb.wait_py("bool(snap.ready and snap.array is not None and snap.array.std() > 10)", "True")
        await nb.wait_py("alice.recording_state", "done")
        await nb.wait_py("alice.video, alice.audio, bob.remote_video, bob.remote_audio", "(True, True, True, True)")
        await assert_no_failures(nb, "alice", "bob")
        await hang_up(nb, "alice", "bob")
    finally:
        await nb.close()
