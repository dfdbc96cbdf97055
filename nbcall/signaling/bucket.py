"""The one token bucket: every rate limit in nbcall (server, Jupyter endpoint, widget, Peer).

``rate`` tokens a second, at most ``burst`` kept; each message takes one.  A limit that
tells the sender it is being dropped asks :meth:`TokenBucket.warn` how often it may.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` a second sustained, ``burst`` at once, on ``clock`` (seconds, monotonic)."""

    __slots__ = ("burst", "clock", "rate", "stamp", "tokens", "warned_at")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)  # a newcomer may send a burst at once
        self.stamp = clock()
        self.warned_at = float("-inf")

    def take(self) -> bool:
        """Take one token; False when there is none (over the limit)."""
        now = self.clock()
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True

    def warn(self, every: float = 1.0) -> bool:
        """Whether to tell the sender it is being dropped now: at most once per ``every`` seconds."""
        now = self.clock()
        if now - self.warned_at < every:
            return False
        self.warned_at = now
        return True
