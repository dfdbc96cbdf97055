"""What every signaling connection does the same way, whichever library carries it.

The standalone server (:mod:`.server`, on ``websockets``) and the Jupyter server's
endpoint (:mod:`nbcall.jupyter_ext`, on tornado) both hand the hub a :class:`ForwardingPeer`:

- **the slow-receiver rule**: a frame for a receiver whose unsent backlog is over
  ``max_buffer`` bytes is not queued; that receiver is closed with ``CLOSE_TOO_SLOW``
  and leaves the hub (:meth:`ForwardingPeer.send_bytes`, :meth:`ForwardingPeer.drop_slow_receiver`);
- **the health reply**: :func:`health_body`, for ``/health`` and ``/nbcall/info``;
- **the frame pump**: :class:`FramePump`, frames to an upstream websocket in order, bounded
  in frames and in bytes;
- **admission**: :class:`Admission`, who may hold a descriptor: a global cap derived from the
  process's descriptor limit, per-address caps, and room made by closing the oldest
  connection that has not registered;
- **liveness**: :class:`Keepalive`, one timer per server that pings every connection and
  drops the silent ones at once, and :class:`ControlBudget`, the pings a client may send.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import sys
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from websockets.exceptions import ConnectionClosed

from .._version import __version__
from . import protocol as p
from .hub import Hub, Session

log = logging.getLogger("nbcall.server")

DEFAULT_MAX_BUFFER = 1 << 20  # one slow receiver's unsent bytes before it is disconnected
TOO_SLOW_REASON = "too slow: messages were not read"

# -- connection bounds (docs/protocol.md, "Limits") ----------------------------------------
DEFAULT_REGISTER_TIMEOUT = 10.0  # seconds a new socket has to send a valid ``register``
DEFAULT_MAX_PER_ADDRESS = 256  # connections from one address (an IPv6 /64)
DEFAULT_MAX_UNREGISTERED_PER_ADDRESS = 64  # of which not yet registered
DEFAULT_PING_INTERVAL = 1.0  # the server pings every connection in a call this often ...
DEFAULT_PING_TIMEOUT = 1.0  # ... and drops one whose pong is this late: silent peers go in ~2 s
DEFAULT_IDLE_PING_INTERVAL = 10.0  # connections in no call: each ping costs the server ~30 us
DESCRIPTOR_RESERVE = 64  # descriptors kept free for the process (listening socket, logs, files)
FALLBACK_MAX_CONNECTIONS = 20_000  # the default's ceiling, and the default where the descriptor limit is unknown
# Connections over a cap are accepted to be told why (HTTP 503), up to this many more; beyond
# that they are closed at once, so the refusals themselves cannot run descriptors out.
REFUSAL_ROOM = 32
CONTROL_BURST = 20.0  # ping/pong frames a client may send at once ...
CONTROL_RATE = 5.0  # ... and per second, sustained (a client answering our pings uses 1/s)

# Close codes of these bounds.  (protocol.CLOSE_CODES is generated into js/protocol.js; these
# four are meant to join it there.)
CLOSE_NOT_REGISTERED: Final = 4010  # no valid register within the registration deadline
CLOSE_FULL: Final = 4013  # = protocol.CLOSE_SERVER_FULL: crowded out, or refused, by a cap
CLOSE_POLICY: Final = 1008  # flooding control frames
CLOSE_SILENT: Final = 1011  # no pong within the ping timeout (the peer rarely sees this)
NOT_REGISTERED_REASON = "did not register in time"
SILENT_REASON = "keepalive ping timeout"
PING_FLOOD_REASON = "too many pings"


def health_body(hub: Hub) -> dict[str, Any]:
    """What a server says about itself: ``/health`` (standalone) and ``/nbcall/info`` (Jupyter)."""
    return {"server": "nbcall", "version": __version__, "protocol": p.PROTOCOL_VERSION, "online": len(hub.users)}


class ForwardingPeer:
    """The hub's :class:`~.hub.Peer` for one websocket, over a transport's few primitives.

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
        """Close at once with a websocket close code (the hub's Peer protocol)."""
        raise NotImplementedError

    def remote_label(self) -> object:
        """Who is at the other end, for a log line about an unregistered connection."""
        return None

    # -- the Peer protocol --------------------------------------------------------------

    def send_bytes(self, data: bytes) -> bool:
        """Queue one text frame; False when the connection is gone or too slow."""
        if not self.is_open():
            return False
        if self.unsent_bytes() > self.max_buffer:
            return self.drop_slow_receiver()
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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_key(host: str) -> str:
    """Whose connection this is, for the per-address caps: the IPv4 address, or the IPv6 /64.

    An IPv6 client usually holds a whole /64, so its addresses count as one.  IPv4-mapped
    IPv6 addresses count as their IPv4 address; anything unparsable as itself.
    """
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if not ip.is_loopback:
            return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def descriptor_limit() -> int | None:
    """This process's soft limit on open descriptors (RLIMIT_NOFILE), None where unknown."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def connection_limit(configured: int | None) -> int:
    """``max_connections`` as it applies: never above the descriptor limit less a reserve.

    ``configured=None``: the room that limit leaves, up to 20,000 (memory, not descriptors,
    bounds a server past that: ask for more explicitly).
    """
    soft = descriptor_limit()
    room = FALLBACK_MAX_CONNECTIONS if soft is None else max(1, soft - DESCRIPTOR_RESERVE - REFUSAL_ROOM)
    if configured is None:
        return min(room, FALLBACK_MAX_CONNECTIONS)
    if configured > room:
        log.warning("max_connections %d is above what %s open descriptors allow; using %d", configured, soft, room)
        return room
    return configured


class Admitted(Protocol):
    """A connection as :class:`Admission` sees it."""

    def registered(self) -> bool:
        """True once it speaks for a user (or needs no registration here, like an upstream bridge)."""

    def evict(self, reason: str) -> None:
        """Close at once (``CLOSE_FULL``) to make room; the admission has already forgotten it."""


ADMITTED, REFUSED_FULL, REFUSED_ADDRESS, ABORT = 0, 1, 2, 3
REFUSALS = {
    REFUSED_FULL: "the server has too many connections; try again later",
    REFUSED_ADDRESS: "too many connections from your address; close some or try again later",
}


class _Address:
    __slots__ = ("count", "waiting")

    def __init__(self) -> None:
        self.count = 0
        self.waiting: dict[Admitted, float] = {}  # not registered yet, oldest first


class Admission:
    """Who may hold one of the server's descriptors.

    Every accepted socket is counted from its first moment (before its HTTP request, so
    sockets that never speak count too) until it closes:

    - at most ``max_connections`` in all (by default the descriptor limit less a reserve,
      :func:`connection_limit`): accept() never fails for want of descriptors;
    - at most ``per_address`` from one address, of which ``unregistered_per_address`` not
      registered yet.  Loopback addresses are exempt unless ``cap_loopback``: a reverse proxy,
      the Jupyter endpoint's upstream bridges and kernels all connect from there.

    A new socket over a cap first makes room by closing the *oldest* connection (of the
    server, or of its address) that has not registered although it had ``grace`` seconds to:
    a legitimate client registers within a round trip, so sockets held open without
    registering are crowded out by newcomers instead of locking them out.  When there is no
    such connection the new one is refused (:meth:`admit` says why: HTTP 503 before the
    upgrade, close code 4013 after it), and beyond ``REFUSAL_ROOM`` more it is closed at once.
    """

    def __init__(
        self,
        max_connections: int,
        per_address: int = DEFAULT_MAX_PER_ADDRESS,
        unregistered_per_address: int = DEFAULT_MAX_UNREGISTERED_PER_ADDRESS,
        *,
        cap_loopback: bool = False,
        grace: float = DEFAULT_REGISTER_TIMEOUT / 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_connections = max_connections
        self.per_address = per_address
        self.unregistered_per_address = unregistered_per_address
        self.cap_loopback = cap_loopback
        self.grace = grace
        self._clock = clock
        self._live: dict[Admitted, str | None] = {}  # connection -> its address key (None: uncapped)
        self._waiting: dict[Admitted, float] = {}  # maybe not registered, oldest first (pruned lazily)
        self._addresses: dict[str, _Address] = {}
        self._warned_at = -1e9

    def __len__(self) -> int:
        return len(self._live)

    def count(self, host: str) -> int:
        """Connections counted for ``host``'s address (0 when loopback is exempt)."""
        entry = self._addresses.get(address_key(host))
        return entry.count if entry is not None else 0

    def admit(self, conn: Admitted, host: str) -> int:
        """Count a new connection from ``host``: ``ADMITTED``, a ``REFUSED_*`` (count it until
        it has been told and is closed), or ``ABORT`` (not counted: close it at once)."""
        now = self._clock()
        verdict = ADMITTED
        live = len(self._live)
        if live >= self.max_connections and not self._make_room(
            self._waiting, now, "the server is full: crowded out before registering"
        ):
            if live >= self.max_connections + REFUSAL_ROOM:
                self._warn("refusing connections: %d open, the most this server takes", live)
                return ABORT
            verdict = REFUSED_FULL
        key: str | None = None
        if self.cap_loopback or not is_loopback(host.split("%", 1)[0]):
            key = address_key(host)
            entry = self._addresses.get(key)
            if entry is not None:
                waiting = entry.waiting
                for stale in [c for c in waiting if c.registered()]:
                    del waiting[stale]
                over = len(waiting) >= self.unregistered_per_address or entry.count >= self.per_address
                if over and not self._make_room(waiting, now, "too many unregistered connections from your address"):
                    if entry.count >= self.per_address + REFUSAL_ROOM or len(waiting) >= (
                        self.unregistered_per_address + REFUSAL_ROOM
                    ):
                        self._warn("refusing connections from %s: %d open there", key, entry.count)
                        return ABORT
                    verdict = verdict or REFUSED_ADDRESS
        self._live[conn] = key
        self._waiting[conn] = now
        if key is not None:
            entry = self._addresses.get(key)
            if entry is None:
                entry = self._addresses[key] = _Address()
            entry.count += 1
            entry.waiting[conn] = now
        return verdict

    def release(self, conn: Admitted) -> None:
        """The connection closed (or is closing): forget it.  Idempotent."""
        if conn not in self._live:
            return
        key = self._live.pop(conn)
        self._waiting.pop(conn, None)
        if key is not None:
            entry = self._addresses[key]
            entry.count -= 1
            entry.waiting.pop(conn, None)
            if entry.count <= 0:
                del self._addresses[key]

    def _make_room(self, waiting: dict[Admitted, float], now: float, reason: str) -> bool:
        """Close the oldest connection of ``waiting`` that had ``grace`` seconds to register and did not."""
        victim: Admitted | None = None
        registered: list[Admitted] = []
        for conn, since in waiting.items():
            if conn.registered():
                registered.append(conn)
                continue
            if now - since >= self.grace:
                victim = conn
            break  # oldest first: if this one is too young to evict, so are the rest
        for conn in registered:
            del waiting[conn]
        if victim is None:
            return False
        self.release(victim)
        victim.evict(reason)
        return True

    def _warn(self, message: str, *args: object) -> None:
        now = self._clock()
        if now - self._warned_at >= 10.0:  # an attack must not become a log flood
            self._warned_at = now
            log.warning(message, *args)


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


class ControlBudget:
    """The ping and pong frames one client may send: a token bucket, ``CONTROL_BURST`` at
    once and ``CONTROL_RATE`` a second.  Every ping costs the server a pong; one that a
    client never reads would otherwise pile up in memory."""

    __slots__ = ("stamp", "tokens")

    def __init__(self) -> None:
        self.tokens = CONTROL_BURST
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        tokens = min(CONTROL_BURST, self.tokens + (now - self.stamp) * CONTROL_RATE)
        self.stamp = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True


class _Upstream(Protocol):
    async def send(self, message: str) -> None: ...


class FramePump:
    """Frames to one upstream websocket, in the order they were put, by one writer task.

    Frames may be put before the upstream is connected (:meth:`start`); they wait in the
    queue.  With ``maxsize`` (frames) and ``max_bytes`` (their memory, ``sys.getsizeof``,
    counted until each is written) the queue is bounded and :meth:`put` says False when a
    frame does not fit.
    The pump stops by itself when the upstream closes, or with :meth:`stop`.

    Used by the Jupyter endpoint's upstream bridge (page → loopback server).  The kernel
    relay (``nbcall/relay.py``: page → kernel → server) runs the same loop of its own and
    could use this too: ``put`` from the relay's loop (``call_soon_threadsafe(pump.put, frame)``)
    and ``start(ws)`` once connected.
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
