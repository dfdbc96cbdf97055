"""What every signaling connection does the same way, whichever library carries it.

The standalone server (:mod:`.server`, on ``websockets``) and the Jupyter server's
endpoint (:mod:`nbcall.jupyter_ext`, on tornado) both hand the hub a :class:`ForwardingConnection`:

- **the slow-receiver rule**: a frame for a receiver whose unsent backlog is over
  ``max_buffer`` bytes is not queued; that receiver is closed with ``CLOSE_TOO_SLOW``
  and leaves the hub (:meth:`ForwardingConnection.send_bytes`, :meth:`ForwardingConnection.drop_slow_receiver`);
- **the health reply**: :func:`health_body`, for ``/health`` and ``/nbcall/info``;
- **the frame pump**: :class:`FramePump`, frames to an upstream websocket in order, bounded
  in frames and in bytes.

Who may connect is :mod:`.admission`; noticing silent peers and ping floods, :mod:`.keepalive`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any, Final, Protocol

from websockets.exceptions import ConnectionClosed

from .._version import __version__
from . import protocol as p
from .hub import Hub, Session
from .wire import CHECKING as CHECK_WIRE
from .wire import check_sent

log = logging.getLogger("nbcall.server")

DEFAULT_MAX_BUFFER = 1 << 20  # one slow receiver's unsent bytes before it is disconnected
TOO_SLOW_REASON = "too slow: messages were not read"


def health_body(hub: Hub) -> dict[str, Any]:
    """What a server says about itself: ``/health`` (standalone) and ``/nbcall/info`` (Jupyter)."""
    return {"server": "nbcall", "version": __version__, "protocol": p.PROTOCOL_VERSION, "online": len(hub.users)}


class ForwardingConnection:
    """The hub's :class:`~.session.Transport` for one websocket, over a transport's few primitives.

    A subclass sets ``hub`` and ``session`` and implements :meth:`is_open`,
    :meth:`unsent_bytes`, :meth:`write_text`, :meth:`close_now` (and may refine
    :meth:`remote_label`); :meth:`send_bytes` and the slow-receiver rule come from here.
    A frame is written without awaiting anything: a relay never waits for a slow receiver,
    and a receiver that does not read is disconnected instead of growing memory.

    A transport whose ``send_bytes`` is a hot path may override it instead, with the same
    three steps inlined and :meth:`drop_slow_receiver` called on overflow; it then needs
    none of the three primitives.  The standalone server's ``SignalingConnection`` does
    this (one Python call less per relayed frame); the Jupyter endpoint uses the primitives.
    """

    hub: Hub
    session: Session
    max_buffer: int = DEFAULT_MAX_BUFFER

    # -- the transport's primitives ---------------------------------------------------

    def is_open(self) -> bool:
        """True while frames may be written."""
        raise NotImplementedError

    def unsent_bytes(self) -> int:
        """Bytes written but not yet handed to the socket: the receiver's backlog."""
        raise NotImplementedError

    def write_text(self, data: bytes) -> None:
        """Queue ``data`` (UTF-8 JSON) as one text frame, without waiting."""
        raise NotImplementedError

    def close_now(self, code: int, reason: str) -> None:
        """Close at once with a websocket close code (the hub's Transport protocol)."""
        raise NotImplementedError

    def remote_label(self) -> object:
        """Who is at the other end, for a log line about an unregistered connection."""
        return None

    # -- the Transport protocol-----------------------------------------------------------

    def send_bytes(self, data: bytes) -> bool:
        """Queue one text frame; False when the connection is gone or too slow."""
        if not self.is_open():
            return False
        if self.unsent_bytes() > self.max_buffer:
            return self.drop_slow_receiver()
        if CHECK_WIRE:
            check_sent(data)
        self.write_text(data)
        return True

    def drop_slow_receiver(self) -> bool:
        """The receiver's backlog overflowed: close it with ``CLOSE_TOO_SLOW``, remove it from the hub.

        Returns False, what ``send_bytes`` returns for the frame that was not queued.
        """
        log.warning("closing %s: it does not read its messages", self.session.name or self.remote_label())
        self.close_now(p.CLOSE_TOO_SLOW, TOO_SLOW_REASON)
        self.hub.disconnect(self.session)
        return False


class _Upstream(Protocol):
    async def send(self, message: str) -> None: ...


# Frames from one page waiting for the server (the Jupyter endpoint's upstream bridge, the
# kernel transport) and their bytes; beyond either the page gets rate_limited.
PAGE_MAX_FRAMES: Final = 1024
PAGE_MAX_BYTES: Final = 1 << 20
TOO_MANY_IN_FLIGHT: Final = "too many messages in flight; slow down"


class FramePump:
    """Frames to one upstream websocket, in the order they were put, by one writer task.

    Frames may be put before the upstream is connected (:meth:`start`); they wait in the
    queue.  With ``maxsize`` (frames) and ``max_bytes`` (their memory, ``sys.getsizeof``,
    counted until each is written) the queue is bounded and :meth:`put` says False when a
    frame does not fit.
    The pump stops by itself when the upstream closes, or with :meth:`stop`.

    Used by the Jupyter endpoint's upstream bridge (page → loopback server) and by the
    kernel transport (``nbcall/_kernel_socket.py``: page → kernel → server), which puts
    from its own loop's thread (``call_soon_threadsafe``) and starts it once connected.
    """

    def __init__(self, maxsize: int = 0, max_bytes: int = 0) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self._task: asyncio.Task[None] | None = None
        self.max_bytes = max_bytes
        self.queued_bytes = 0

    def put(self, frame: str) -> bool:
        """Queue one frame; False (and the frame dropped) when the queue is full."""
        size = sys.getsizeof(frame)
        if self.max_bytes and self.queued_bytes + size > self.max_bytes:
            return False
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        self.queued_bytes += size
        return True

    def start(self, upstream: _Upstream) -> None:
        """Start writing the queued frames, and those put later, to ``upstream``."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(upstream))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self, upstream: _Upstream) -> None:
        queue = self._queue
        while True:
            frame = await queue.get()
            try:
                await upstream.send(frame)
            except ConnectionClosed:
                return
            finally:
                self.queued_bytes -= sys.getsizeof(frame)
