"""nbcall: WebRTC video calls in Jupyter notebooks, driven from Python."""

from ._errors import CallError
from ._version import __version__
from .ice import turn_credentials
from .sfu import JanusError, SfuConfig
from .signaling import ServerHandle, serve
from .widget import CallWidget

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .peer import Peer

__all__ = [
    "CallError",
    "CallWidget",
    "JanusError",
    "Peer",
    "ServerHandle",
    "SfuConfig",
    "__version__",
    "serve",
    "turn_credentials",
]


def __getattr__(name: str) -> object:
    """``nbcall.Peer`` is imported on first use: it needs aiortc (``pip install 'nbcall[peer]'``)."""
    if name == "Peer":
        from .peer import Peer

        return Peer
    raise AttributeError(f"module 'nbcall' has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The Jupyter server extension (the same-origin signaling endpoint), see jupyter_ext."""
    return [{"module": "nbcall.jupyter_ext"}]
