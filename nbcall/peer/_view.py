"""``Peer.view()``: a small live preview (received | sent) at a bounded rate.

An ipywidgets ``HBox`` of two ``Image`` widgets, refreshed by a daemon thread at most
``fps`` times a second with PNGs of at most ``width`` pixels across (nearest-neighbour
downscale in numpy, PNG with zlib level 1: no image library).  What reaches the comm is
bounded by construction: at most ``2 * fps`` images a second of at most
``width x width*3/4`` pixels each, and only when the frame changed; a kernel busy with a
cell does not queue updates (each refresh replaces the last value).
"""

from __future__ import annotations

import struct
import threading
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ._peer import Peer

MAX_FPS = 10.0
MAX_WIDTH = 640
Array = np.ndarray[Any, Any]


def png(array: Array) -> bytes:
    """An RGB PNG of an H x W x 3 uint8 array."""
    height, width = array.shape[:2]
    raw = np.zeros((height, width * 3 + 1), np.uint8)  # filter byte 0 ("none") per row
    raw[:, 1:] = array.reshape(height, width * 3)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 1))
        + chunk(b"IEND", b"")
    )


def shrink(array: Array, width: int) -> Array:
    """``array`` at most ``width`` wide (nearest neighbour, aspect kept)."""
    step = max(1, -(-array.shape[1] // width))
    return np.ascontiguousarray(array[::step, ::step])


class PeerView:
    """The preview of one Peer; stops with the Peer (or :meth:`stop`)."""

    def __init__(self, peer: Peer, fps: float, width: int) -> None:
        import ipywidgets  # type: ignore[import-untyped]

        self.peer = peer
        self.interval = 1.0 / min(max(fps, 0.1), MAX_FPS)
        self.width = min(max(width, 16), MAX_WIDTH)
        layout = {"width": f"{self.width}px"}
        self.received = ipywidgets.Image(format="png", layout=layout)
        self.sent = ipywidgets.Image(format="png", layout=layout)
        self.label = ipywidgets.Label(value=repr(peer))
        self.widget = ipywidgets.VBox([self.label, ipywidgets.HBox([self.received, self.sent])])
        self.updates = 0
        self._stop = threading.Event()
        self._last_in = -1
        self._last_out: int | None = None
        self.thread = threading.Thread(target=self._run, name=f"nbcall-peer-{peer.name}-view", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # a closed comm, a kernel shutting down: the preview just stops
                return

    def refresh(self) -> None:
        """One update (only what changed)."""
        peer = self.peer
        label = f"{peer!r}  in {peer.stats['fps']} fps"
        if label != self.label.value:
            self.label.value = label
        frame = peer.latest_frame()
        if frame is not None and frame.index != self._last_in:
            self._last_in = frame.index
            self.received.value = png(shrink(frame.array, self.width))
            self.updates += 1
        latest = peer.last_sent_frame()
        if latest is not None and id(latest) != self._last_out:
            self._last_out = id(latest)
            self.sent.value = png(shrink(latest, self.width))
            self.updates += 1

    def stop(self) -> None:
        self._stop.set()
