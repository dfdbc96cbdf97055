"""A node's subscriber connection once subscribed: pub/sub messages parsed and handled in the
transport's own callback.

Read through redis-py's stream, each message waited for the reading task's next turn of the
event loop (a pass over every ready handler on a busy node) and went through a coroutine
chain.  Handled in ``data_received``: at the paced load, cross-node p99 2.28 ms and 128 µs of
CPU per message, against 3.08-4.13 ms and 137-145 µs before (benchmarks/README.md, cluster-6
against cluster-4 and -5: separate runs, same command).
redis-py still connects, authenticates (TLS, password) and subscribes; only the reading of
an established subscription moves here, with the connection's own hiredis reader.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio.connection import AbstractConnection

log = logging.getLogger("nbcall.cluster")


class Inbox(asyncio.Protocol):
    """``handle(data)`` for every pub/sub message; ``lost`` fails when the connection ends."""

    def __init__(self, reader: Any, handle: Callable[[bytes], None]) -> None:
        self.reader = reader  # the connection's hiredis.Reader, with what it has buffered
        self.handle = handle
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    def take_over(cls, conn: AbstractConnection, handle: Callable[[bytes], None]) -> Inbox | None:
        """Move ``conn``'s transport to a new inbox (None without hiredis: keep redis-py's reading)."""
        parser = getattr(conn, "_parser", None)
        reader = getattr(parser, "_reader", None) if isinstance(parser, _AsyncHiredisParser) else None
        stream = getattr(conn, "_reader", None)
        buffered = getattr(stream, "_buffer", None)  # asyncio.StreamReader's own bytearray
        writer = getattr(conn, "_writer", None)
        # These are redis-py's and asyncio's internals: if a release moves them, keep reading
        # through redis-py rather than guess.
        if reader is None or not isinstance(buffered, bytearray) or writer is None:
            return None
        inbox = cls(reader, handle)
        # Bytes redis-py read but did not parse yet go first; nothing arrives in between
        # (no await from here to set_protocol).
        pending = bytes(buffered)
        buffered.clear()
        transport = writer.transport
        transport.set_protocol(inbox)
        inbox.data_received(pending)
        # The stream may have paused reading when its buffer filled.  Duck-typed: uvloop's
        # transports are not asyncio.ReadTransport instances (an isinstance check never resumed).
        is_reading = getattr(transport, "is_reading", None)
        if callable(is_reading) and not is_reading():
            transport.resume_reading()
        return inbox

    def data_received(self, data: bytes) -> None:
        if data:
            self.reader.feed(data)
        while True:
            message = self.reader.gets()
            if message is NOT_ENOUGH_DATA or message is False:
                return
            # RESP2: [b"message", channel, data] for a message on our channels.
            if type(message) is list and message[0] == b"message":
                try:
                    self.handle(message[2])
                except Exception:  # one bad message from another node must not stop the inbox
                    log.exception("a message from Redis could not be handled")

    def eof_received(self) -> bool:
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_exception(ConnectionError(f"Redis closed the subscriber connection ({exc})"))
