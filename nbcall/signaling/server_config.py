"""What shapes one signaling server: :class:`ServerConfig` (the standalone server, the
embedded one and the Jupyter endpoint's bounds all use it)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .admission import (
    DEFAULT_MAX_PER_ADDRESS,
    DEFAULT_MAX_UNREGISTERED_PER_ADDRESS,
    DEFAULT_REGISTER_TIMEOUT,
    is_loopback,
)
from .forwarding import DEFAULT_MAX_BUFFER
from .hub import Limits
from .keepalive import DEFAULT_IDLE_PING_INTERVAL, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT

if TYPE_CHECKING:
    from ..sfu import SfuConfig
    from .cluster import ClusterConfig

log = logging.getLogger("nbcall.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9900  # the seed's port, so a seed page finds an nbcall server where it looks


@dataclass
class ServerConfig:
    """Everything that shapes one signaling server.

    ``token``: when set, every websocket must present it (``?token=`` in the URL or an
    ``Authorization: Bearer`` header).  ``origins``: when set, browsers from other
    origins are refused.  ``max_buffer``: bytes queued for one slow receiver before it is
    disconnected.

    Bounds on sockets (docs/protocol.md, "Limits"): ``max_connections`` in all (None: the
    process's descriptor limit less a reserve, and never more than that);
    ``max_per_address`` from one address, ``max_unregistered_per_address`` of them not
    registered yet (loopback exempt unless ``cap_loopback``); ``register_timeout`` seconds
    to register; a ping every ``ping_interval`` seconds to a connection in a call (None: no
    pings), every ``idle_ping_interval`` seconds to the others, and a connection whose pong
    is ``ping_timeout`` seconds late is dropped.

    ``sfu``: the Janus (:class:`~nbcall.sfu.SfuConfig`) rooms move to past the mesh limit.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    origins: Sequence[str] | None = None
    max_connections: int | None = None
    max_buffer: int = DEFAULT_MAX_BUFFER
    limits: Limits = field(default_factory=Limits)
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    ping_timeout: float = DEFAULT_PING_TIMEOUT
    idle_ping_interval: float = DEFAULT_IDLE_PING_INTERVAL
    register_timeout: float = DEFAULT_REGISTER_TIMEOUT
    max_per_address: int = DEFAULT_MAX_PER_ADDRESS
    max_unregistered_per_address: int = DEFAULT_MAX_UNREGISTERED_PER_ADDRESS
    cap_loopback: bool = False
    # Cluster mode (nbcall-server --redis): users, presence and calls shared through Redis.
    cluster: ClusterConfig | None = None
    # The Janus that rooms past limits.room_mesh_limit move to (docs/rooms.md); None: such
    # a join is refused with room_full.
    sfu: SfuConfig | None = None

    def check(self) -> None:
        """Raise ValueError for a configuration that would be unsafe or cannot work."""
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        if self.token is not None and len(self.token) < 8:
            raise ValueError("the token must be at least 8 characters")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.max_per_address < 1 or self.max_unregistered_per_address < 1:
            raise ValueError("the per-address caps must be at least 1")
        self.limits.check()
        if self.sfu is not None:
            self.sfu.check()
        if not self.register_timeout > 0:
            raise ValueError("register_timeout must be positive")
        if (self.ping_interval is not None and not self.ping_interval > 0) or not (
            self.ping_timeout > 0 and self.idle_ping_interval > 0
        ):
            raise ValueError("the ping interval and timeout must be positive (ping_interval=None: no pings)")
        if not is_loopback(self.host) and self.token is None:
            log.warning(
                "listening on %s without a token: anyone who can reach this port can register and relay; "
                "pass token=... to require one",
                self.host,
            )
