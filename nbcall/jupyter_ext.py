"""A Jupyter server extension: the signaling websocket on the Jupyter server's own origin.

Remote and https deployments (JupyterHub, a lab behind a proxy) cannot reach a kernel's
port, and an https page may not open ``ws://``.  Served under ``{base_url}nbcall/``, the
websocket shares the Jupyter server's origin, TLS and authentication: a page that can
open a notebook can signal, and nobody else can.

``pip install nbcall`` enables it (a file in ``etc/jupyter/jupyter_server_config.d``);
``jupyter server extension list`` shows it.
"""

from __future__ import annotations

import logging
from typing import Any

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web, websocket

from . import __version__
from .signaling import protocol as p
from .signaling.hub import Hub, Limits

log = logging.getLogger("nbcall.server")

SIGNAL_PATH = "nbcall/signal"
INFO_PATH = "nbcall/info"
_MAX_UNSENT_BYTES = 1 << 20  # one slow receiver's backlog before it is disconnected


class SignalingWebSocket(JupyterHandler, websocket.WebSocketHandler):
    """One signaling connection, authenticated by the Jupyter server."""

    hub: Hub

    @property
    def max_message_size(self) -> int:
        return p.MAX_HARD_FRAME_BYTES

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        result = super().get(*args, **kwargs)
        if result is not None:
            await result

    def open(self, *args: str, **kwargs: str) -> None:
        self.session = self.hub.connect(self)

    def on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):  # tornado hands binary frames over as bytes
            self.session.send(p.error(p.ErrorCode.BAD_MESSAGE, "send JSON text frames, not binary"))
            return
        self.hub.receive(self.session, message)

    def on_close(self) -> None:
        session = getattr(self, "session", None)
        if session is not None:
            self.hub.disconnect(session)

    # -- the hub's Peer protocol -------------------------------------------------------

    def send_bytes(self, data: bytes) -> bool:
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return False
        # tornado keeps no public figure for the unsent backlog; these counters are it.
        stream: Any = getattr(connection, "stream", None)
        unsent = stream._total_write_index - stream._total_write_done_index if stream is not None else 0
        if unsent > _MAX_UNSENT_BYTES:
            log.warning("closing %s: it does not read its messages", self.session.name)
            self.close_now(p.CLOSE_TOO_SLOW, "too slow: messages were not read")
            self.hub.disconnect(self.session)
            return False
        self.write_message(data, binary=False)  # bytes in a text frame: already UTF-8 JSON
        return True

    def close_now(self, code: int, reason: str) -> None:
        self.close(code, reason)


class InfoHandler(JupyterHandler):
    """``GET {base_url}nbcall/info``: lets the widget find the endpoint (authenticated)."""

    @web.authenticated
    def get(self) -> None:
        hub: Hub = self.settings["nbcall_hub"]
        self.set_header("Content-Type", "application/json")
        self.finish(
            p.encode(
                {
                    "server": "nbcall",
                    "version": __version__,
                    "protocol": p.PROTOCOL_VERSION,
                    "online": len(hub.users),
                    "path": SIGNAL_PATH,
                }
            )
        )


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
