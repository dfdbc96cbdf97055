"""The signaling server, its protocol and a Python client."""

from .client import SignalingClient, SignalingError
from .embedded import ServerHandle, current, probe, serve
from .hub import Limits
from .protocol import ErrorCode, ProtocolError
from .server import DEFAULT_PORT, ServerConfig, SignalingServer

__all__ = [
    "DEFAULT_PORT",
    "ErrorCode",
    "Limits",
    "ProtocolError",
    "ServerConfig",
    "ServerHandle",
    "SignalingClient",
    "SignalingError",
    "SignalingServer",
    "current",
    "probe",
    "serve",
]
