"""Threads that run user code for a Peer, off both the kernel's thread and the Peer's loop.

A :class:`Worker` owns one daemon thread and a bounded queue.  ``put`` never blocks: when
the queue is full the oldest item is dropped and counted.  A worker of ``maxlen=1`` is
*latest-item* semantics: a slow handler skips items, never builds a backlog, and
``dropped`` is the number skipped (how frames reach ``on_frame``).  A handler that
raises is logged (the first few with their traceback, then one line per 100) and
counted in ``errors``; the worker goes on.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("nbcall.peer")
T = TypeVar("T")
_LOUD_ERRORS = 3  # tracebacks logged per worker; after that, one line every 100 errors


class Worker(Generic[T]):
    """One thread running ``handler(item)`` for each item put, oldest first, at most ``maxlen`` waiting."""

    def __init__(self, name: str, handler: Callable[[T], None], maxlen: int) -> None:
        self.name = name
        self.handler = handler
        self.maxlen = maxlen
        self._items: collections.deque[T] = collections.deque()
        self._cond = threading.Condition()
        self._stopped = False
        self.dropped = 0  # items that waited and were pushed out by newer ones
        self.handled = 0
        self.errors = 0
        self.last_error = ""
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, item: T) -> None:
        """Queue ``item`` (thread-safe, never blocks); drops the oldest when full."""
        with self._cond:
            if self._stopped:
                return
            if len(self._items) >= self.maxlen:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                item = self._items.popleft()
            try:
                self.handler(item)
            except Exception as exc:  # user code: logged and counted, never fatal
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                if self.errors <= _LOUD_ERRORS:
                    log.exception("%s: a callback raised (%d so far); the call goes on", self.name, self.errors)
                elif self.errors % 100 == 0:
                    log.warning("%s: %d callback errors so far, last: %s", self.name, self.errors, self.last_error)
            self.handled += 1

    def in_worker(self) -> bool:
        return threading.current_thread() is self.thread

    def stop(self, timeout: float = 2.0) -> None:
        """Stop after the item being handled (waiting ones are dropped); join unless called from it."""
        with self._cond:
            self._stopped = True
            self._items.clear()
            self._cond.notify_all()
        if not self.in_worker():
            self.thread.join(timeout)
