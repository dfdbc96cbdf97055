"""``nbcall-server`` / ``python -m nbcall``: run the signaling server standalone."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys

from .sfu import JanusError
from .sfu.config import resolve
from .signaling.admission import (
    DEFAULT_MAX_PER_ADDRESS,
    DEFAULT_MAX_UNREGISTERED_PER_ADDRESS,
    DEFAULT_REGISTER_TIMEOUT,
    DESCRIPTOR_RESERVE,
    FALLBACK_MAX_CONNECTIONS,
    REFUSAL_ROOM,
)
from .signaling.embedded import EmbeddedServer
from .signaling.hub import Limits
from .signaling.keepalive import DEFAULT_IDLE_PING_INTERVAL, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT
from .signaling.ownership import remove_runtime_file, write_runtime_file
from .signaling.server import DEFAULT_HOST, DEFAULT_PORT, ServerConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbcall-server", description="nbcall's WebRTC signaling server.")
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument("--token", help="shared secret every client must present (?token=...)")
    parser.add_argument("--origin", action="append", dest="origins", help="allowed browser Origin (repeatable)")
    parser.add_argument(
        "--max-connections",
        type=int,
        help="connections in all (default: what the open-descriptor limit allows, less a reserve; "
        "never more than that; the limit is raised toward its hard limit first)",
    )
    parser.add_argument(
        "--max-per-address",
        type=int,
        default=DEFAULT_MAX_PER_ADDRESS,
        help="connections from one IP address or IPv6 /64 (default: %(default)s)",
    )
    parser.add_argument(
        "--max-unregistered-per-address",
        type=int,
        default=DEFAULT_MAX_UNREGISTERED_PER_ADDRESS,
        help="of those, not registered yet (default: %(default)s)",
    )
    parser.add_argument(
        "--cap-loopback",
        action="store_true",
        help="apply the per-address caps to loopback clients too (off: a reverse proxy, "
        "Jupyter's endpoint and kernels connect from loopback)",
    )
    parser.add_argument(
        "--register-timeout",
        type=float,
        default=DEFAULT_REGISTER_TIMEOUT,
        help="seconds a new connection has to register (default: %(default)s)",
    )
    parser.add_argument(
        "--ping-interval",
        type=float,
        default=DEFAULT_PING_INTERVAL,
        help="seconds between keepalive pings to a connection in a call, 0 for no pings (default: %(default)s)",
    )
    parser.add_argument(
        "--idle-ping-interval",
        type=float,
        default=DEFAULT_IDLE_PING_INTERVAL,
        help="seconds between keepalive pings to a connection in no call (default: %(default)s)",
    )
    parser.add_argument(
        "--ping-timeout",
        type=float,
        default=DEFAULT_PING_TIMEOUT,
        help="seconds to wait for a pong before dropping the connection (default: %(default)s)",
    )
    parser.add_argument(
        "--rate", type=float, default=Limits.rate, help="messages/s per connection (default: %(default)s)"
    )
    parser.add_argument(
        "--burst", type=float, default=Limits.burst, help="message burst per connection (default: %(default)s)"
    )
    parser.add_argument(
        "--ring-timeout", type=float, default=Limits.ring_timeout, help="seconds (default: %(default)s)"
    )
    parser.add_argument(
        "--room-mesh-limit",
        type=int,
        default=Limits.room_mesh_limit,
        help="members a room holds as a mesh (at least 2); a join past it moves the room to the SFU (--sfu), "
        "or is refused with room_full without one (default: %(default)s)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("NBCALL_REDIS_URL"),
        metavar="URL",
        help="cluster mode: share users and calls with every server on this Redis "
        "(redis://[:PASSWORD@]HOST:PORT/DB or rediss://...; default: $NBCALL_REDIS_URL; needs nbcall[cluster])",
    )
    parser.add_argument("--node-id", help="this node's name in the cluster and its logs (default: host-pid-random)")
    parser.add_argument("--redis-prefix", default="nbcall", help="Redis key prefix: one cluster per prefix")
    parser.add_argument(
        "--sfu",
        default=os.environ.get("NBCALL_SFU") or None,
        metavar="local|JSON",
        help="the Janus that rooms past the mesh limit move to: 'local' (start one on 127.0.0.1 for this server, "
        'stopped with it) or {"admin_url": .., "public_url": .., "admin_key": ..} '
        "(default: $NBCALL_SFU; none: such a join is refused with room_full)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's default event loop")
    return parser


async def _run(server: EmbeddedServer) -> None:
    try:
        await server.start()
    except BaseException:
        await server.stop_janus()
        raise
    # Kernels of this user on this machine find and use this server (nbcall.serve() on the
    # same port) once it proves the secret in this file: see signaling/ownership.py.
    runtime_file = write_runtime_file(server.port, server.config.host, server.url, server.secret)
    print(f"nbcall signaling server on {server.url}", flush=True)
    if server.config.sfu is not None:
        print(f"rooms past the mesh limit use the SFU at {server.config.sfu.public_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if runtime_file is not None:
            remove_runtime_file(runtime_file, server.secret)
    logging.getLogger("nbcall.server").info("shutting down")
    await server.stop()


def raise_descriptor_limit(max_connections: int | None) -> None:
    """Raise this process's soft RLIMIT_NOFILE toward its hard limit, as far as the server can use.

    A dedicated server process (not a kernel): what ``nbcall-server`` may take for itself.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = (max_connections or FALLBACK_MAX_CONNECTIONS) + DESCRIPTOR_RESERVE + REFUSAL_ROOM
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):  # e.g. a sandbox that forbids it
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cluster = None
    node = ""
    if args.redis:
        try:
            from .signaling.cluster import ClusterConfig
        except ImportError:
            print("nbcall-server: --redis needs redis-py: pip install 'nbcall[cluster]'", file=sys.stderr)
            return 2
        cluster = ClusterConfig(args.redis, prefix=args.redis_prefix)
        if args.node_id:
            cluster.node_id = args.node_id
        node = f" [node {cluster.node_id}]"  # every log line says which node did it
    logging.basicConfig(level=args.log_level, format=f"%(asctime)s %(levelname)s %(name)s{node}: %(message)s")
    limits = Limits(
        rate=args.rate, burst=args.burst, ring_timeout=args.ring_timeout, room_mesh_limit=args.room_mesh_limit
    )
    raise_descriptor_limit(args.max_connections)
    try:
        config = ServerConfig(
            host=args.host,
            port=args.port,
            token=args.token,
            origins=args.origins,
            max_connections=args.max_connections,
            limits=limits,
            max_per_address=args.max_per_address,
            max_unregistered_per_address=args.max_unregistered_per_address,
            cap_loopback=args.cap_loopback,
            register_timeout=args.register_timeout,
            ping_interval=args.ping_interval or None,
            ping_timeout=args.ping_timeout,
            idle_ping_interval=args.idle_ping_interval,
            cluster=cluster,
        )
        if cluster is not None:
            cluster.check()
        config.sfu, janus = resolve(args.sfu)
    except (ValueError, JanusError) as exc:
        print(f"nbcall-server: {exc}", file=sys.stderr)
        return 2
    try:
        server = EmbeddedServer(config, secrets.token_bytes(32))
    except ValueError as exc:
        if janus is not None:
            janus.stop()
        print(f"nbcall-server: {exc}", file=sys.stderr)
        return 2
    server.owned_janus = janus
    try:
        if args.no_uvloop:
            asyncio.run(_run(server))
        else:
            import uvloop

            uvloop.run(_run(server))
    except OSError as exc:
        print(f"nbcall-server: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
