"""What a node publishes to Redis: a bounded queue, written in order on one connection.

Messages queued back to back for one node go out as one ``PUBLISH`` (envelopes joined by
newlines, remote.py): one Redis command, one pub/sub message and one wake-up of Redis and
of the receiving node for a burst.  The queue is written once the event loop has taken
``HOLD_TURNS`` more turns without new messages (no timer: a turn is a poll for ready sockets
and their handlers), so the other messages of a burst that is still arriving join it.
Written at once instead, each cross-node message travelled alone and woke Redis, which then
took the core from the node in the middle of its burst (``benchmarks/README.md``, "Fewer
wake-ups per cross-node message").

redis-py opens the connection (TLS, password) and switches it to ``CLIENT REPLY OFF``:
nothing comes back, no round trip is waited for.  Then the outbox takes the socket's
transport (as the inbox does the subscriber's) and writes RESP it packs itself (a
``PUBLISH`` is one format string; redis-py's packer cost more than the write) from a loop
callback; the transport's flow control (``HIGH_WATER``) pauses and resumes it, and a
connection Redis closes is replaced before the next write.  If redis-py's internals move,
the writer task writes through ``send_packed_command`` instead.

Bounds: the queue holds at most ``MAX_PENDING_MESSAGES`` / ``MAX_PENDING_BYTES`` (config.py;
past them messages are refused and counted), the transport's buffer at most ``HIGH_WATER``
plus one write (``MAX_WRITE_BYTES`` plus one message).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

from . import scripts
from .config import MAX_BATCH, MAX_COALESCED_BYTES, MAX_PENDING_BYTES, MAX_PENDING_MESSAGES

HOLD_TURNS = 1  # turns of the event loop a queued message may wait for others to join it
HIGH_WATER = 64 * 1024  # bytes in the transport's buffer at which writing pauses
MAX_WRITE_BYTES = 256 * 1024  # message bytes per write

REDIS_FAILURES = (RedisError, OSError, asyncio.TimeoutError)

_RELEASE_SCRIPT = scripts.RELEASE.encode()


class _Socket(asyncio.Protocol):
    """The publisher connection's transport, once taken from redis-py: flow control and loss."""

    def __init__(self, outbox: Outbox, transport: asyncio.WriteTransport) -> None:
        self.outbox = outbox
        self.transport = transport
        self.paused = False

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.outbox.write_queued()

    def data_received(self, data: bytes) -> None:
        pass  # CLIENT REPLY OFF: Redis sends nothing back

    def eof_received(self) -> bool:
        return False  # Redis closed its side: close ours

    def connection_lost(self, exc: Exception | None) -> None:
        self.outbox.socket_lost(self, exc)


class Outbox:
    """``put`` a message for a channel, ``release`` a name: written to Redis in that order.

    ``connect()`` opens a new publisher connection (``CLIENT REPLY OFF`` sent);
    ``on_failure(exc)`` is told when opening or writing fails, or a release finds the backlog
    full (the link then reports Redis down, :meth:`clear` drops the queue and :meth:`abort`
    the connection).
    """

    def __init__(
        self,
        release_keys: tuple[str, str],
        node: str,
        connect: Callable[[], Awaitable[AbstractConnection]],
        on_failure: Callable[[BaseException], None],
    ) -> None:
        keys = (k.encode() for k in release_keys)
        self._release_prefix = _command_prefix(b"EVAL", _RELEASE_SCRIPT, b"2", *keys, extra=3)
        self._node = node.encode()
        self._connect = connect
        self._on_failure = on_failure
        self._queue: deque[tuple[bytes | None, bytes]] = deque()  # (channel, message) or (None, EVAL)
        self._queued_bytes = 0
        self._conn: AbstractConnection | None = None  # the publisher connection, opened by connect()
        self._socket: _Socket | None = None  # the taken transport: while the loop writes directly
        self._closing: asyncio.Future[None] | None = None
        self._scheduled = False
        self._turns = 0
        self._held = 0
        self._wake = asyncio.Event()
        self.published = 0  # messages and bytes handed to Redis (for /metrics)
        self.published_bytes = 0
        self.dropped = 0  # messages not published: Redis down or the backlog full

    def put(self, channel: bytes, data: bytes) -> bool:
        """Queue ``data`` for ``channel``; False (dropped, counted) when the backlog is full:
        Redis is slower than this node's users, and they are told so (``cluster_unavailable``)."""
        queue = self._queue
        if len(queue) >= MAX_PENDING_MESSAGES or self._queued_bytes >= MAX_PENDING_BYTES:
            self.dropped += 1
            return False
        queue.append((channel, data))
        self._queued_bytes += len(data)
        self._schedule()
        return True

    def release(self, key: str, token: str) -> None:
        """Free a name this node held (the registration ``token`` wrote: scripts.RELEASE), in
        order with what was queued before.  Past the
        backlog's bound it is dropped and reported as a failure: the link then counts Redis
        as down, and once it is back frees every name Redis says this node holds and no
        longer has (``ClusterHub._on_up``), this one with them."""
        if len(self._queue) >= MAX_PENDING_MESSAGES:
            self._on_failure(BufferError(f"{len(self._queue)} messages wait for Redis"))
            return
        command = self._release_prefix + _bulk(key.encode()) + _bulk(self._node) + _bulk(token.encode())
        self._queue.append((None, command))
        self._schedule()

    def clear(self) -> None:
        """Drop the backlog (Redis is down)."""
        self.dropped += sum(1 for channel, _ in self._queue if channel is not None)
        self._queue.clear()
        self._queued_bytes = 0

    # -- when to write -----------------------------------------------------------------------

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._turns = 0
            asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        queued = len(self._queue)
        if self._turns < HOLD_TURNS and (self._turns == 0 or queued != self._held):
            self._turns += 1
            self._held = queued
            asyncio.get_running_loop().call_soon(self._turn)
            return
        self._scheduled = False
        self.write_queued()

    def write_queued(self) -> None:
        """Write what is queued, as far as the socket's flow control lets (its protocol calls this on resume)."""
        socket = self._socket
        if socket is None:
            self._wake.set()  # the writer task connects (or writes, without the fast path)
            return
        while self._queue and not socket.paused:  # write() pauses it past HIGH_WATER
            socket.transport.writelines(self._take())

    def socket_lost(self, socket: _Socket, exc: Exception | None) -> None:
        """Redis closed the publisher's connection (its protocol says so)."""
        # Not a failure of Redis: its ``timeout`` or a proxy's idle cut closes a publisher that
        # had nothing to send.  The next write connects again; whether Redis is down is the
        # heartbeat's call (and a failed connect's).
        if socket is self._socket:
            self._socket = self._conn = None

    def abort(self) -> None:
        """Drop the connection at once, whatever its buffer holds: a close would wait for a
        socket Redis does not read to drain, and the next write would queue behind it."""
        socket, conn = self._socket, self._conn
        self._socket = self._conn = None
        if socket is not None:
            socket.transport.abort()
        elif conn is not None:  # written through redis-py: its own close, without waiting
            self._closing = asyncio.ensure_future(conn.disconnect(nowait=True))

    async def run(self, stopping: Callable[[], bool]) -> None:
        """The writer task: connects (at once, and again when there is something to write
        after the connection was lost or dropped); without the fast path, writes too."""
        try:
            while not stopping():
                if self._socket is None:
                    try:
                        conn = self._conn
                        if conn is None:
                            conn = self._conn = await self._connect()
                            self._take_over(conn)
                        # Without the transport: redis-py writes and drains (until an abort).
                        while self._socket is None and self._queue and self._conn is conn:
                            await conn.send_packed_command(self._take(), check_health=False)
                    except REDIS_FAILURES as exc:
                        self.abort()
                        self._on_failure(exc)
                if self._socket is not None:
                    self.write_queued()
                await self._wake.wait()
                self._wake.clear()
        finally:
            self.abort()

    def _take_over(self, conn: AbstractConnection) -> None:
        stream = _stream_of(conn)
        if stream is None:
            return
        transport = stream.transport
        if transport.is_closing():
            raise ConnectionError("Redis closed the publisher connection")
        socket = _Socket(self, transport)
        transport.set_protocol(socket)
        transport.set_write_buffer_limits(high=HIGH_WATER)
        self._socket = socket

    # -- what to write -----------------------------------------------------------------------

    def _take(self) -> list[bytes]:
        """Up to MAX_BATCH queued items (MAX_WRITE_BYTES) as RESP commands; back-to-back
        envelopes for one channel (JSON arrays: an event, a JSON object, goes alone) joined
        into one PUBLISH."""
        queue = self._queue
        out: list[bytes] = []
        size = 0
        messages = 0
        limit = min(len(queue), MAX_BATCH)
        run: list[bytes] = []
        run_channel = b""
        run_bytes = 0
        for _ in range(limit):
            if size >= MAX_WRITE_BYTES:
                break
            channel, data = queue.popleft()
            joins = channel is not None and data[:1] == b"["  # an envelope (an event goes alone)
            if run and not (joins and channel == run_channel and run_bytes + len(data) <= MAX_COALESCED_BYTES):
                out.append(_publish(run_channel, b"\n".join(run)))
                run = []
                run_bytes = 0
            if channel is None:  # EVAL, not EVALSHA: nothing to reload after a Redis restart
                out.append(data)
                continue
            size += len(data)
            messages += 1
            if joins:
                run.append(data)
                run_channel = channel
                run_bytes += len(data)
            else:
                out.append(_publish(channel, data))
        if run:
            out.append(_publish(run_channel, b"\n".join(run)))
        self._queued_bytes -= size
        self.published += messages
        self.published_bytes += size
        return out


def _stream_of(conn: AbstractConnection) -> asyncio.StreamWriter | None:
    """redis-py's stream on the socket (an internal: None if it moves, and then every write
    goes through the writer task and ``send_packed_command``)."""
    stream = getattr(conn, "_writer", None)
    return stream if isinstance(stream, asyncio.StreamWriter) else None


def _bulk(arg: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(arg), arg)


def _command_prefix(*args: bytes, extra: int = 2) -> bytes:
    """A command's header and first arguments; ``extra`` more bulk strings follow."""
    return b"*%d\r\n" % (len(args) + extra) + b"".join(_bulk(a) for a in args)


def _publish(channel: bytes, payload: bytes) -> bytes:
    return b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(channel), channel, len(payload), payload)
