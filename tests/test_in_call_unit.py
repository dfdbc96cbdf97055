"""In-call features of CallWidget without a browser: the messages it sends, and how it
assembles what the page sends back (snapshots, chunked recordings, chat callbacks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nbcall import CallWidget
from nbcall._errors import PageError
from nbcall._media import RecordingAssembler, Snapshot

from .error_helpers import raises_code

URL = "ws://127.0.0.1:1"  # never dialled


def connected_widget(**traits: Any) -> tuple[CallWidget, list[dict[str, Any]]]:
    w = CallWidget("ann", server=URL)
    w._handle_custom_msg({"kind": "view"}, [])
    w.set_trait("state", "connected")
    w.set_trait("peer", "ben")
    for name, value in traits.items():
        w.set_trait(name, value)
    sent: list[dict[str, Any]] = []
    original = CallWidget.send  # strings go through the real send (deprecated chat -> a dict), dicts are captured

    def capture(content: Any, buffers: Any = None) -> None:
        if isinstance(content, str):
            original(w, content)
        else:
            sent.append(content)

    w.send = capture  # type: ignore[method-assign]
    return w, sent


def test_new_traits_are_synced_and_documented() -> None:
    w = CallWidget("ann", server=URL)
    for name in ["remote_audio", "remote_video", "cameras", "microphones", "camera", "microphone"]:
        assert w.traits()[name].metadata.get("sync") is True and w.traits()[name].help, name
    for name in ["screen_share", "recording_state", "connected_at", "duration"]:
        assert w.traits()[name].metadata.get("sync") is True and w.traits()[name].help, name
    # The chat history is kernel-side: the page reports each line once (tests/test_chat.py).
    assert w.traits()["messages"].metadata.get("sync") is None and w.traits()["messages"].help
    assert (w.remote_audio, w.remote_video, w.screen_share, w.recording_state, w.duration) == (
        True,
        True,
        False,
        "idle",
        0.0,
    )


def test_actions_need_a_connected_call() -> None:
    w = CallWidget("ann", server=URL)
    w._handle_custom_msg({"kind": "view"}, [])
    w.set_trait("state", "idle")
    for action in (lambda: w.send_chat("hi"), w.share_screen, w.snapshot, w.start_recording):
        with raises_code(PageError.NOT_CONNECTED):
            action()
    with raises_code(PageError.NOT_RECORDING):
        w.stop_recording()


def test_chat_and_commands_are_messages_with_a_kind() -> None:
    w, sent = connected_widget()
    w.send_chat("你好 👋")
    snap = w.snapshot("local")
    w.start_recording("both")
    assert sent[0] == {"kind": "chat", "text": "你好 👋"}
    assert sent[1] == {"kind": "snapshot", "id": snap.id, "which": "local"}
    assert sent[2] == {"kind": "recording_start", "which": "both"}
    with pytest.raises(ValueError):
        w.snapshot("left")
    with pytest.raises(ValueError):
        w.start_recording("nobody")
    with raises_code(PageError.INVALID_ARGUMENT):
        w.send_chat("")


def test_on_chat_reports_only_new_messages_from_the_other_side() -> None:
    w, _ = connected_widget()
    got: list[dict[str, Any]] = []
    w.on_chat(got.append)
    first = {"from": "ben", "text": "hi", "time": 1.0}
    mine = {"from": "ann", "text": "hello", "time": 2.0}
    second = {"from": "ben", "text": "ça va", "time": 3.0}
    w.set_trait("messages", [first])
    w.set_trait("messages", [first, mine])
    w.set_trait("messages", [first, mine, second])
    assert got == [first, second]


def test_snapshot_fills_when_the_frame_arrives() -> None:
    w, _ = connected_widget()
    called: list[Snapshot] = []
    snap = w.snapshot(callback=called.append)
    assert not snap.ready and snap.png is None and snap.array is None and "pending" in repr(snap)
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[1, 2] = (1, 2, 3, 255)
    content = {"kind": "snapshot_taken", "id": snap.id, "which": "remote", "ok": True, "width": 3, "height": 2}
    w._handle_custom_msg(content, [memoryview(b"\x89PNG fake"), memoryview(rgba.tobytes())])
    assert snap.ready and called == [snap] and w.snapshots == [snap]
    assert snap.png == b"\x89PNG fake" and snap._repr_png_() == snap.png
    assert snap.array.shape == (2, 3, 3) and snap.array.dtype == np.uint8
    assert tuple(snap.array[1, 2]) == (1, 2, 3) and snap.array[0, 0, 0] == 200


def test_snapshot_errors_and_malformed_frames() -> None:
    w, _ = connected_widget()
    snap = w.snapshot()
    failed = {"kind": "snapshot_taken", "id": snap.id, "which": "remote", "ok": False, "error": "no live video track"}
    w._handle_custom_msg(failed, [])
    assert not snap.ready and snap.error == "no live video track" and snap.array is None
    bad = w.snapshot()
    content = {"kind": "snapshot_taken", "id": bad.id, "which": "remote", "ok": True, "width": 10, "height": 10}
    w._handle_custom_msg(content, [b"png", b"short"])
    assert not bad.ready and "malformed" in bad.error
    late: list[Snapshot] = []
    bad.on_ready(late.append)  # after the fact: called at once
    assert late == [bad]


def test_recording_is_assembled_in_order_and_written(tmp_path: Path) -> None:
    w, sent = connected_widget()
    done: list[bytes] = []
    w.on_recording(done.append)
    w.start_recording()
    w._handle_custom_msg({"kind": "recording_started", "id": "r1", "which": "remote", "mime": "video/webm"}, [])
    assert w.recording_state == "recording"
    # Chunks may be handled out of order; the sequence numbers put them back.
    w._handle_custom_msg({"kind": "recording_chunk", "id": "r1", "seq": 1}, [memoryview(b"BBB")])
    w._handle_custom_msg({"kind": "recording_chunk", "id": "r1", "seq": 0}, [memoryview(b"AA")])
    target = tmp_path / "out.webm"
    w.stop_recording(str(target))
    assert sent[-1] == {"kind": "recording_stop"} and w.recording_state == "stopping" and w.recording is None
    w._handle_custom_msg({"kind": "recording_chunk", "id": "r1", "seq": 2}, [memoryview(b"C")])
    w._handle_custom_msg({"kind": "recording_done", "id": "r1", "chunks": 3}, [])
    assert w.recording == b"AABBBC" and target.read_bytes() == b"AABBBC" and done == [b"AABBBC"]
    assert w.recording_state == "done"


def test_a_missing_chunk_is_an_error_not_a_corrupt_file() -> None:
    w, _ = connected_widget()
    w._handle_custom_msg({"kind": "recording_started", "id": "r2", "which": "local", "mime": "video/webm"}, [])
    w._handle_custom_msg({"kind": "recording_chunk", "id": "r2", "seq": 0}, [b"AA"])
    w._handle_custom_msg({"kind": "recording_done", "id": "r2", "chunks": 2}, [])
    assert w.recording is None and w.recording_state == "error" and "1 of 2 chunks missing" in w.error
    assembler = RecordingAssembler("x", "remote", "video/webm")
    assembler.add(0, [b"ab", b"cd"])
    assert assembler.finish(1) == b"abcd" and assembler.size == 4


def test_a_later_recording_from_the_widget_button_does_not_overwrite_the_file(tmp_path: Path) -> None:
    w, _ = connected_widget()
    target = tmp_path / "first.webm"
    w._handle_custom_msg({"kind": "recording_started", "id": "a", "which": "remote", "mime": "video/webm"}, [])
    w._handle_custom_msg({"kind": "recording_chunk", "id": "a", "seq": 0}, [b"first"])
    w.stop_recording(str(target))
    w._handle_custom_msg({"kind": "recording_done", "id": "a", "chunks": 1}, [])
    # The widget's Record button: started and stopped in the page, no path from Python.
    w._handle_custom_msg({"kind": "recording_started", "id": "b", "which": "both", "mime": "video/webm"}, [])
    w._handle_custom_msg({"kind": "recording_chunk", "id": "b", "seq": 0}, [b"second"])
    w._handle_custom_msg({"kind": "recording_done", "id": "b", "chunks": 1}, [])
    assert target.read_bytes() == b"first" and w.recording == b"second" and w.recording_state == "done"


def test_a_snapshot_from_the_widget_button_is_kept_too() -> None:
    w, _ = connected_widget()
    content = {"kind": "snapshot_taken", "id": "button-1", "which": "local", "ok": True, "width": 1, "height": 1}
    w._handle_custom_msg(content, [b"png", b"\x01\x02\x03\xff"])
    assert [s.id for s in w.snapshots] == ["button-1"] and w.snapshots[0].which == "local"


def test_deprecated_chat_aliases_warn_and_still_work() -> None:
    w, sent = connected_widget()
    with pytest.warns(DeprecationWarning, match=r"send_chat"):
        w.send("old way")
    with pytest.warns(DeprecationWarning, match=r"send_message\(\) is deprecated: use send_chat"):
        w.send_message("older way")
    assert sent == [{"kind": "chat", "text": "old way"}, {"kind": "chat", "text": "older way"}]
    got: list[dict[str, Any]] = []
    with pytest.warns(DeprecationWarning, match=r"on_message\(\) is deprecated: use on_chat"):
        w.on_message(got.append)
    w.set_trait("messages", [{"from": "ben", "text": "hi", "time": 1.0}])
    assert got == [{"from": "ben", "text": "hi", "time": 1.0}]


def test_send_with_a_dict_is_anywidgets_send_without_a_warning(recwarn: pytest.WarningsRecorder) -> None:
    w = CallWidget("ann", server=URL)
    w.send({"kind": "anything"})  # a plain comm message (no browser here: nowhere to go)
    assert not [r for r in recwarn if issubclass(r.category, DeprecationWarning)]


def test_recording_failed_and_stray_chunks() -> None:
    w, _ = connected_widget()
    w._handle_custom_msg({"kind": "recording_chunk", "id": "nope", "seq": 0}, [b"x"])  # no such recording
    w._handle_custom_msg({"kind": "recording_done", "id": "nope", "chunks": 1}, [])
    assert w.recording is None and w.recording_state == "idle" and not w._page_problems
    w._handle_custom_msg({"kind": "recording_started", "id": "r", "which": "remote", "mime": "video/webm"}, [])
    w._handle_custom_msg({"kind": "recording_failed", "id": "r", "message": "MediaRecorder: no tracks"}, [])
    assert w.recording_state == "error"
    # A chunk without its buffer is malformed: logged and kept, the recording untouched.
    w._handle_custom_msg({"kind": "recording_chunk", "id": "r", "seq": 0}, [])
    assert "needs 1 binary buffer" in w._page_problems[-1]
