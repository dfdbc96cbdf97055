"""What a Peer sends: video from numpy (a source, or a transform of what it receives) and audio.

- :class:`SourceTrack`: ``video=`` a callable ``fn(index, t) -> HxWx3 uint8`` or an
  iterable of such arrays, paced at ``fps``; the source runs in a one-thread executor so a
  slow numpy function never stalls the Peer's loop (a late frame is sent late, the schedule
  is not caught up with a burst).
- :class:`TransformTrack`: the arrays ``video_transform`` returned, latest only: each is
  sent once, none queue.
- :class:`AudioSourceTrack`: ``audio=`` a callable ``fn(samples, t) -> int16 or float
  array`` (mono, 48 kHz, 20 ms per call), e.g. :func:`tone`.

An array that is not HxWx3 uint8 (or a source that raises) is logged, counted in
``errors`` and replaced by the last good frame (black before the first).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fractions
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger("nbcall.peer")

VIDEO_CLOCK = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
AUDIO_RATE = 48_000
AUDIO_PTIME = 0.02
AUDIO_SAMPLES = int(AUDIO_RATE * AUDIO_PTIME)
MAX_OUT_PIXELS = 1920 * 1080  # a bigger frame from Python is refused (an encoder would choke on it)

Array = np.ndarray[Any, Any]
VideoSource = Callable[[int, float], Array] | Iterable[Array]
AudioSource = Callable[[int, float], Array]


def tone(frequency: float = 440.0, volume: float = 0.2) -> AudioSource:
    """An audio source for ``Peer(audio=...)``: a sine of ``frequency`` Hz at ``volume`` (0-1)."""
    if not (20.0 <= frequency <= 20_000.0) or not (0.0 <= volume <= 1.0):
        raise ValueError("tone: frequency must be 20-20000 Hz and volume 0-1")

    def source(samples: int, t: float) -> Array:
        times = t + np.arange(samples) / AUDIO_RATE
        return (np.sin(2 * math.pi * frequency * times) * volume * 32767).astype(np.int16)

    return source


def check_frame(array: object) -> Array:
    """``array`` as a contiguous HxWx3 uint8 array with even sides, or ValueError saying why."""
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        shape = getattr(array, "shape", None)
        raise ValueError(f"a frame must be an HxWx3 uint8 numpy array, got {type(array).__name__} {shape}")
    height, width = array.shape[0] & ~1, array.shape[1] & ~1
    if height < 2 or width < 2 or height * width > MAX_OUT_PIXELS:
        raise ValueError(f"a frame must be 2x2 to {MAX_OUT_PIXELS} pixels, got {array.shape[1]}x{array.shape[0]}")
    return np.ascontiguousarray(array[:height, :width])


class _Counting:
    def __init__(self) -> None:
        self.sent = 0
        self.errors = 0
        self.last_error = ""

    def _error(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if self.errors <= 3:
            log.warning("%s: %s (%d so far); sending the last good frame", what, self.last_error, self.errors)


class SourceTrack(MediaStreamTrack, _Counting):
    """Video produced by ``source`` at ``fps``, ``size`` (width, height) for the black fallback."""

    kind = "video"

    def __init__(self, source: VideoSource, size: tuple[int, int], fps: float) -> None:
        MediaStreamTrack.__init__(self)
        _Counting.__init__(self)
        self.fps = fps
        self._fn: Callable[[int, float], Array] | None = None
        self._iter: Iterator[Array] | None = None
        if callable(source):
            self._fn = source
        else:
            self._iter = iter(source)
        self._last = np.zeros((size[1] & ~1, size[0] & ~1, 3), np.uint8)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nbcall-peer-source")
        self._start = 0.0
        self._index = 0

    @property
    def last_frame(self) -> Array:
        """The frame sent last (black before the first)."""
        return self._last

    def _produce(self, index: int, t: float) -> Array:
        try:
            if self._fn is not None:
                out = self._fn(index, t)
            else:
                assert self._iter is not None
                out = next(self._iter)
            self._last = check_frame(out)
        except StopIteration:
            pass  # a finished generator: its last frame stays on screen
        except Exception as exc:
            self._error("video source", exc)
        return self._last

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.time()
        if self._index == 0:
            self._start = now
        else:
            due = self._start + self._index / self.fps
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > 1.0 / self.fps:  # late by more than a frame: do not burst to catch up
                self._start = now - self._index / self.fps
        t = time.time() - self._start
        array = await asyncio.get_running_loop().run_in_executor(self._executor, self._produce, self._index, t)
        frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        frame.pts = int(t * VIDEO_CLOCK)
        frame.time_base = VIDEO_TIME_BASE
        self._index += 1
        self.sent += 1
        return frame

    def stop(self) -> None:
        super().stop()
        self._executor.shutdown(wait=False, cancel_futures=True)


class TransformTrack(MediaStreamTrack, _Counting):
    """Video pushed from another thread (``video_transform``'s results), latest only."""

    kind = "video"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        MediaStreamTrack.__init__(self)
        _Counting.__init__(self)
        self._owner_loop = loop
        self._latest: Array | None = None
        self._new = asyncio.Event()
        self._start = time.time()
        self.skipped = 0

    @property
    def last_frame(self) -> Array | None:
        """The frame pushed last (None before the first)."""
        return self._latest

    def push(self, array: object) -> None:
        """Thread-safe: the next frame to send (replaces one not sent yet)."""
        try:
            checked = check_frame(array)
        except ValueError as exc:
            self._error("video_transform", exc)
            return
        if not self._owner_loop.is_closed():
            self._owner_loop.call_soon_threadsafe(self._set, checked)

    def _set(self, array: Array) -> None:
        if self._new.is_set():
            self.skipped += 1
        self._latest = array
        self._new.set()

    async def recv(self) -> av.VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            await self._new.wait()
            self._new.clear()
            if self._latest is not None:
                break
        frame = av.VideoFrame.from_ndarray(self._latest, format="rgb24")
        frame.pts = int((time.time() - self._start) * VIDEO_CLOCK)
        frame.time_base = VIDEO_TIME_BASE
        self.sent += 1
        return frame

    def stop(self) -> None:
        super().stop()
        self._new.set()  # wake a waiting recv so it sees the end


class AudioSourceTrack(MediaStreamTrack, _Counting):
    """Mono 48 kHz audio from ``source(samples, t)``, 20 ms at a time."""

    kind = "audio"

    def __init__(self, source: AudioSource) -> None:
        MediaStreamTrack.__init__(self)
        _Counting.__init__(self)
        self._source = source
        self._start = 0.0
        self._samples = 0

    def _pcm(self, t: float) -> Array:
        try:
            out = np.asarray(self._source(AUDIO_SAMPLES, t))
            if out.dtype.kind == "f":
                out = (np.clip(out, -1.0, 1.0) * 32767).astype(np.int16)
            out = out.astype(np.int16, copy=False).reshape(-1)
            if out.shape[0] != AUDIO_SAMPLES:
                raise ValueError(f"an audio source must return {AUDIO_SAMPLES} samples, got {out.shape[0]}")
            return out
        except Exception as exc:
            self._error("audio source", exc)
            return np.zeros(AUDIO_SAMPLES, np.int16)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._samples == 0:
            self._start = time.time()
        else:
            wait = self._start + self._samples / AUDIO_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        pcm = self._pcm(self._samples / AUDIO_RATE)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._samples += AUDIO_SAMPLES
        self.sent += 1
        return frame
