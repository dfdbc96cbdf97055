"""Kernel websockets without Nagle's delay.

Tornado leaves Nagle's algorithm on for websockets, and jupyter_server's kernel websocket
inherits that: a comm message the kernel sends while the page has not yet acknowledged
the previous frame waits for the browser's delayed ACK, ~40 ms on Linux.  Every
``w.call()`` and ``w.accept()`` paid that (measured in ``benchmarks/call_setup.py``), and so
does every other widget's kernel → page message.  Small interactive frames are exactly what
TCP_NODELAY is for.

Only jupyter_server's default connection class is replaced; a deployment that configured
its own (e.g. a gateway) is left as it is.  ``NBCALL_KERNEL_NODELAY=0`` turns this off.
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

SETTING = "kernel_websocket_connection_class"
ENV = "NBCALL_KERNEL_NODELAY"


class NoDelayKernelConnection(ZMQChannelsWebsocketConnection):
    """jupyter_server's kernel websocket connection, with TCP_NODELAY on its socket."""

    def connect(self) -> Any:
        handler = self.websocket_handler
        if handler.ws_connection is not None:
            handler.set_nodelay(True)
        return super().connect()


def install(settings: dict[str, Any]) -> bool:
    """Use :class:`NoDelayKernelConnection` if the server uses the default class; say if so."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if settings.get(SETTING) is not ZMQChannelsWebsocketConnection:
        return False
    settings[SETTING] = NoDelayKernelConnection
    return True
