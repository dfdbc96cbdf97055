"""nbcall: WebRTC video calls in Jupyter notebooks, driven from Python."""

from ._errors import CallError
from ._version import __version__
from .ice import turn_credentials
from .signaling import ServerHandle, serve
from .widget import CallWidget

__all__ = ["CallError", "CallWidget", "ServerHandle", "__version__", "serve", "turn_credentials"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The Jupyter server extension (the same-origin signaling endpoint), see jupyter_ext."""
    return [{"module": "nbcall.jupyter_ext"}]
