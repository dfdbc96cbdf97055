"""The event loop of one Peer, in its own daemon thread.

A notebook kernel's own loop runs cells: a cell that sleeps or computes for seconds
would freeze a call living on it.  So each :class:`~nbcall.Peer` runs aiortc, its
signaling websocket and its tracks on a loop of its own, in a daemon thread; the
kernel's thread only schedules work there (:meth:`LoopThread.submit`) and never waits
on it for longer than a bounded moment (:meth:`LoopThread.run`, used by ``close()``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ._loopback import include_loopback

T = TypeVar("T")


class LoopThread:
    """An asyncio loop running forever in a daemon thread until :meth:`stop`."""

    def __init__(self, name: str, *, loopback: bool = True) -> None:
        self.loop = asyncio.new_event_loop()
        if loopback:
            include_loopback(self.loop)
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and not self.loop.is_closed()

    def in_loop(self) -> bool:
        """Whether the caller runs on this loop's thread."""
        return threading.current_thread() is self.thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; returns at once."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon (thread-safe, returns at once)."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait at most ``timeout`` seconds for its result."""
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (its tasks are cancelled) and join the thread."""
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # closed meanwhile
            return
        if not self.in_loop():
            self.thread.join(timeout)
