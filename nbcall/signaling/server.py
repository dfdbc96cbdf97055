"""The asyncio signaling server, on the ``websockets`` library.

Frames are handled synchronously as they are parsed (no per-message queue or task
wake-up) and forwarded with a non-blocking write: a relay never awaits a slow receiver,
and a receiver whose write buffer overflows is disconnected instead of growing memory.

Every socket is bounded from its first moment (see "Limits" in docs/protocol.md): it is
counted by :class:`~.admission.Admission` (a descriptor-derived global cap, per-address
caps), must register within ``register_timeout``, is pinged every second by one
:class:`~.keepalive.Keepalive` and aborted when silent, and may send only so many pings.
"""

from __future__ import annotations

import asyncio
import hmac
import http
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Origin

from .._version import __version__
from . import protocol as p
from .admission import (
    ABORT,
    ADMITTED,
    CLOSE_FULL,
    CLOSE_NOT_REGISTERED,
    NOT_REGISTERED_REASON,
    REFUSALS,
    Admission,
    connection_limit,
    is_loopback,
)
from .endpoints import health, json_response, metrics_response
from .forwarding import ForwardingConnection
from .hub import Hub
from .keepalive import (
    CLOSE_POLICY,
    CLOSE_SILENT,
    PING_FLOOD_REASON,
    SILENT_REASON,
    Keepalive,
    control_budget,
)
from .metrics import registry_for
from .server_config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig
from .wire import CHECKING as CHECK_WIRE
from .wire import check_sent

if TYPE_CHECKING:
    from ..sfu import LocalJanus
    from .cluster import ClusterHub

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerConfig", "SignalingConnection", "SignalingServer", "is_loopback"]

log = logging.getLogger("nbcall.server")

HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"


_HEADER_SHORT = [bytes((0x81, n)) for n in range(126)]  # FIN + text opcode, short length


_PING = b"\x89\x00"  # FIN + ping opcode, empty payload (a server's frames are unmasked)


class SignalingConnection(ForwardingConnection, ServerConnection):
    """A server connection that hands each complete text frame to the hub at once."""

    hub: Hub
    max_buffer: int
    admission: Admission
    liveness: Keepalive | None
    register_timeout: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session = self.hub.connect(self)
        self._fragments: list[bytes] | None = None
        self.refusal: str | None = None  # why the upgrade is to be refused (a cap was reached)
        self.ping_sent = self.pinged_at = 0.0  # Keepalive's
        self._control = control_budget()
        self._deadline: asyncio.TimerHandle | None = None

    # -- the socket's life: admission, registration deadline, keepalive ---------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        verdict = self.admission.admit(self, host)
        if verdict == ABORT:
            self.transport.abort()
            return
        if verdict != ADMITTED:
            self.refusal = REFUSALS[verdict]
        self._deadline = self.loop.call_later(self.register_timeout, self._registration_due)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.admission.release(self)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self.liveness is not None:
            self.liveness.discard(self)

    def start_keepalive(self) -> None:
        # Called once the upgrade succeeded.  One server-wide timer instead of a task each.
        if self.liveness is not None:
            self.liveness.add(self)

    def registered(self) -> bool:  # Admission's
        return self.session.key is not None

    def evict(self, reason: str) -> None:  # Admission's: make room for a newcomer
        self._close_abort(CLOSE_FULL, reason)

    def send_ping(self) -> bool:  # Keepalive's
        if self.protocol.state is not State.OPEN:
            return False
        self.transport.write(_PING)
        return True

    def busy(self) -> bool:  # Keepalive's: pinged every second while in a call
        key = self.session.key
        return key is not None and (key in self.hub.calls or key in self.hub.rooms.where)

    def drop_silent(self) -> None:  # Keepalive's: no pong in time
        log.info("closing %s: no pong within the ping timeout", self.session.name or self.remote_label())
        # Abort: waiting for a frozen peer's closing handshake is what made this take 49 s.
        # connection_lost follows at once, and with it the handler's hub.disconnect.
        self._close_abort(CLOSE_SILENT, SILENT_REASON)

    def _registration_due(self) -> None:
        self._deadline = None
        if self.registered():
            return
        self.admission.release(self)
        self._close_abort(CLOSE_NOT_REGISTERED, f"{NOT_REGISTERED_REASON}: register within {self.register_timeout:g} s")

    def _close_abort(self, code: int, reason: str) -> None:
        """Send a close frame if we may, then drop the socket without waiting for anything."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            self.send_data()
        self.transport.abort()

    # -- what the hub calls (the Transport protocol)------------------------------------

    def unsent_bytes(self) -> int:
        return self.transport.get_write_buffer_size()

    def send_bytes(self, data: bytes) -> bool:
        # ForwardingConnection.send_bytes with its primitives (is_open, unsent_bytes, write_text)
        # inlined: this is the relay's hottest path.  The overflow goes to the shared rule.
        if self.protocol.state is not State.OPEN:
            return False
        if self.transport.get_write_buffer_size() > self.max_buffer:
            return self.drop_slow_receiver()
        if CHECK_WIRE:
            check_sent(data)
        # A server's text frame is a 2-10 byte header and the payload, unmasked.  Writing it
        # here skips websockets' Frame objects and output list.
        # (No extensions are negotiated: compression=None.)
        length = len(data)
        if length < 126:
            header = _HEADER_SHORT[length]
        elif length < 65536:
            header = b"\x81\x7e" + length.to_bytes(2, "big")
        else:
            header = b"\x81\x7f" + length.to_bytes(8, "big")
        self.transport.writelines((header, data))
        return True

    def close_now(self, code: int, reason: str) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            self.send_data()
        if code == p.CLOSE_TOO_SLOW:
            self.transport.abort()  # close() would wait to flush a buffer nobody reads
        else:
            self.transport.close()

    def remote_label(self) -> object:  # for ForwardingConnection's log line
        return self.remote_address

    # -- frames from the client ---------------------------------------------------------

    def process_event(self, event: Any) -> None:
        if self.request is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake request
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT:
            if event.fin:
                self.hub.receive(self.session, event.data)
            else:
                self._fragments = [bytes(event.data)]
        elif opcode is Opcode.CONT and self._fragments is not None:
            # The protocol layer already bounds the whole message by max_size.
            self._fragments.append(bytes(event.data))
            if event.fin:
                data, self._fragments = b"".join(self._fragments), None
                self.hub.receive(self.session, data)
        elif opcode is Opcode.BINARY or opcode is Opcode.CONT:
            self._fragments = None
            if event.fin:
                self.session.send(p.error(p.ErrorCode.BAD_MESSAGE, "send JSON text frames, not binary"))
        elif opcode is Opcode.PING or opcode is Opcode.PONG:
            # websockets has already queued the pong for a ping: stop a client that pings
            # faster than its budget, or that does not read its pongs, before they pile up.
            if self.protocol.state is not State.OPEN:
                return
            if not self._control.take():
                log.warning("closing %s: %s", self.session.name or self.remote_label(), PING_FLOOD_REASON)
                self._close_abort(CLOSE_POLICY, PING_FLOOD_REASON)
            elif self.transport.get_write_buffer_size() > self.max_buffer:
                self.drop_slow_receiver()
            elif opcode is Opcode.PONG:
                self.ping_sent = 0.0
                if self.pending_pings:  # someone used websockets' own ping()
                    self.acknowledge_pings(bytes(event.data))


class SignalingServer:
    """One signaling server on one asyncio loop.

    >>> server = SignalingServer(ServerConfig(port=0))
    >>> await server.start(); server.url
    'ws://127.0.0.1:...'
    """

    def __init__(self, config: ServerConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock``: the hub's (rate limits, a room's reconnect grace); a test may pass a fake one."""
        self.config = config or ServerConfig()
        self.config.check()
        config = self.config
        self.cluster_hub: ClusterHub | None = None
        self.hub: Hub
        if config.cluster is not None:
            from .cluster import ClusterHub  # needs redis (the 'cluster' extra): only when asked for

            self.hub = self.cluster_hub = ClusterHub(config.limits, config.cluster, clock)
        else:
            self.hub = Hub(config.limits, clock)
        self.hub.rooms.use_sfu(config.sfu)
        # A LocalJanus started for this server (sfu="local"): stopped with it.
        self.owned_janus: LocalJanus | None = None
        self.metrics = registry_for(self)
        self.max_connections = connection_limit(config.max_connections)
        self.admission = Admission(
            self.max_connections,
            config.max_per_address,
            config.max_unregistered_per_address,
            cap_loopback=config.cap_loopback,
            grace=config.register_timeout / 4,
        )
        self.liveness = (
            Keepalive(config.ping_interval, config.ping_timeout, config.idle_ping_interval)
            if config.ping_interval is not None
            else None
        )
        self._server: Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        for sock in self._server.sockets:
            return int(sock.getsockname()[1])
        raise RuntimeError("the server has no socket")

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        if host in ("0.0.0.0", "::"):
            shown = "127.0.0.1"
        return f"ws://{shown}:{self.port}"

    async def start(self) -> None:
        config = self.config
        if self.cluster_hub is not None:
            await self.cluster_hub.start()
        bound = {
            "hub": self.hub,
            "max_buffer": config.max_buffer,
            "admission": self.admission,
            "liveness": self.liveness,
            "register_timeout": config.register_timeout,
        }
        connection_class = type("BoundSignalingConnection", (SignalingConnection,), bound)
        self._server = await serve(
            self._handler,
            self.config.host,
            self.config.port,
            create_connection=connection_class,
            process_request=self._process_request,
            origins=[Origin(o) for o in self.config.origins] if self.config.origins else None,
            compression=None,  # SDP is small; deflate costs more CPU than it saves bandwidth
            max_size=p.MAX_HARD_FRAME_BYTES,
            ping_interval=None,  # SignalingConnection.start_keepalive: the server-wide Keepalive
            open_timeout=config.register_timeout,  # the registration deadline covers the upgrade too
            close_timeout=2.0,  # a closing handshake (at shutdown) waits no longer for a frozen peer
            backlog=1024,
            server_header=f"nbcall/{__version__}",
        )
        log.info("nbcall signaling server listening on %s (at most %d connections)", self.url, self.max_connections)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def stop(self) -> None:
        if self._server is None:
            await self.stop_janus()
            return
        server, self._server = self._server, None
        if self.liveness is not None:
            self.liveness.stop()
        server.close()
        await server.wait_closed()
        await self.hub.rooms.aclose()
        if self.cluster_hub is not None:
            await self.cluster_hub.stop()
        await self.stop_janus()
        log.info("nbcall signaling server stopped")

    async def stop_janus(self) -> None:
        """Stop the LocalJanus this server owns, if any (by its pid)."""
        janus, self.owned_janus = self.owned_janus, None
        if janus is not None:
            await asyncio.to_thread(janus.stop)

    async def _handler(self, connection: ServerConnection) -> None:
        assert isinstance(connection, SignalingConnection)
        try:
            await connection.wait_closed()
        finally:
            # A client that sent a close frame left on purpose; one that dropped may come back.
            received = connection.protocol.close_rcvd
            self.hub.disconnect(connection.session, clean=p.left_on_purpose(received.code if received else None))

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path)
        if path.path == HEALTH_PATH:
            return json_response(http.HTTPStatus.OK, health(self.hub, self.cluster_hub))
        if path.path == METRICS_PATH:
            return metrics_response(self.metrics)
        token = self.config.token
        if token is not None:
            offered = parse_qs(path.query).get("token", [""])[0]
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                offered = auth[7:]
            if not hmac.compare_digest(offered.encode(), token.encode()):
                return json_response(
                    http.HTTPStatus.UNAUTHORIZED,
                    p.error(p.ErrorCode.UNAUTHORIZED, "this server needs a token: add ?token=... to its URL"),
                )
        refusal = connection.refusal if isinstance(connection, SignalingConnection) else None
        if refusal is not None:
            return json_response(http.HTTPStatus.SERVICE_UNAVAILABLE, p.error(p.ErrorCode.SERVER_FULL, refusal))
        return None
