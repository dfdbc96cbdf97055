"""Who may hold a descriptor: the server's connection bounds (docs/protocol.md, "Limits").

:class:`Admission` keeps a global cap derived from the process's descriptor limit (so
``server_full`` is answered before descriptors run out), per-address caps on connections
and on sockets that have not registered, and a registration deadline; it makes room by
closing the oldest unregistered connection.  Shared by the standalone server and the
Jupyter endpoint.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Final, Protocol

from . import protocol as p

log = logging.getLogger("nbcall.server")

DEFAULT_REGISTER_TIMEOUT = 10.0  # seconds a new socket has to send a valid ``register``
DEFAULT_MAX_PER_ADDRESS = 256  # connections from one address (an IPv6 /64)
DEFAULT_MAX_UNREGISTERED_PER_ADDRESS = 64  # of which not yet registered
DESCRIPTOR_RESERVE = 64  # descriptors kept free for the process (listening socket, logs, files)
FALLBACK_MAX_CONNECTIONS = 20_000  # the default's ceiling, and the default where the descriptor limit is unknown
# Connections over a cap are accepted to be told why (HTTP 503), up to this many more; beyond
# that they are closed at once, so the refusals themselves cannot run descriptors out.
REFUSAL_ROOM = 32

# Close codes of these bounds.
CLOSE_NOT_REGISTERED: Final = p.CLOSE_NOT_REGISTERED  # one definition: protocol.CLOSE_CODES
CLOSE_FULL: Final = p.CLOSE_SERVER_FULL
NOT_REGISTERED_REASON = "did not register in time"


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
