"""The asyncio signaling server, on the ``websockets`` library.

Frames are handled synchronously as they are parsed (no per-message queue or task
wake-up) and forwarded with a non-blocking write: a relay never awaits a slow receiver,
and a receiver whose write buffer overflows is disconnected instead of growing memory.
"""

from __future__ import annotations

import hmac
import http
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Origin

from .._version import __version__
from . import protocol as p
from .forwarding import DEFAULT_MAX_BUFFER, ForwardingPeer, health_body
from .hub import Hub, Limits

log = logging.getLogger("nbcall.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9900  # the seed's port, so a seed page finds an nbcall server where it looks
HEALTH_PATH = "/health"


@dataclass
class ServerConfig:
    """Everything that shapes one signaling server.

    ``token``: when set, every websocket must present it (``?token=`` in the URL or an
    ``Authorization: Bearer`` header).  ``origins``: when set, browsers from other
    origins are refused.  ``max_connections``: further connections are refused.
    ``max_buffer``: bytes queued for one slow receiver before it is disconnected.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    origins: Sequence[str] | None = None
    max_connections: int = 20_000
    max_buffer: int = DEFAULT_MAX_BUFFER
    limits: Limits = field(default_factory=Limits)
    ping_interval: float | None = 20.0

    def check(self) -> None:
        """Raise ValueError for a configuration that would be unsafe or cannot work."""
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        if self.token is not None and len(self.token) < 8:
            raise ValueError("the token must be at least 8 characters")
        if not is_loopback(self.host) and self.token is None:
            log.warning(
                "listening on %s without a token: anyone who can reach this port can register and relay; "
                "pass token=... to require one",
                self.host,
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_HEADER_SHORT = [bytes((0x81, n)) for n in range(126)]  # FIN + text opcode, short length


class SignalingConnection(ForwardingPeer, ServerConnection):
    """A server connection that hands each complete text frame to the hub at once."""

    hub: Hub
    max_buffer: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session = self.hub.connect(self)
        self._fragments: list[bytes] | None = None

    # -- what the hub calls (the Peer protocol) ---------------------------------------

    def send_bytes(self, data: bytes) -> bool:
        # ForwardingPeer.send_bytes with its primitives (is_open, unsent_bytes, write_text)
        # inlined: this is the relay's hottest path.  The overflow goes to the shared rule.
        if self.protocol.state is not State.OPEN:
            return False
        if self.transport.get_write_buffer_size() > self.max_buffer:
            return self.drop_slow_receiver()
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

    def remote_label(self) -> object:  # for ForwardingPeer's log line
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
        elif opcode is Opcode.PONG:
            self.acknowledge_pings(bytes(event.data))


class SignalingServer:
    """One signaling server on one asyncio loop.

    >>> server = SignalingServer(ServerConfig(port=0))
    >>> await server.start(); server.url
    'ws://127.0.0.1:...'
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.config.check()
        self.hub = Hub(self.config.limits)
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
        hub, max_buffer = self.hub, self.config.max_buffer
        connection_class = type(
            "BoundSignalingConnection", (SignalingConnection,), {"hub": hub, "max_buffer": max_buffer}
        )
        self._server = await serve(
            self._handler,
            self.config.host,
            self.config.port,
            create_connection=connection_class,
            process_request=self._process_request,
            origins=[Origin(o) for o in self.config.origins] if self.config.origins else None,
            compression=None,  # SDP is small; deflate costs more CPU than it saves bandwidth
            max_size=p.MAX_HARD_FRAME_BYTES,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_interval,
            server_header=f"nbcall/{__version__}",
        )
        log.info("nbcall signaling server listening on %s", self.url)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        await server.wait_closed()
        log.info("nbcall signaling server stopped")

    async def _handler(self, connection: ServerConnection) -> None:
        assert isinstance(connection, SignalingConnection)
        try:
            await connection.wait_closed()
        finally:
            # A client that sent a close frame left on purpose; one that dropped may come back.
            self.hub.disconnect(connection.session, clean=connection.protocol.close_rcvd is not None)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path)
        if path.path == HEALTH_PATH:
            return _json_response(http.HTTPStatus.OK, health_body(self.hub))
        token = self.config.token
        if token is not None:
            offered = parse_qs(path.query).get("token", [""])[0]
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                offered = auth[7:]
            if not hmac.compare_digest(offered.encode(), token.encode()):
                return _json_response(
                    http.HTTPStatus.UNAUTHORIZED,
                    p.error(p.ErrorCode.UNAUTHORIZED, "this server needs a token: add ?token=... to its URL"),
                )
        if self._server is not None and len(self._server.connections) >= self.config.max_connections:
            return _json_response(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                p.error(p.ErrorCode.SERVER_FULL, "the server has too many connections; try again later"),
            )
        return None


def _json_response(status: http.HTTPStatus, body: dict[str, Any]) -> Response:
    data = orjson.dumps(body)
    headers = Headers(
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("Connection", "close")]
    )
    return Response(status.value, status.phrase, headers, data)
