"""Frames and recordings that the browser sends to the kernel.

The browser answers between cells, so nothing here waits: a :class:`Snapshot` is returned
empty and fills when its frame arrives; a :class:`RecordingAssembler` collects a recording's
chunks (one comm message each, in sequence) and hands over the whole file when the last
one is in.  :class:`MediaInbox` is one widget's share of this: it handles the page's
``snapshot_taken`` and ``recording_*`` messages.
"""

from __future__ import annotations

import logging
import pathlib
import secrets
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

MAX_SNAPSHOTS = 20  # snapshots kept in CallWidget.snapshots
#: Handlers of page -> kernel messages: ``handler(content, buffers)``.
Handlers = dict[str, Callable[[dict[str, Any], list[Any]], None]]


def _as_bytes(buffer: Any) -> bytes:
    return buffer.tobytes() if isinstance(buffer, memoryview) else bytes(buffer)


class Snapshot:
    """One video frame from the browser, filled in when it arrives (between cells).

    ``CallWidget.snapshot()`` returns this at once: the browser grabs the frame and sends it
    back, and the kernel can only read that message after the current cell finishes. So
    look at it in a *later* cell, or pass a callback. Until then ``ready`` is False and
    ``png``/``array`` are None.

    - ``png``: the frame as PNG bytes (``display(snapshot)`` shows it in the notebook).
    - ``array``: a numpy ``(height, width, 3)`` uint8 RGB array, decoded in the browser
      (raw RGBA pixels travel as a second buffer), so no image library is needed.
    - ``error``: why there is no frame (no video yet, call ended, ...), else ``""``.
    """

    def __init__(self, which: str, request_id: str | None = None) -> None:
        self.which = which
        self.id = request_id
        self.ready = False
        self.error = ""
        self.width = 0
        self.height = 0
        self.png: bytes | None = None
        self._rgba: bytes | None = None
        self._callbacks: list[Callable[[Snapshot], Any]] = []

    @property
    def array(self) -> Any:
        """The frame as a numpy array (height, width, 3) of uint8 RGB, or None until it arrives."""
        if self._rgba is None:
            return None
        import numpy as np  # only needed by those who ask for arrays

        rgba = np.frombuffer(self._rgba, dtype=np.uint8).reshape(self.height, self.width, 4)
        return rgba[:, :, :3].copy()

    def on_ready(self, callback: Callable[[Snapshot], Any]) -> None:
        """Call ``callback(snapshot)`` when the frame (or an error) arrives; at once if it already has."""
        if self.ready or self.error:
            callback(self)
        else:
            self._callbacks.append(callback)

    def fill(self, content: dict[str, Any], buffers: Sequence[Any]) -> None:
        """Take the page's answer: the frame (RGBA buffers) or why there is none."""
        if content.get("ok") and len(buffers) >= 2:
            width, height = int(content.get("width", 0)), int(content.get("height", 0))
            rgba = _as_bytes(buffers[1])
            if width <= 0 or height <= 0 or len(rgba) != width * height * 4:
                self.error = f"malformed frame: {width}x{height}, {len(rgba)} bytes of pixels"
            else:
                self.width, self.height = width, height
                self.png = _as_bytes(buffers[0])
                self._rgba = rgba
                self.ready = True
        else:
            self.error = str(content.get("error") or "the browser sent no frame")
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("snapshot callback failed")

    def _repr_png_(self) -> bytes | None:
        return self.png

    def __repr__(self) -> str:
        if self.ready:
            return f"Snapshot({self.which}, {self.width}x{self.height}, {len(self.png or b'')} bytes PNG)"
        if self.error:
            return f"Snapshot({self.which}, error={self.error!r})"
        return f"Snapshot({self.which}, pending: arrives after this cell)"


class RecordingAssembler:
    """Collects one recording's chunks (``recording_chunk`` messages, numbered from 0)."""

    def __init__(self, recording_id: str, which: str, mime: str) -> None:
        self.id = recording_id
        self.which = which
        self.mime = mime
        self.chunks: dict[int, bytes] = {}

    def add(self, seq: int, buffers: Sequence[Any]) -> None:
        """Keep chunk number ``seq`` (its buffers joined)."""
        if buffers:
            self.chunks[seq] = b"".join(_as_bytes(b) for b in buffers)

    def finish(self, count: int) -> bytes:
        """The whole file; raises ValueError when a chunk is missing."""
        missing = [i for i in range(count) if i not in self.chunks]
        if missing:
            raise ValueError(f"recording incomplete: {len(missing)} of {count} chunks missing (first: {missing[0]})")
        return b"".join(self.chunks[i] for i in range(count))

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return sum(len(c) for c in self.chunks.values())


class MediaInbox:
    """One widget's snapshots and recordings, as the page sends them back (between cells).

    ``set_recording_state`` and ``set_error`` write the widget's ``recording_state`` and
    ``error`` traits; the widget sends the commands (``snapshot``, ``recording_start`` ...)
    and calls :meth:`expect_snapshot`, :meth:`expect_recording` and :meth:`expect_stop`.
    """

    def __init__(self, set_recording_state: Callable[[str], None], set_error: Callable[[str], None]) -> None:
        self._set_recording_state = set_recording_state
        self._set_error = set_error
        self._pending: dict[str, Snapshot] = {}
        self.snapshots: list[Snapshot] = []  # every frame received, newest last (last MAX_SNAPSHOTS)
        self._recordings: dict[str, RecordingAssembler] = {}
        self.recording: bytes | None = None  # the last finished recording
        self._path: str | None = None
        self._callbacks: list[Callable[[bytes], Any]] = []

    def handlers(self) -> Handlers:
        """The page -> kernel messages this part handles, for the widget's dispatcher."""
        return {
            "snapshot_taken": self.snapshot_taken,
            "recording_started": lambda content, _buffers: self.recording_started(content),
            "recording_chunk": self.recording_chunk,
            "recording_done": lambda content, _buffers: self.recording_done(content),
            "recording_failed": lambda content, _buffers: self.recording_failed(content),
        }

    # -- snapshots ---------------------------------------------------------------------------

    def expect_snapshot(self, which: str, callback: Callable[[Snapshot], Any] | None = None) -> Snapshot:
        """A new, empty :class:`Snapshot` with a fresh id, filled when ``snapshot_taken`` brings that id."""
        snap = Snapshot(which, secrets.token_hex(6))
        if callback is not None:
            snap.on_ready(callback)
        self._pending[str(snap.id)] = snap
        return snap

    def snapshot_taken(self, content: dict[str, Any], buffers: list[Any]) -> None:
        """A frame (or why there is none); one the kernel did not ask for comes from the widget's button."""
        rid = str(content.get("id") or "")
        snap = self._pending.pop(rid, None) or Snapshot(str(content.get("which", "remote")), rid or None)
        snap.fill(content, buffers)
        if snap.ready:
            self.snapshots = [*self.snapshots, snap][-MAX_SNAPSHOTS:]

    # -- recordings --------------------------------------------------------------------------

    def on_recording(self, callback: Callable[[bytes], Any]) -> None:
        """Call ``callback(webm_bytes)`` whenever a recording is complete."""
        self._callbacks.append(callback)

    def expect_recording(self) -> None:
        """A recording was asked for: the previous one is no longer ``recording``."""
        self.recording = None
        self._path = None

    def expect_stop(self, path: str | None) -> None:
        """The recording was asked to stop; write the file to ``path`` (if given) when it is in."""
        self._path = path

    def recording_started(self, content: dict[str, Any]) -> None:
        """The page started a recording (asked from Python or by the widget's button)."""
        rid = content["id"]
        self._recordings = {rid: RecordingAssembler(rid, content["which"], content["mime"])}
        self.recording = None
        self._path = None  # a path belongs to the stop_recording() of this recording only
        self._set_recording_state("recording")

    def recording_chunk(self, content: dict[str, Any], buffers: list[Any]) -> None:
        """One chunk of the recording, in any order."""
        assembler = self._recordings.get(content["id"])
        if assembler is None:
            log.info("recording_chunk of recording %r, which is not in progress: dropped", content["id"])
        else:
            assembler.add(content["seq"], buffers)

    def recording_failed(self, content: dict[str, Any]) -> None:
        """The page could not record (it reports the reason in ``action_failed`` and ``error`` too)."""
        self._recordings.pop(content["id"], None)
        log.info("recording %r failed: %s", content["id"], content["message"])
        self._set_recording_state("error")

    def recording_done(self, content: dict[str, Any]) -> None:
        """The last chunk is sent: assemble the file, write it to the path asked for, tell the callbacks."""
        assembler = self._recordings.pop(content["id"], None)
        if assembler is None:
            log.info("recording_done of recording %r, which is not in progress: ignored", content["id"])
            return
        try:
            data = assembler.finish(content["chunks"])
        except ValueError as exc:
            self._set_error(str(exc))
            self._set_recording_state("error")
            return
        self.recording = data
        path, self._path = self._path, None
        if path:
            try:
                pathlib.Path(path).write_bytes(data)
            except OSError as exc:  # the bytes are still in .recording
                self._set_error(f"could not write the recording to {path}: {exc}")
        self._set_recording_state("done")
        for callback in list(self._callbacks):
            try:
                callback(data)
            except Exception:
                log.exception("recording callback failed")
