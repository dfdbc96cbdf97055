"""A Jupyter server extension: the signaling websocket on the Jupyter server's own origin.

Remote and https deployments (JupyterHub, a lab behind a proxy) cannot reach a kernel's
port, and an https page may not open ``ws://``.  Served under ``{base_url}nbcall/``, the
websocket shares the Jupyter server's origin, TLS and authentication: a page that can
open a notebook can signal, and nobody else can.

Without a query, the endpoint is a signaling server of its own (a hub in the Jupyter
server's process).  With ``?upstream=ws://127.0.0.1:PORT`` it instead carries the page's
frames to that signaling server, so a widget whose kernel started one reaches the same
users whichever way its page connects.  The page does not choose where: only loopback
upstreams, and the servers the administrator lists (a shared signaling service on a
JupyterHub: ``tornado_settings["nbcall"]["upstreams"]`` or ``$NBCALL_UPSTREAMS``, see
:mod:`nbcall._upstreams`); the endpoint must not become a way into other hosts.

The endpoint has the standalone server's bounds (docs/protocol.md, "Limits"): per-address
caps, a registration deadline, a ping every second in a call (a silent page is dropped within ~2 s),
a budget for the pings a page sends, and a byte bound on frames waiting for the upstream.
They are set like the standalone server's (:class:`~.signaling.server.ServerConfig` field
names) through the tornado settings, e.g. in ``jupyter_server_config.json``::

    {"ServerApp": {"tornado_settings": {"nbcall": {"max_per_address": 64, "cap_loopback": true}}}}

``pip install nbcall`` enables it (a file in ``etc/jupyter/jupyter_server_config.d``);
``jupyter server extension list`` shows it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web, websocket
from tornado.ioloop import IOLoop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from . import _kernel_ws
from ._upstreams import Upstream, allow_list, allowed
from .signaling import protocol as p
from .signaling.admission import (
    ABORT,
    ADMITTED,
    CLOSE_FULL,
    CLOSE_NOT_REGISTERED,
    NOT_REGISTERED_REASON,
    REFUSALS,
    REFUSED_FULL,
    Admission,
    connection_limit,
)
from .signaling.forwarding import (
    PAGE_MAX_BYTES,
    PAGE_MAX_FRAMES,
    TOO_MANY_IN_FLIGHT,
    ForwardingConnection,
    FramePump,
    health_body,
)
from .signaling.hub import Hub, Limits
from .signaling.keepalive import CLOSE_POLICY, CLOSE_SILENT, PING_FLOOD_REASON, SILENT_REASON, Keepalive, control_budget
from .signaling.server import ServerConfig

log = logging.getLogger("nbcall.server")

SIGNAL_PATH = "nbcall/signal"
INFO_PATH = "nbcall/info"
SETTINGS_KEY = "nbcall"  # tornado_settings["nbcall"]: ServerConfig fields for the endpoint
_SETTABLE = (
    "max_connections",
    "max_per_address",
    "max_unregistered_per_address",
    "cap_loopback",
    "register_timeout",
    "ping_interval",
    "ping_timeout",
    "idle_ping_interval",
)
UPSTREAMS_KEY = "upstreams"  # tornado_settings["nbcall"]["upstreams"]: the administrator's allow-list


class SignalingWebSocket(ForwardingConnection, JupyterHandler, websocket.WebSocketHandler):
    """One signaling connection, authenticated by the Jupyter server.

    The hub's Peer is :class:`ForwardingConnection` (slow receivers dropped as by the standalone
    server) over tornado's primitives below.  Admission, the registration deadline and the
    keepalive are the standalone server's too (:mod:`.signaling.forwarding`).
    """

    hub: Hub
    admission: Admission
    liveness: Keepalive | None
    register_timeout: float
    _deadline: object | None = None
    _target: str | None = None  # ?upstream=
    upstreams: list[Upstream] = []  # noqa: RUF012 - the administrator's allow-list, set by the bound subclass

    @property
    def ping_interval(self) -> float | None:
        return None  # not tornado's pings (app-wide settings): ``liveness`` pings every connection

    @property
    def ping_timeout(self) -> float | None:
        return None

    @property
    def max_message_size(self) -> int:
        return p.MAX_HARD_FRAME_BYTES

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        result = super().get(*args, **kwargs)
        if result is not None:
            await result

    upstream: UpstreamBridge | None = None

    async def open(self, *args: str, **kwargs: str) -> None:
        self.set_nodelay(True)  # signaling frames are small and latency-bound: no Nagle delay
        self.session = self.hub.connect(self)
        self.ping_sent = self.pinged_at = 0.0  # Keepalive's
        self._control = control_budget()
        self._target = target = self.get_query_argument("upstream", None)
        verdict = self.admission.admit(self, self.request.remote_ip or "")
        if verdict != ADMITTED:
            message = REFUSALS[REFUSED_FULL if verdict == ABORT else verdict]
            self.session.send(p.error(p.ErrorCode.SERVER_FULL, message))
            self._close_abort(CLOSE_FULL, message)
            return
        if self.liveness is not None:
            self.liveness.add(self)
        self._deadline = IOLoop.current().call_later(self.register_timeout, self._registration_due)
        if target is None:
            return
        try:
            bridge = await UpstreamBridge.connect(target, self)
        except UpstreamRefused as exc:
            self.session.send(p.error(exc.code, str(exc)))
            self.close(p.CLOSE_UNAUTHORIZED if exc.code == p.ErrorCode.UNAUTHORIZED else 1011, str(exc)[:120])
            return
        if not self.is_open():  # the page left while the upstream was connecting
            bridge.close()
            return
        self.upstream = bridge

    def on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):  # tornado hands binary frames over as bytes
            self.session.send(p.error(p.ErrorCode.BAD_MESSAGE, "send JSON text frames, not binary"))
        elif self.upstream is not None:
            self.upstream.forward(message)
        elif self._target is None:
            self.hub.receive(self.session, message)
        # else: still connecting upstream; tornado does not deliver messages before open() returns

    def on_close(self) -> None:
        self.admission.release(self)
        if self.liveness is not None:
            self.liveness.discard(self)
        if self._deadline is not None:
            IOLoop.current().remove_timeout(self._deadline)
            self._deadline = None
        if self.upstream is not None:
            self.upstream.close(clean=p.left_on_purpose(self.close_code))
        session = getattr(self, "session", None)
        if session is not None:
            # tornado's close_code is the one the page sent (None: no close frame, or no status).
            self.hub.disconnect(session, clean=p.left_on_purpose(self.close_code))

    # -- ForwardingConnection's primitives (send_bytes and the slow-receiver rule are shared) --

    def is_open(self) -> bool:
        connection = self.ws_connection
        return connection is not None and not connection.is_closing()

    def unsent_bytes(self) -> int:
        # tornado keeps no public figure for the unsent backlog; these counters are it.
        stream: Any = getattr(self.ws_connection, "stream", None)
        return stream._total_write_index - stream._total_write_done_index if stream is not None else 0  # noqa: SLF001

    def write_text(self, data: bytes) -> None:
        self.write_message(data, binary=False)  # bytes in a text frame: already UTF-8 JSON

    def close_now(self, code: int, reason: str) -> None:
        self.close(code, reason)

    def remote_label(self) -> object:
        return self.request.remote_ip

    # -- admission, registration deadline, keepalive, ping budget ----------------------

    def registered(self) -> bool:  # Admission's
        # A page bridged upstream registers there, under that server's deadline.
        return self._target is not None or self.session.key is not None

    def evict(self, reason: str) -> None:  # Admission's
        self._close_abort(CLOSE_FULL, reason)

    def send_ping(self) -> bool:  # Keepalive's
        if not self.is_open():
            return False
        self.ping(b"")
        return True

    def busy(self) -> bool:  # Keepalive's: pinged every second while in a call
        if self._target is not None:
            return True  # its calls are the upstream's: always checked at the fast pace
        key = self.session.key
        return key is not None and (key in self.hub.calls or key in self.hub.rooms.where)

    def drop_silent(self) -> None:  # Keepalive's
        log.info("closing %s: no pong within the ping timeout", self.session.name or self.remote_label())
        self._close_abort(CLOSE_SILENT, SILENT_REASON)

    def on_pong(self, data: bytes) -> None:
        self.ping_sent = 0.0
        self._spend_control_token()

    def on_ping(self, data: bytes) -> None:
        self._spend_control_token()  # tornado keeps at most one pong queued; this bounds the CPU

    def _spend_control_token(self) -> None:
        if not self._control.take() and self.is_open():
            log.warning("closing %s: %s", self.session.name or self.remote_label(), PING_FLOOD_REASON)
            self._close_abort(CLOSE_POLICY, PING_FLOOD_REASON)

    def _registration_due(self) -> None:
        self._deadline = None
        if self.registered() or not self.is_open():
            return
        self.admission.release(self)
        self._close_abort(CLOSE_NOT_REGISTERED, f"{NOT_REGISTERED_REASON}: register within {self.register_timeout:g} s")

    def _close_abort(self, code: int, reason: str) -> None:
        """Send a close frame, then close the socket now: no closing handshake to wait for."""
        connection = self.ws_connection
        self.close(code, reason)
        if connection is not None:
            connection._abort()  # noqa: SLF001  tornado's only "close the socket now"; on_close follows


class UpstreamRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UpstreamBridge:
    """Frames between one page's websocket and a loopback signaling server, both ways."""

    def __init__(self, ws: ClientConnection, page: SignalingWebSocket) -> None:
        self.ws = ws
        self.page = page
        self.pump = FramePump(maxsize=PAGE_MAX_FRAMES, max_bytes=PAGE_MAX_BYTES)  # page -> upstream
        self.pump.start(ws)
        self.tasks = [asyncio.create_task(self._down())]  # upstream -> page

    @classmethod
    async def connect(cls, target: str, page: SignalingWebSocket) -> UpstreamBridge:
        if not allowed(target, page.upstreams):
            raise UpstreamRefused(
                p.ErrorCode.UNAUTHORIZED,
                "upstream must be a ws:// URL on this machine's loopback (127.0.0.1), or a server the "
                "Jupyter server's administrator allows (NBCALL_UPSTREAMS)",
            )
        try:
            ws = await connect(target, compression=None, max_size=p.MAX_HARD_FRAME_BYTES, open_timeout=5)
        except Exception as exc:  # refused, reset, timeout, not HTTP, not a websocket, bad URI ...
            shown = target if len(target) <= 100 else target[:100] + "..."
            message = f"cannot reach the signaling server {shown}: {type(exc).__name__}: {exc}"[:300]
            raise UpstreamRefused(p.ErrorCode.UPSTREAM_UNREACHABLE, message) from None
        return cls(ws, page)

    def forward(self, frame: str) -> None:
        if not self.pump.put(frame):
            self.page.session.send(p.error(p.ErrorCode.RATE_LIMITED, TOO_MANY_IN_FLIGHT))

    async def _down(self) -> None:
        code, reason = 1011, "the signaling server closed the connection"
        try:
            while True:
                # The frame's bytes as they came (decode=False): the page gets them in a text
                # frame as they are, with no decoding to str and encoding back per frame.
                frame = await self.ws.recv(decode=False)
                self.page.send_bytes(frame)
        except ConnectionClosed as exc:
            if exc.rcvd is not None:
                code, reason = exc.rcvd.code, exc.rcvd.reason
        except Exception:  # a bug here must close this page, not log "Task exception was never retrieved"
            log.exception("the upstream bridge failed")
        if code == 1005:  # "no status": not a code one may send
            code = 1000
        self.page.close(code, reason)

    def close(self, clean: bool = True) -> None:
        """Close the upstream connection: with a closing handshake if the page left cleanly,
        else by dropping it, so that the upstream server sees a drop too (and holds the call)."""
        self.pump.stop()
        for task in self.tasks:
            task.cancel()
        if clean:
            self.tasks.append(asyncio.ensure_future(self.ws.close()))
        else:
            self.ws.transport.abort()


class InfoHandler(JupyterHandler):
    """``GET {base_url}nbcall/info``: lets the widget find the endpoint (authenticated)."""

    @web.authenticated
    def get(self) -> None:
        hub: Hub = self.settings["nbcall_hub"]
        self.set_header("Content-Type", "application/json")
        self.finish(p.encode({**health_body(hub), "path": SIGNAL_PATH}))


def endpoint_config(settings: dict[str, Any]) -> ServerConfig:
    """The endpoint's bounds: ServerConfig defaults, with ``tornado_settings["nbcall"]`` over them."""
    given = dict(settings.get(SETTINGS_KEY) or {})
    unknown = sorted(set(given) - set(_SETTABLE) - {UPSTREAMS_KEY})
    if unknown:
        log.warning("nbcall: ignoring unknown settings %s (known: %s)", unknown, ", ".join(_SETTABLE))
    config = dataclasses.replace(ServerConfig(), **{k: v for k, v in given.items() if k in _SETTABLE})
    config.check()
    return config


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the signaling endpoint to a running Jupyter server."""
    hub = Hub(Limits())
    web_app = serverapp.web_app
    base_url = web_app.settings["base_url"]
    web_app.settings["nbcall_hub"] = hub
    config = endpoint_config(web_app.settings)
    # Half the descriptors at most: the Jupyter server needs the rest for kernels and pages.
    limit = connection_limit(config.max_connections)
    if config.max_connections is None:
        limit = max(1, limit // 2)
    bound = {
        "hub": hub,
        "admission": Admission(
            limit,
            config.max_per_address,
            config.max_unregistered_per_address,
            cap_loopback=config.cap_loopback,
            grace=config.register_timeout / 4,
        ),
        "liveness": (
            Keepalive(config.ping_interval, config.ping_timeout, config.idle_ping_interval)
            if config.ping_interval
            else None
        ),
        "register_timeout": config.register_timeout,
    }
    bound["upstreams"] = upstreams = allow_list((web_app.settings.get(SETTINGS_KEY) or {}).get(UPSTREAMS_KEY))
    handler = type("BoundSignalingWebSocket", (SignalingWebSocket,), bound)
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base_url, SIGNAL_PATH), handler),
            (url_path_join(base_url, INFO_PATH), InfoHandler),
        ],
    )
    serverapp.log.info("nbcall: signaling endpoint at %s", url_path_join(base_url, SIGNAL_PATH))
    for entry in upstreams:
        serverapp.log.info("nbcall: the endpoint may carry pages to %s://%s:%d%s", *dataclasses.astuple(entry))
    if _kernel_ws.install(web_app.settings):
        serverapp.log.info("nbcall: kernel websockets send without Nagle's delay (%s=0 turns this off)", _kernel_ws.ENV)
