"""Frames and recordings that the browser sends to the kernel.

The browser answers between cells, so nothing here waits: a :class:`Snapshot` is returned
empty and fills when its frame arrives; a :class:`RecordingAssembler` collects a recording's
chunks (one comm message each, in sequence) and hands over the whole file when the last
one is in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

WHICH = ("remote", "local")
RECORD_WHICH = ("remote", "local", "both")


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

    def _fill(self, content: dict[str, Any], buffers: Sequence[Any]) -> None:
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
        return sum(len(c) for c in self.chunks.values())
