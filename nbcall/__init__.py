"""nbcall: WebRTC video calls in Jupyter notebooks, driven from Python."""

from ._version import __version__
from .signaling import ServerHandle, serve
from .widget import CallError, CallWidget

__all__ = ["CallError", "CallWidget", "ServerHandle", "__version__", "serve"]
