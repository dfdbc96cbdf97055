"""Liveness: silent peers noticed in about two seconds, and a budget for control frames.

:class:`Keepalive` is one timer per server that pings every connection (in a call every
second, otherwise every ten) and drops at once one whose pong is late, without waiting for
a closing handshake the frozen peer will never send; :func:`control_budget` is how many
pings a client may send before it is dropped as a flooder.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Final, Protocol

from .bucket import TokenBucket

log = logging.getLogger("nbcall.server")

DEFAULT_PING_INTERVAL = 1.0  # the server pings every connection in a call this often ...
DEFAULT_PING_TIMEOUT = 1.0  # ... and drops one whose pong is this late: silent peers go in ~2 s
DEFAULT_IDLE_PING_INTERVAL = 10.0  # connections in no call: each ping costs the server ~30 us
CONTROL_BURST = 20.0  # ping/pong frames a client may send at once ...
CONTROL_RATE = 5.0  # ... and per second, sustained (a client answering our pings uses 1/s)

CLOSE_POLICY: Final = 1008  # flooding control frames
CLOSE_SILENT: Final = 1011  # no pong within the ping timeout (the peer rarely sees this)
SILENT_REASON = "keepalive ping timeout"
PING_FLOOD_REASON = "too many pings"


class KeptAlive(Protocol):
    """A connection as :class:`Keepalive` sees it (loop times; 0.0: none)."""

    ping_sent: float  # when the ping now unanswered was sent; the transport zeroes it on a pong
    pinged_at: float  # when the last ping was sent

    def send_ping(self) -> bool:
        """Write an (empty) ping frame; False when the connection is no longer open."""

    def drop_silent(self) -> None:
        """No pong in time: close the socket *now* (no closing handshake with a frozen peer)."""

    def busy(self) -> bool:
        """True while someone depends on this peer being there: it is in a call, or ringing."""


class Keepalive:
    """One timer for all of a server's connections: ping each every ``interval`` seconds
    while it is :meth:`~KeptAlive.busy` (in a call), every ``idle_interval`` seconds
    otherwise, and drop one whose pong has not come ``timeout`` seconds later.

    With 1 s and 1 s a peer in a call that stops answering (a stopped process, a dead
    network path) is dropped within 2 s, its socket aborted, so the hub hears of it at once
    and tells the other side.  An idle peer is checked every 10 s by default, and within
    2 s once someone calls it.  (A ping and its pong cost the server ~30 us: at 1 s for
    every one of 5,000 idle connections, 10% of a CPU.)  A tick that comes late (the loop
    was blocked, so pongs may be waiting unread) judges nobody.  Cheaper than a task per
    connection: one pass over the connections per tick.
    """

    def __init__(self, interval: float, timeout: float, idle_interval: float | None = None) -> None:
        if interval <= 0 or timeout <= 0 or (idle_interval is not None and idle_interval <= 0):
            raise ValueError("the ping intervals and timeout must be positive")
        self.interval = interval
        self.idle_interval = max(interval, idle_interval if idle_interval is not None else interval)
        self.timeout = timeout
        self.period = min(interval, timeout)
        self._peers: dict[KeptAlive, None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def __len__(self) -> int:
        return len(self._peers)

    def add(self, peer: KeptAlive) -> None:
        if self._handle is None:
            self._loop = asyncio.get_running_loop()
            self._schedule(self._loop.time())
        assert self._loop is not None
        peer.ping_sent = 0.0
        # A random phase: connections opened together are not all pinged in the same tick.
        peer.pinged_at = self._loop.time() - random.random() * self.idle_interval
        self._peers[peer] = None

    def discard(self, peer: KeptAlive) -> None:
        self._peers.pop(peer, None)
        if not self._peers:
            self.stop()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, now: float) -> None:
        assert self._loop is not None
        self._due = now + self.period
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        stalled = now - self._due > self.period / 2
        self._schedule(now)
        slack = self.period / 2
        due_ping, due_idle, due_pong = self.interval - slack, self.idle_interval - slack, self.timeout - slack
        for peer in list(self._peers):
            sent = peer.ping_sent
            if sent:
                if now - sent >= due_pong and not stalled:
                    self._peers.pop(peer, None)
                    peer.drop_silent()
                continue
            since = now - peer.pinged_at
            if since >= due_idle or (since >= due_ping and peer.busy()):
                peer.pinged_at = peer.ping_sent = now
                peer.send_ping()  # not open any more: the next tick drops it if it lingers
        if not self._peers:
            self.stop()


def control_budget() -> TokenBucket:
    """The ping and pong frames one client may send: ``CONTROL_BURST`` at once and
    ``CONTROL_RATE`` a second.  Every ping costs the server a pong; one that a client never
    reads would otherwise pile up in memory."""
    return TokenBucket(CONTROL_RATE, CONTROL_BURST)
