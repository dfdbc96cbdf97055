"""The kernel transport: signaling for a page that cannot reach the server itself.

On JupyterHub, Binder, VS Code remote or Colab the browser often cannot open a websocket
to the kernel's machine (no route, or an https page refusing ``ws://``).  The widget's
comm always works, so the page hands its signaling frames to the kernel, and a
:class:`KernelSocket` carries them to the server over a websocket of the kernel's own.
:class:`KernelSockets` holds one widget's sockets by the page's id (``kernel_socket_*``
messages, see :mod:`nbcall._messages`).

Page-to-kernel comm messages are handled only while the kernel is idle (between cells);
kernel-to-page messages flow at any time.  A call set up while a long cell runs waits for
that cell to finish, so the page prefers the same-origin endpoint or a direct websocket
whenever it can open one.

A page that crashes (no ``pagehide``, so no ``kernel_socket_close``) would leave its socket,
and its name on the server, open for as long as the kernel lives.  So the page sends
``kernel_socket_ping`` every second for each open socket, and a socket that has been pinged
once is dropped (no close frame: the server treats it as a lost connection, so a call gets
its reconnect grace) after :data:`PAGE_SILENCE` seconds without one.  Only *idle* seconds
count: while a cell runs the kernel reads no comm messages, so a busy kernel never drops a
live page (:class:`KernelActivity`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .signaling.forwarding import PAGE_MAX_BYTES, PAGE_MAX_FRAMES, TOO_MANY_IN_FLIGHT, FramePump
from .signaling.protocol import MAX_HARD_FRAME_BYTES, ErrorCode, encode, error

log = logging.getLogger("nbcall.kernel_socket")

OnMessage = Callable[[str], None]
OnClosed = Callable[[int, str], None]
OnOpen = Callable[[], None]
#: Handlers of page -> kernel messages: ``handler(content, buffers)``.
Handlers = dict[str, Callable[[dict[str, Any], list[Any]], None]]

MAX_SOCKETS = 4  # per widget: one is normal; a reloaded page opens another before the old one closes
PAGE_SILENCE = 3.0  # idle seconds without a kernel_socket_ping before a pinged socket is dropped
_WATCH_EVERY = 0.25  # how often the socket thread looks for silent pages


class KernelActivity:
    """Whether this kernel is running code, so reads no comm messages (IPython's execute events).

    ``quiet_since(heard)`` is when the silence of a page last heard at ``heard`` began, as far
    as the kernel could have heard it: never while code runs, and only from the end of the
    last execution.  Without IPython (a plain Python process) the kernel is always idle.
    """

    def __init__(self) -> None:
        self.busy = False
        self.idle_since = time.monotonic()
        self._hooked = False

    def hook(self) -> None:
        """Follow this process's IPython shell, if there is one (once; from the kernel's thread)."""
        if self._hooked:
            return
        self._hooked = True
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - ipywidgets depends on IPython
            return
        shell = get_ipython()
        if shell is not None:
            # pre/post_execute fire around every execution, silent ones too.
            shell.events.register("pre_execute", self.started)
            shell.events.register("post_execute", self.finished)

    def started(self) -> None:
        self.busy = True

    def finished(self) -> None:
        self.busy = False
        self.idle_since = time.monotonic()

    def quiet_since(self, heard: float) -> float | None:
        """When counting silence starts for a page last heard at ``heard``; None while busy."""
        return None if self.busy else max(heard, self.idle_since)


#: One per process: every widget's sockets share the kernel's execution state.
ACTIVITY = KernelActivity()


class _LoopThread:
    """One asyncio loop in a daemon thread, shared by every kernel socket in the process."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def loop(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="nbcall-kernel-socket", daemon=True).start()
                cls._loop = loop
            return cls._loop


class KernelSocket:
    """One websocket from the kernel to a signaling server, on behalf of one page.

    It starts connecting at once.  ``on_open`` is called once connected; ``on_message`` gets
    each text frame from the server; ``on_closed`` gets the close code and reason once (also
    when the connection could not be opened: code 1006).  All are called from the socket
    thread.
    """

    def __init__(
        self,
        url: str,
        on_message: OnMessage,
        on_closed: OnClosed,
        open_timeout: float = 5.0,
        on_open: OnOpen | None = None,
    ) -> None:
        self.url = url
        self._on_open = on_open
        self._on_message = on_message
        self._on_closed = on_closed
        self._open_timeout = open_timeout
        self._loop = _LoopThread.loop()
        self._ws: ClientConnection | None = None
        self._closed = False
        # Bounded as the Jupyter endpoint's: frames reach the server in the order the page
        # sent them, including those sent before the connection was open.
        self._pump = FramePump(maxsize=PAGE_MAX_FRAMES, max_bytes=PAGE_MAX_BYTES)
        self._warned_at = float("-inf")
        self._task: Future[None] = asyncio.run_coroutine_threadsafe(self._run(), self._loop)

    @property
    def open(self) -> bool:
        """True while the websocket is connected."""
        return self._ws is not None and not self._closed

    async def _run(self) -> None:
        code, reason = 1006, "could not connect"
        try:
            self._ws = await connect(
                self.url, compression=None, max_size=MAX_HARD_FRAME_BYTES, open_timeout=self._open_timeout
            )
            self._pump.start(self._ws)
            if self._on_open is not None:
                self._on_open()
            async for frame in self._ws:
                self._on_message(frame if isinstance(frame, str) else frame.decode())
            code, reason = self._ws.close_code or 1000, self._ws.close_reason or ""
        except ConnectionClosed as exc:
            code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (1006, "connection lost")
        except (OSError, TimeoutError) as exc:
            reason = f"could not connect to {self.url}: {exc}"
        except Exception as exc:  # a callback's bug must not end the socket thread silently
            log.exception("kernel socket failed")
            reason = f"kernel socket error: {exc}"
        finally:
            self._closed = True
            self._pump.stop()
            self._on_closed(code, reason)

    def send(self, frame: str) -> None:
        """Forward one frame from the page, in order (queued until the connection is open;
        past the queue's bound the page is told ``rate_limited``, as by the Jupyter endpoint)."""
        if not self._closed:
            self._loop.call_soon_threadsafe(self._put, frame)

    def _put(self, frame: str) -> None:
        if self._pump.put(frame) or self._closed:
            return
        now = time.monotonic()
        if now - self._warned_at >= 1.0:  # one warning a second, not one per dropped frame
            self._warned_at = now
            self._on_message(encode(error(ErrorCode.RATE_LIMITED, TOO_MANY_IN_FLIGHT)))

    def close(self) -> None:
        """Close the websocket (``on_closed`` follows); a no-op once closed."""

        async def close() -> None:
            if self._ws is not None:
                await self._ws.close()

        if not self._closed:
            asyncio.run_coroutine_threadsafe(close(), self._loop)

    def abort(self) -> None:
        """Drop the connection without a close frame (the page is gone, not leaving): the
        server keeps a call's name for its reconnect grace.  ``on_closed`` follows (1006)."""

        def abort() -> None:
            if self._ws is not None:
                self._ws.transport.abort()
            elif not self._task.done():
                self._task.cancel()  # still connecting

        if not self._closed:
            self._loop.call_soon_threadsafe(abort)

    def wait_closed(self, timeout: float | None = None) -> Any:
        """Block until the socket has closed and ``on_closed`` has run (for tests and tools)."""
        return self._task.result(timeout)


class Command(Protocol):
    """Sends one kernel -> page message: ``command(kind, **fields)``."""

    def __call__(self, kind: str, /, **fields: Any) -> None: ...


class KernelSockets:
    """One widget's kernel sockets, by the id the page gave each (at most :data:`MAX_SOCKETS`).

    Every socket connects to ``server()``, the widget's own server: the page never chooses
    where the kernel connects.  What a socket hears goes back to the page through
    ``command`` as ``kernel_socket_opened``/``_message``/``_closed``.
    """

    def __init__(
        self,
        server: Callable[[], str],
        command: Command,
        silence: float = PAGE_SILENCE,
        activity: KernelActivity = ACTIVITY,
    ) -> None:
        self._server = server
        self._command = command
        self._lock = threading.Lock()  # the socket thread removes closed sockets
        self._sockets: dict[str, tuple[int, KernelSocket]] = {}
        self._serial = 0
        self.silence = silence
        self._activity = activity
        # Sockets whose page pings (an older page does not: never dropped): id -> last ping.
        self._heard: dict[str, float] = {}
        self._watching = False
        self.dropped = 0  # sockets dropped because their page went silent

    def __len__(self) -> int:
        return len(self._sockets)

    def handlers(self) -> Handlers:
        """The page -> kernel messages this part handles, for the widget's dispatcher."""
        return {
            "kernel_socket_open": lambda content, _buffers: self.open(content["id"]),
            "kernel_socket_send": lambda content, _buffers: self.send(content["id"], content["data"]),
            "kernel_socket_close": lambda content, _buffers: self.close(content["id"]),
            "kernel_socket_ping": lambda content, _buffers: self.ping(content["id"]),
        }

    def open(self, sid: str) -> None:
        """Open a socket for the page's id ``sid``; the oldest goes when there are too many."""
        evicted: list[KernelSocket] = []
        with self._lock:
            if sid in self._sockets:
                evicted.append(self._sockets.pop(sid)[1])
            while len(self._sockets) >= MAX_SOCKETS:
                oldest = next(iter(self._sockets))
                evicted.append(self._sockets.pop(oldest)[1])
                self._heard.pop(oldest, None)
            self._heard.pop(sid, None)
            self._serial += 1
            serial = self._serial
            socket = KernelSocket(
                self._server(),
                on_open=lambda: self._command("kernel_socket_opened", id=sid),
                on_message=lambda frame: self._command("kernel_socket_message", id=sid, data=frame),
                on_closed=lambda code, reason: self._closed(sid, serial, code, reason),
            )
            self._sockets[sid] = (serial, socket)
        for old in evicted:
            old.close()

    def ping(self, sid: str) -> None:
        """The page holding socket ``sid`` is alive; from now on its silence is watched."""
        self._activity.hook()
        start = False
        with self._lock:
            if sid not in self._sockets:
                return
            self._heard[sid] = time.monotonic()
            if not self._watching:
                self._watching = start = True
        if start:
            asyncio.run_coroutine_threadsafe(self._watch(), _LoopThread.loop())

    async def _watch(self) -> None:
        """In the socket thread: drop the sockets of pages silent for ``silence`` idle seconds."""
        while True:
            await asyncio.sleep(_WATCH_EVERY)
            now = time.monotonic()
            with self._lock:
                if not self._heard:
                    self._watching = False
                    return
                silent = []
                for sid, heard in self._heard.items():
                    since = self._activity.quiet_since(heard)
                    if since is not None and now - since > self.silence:
                        silent.append(sid)
                dropped = [self._sockets.pop(sid)[1] for sid in silent if sid in self._sockets]
                for sid in silent:
                    del self._heard[sid]
            for socket in dropped:
                log.info("the page of a kernel socket went silent: dropping its connection")
                self.dropped += 1
                socket.abort()

    def send(self, sid: str, data: str) -> None:
        """Forward a frame from the page to the server over socket ``sid``."""
        entry = self._sockets.get(sid)
        if entry is None:
            log.info("kernel_socket_send for %r, which is not open: frame dropped", sid)
        else:
            entry[1].send(data)

    def close(self, sid: str) -> None:
        """Close socket ``sid`` at the page's request (``kernel_socket_closed`` follows)."""
        with self._lock:
            entry = self._sockets.pop(sid, None)
            self._heard.pop(sid, None)
        if entry is not None:
            entry[1].close()

    def close_all(self) -> None:
        """Close every socket (the widget is closing)."""
        with self._lock:
            sockets, self._sockets = list(self._sockets.values()), {}
            self._heard.clear()
        for _serial, socket in sockets:
            socket.close()

    def _closed(self, sid: str, serial: int, code: int, reason: str) -> None:
        with self._lock:  # also waits until open() has stored this socket
            entry = self._sockets.get(sid)
            if entry is not None and entry[0] != serial:
                return  # replaced by a newer socket of the same id: the page's socket is that one
            self._sockets.pop(sid, None)
            self._heard.pop(sid, None)
        self._command("kernel_socket_closed", id=sid, code=code, reason=reason)
