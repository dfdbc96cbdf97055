"""``nbcall-server`` / ``python -m nbcall``: run the signaling server standalone."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys

from .signaling.embedded import EmbeddedServer
from .signaling.hub import Limits
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
    parser.add_argument("--max-connections", type=int, default=20_000)
    parser.add_argument(
        "--rate", type=float, default=Limits.rate, help="messages/s per connection (default: %(default)s)"
    )
    parser.add_argument(
        "--burst", type=float, default=Limits.burst, help="message burst per connection (default: %(default)s)"
    )
    parser.add_argument(
        "--ring-timeout", type=float, default=Limits.ring_timeout, help="seconds (default: %(default)s)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's default event loop")
    return parser


async def _run(server: EmbeddedServer) -> None:
    await server.start()
    # Kernels of this user on this machine find and use this server (nbcall.serve() on the
    # same port) once it proves the secret in this file: see signaling/ownership.py.
    runtime_file = write_runtime_file(server.port, server.config.host, server.url, server.secret)
    print(f"nbcall signaling server on {server.url}", flush=True)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limits = Limits(rate=args.rate, burst=args.burst, ring_timeout=args.ring_timeout)
    try:
        config = ServerConfig(
            host=args.host,
            port=args.port,
            token=args.token,
            origins=args.origins,
            max_connections=args.max_connections,
            limits=limits,
        )
        server = EmbeddedServer(config, secrets.token_bytes(32))
    except ValueError as exc:
        print(f"nbcall-server: {exc}", file=sys.stderr)
        return 2
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
