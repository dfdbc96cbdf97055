"""Cluster mode: several signaling server processes share one namespace through Redis.

Each node's :class:`~.hub.ClusterHub` is the single server's :class:`~..hub.Hub` with one
difference: a user connected to another node is a stand-in session
(:class:`~.remote.RemoteSession`) whose ``send`` publishes to that node.  The rules stay
in the hub; this package only finds users (:mod:`.directory`, :mod:`.scripts`), carries
messages (:mod:`.link`), mirrors on the receiving node the call state each message implies
(:mod:`.mirror`), and moves a user between nodes on a takeover (:mod:`.handover`).
See "Cluster mode" in docs/protocol.md.
"""

from .config import ClusterConfig
from .hub import ClusterHub

__all__ = ["ClusterConfig", "ClusterHub"]
