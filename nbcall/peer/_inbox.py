"""What a Peer receives, as numpy: video frames (latest only) and audio chunks (bounded).

The Peer's loop only takes decoded frames from aiortc and hands them over; converting to
RGB and running user code happen in worker threads (:mod:`._workers`):

- video: a worker of one slot.  A frame not yet taken when the next arrives is replaced
  and counted (``skipped``): a slow ``on_frame`` or ``video_transform`` sees fewer frames,
  never older ones, and nothing queues.  A frame over :data:`MAX_IN_PIXELS` (the other
  side chooses the size) is counted in ``oversized`` and not converted.
- audio: a worker of :data:`AUDIO_QUEUE` chunks (about a second); older chunks are dropped
  and counted when callbacks fall behind.

Each callback is run on its own: one that raises is logged and counted
(``callback_errors``), and the others, the transform and the call go on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ._tracks import TransformTrack
from ._workers import Worker

log = logging.getLogger("nbcall.peer")

MAX_IN_PIXELS = 3840 * 2160
AUDIO_QUEUE = 50  # 20 ms chunks: about a second
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Frame:
    """One received video frame.

    ``array``: H x W x 3 uint8 RGB.  ``time``: its media timestamp in seconds (the sender's
    RTP clock, from an arbitrary start).  ``received``: ``time.time()`` when it arrived
    from the network, decoded.  ``index``: frames received in this Peer's life before it.
    """

    array: Array
    time: float
    received: float
    index: int

    @property
    def height(self) -> int:
        return int(self.array.shape[0])

    @property
    def width(self) -> int:
        return int(self.array.shape[1])


@dataclass(frozen=True)
class AudioChunk:
    """Received audio: ``samples`` (n x channels int16), ``sample_rate`` (Hz), ``time`` (media seconds)."""

    samples: Array
    sample_rate: int
    time: float
    received: float


class Inbox:
    """Frames and audio from the call's peer to Python callbacks, an async iterator and ``latest``."""

    def __init__(self, name: str) -> None:
        self.frame_callbacks: list[Callable[[Frame], Any]] = []
        self.audio_callbacks: list[Callable[[AudioChunk], Any]] = []
        self.transform: Callable[[Array], Any] | None = None
        self.transform_track: TransformTrack | None = None
        self.video = Worker[tuple[av.VideoFrame, float, int]](f"nbcall-peer-{name}-frames", self._deliver, 1)
        self.audio = Worker[AudioChunk](f"nbcall-peer-{name}-audio", self._hear, AUDIO_QUEUE)
        self.latest: Frame | None = None
        self.received = 0
        self.delivered = 0
        self.oversized = 0
        self.audio_received = 0
        self.callback_errors = 0
        self.transform_errors = 0
        self.last_error = ""
        self.times: collections.deque[float] = collections.deque(maxlen=120)
        self.size = (0, 0)
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self._lock = threading.Lock()
        self.closed = False

    # -- on the Peer's loop ------------------------------------------------------------------

    async def pump(self, track: MediaStreamTrack, life: Callable[[], None]) -> None:
        """Take every frame of ``track`` until it ends."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            life()
            now = time.time()
            if isinstance(frame, av.VideoFrame):
                self.received += 1
                self.times.append(time.monotonic())
                self.size = (frame.width, frame.height)
                if frame.width * frame.height > MAX_IN_PIXELS:
                    self.oversized += 1
                    continue
                self.video.put((frame, now, self.received - 1))
            elif isinstance(frame, av.AudioFrame):
                self.audio_received += 1
                if self.audio_callbacks:
                    self.audio.put(_chunk(frame, now))

    def fps(self) -> float:
        """Frames received per second over the last two seconds."""
        now = time.monotonic()
        recent = [t for t in self.times if now - t <= 2.0]
        return round(len(recent) / 2.0, 1)

    # -- in the workers -------------------------------------------------------------------------

    def _deliver(self, item: tuple[av.VideoFrame, float, int]) -> None:
        frame, received, index = item
        array = frame.to_ndarray(format="rgb24")
        out = Frame(array, float(frame.time or 0.0), received, index)
        self.latest = out
        self.delivered += 1
        self._wake()
        for callback in list(self.frame_callbacks):
            self.run_callback(callback, out, "on_frame")
        transform, track = self.transform, self.transform_track
        if transform is not None and track is not None:
            try:
                result = transform(array)
            except Exception as exc:
                self.transform_errors += 1
                self._log("video_transform", exc, self.transform_errors)
                return
            track.push(result)

    def _hear(self, chunk: AudioChunk) -> None:
        for callback in list(self.audio_callbacks):
            self.run_callback(callback, chunk, "on_audio")

    def run_callback(self, callback: Callable[[Any], Any], arg: Any, what: str) -> None:
        """Call a user's callback; what it raises is logged and counted, never propagated."""
        try:
            callback(arg)
        except Exception as exc:
            self.callback_errors += 1
            self._log(what, exc, self.callback_errors)

    def _log(self, what: str, exc: Exception, count: int) -> None:
        self.last_error = f"{what}: {type(exc).__name__}: {exc}"[:500]
        if count <= 3:
            log.error("%s raised (%d so far); the call goes on", what, count, exc_info=exc)
        elif count % 100 == 0:
            log.warning("%s: %d errors so far, last: %s", what, count, self.last_error)

    # -- the async iterator ---------------------------------------------------------------------

    def _wake(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, set()
        for loop, future in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    async def frames(self) -> AsyncIterator[Frame]:
        """The newest frame each time, on the caller's loop (frames in between are skipped)."""
        loop = asyncio.get_running_loop()
        last = -1
        while not self.closed:
            frame = self.latest
            if frame is not None and frame.index != last:
                last = frame.index
                yield frame
                continue
            future: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._waiters.add((loop, future))
            if self.latest is not frame:  # arrived meanwhile
                _resolve(future)
            await future

    def stop(self) -> None:
        self.closed = True
        self.video.stop()
        self.audio.stop()
        self._wake()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _chunk(frame: av.AudioFrame, received: float) -> AudioChunk:
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    samples = data.T if frame.format.is_planar else data.reshape(-1, channels)  # -> (n, channels)
    if samples.dtype != np.int16:
        samples = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    return AudioChunk(np.ascontiguousarray(samples), int(frame.sample_rate), float(frame.time or 0.0), received)
