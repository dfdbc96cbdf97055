"""A cluster node's settings, Redis key names, and the bounds it keeps."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field

# A node beats every HEARTBEAT seconds and is dead NODE_EXPIRY seconds after its last beat;
# every node sweeps for dead nodes on each beat, so a killed node's users are released and
# their partners told within NODE_EXPIRY + HEARTBEAT (2 s) plus one Redis round trip.
HEARTBEAT = 0.5
NODE_EXPIRY = 1.5
# Joins and leaves are sent to the other nodes in batches (never one message per join):
# at most one batch per node per REPLICATION_INTERVAL.
REPLICATION_INTERVAL = 0.05
# Bounds on what waits to be published: past either, cross-node requests are refused with
# cluster_unavailable (Redis is too slow or gone); the backlog never grows without bound.
MAX_PENDING_MESSAGES = 10_000
MAX_PENDING_BYTES = 16 * 1024 * 1024
MAX_BATCH = 512  # messages per write to Redis
# Envelopes queued back to back for one node go out as one PUBLISH (joined by newlines),
# up to this many bytes: one Redis command and one pub/sub message for a burst.
MAX_COALESCED_BYTES = 256 * 1024
# Frames a client sends while its register waits for Redis (a round trip or two).
MAX_HELD_FRAMES = 32
HANDOVER_TIMEOUT = 1.0  # seconds the new node waits for the old one to hand a user over
MOVED_MEMORY = 10.0  # seconds an old node forwards messages for a user that moved away


def default_node_id() -> str:
    """host-pid-random: unique per process start, readable in logs."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class ClusterConfig:
    """``url``: redis://[:password@]host:port/db or rediss://... (redis-py's URL parsing)."""

    url: str
    node_id: str = field(default_factory=default_node_id)
    prefix: str = "nbcall"
    heartbeat: float = HEARTBEAT
    node_expiry: float = NODE_EXPIRY

    def check(self) -> None:
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("the Redis URL must start with redis://, rediss:// or unix://")
        if not 0 < self.heartbeat < self.node_expiry:
            raise ValueError("the heartbeat must be positive and shorter than the node expiry")
        if not self.node_id or any(c in self.node_id for c in " \n:{}%"):
            raise ValueError("a node id must be non-empty, without spaces, ':', '%' or braces")


class Keys:
    """Every Redis key and channel one cluster uses, under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.users = f"{prefix}:users"  # hash: user key -> entry JSON {n, node, c, h}
        self.nodes = f"{prefix}:nodes"  # sorted set: node id -> last heartbeat (Redis time, ms)
        self.all = f"{prefix}:all"  # channel every node listens to: joins/leaves, dead nodes

    def node_users(self, node: str) -> str:  # set: the user keys a node holds
        return f"{self.prefix}:node:{node}:users"

    def known(self, node: str) -> str:  # marker: Redis knows this node (gone after a restart)
        return f"{self.prefix}:node:{node}:known"

    def inbox(self, node: str) -> str:  # channel: messages for a node's users
        return f"{self.prefix}:to:{node}"
