"""The kernel relay: signaling for a browser that cannot reach the server itself.

On JupyterHub, Binder, VS Code remote or Colab the browser often cannot open a websocket
to the kernel's machine (no route, or an https page refusing ``ws://``).  The widget's
comm always works, so the page hands its signaling frames to the kernel, and this module
carries them to the server over a websocket of the kernel's own.

Browser-to-kernel comm messages are handled only while the kernel is idle (between
cells); kernel-to-browser messages flow at any time.  A call set up while a long cell
runs waits for that cell to finish, so the direct websocket is preferred whenever the
browser can open it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .signaling.protocol import MAX_HARD_FRAME_BYTES

log = logging.getLogger("nbcall.relay")

OnMessage = Callable[[str], None]
OnClosed = Callable[[int, str], None]
OnOpen = Callable[[], None]


class _LoopThread:
    """One asyncio loop in a daemon thread, shared by every relay in the process."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def loop(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="nbcall-relay", daemon=True).start()
                cls._loop = loop
            return cls._loop


class KernelRelay:
    """One websocket from the kernel to a signaling server, on behalf of one page.

    ``on_open`` is called once connected; ``on_message`` gets each text frame from the
    server; ``on_closed`` gets the close code and reason once (also when the connection
    could not be opened: code 1006).  All are called from the relay's thread.
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
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._task: Future[None] = asyncio.run_coroutine_threadsafe(self._run(), self._loop)

    @property
    def open(self) -> bool:
        return self._ws is not None and not self._closed

    async def _run(self) -> None:
        code, reason = 1006, "could not connect"
        writer: asyncio.Task[None] | None = None
        try:
            self._ws = await connect(
                self.url, compression=None, max_size=MAX_HARD_FRAME_BYTES, open_timeout=self._open_timeout
            )
            writer = asyncio.create_task(self._write(self._ws))
            if self._on_open is not None:
                self._on_open()
            async for frame in self._ws:
                self._on_message(frame if isinstance(frame, str) else frame.decode())
            code, reason = self._ws.close_code or 1000, self._ws.close_reason or ""
        except ConnectionClosed as exc:
            code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (1006, "connection lost")
        except (OSError, TimeoutError) as exc:
            reason = f"could not connect to {self.url}: {exc}"
        except Exception as exc:  # a callback's bug must not end the relay thread silently
            log.exception("kernel relay failed")
            reason = f"relay error: {exc}"
        finally:
            self._closed = True
            if writer is not None:
                writer.cancel()
            self._on_closed(code, reason)

    async def _write(self, ws: ClientConnection) -> None:
        # One writer, fed by a queue: frames reach the server in the order the page sent them,
        # including those sent before the connection was open.
        while True:
            frame = await self._outbox.get()
            try:
                await ws.send(frame)
            except ConnectionClosed:
                return

    def send(self, frame: str) -> None:
        """Forward one frame from the page, in order (queued until the connection is open)."""
        if not self._closed:
            self._loop.call_soon_threadsafe(self._outbox.put_nowait, frame)

    def close(self) -> None:
        async def close() -> None:
            if self._ws is not None:
                await self._ws.close()

        if not self._closed:
            asyncio.run_coroutine_threadsafe(close(), self._loop)

    def wait_closed(self, timeout: float | None = None) -> Any:
        return self._task.result(timeout)
