"""A Jupyter server extension: the signaling websocket on the Jupyter server's own origin.

Remote and https deployments (JupyterHub, a lab behind a proxy) cannot reach a kernel's
port, and an https page may not open ``ws://``.  Served under ``{base_url}nbcall/``, the
websocket shares the Jupyter server's origin, TLS and authentication: a page that can
open a notebook can signal, and nobody else can.

Without a query, the endpoint is a signaling server of its own (a hub in the Jupyter
server's process).  With ``?upstream=ws://127.0.0.1:PORT`` it instead carries the page's
frames to that signaling server, so a widget whose kernel started one reaches the same
users whichever way its page connects.  Only loopback upstreams are allowed: the endpoint
must not become a way into other hosts.

``pip install nbcall`` enables it (a file in ``etc/jupyter/jupyter_server_config.d``);
``jupyter server extension list`` shows it.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web, websocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from . import _kernel_ws
from .signaling import protocol as p
from .signaling.forwarding import ForwardingPeer, FramePump, health_body
from .signaling.hub import Hub, Limits
from .signaling.server import is_loopback

SIGNAL_PATH = "nbcall/signal"
INFO_PATH = "nbcall/info"


class SignalingWebSocket(ForwardingPeer, JupyterHandler, websocket.WebSocketHandler):
    """One signaling connection, authenticated by the Jupyter server.

    The hub's Peer is :class:`ForwardingPeer` (slow receivers dropped as by the standalone
    server) over tornado's primitives below.
    """

    hub: Hub

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
        target = self.get_query_argument("upstream", None)
        if target is None:
            return
        try:
            self.upstream = await UpstreamBridge.connect(target, self)
        except UpstreamRefused as exc:
            self.session.send(p.error(exc.code, str(exc)))
            self.close(p.CLOSE_UNAUTHORIZED if exc.code == p.ErrorCode.UNAUTHORIZED else 1011, str(exc)[:120])

    def on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):  # tornado hands binary frames over as bytes
            self.session.send(p.error(p.ErrorCode.BAD_MESSAGE, "send JSON text frames, not binary"))
        elif self.upstream is not None:
            self.upstream.forward(message)
        elif self.get_query_argument("upstream", None) is None:
            self.hub.receive(self.session, message)
        # else: still connecting upstream; tornado does not deliver messages before open() returns

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
        session = getattr(self, "session", None)
        if session is not None:
            # tornado's close_code is the one the page sent: None when the socket just dropped.
            self.hub.disconnect(session, clean=self.close_code is not None)

    # -- ForwardingPeer's primitives (send_bytes and the slow-receiver rule are shared) --

    def is_open(self) -> bool:
        connection = self.ws_connection
        return connection is not None and not connection.is_closing()

    def unsent_bytes(self) -> int:
        # tornado keeps no public figure for the unsent backlog; these counters are it.
        stream: Any = getattr(self.ws_connection, "stream", None)
        return stream._total_write_index - stream._total_write_done_index if stream is not None else 0

    def write_text(self, data: bytes) -> None:
        self.write_message(data, binary=False)  # bytes in a text frame: already UTF-8 JSON

    def close_now(self, code: int, reason: str) -> None:
        self.close(code, reason)

    def remote_label(self) -> object:
        return self.request.remote_ip


class UpstreamRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UpstreamBridge:
    """Frames between one page's websocket and a loopback signaling server, both ways."""

    def __init__(self, ws: ClientConnection, page: SignalingWebSocket) -> None:
        self.ws = ws
        self.page = page
        self.pump = FramePump(maxsize=1024)  # page -> upstream
        self.pump.start(ws)
        self.tasks = [asyncio.create_task(self._down())]  # upstream -> page

    @classmethod
    async def connect(cls, target: str, page: SignalingWebSocket) -> UpstreamBridge:
        parts = urlsplit(target)
        if parts.scheme not in ("ws", "wss") or not parts.hostname or not is_loopback(parts.hostname):
            raise UpstreamRefused(
                p.ErrorCode.UNAUTHORIZED, "upstream must be a ws:// URL on this machine's loopback (127.0.0.1)"
            )
        try:
            ws = await connect(target, compression=None, max_size=p.MAX_HARD_FRAME_BYTES, open_timeout=5)
        except (OSError, TimeoutError, InvalidStatus) as exc:
            message = f"cannot reach the signaling server {target}: {exc}"
            raise UpstreamRefused(p.ErrorCode.UPSTREAM_UNREACHABLE, message) from None
        return cls(ws, page)

    def forward(self, frame: str) -> None:
        if not self.pump.put(frame):
            self.page.session.send(p.error(p.ErrorCode.RATE_LIMITED, "too many messages in flight; slow down"))

    async def _down(self) -> None:
        code, reason = 1011, "the signaling server closed the connection"
        try:
            async for frame in self.ws:
                self.page.send_bytes(frame.encode() if isinstance(frame, str) else frame)
            if self.ws.close_code is not None:
                code, reason = self.ws.close_code, self.ws.close_reason or reason
        except ConnectionClosed as exc:
            if exc.rcvd is not None:
                code, reason = exc.rcvd.code, exc.rcvd.reason
        if code == 1005:  # "no status": not a code one may send
            code = 1000
        self.page.close(code, reason)

    def close(self) -> None:
        self.pump.stop()
        for task in self.tasks:
            task.cancel()
        self.tasks.append(asyncio.ensure_future(self.ws.close()))


class InfoHandler(JupyterHandler):
    """``GET {base_url}nbcall/info``: lets the widget find the endpoint (authenticated)."""

    @web.authenticated
    def get(self) -> None:
        hub: Hub = self.settings["nbcall_hub"]
        self.set_header("Content-Type", "application/json")
        self.finish(p.encode({**health_body(hub), "path": SIGNAL_PATH}))


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the signaling endpoint to a running Jupyter server."""
    hub = Hub(Limits())
    web_app = serverapp.web_app
    base_url = web_app.settings["base_url"]
    web_app.settings["nbcall_hub"] = hub
    handler = type("BoundSignalingWebSocket", (SignalingWebSocket,), {"hub": hub})
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base_url, SIGNAL_PATH), handler),
            (url_path_join(base_url, INFO_PATH), InfoHandler),
        ],
    )
    serverapp.log.info("nbcall: signaling endpoint at %s", url_path_join(base_url, SIGNAL_PATH))
    if _kernel_ws.install(web_app.settings):
        serverapp.log.info("nbcall: kernel websockets send without Nagle's delay (%s=0 turns this off)", _kernel_ws.ENV)
