"""nbcall.Peer with real aiortc and a real signaling server, no browser (browser tests: tests/e2e/test_peer_lab.py).

Two Peers call each other on loopback: frames with known colours and a counter arrive with
that content, a transform comes back, a tone is heard, chat goes both ways; the call API's
refusals, a raising callback, a busy calling thread, hostile data-channel messages, the
seed's way of calling, and a loopback-only network namespace.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from nbcall._errors import PageError
from nbcall._testing.processes import free_port, nbcall_server_cmd, serving
from nbcall.peer import AudioChunk, Frame, Peer, tone
from nbcall.peer._patterns import LEFT, RIGHT, pattern, read_bits
from nbcall.peer._workers import Worker
from nbcall.signaling.names import name_key
from nbcall.signaling.protocol import ErrorCode

from .error_helpers import raises_code

W, H = 320, 240


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    port = free_port()
    with serving(nbcall_server_cmd(port, "--log-level", "WARNING"), port, stdout=subprocess.DEVNULL):
        yield f"ws://127.0.0.1:{port}"


def until(check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what or check}")


def source(i: int, t: float) -> np.ndarray:
    return pattern(i, W, H)


def connect(peers: list[Peer], url: str, a: str, b: str, **kwargs: Any) -> tuple[Peer, Peer]:
    """``a`` (sending the counter pattern) calls ``b`` (built with kwargs), which answers."""
    caller = Peer(a, url, video=source, fps=30)
    callee = Peer(b, url, **kwargs)
    peers += [caller, callee]
    callee.on_incoming(lambda name: callee.accept())
    until(lambda: callee.name in caller.peers, what="presence")
    caller.call(callee.name)
    assert caller.wait("connected", "ended") == "connected", caller.error
    callee.wait("connected")
    return caller, callee


@pytest.mark.slow
def test_two_peers_frames_arrive_with_their_content(peers: list[Peer], url: str) -> None:
    seen: list[Frame] = []
    caller, callee = connect(peers, url, "p-a1", "p-b1")
    callee.on_frame(seen.append)
    until(lambda: len(seen) >= 30, what="30 frames")
    frame = seen[-1]
    assert frame.array.shape == (H, W, 3) and frame.array.dtype == np.uint8
    # The colours as sent (within codec error) and the counter rising frame after frame.
    left, right = frame.array[H - 20, W // 4].astype(int), frame.array[H - 20, 3 * W // 4].astype(int)
    assert np.abs(left - LEFT).max() < 30 and np.abs(right - RIGHT).max() < 30, (left, right)
    counters = [read_bits(f.array, 0) for f in seen[-20:]]
    assert counters == sorted(counters) and counters[-1] > counters[0], counters
    assert callee.latest_frame() is not None
    stats = callee.stats
    assert stats["frames_received"] >= 30 and (stats["width"], stats["height"]) == (W, H)
    assert caller.stats["frames_sent"] >= 30
    caller.hangup()
    until(lambda: callee.state == "ended")
    assert (caller.end_reason, callee.end_reason) == ("hangup", "hangup")


def test_transform_comes_back_and_tone_is_heard(peers: list[Peer], url: str) -> None:
    back: list[Frame] = []
    heard: list[AudioChunk] = []

    def effect(image: np.ndarray) -> np.ndarray:
        out = image[:, ::-1].copy()  # mirrored ...
        out[-40:] = (0, 255, 0)  # ... with a green band at the bottom
        return out

    caller, _callee = connect(peers, url, "p-a2", "p-b2", video_transform=effect, audio=tone(1000))
    caller.on_frame(back.append)
    caller.on_audio(heard.append)
    until(lambda: len(back) >= 10 and len(heard) >= 50, what="transformed frames and audio")
    image = back[-1].array.astype(int)
    assert np.abs(image[H - 20, W // 2] - (0, 255, 0)).max() < 40  # the band
    # Mirrored: what was LEFT is now on the right.
    assert np.abs(image[H // 2, 3 * W // 4] - LEFT).max() < 30 and np.abs(image[H // 2, W // 4] - RIGHT).max() < 30
    chunk = heard[-1]
    assert chunk.sample_rate == 48000 and chunk.samples.dtype == np.int16
    pcm = np.concatenate([c.samples[:, 0] for c in heard[-25:]]).astype(float)
    spectrum = np.abs(np.fft.rfft(pcm))
    peak = np.fft.rfftfreq(len(pcm), 1 / chunk.sample_rate)[spectrum.argmax()]
    assert abs(peak - 1000) < 20, peak


@pytest.mark.slow
def test_chat_both_ways_non_ascii(peers: list[Peer], url: str) -> None:
    caller, callee = connect(peers, url, "p-a3", "p-b3")
    got: list[dict[str, Any]] = []
    callee.on_chat(got.append)
    until(lambda: caller.stats["channel"]["open"] and callee.stats["channel"]["open"], what="channel open")
    caller.send_chat("héllo 小文 👋")
    until(lambda: got, what="chat")
    assert got[0]["from"] == caller.name and got[0]["text"] == "héllo 小文 👋"
    callee.send_chat("ça va? Ελλάδα")
    until(lambda: any(m["text"] == "ça va? Ελλάδα" for m in caller.messages))
    assert [m["from"] for m in caller.messages] == [caller.name, callee.name]
    with raises_code(ErrorCode.TOO_LARGE):
        caller.send_chat("x" * 4001)
    with raises_code(ErrorCode.RATE_LIMITED):
        for _ in range(30):
            caller.send_chat("flood")
    # Heartbeats keep both sides "connected" (not reconnecting).
    time.sleep(2.0)
    assert caller.peer_status == callee.peer_status == "connected"


def test_refusals_and_closing_twice(peers: list[Peer], url: str) -> None:
    caller, callee = connect(peers, url, "p-a4", "p-b4")
    third = Peer("p-c4", url)
    peers.append(third)
    until(lambda: caller.name in third.peers)
    with raises_code(PageError.IN_CALL):
        caller.call(third.name)
    with raises_code(ErrorCode.NO_CALL):
        caller.accept()
    with raises_code(ErrorCode.SELF_CALL):
        third.call("P-C4")
    with raises_code(ErrorCode.UNKNOWN_PEER):
        third.call("nobody-here")
    with raises_code(ErrorCode.NO_CALL):
        third.hangup()
    third.call(caller.name)  # the server answers busy
    until(lambda: third.state == "ended")
    assert third.end_reason == "busy" and caller.state == "connected"
    with pytest.raises(ValueError, match="invalid name"):
        Peer("bad\u200bname", url)
    with raises_code(ErrorCode.NAME_TAKEN):
        # Another user's name (here: registered through another URL, so not a re-run) is not taken over.
        Peer("P-C4", url.replace("127.0.0.1", "localhost"), timeout=5).close()
    callee.close()
    callee.close()  # twice: nothing
    until(lambda: caller.state == "ended")
    assert caller.end_reason == "closed"
    with raises_code(PageError.CLOSED):
        callee.call(caller.name)


def test_reject_and_cancel(peers: list[Peer], url: str) -> None:
    a, b = Peer("p-a5", url), Peer("p-b5", url)
    peers += [a, b]
    until(lambda: b.name in a.peers)
    a.call(b.name)
    until(lambda: b.state == "ringing")
    assert b.incoming == a.name
    b.reject()
    until(lambda: a.state == "ended")
    assert (a.end_reason, b.end_reason) == ("rejected", "rejected")
    a.call(b.name)
    until(lambda: b.state == "ringing")
    a.hangup()
    until(lambda: b.state == "ended")
    assert (a.end_reason, b.end_reason) == ("cancelled", "cancelled")


def test_a_raising_callback_is_logged_counted_and_the_call_goes_on(
    peers: list[Peer], url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caller, callee = connect(peers, url, "p-a6", "p-b6")
    good: list[int] = []

    def bad(frame: Frame) -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="nbcall.peer"):
        callee.on_frame(bad)
        callee.on_frame(lambda f: good.append(f.index))
        until(lambda: len(good) >= 20)
    assert callee.stats["callback_errors"] >= 20
    assert "boom" in callee.stats["last_error"]
    assert any("on_frame raised" in r.getMessage() for r in caplog.records)
    assert callee.state == caller.state == "connected"


@pytest.mark.slow
def test_a_busy_calling_thread_does_not_stop_frames(peers: list[Peer], url: str) -> None:
    _caller, callee = connect(peers, url, "p-a7", "p-b7")
    arrivals: list[tuple[float, int]] = []
    callee.on_frame(lambda f: arrivals.append((time.monotonic(), read_bits(f.array, 0))))
    until(lambda: arrivals)
    start = time.monotonic()
    time.sleep(5)  # a long cell: this thread holds nothing the Peer needs
    end = time.monotonic()
    during = [counter for at, counter in arrivals if start < at < end]
    assert len(during) >= 25, len(during)
    assert during == sorted(during) and during[-1] > during[0]
    assert callee.state == "connected" and callee.peer_status == "connected"


def test_latest_frame_semantics_skip_and_count() -> None:
    handled: list[int] = []
    gate = threading.Event()

    def slow(item: int) -> None:
        gate.wait(5)
        handled.append(item)

    worker = Worker("test", slow, maxlen=1)
    for i in range(100):
        worker.put(i)
    gate.set()
    until(lambda: handled and handled[-1] == 99)
    worker.stop()
    assert len(handled) <= 2 and worker.dropped >= 98  # never a backlog


@pytest.mark.slow
def test_hostile_data_channel_input(peers: list[Peer], url: str) -> None:
    caller, callee = connect(peers, url, "p-a8", "p-b8")
    until(lambda: caller.stats["channel"]["open"] and callee.stats["channel"]["open"], what="channel open")
    got: list[dict[str, Any]] = []
    callee.on_chat(got.append)
    channel = caller._channel
    assert channel is not None
    hostile = [
        b"\x00binary",  # not text
        "x" * 100_000,  # oversized
        "{not json",
        "[]",
        json.dumps({"kind": "chat"}),  # no text
        json.dumps({"kind": "chat", "text": ""}),
        json.dumps({"kind": "chat", "text": "y" * 4001}),
        json.dumps({"kind": "chat", "text": 5}),
        json.dumps({"kind": "media", "audio": "yes", "video": True}),
        json.dumps({"kind": "heartbeat", "seq": "one"}),
    ]
    for data in hostile:
        caller._loop.call(channel.channel.send, data)
    caller._loop.call(channel.channel.send, json.dumps({"kind": "future-kind", "x": 1}))
    caller._loop.call(
        channel.channel.send, json.dumps({"kind": "chat", "text": "ok", "from": "mallory", "time": float("1e300")})
    )
    until(lambda: got, what="the valid chat line")
    dropped = callee.stats["channel"]["dropped"]
    assert dropped["malformed"] == len(hostile), dropped
    assert callee.stats["channel"]["ignored"] == 1
    assert got[0]["from"] == caller.name and abs(got[0]["time"] - time.time()) < 60  # not mallory, not 1e300
    # A flood: at most the chat burst gets through, the rest is counted; the call goes on.
    for i in range(300):
        caller._loop.call(channel.channel.send, json.dumps({"kind": "chat", "text": f"flood {i}"}))
    until(lambda: callee.stats["channel"]["dropped"]["flood"] >= 250, what=f"flood counted {callee.stats}")
    assert len(got) <= 1 + 20 + 5
    assert len(callee.messages) <= 200
    assert callee.state == "connected"
    time.sleep(2.5)  # the flood's bucket refills; then media state is understood again
    caller._loop.call(channel.channel.send, json.dumps({"kind": "media", "audio": False, "video": False}))
    until(lambda: not callee.remote_video and not callee.remote_audio, what="media state")


def test_seed_style_plain_offer_rings_a_peer(peers: list[Peer], url: str) -> None:
    """A caller that sends only a plain offer (the seed's way, no invite) reaches a Peer."""
    seedish = Peer("p-seed9", url, video=source)
    callee = Peer("p-b9", url)
    peers += [seedish, callee]
    callee.on_incoming(lambda name: callee.accept())
    frames: list[Frame] = []
    callee.on_frame(frames.append)
    until(lambda: callee.name in seedish.peers)
    control = seedish._control
    # Make seedish call the seed's way: a plain offer, as if its invite had been accepted by a seed callee.
    control.peer, control.peer_key, control.seed_call = callee.name, name_key(callee.name), True
    control.machine.move("calling", "test: as if seedish had invited")
    control.machine.move("connecting", "test: as if a seed callee had accepted")
    control.session = seedish.new_session(False)
    seedish._loop.run(control._offer(), 10)
    until(lambda: callee.state == "connected" and len(frames) >= 5, what="seed-style call")
    assert callee.incoming == "" and callee.peer == seedish.name
    assert np.abs(frames[-1].array[H - 20, W // 4].astype(int) - LEFT).max() < 30


def test_rerun_replaces_the_peer_of_the_same_name(peers: list[Peer], url: str) -> None:
    first = Peer("p-re", url)
    second = Peer("p-re", url)  # as a cell run again
    peers += [first, second]
    assert first.closed and second.state == "idle"
    assert threading.active_count() < 200


LOOPBACK_SCRIPT = """
import sys, time
import numpy as np
from nbcall.peer import Peer
url = sys.argv[1]
a = Peer("lo-a", url, video=lambda i, t: np.full((120, 160, 3), 90, np.uint8))
b = Peer("lo-b", url)
b.on_incoming(lambda c: b.accept())
while "lo-b" not in a.peers:
    time.sleep(0.05)
a.call("lo-b")
print(a.wait("connected", "ended", timeout=15), a.end_reason)
deadline = time.monotonic() + 10
while b.stats["frames_received"] < 10 and time.monotonic() < deadline:
    time.sleep(0.05)
print("frames", b.stats["frames_received"])
a.close(); b.close()
"""


@pytest.mark.slow
def test_loopback_only_machine() -> None:
    """In a network namespace with only `lo` (as CI), two Peers connect over 127.0.0.1."""
    unshare = shutil.which("unshare")
    assert unshare, "util-linux unshare is needed for this test"
    port = free_port()
    # The server is stopped by its pid before the namespace's shell exits (an orphan would outlive the test).
    inner = (
        f"ip link set lo up; {' '.join(nbcall_server_cmd(port, '--log-level', 'WARNING'))} >/dev/null 2>&1 & "
        f'server=$!; sleep 1.5; {sys.executable} -c "$SCRIPT" ws://127.0.0.1:{port}; '
        "kill $server; wait $server 2>/dev/null; true"
    )
    done = subprocess.run(
        [unshare, "-rn", "bash", "-c", inner], env={"SCRIPT": LOOPBACK_SCRIPT, "PATH": "/usr/sbin:/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert "connected" in out.splitlines()[0] if out else False, out
    frames = int(out.split("frames ")[1].split()[0])
    assert frames >= 10, out
