"""nbcall: WebRTC video calls in Jupyter notebooks, driven from Python."""

from ._version import __version__
from .signaling import ServerHandle, serve

__all__ = ["ServerHandle", "__version__", "serve"]
