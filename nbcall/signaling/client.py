"""The Python client of the signaling protocol: nbcall.Peer's connection, the tests' and tools'.

(The kernel transport is not a client: it carries a page's frames to the server unread.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .protocol import MAX_HARD_FRAME_BYTES
from .wire import CHECKING as CHECK_WIRE
from .wire import check_sent


class SignalingError(RuntimeError):
    """The server answered a request with an ``error`` message."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply.get('code')}: {reply.get('message')}")
        self.code: str = str(reply.get("code"))
        self.reply = reply


class SignalingClient:
    """One connection to a signaling server, registered under one name.

    Incoming messages are queued in arrival order; :meth:`recv` takes the next one and
    :meth:`expect` the next one of a given type (skipping others, e.g. presence).

    >>> async with SignalingClient(url, "alice") as alice:
    ...     await alice.send({"type": "invite", "to": "bob"})
    ...     ringing = await alice.expect("ringing")
    """

    def __init__(
        self,
        url: str,
        username: str | None = None,
        *,
        credential: str | None = None,
        presence: bool = True,
        client: str | None = "nbcall-py",
        seed: bool = False,
    ) -> None:
        self.url = url
        self.username = username
        self.credential = credential
        self.presence = presence
        self.client = None if seed else client
        self.seed = seed
        self.registration: dict[str, Any] | None = None
        self._ws: ClientConnection | None = None
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._pong_wanted: asyncio.Future[None] | None = None  # round_trip() waits for a pong
        self._stray_pings = 0  # pings of a retried round_trip() that may still be answered
        self.closed = asyncio.Event()
        self.malformed = 0  # frames that were not a JSON object: skipped

    async def __aenter__(self) -> SignalingClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.close()

    @property
    def ws(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError("not connected: call connect() first")
        return self._ws

    async def connect(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """Open the websocket and, if a username was given, register (returns the reply)."""
        self._ws = await asyncio.wait_for(
            connect(self.url, compression=None, max_size=MAX_HARD_FRAME_BYTES, open_timeout=timeout), timeout
        )
        self._reader = asyncio.create_task(self._read())
        if self.username is None:
            return None
        return await self.register(self.username, timeout=timeout)

    async def register(
        self, username: str, *, timeout: float = 5.0, call: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Register (with the credential, if any) and return ``registered``; a refusal raises
        :class:`SignalingError`.  ``call``: ``{peer, call_id}``, the call this client was in
        before the server restarted (the server restores it once both sides announce it)."""
        message: dict[str, Any] = {"type": "register", "username": username}
        if self.seed:
            message["id"] = username
        else:
            message["presence"] = self.presence
            if self.client:
                message["client"] = self.client
            if self.credential:
                message["credential"] = self.credential
            if call is not None:
                message["call"] = call
        await self.send(message)
        if self.seed:
            return {}
        reply = await self.expect("registered", timeout=timeout)
        self.username = reply["username"]
        self.credential = reply["credential"]
        self.registration = reply
        return reply

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if CHECK_WIRE:
                    check_sent(frame, fail=False)
                try:
                    message = orjson.loads(frame)
                except orjson.JSONDecodeError:
                    message = None
                if not isinstance(message, dict):  # a server is not trusted to send only JSON objects
                    self.malformed += 1
                    continue
                if message.get("type") == "pong":
                    if self._pong_wanted is not None and not self._pong_wanted.done():
                        self._pong_wanted.set_result(None)
                        continue
                    if self._stray_pings:  # a late answer to a retried round trip's ping
                        self._stray_pings -= 1
                        continue
                self._queue.put_nowait(message)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def round_trip(self, timeout: float = 5.0, *, retry_every: float | None = None) -> None:
        """Ping the server and wait for its pong (which is not queued).  The server handles a
        connection's frames in order and writes what each one causes before it reads the
        next, so once this returns, every reply to what this client sent before is queued.

        A ping past the rate limit is dropped without a word: ``retry_every`` pings again that
        often until a pong comes (the first pong still comes after all sent before).  Its
        other pings may be answered later: those pongs are dropped, and until all of them
        could have been told from a new one, another round trip raises RuntimeError.
        """
        if self._stray_pings:
            raise RuntimeError("a retried round trip's pings may still be answered: no barrier after it")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._pong_wanted = wanted = loop.create_future()
        pings = 0
        try:
            while True:
                await self.send({"type": "ping"})
                pings += 1
                wait = deadline - loop.time() if retry_every is None else min(retry_every, deadline - loop.time())
                done, _ = await asyncio.wait([wanted], timeout=max(0.0, wait))
                if done:
                    self._stray_pings = pings - 1
                    return
                if loop.time() >= deadline:
                    raise TimeoutError(f"no pong within {timeout} s ({pings} pings)")
        finally:
            self._pong_wanted = None
            if not wanted.done():
                wanted.cancel()

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next message, whatever its type."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def expect(self, *types: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message of one of ``types``; an ``error`` raises :class:`SignalingError`.

        Messages of other types that arrive first are dropped.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {'/'.join(types)} message within {timeout} s")
            message = await self.recv(timeout=remaining)
            kind = message.get("type")
            if kind in types:
                return message
            if kind == "error" and "error" not in types:
                raise SignalingError(message)

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Every message, in order, until the connection has closed and all were taken."""
        while True:
            if not self._queue.empty():
                yield self._queue.get_nowait()
                continue
            if self.closed.is_set():
                return
            taken = asyncio.ensure_future(self._queue.get())
            closed = asyncio.ensure_future(self.closed.wait())
            try:
                await asyncio.wait((taken, closed), return_when=asyncio.FIRST_COMPLETED)
            finally:
                closed.cancel()
                if not taken.done():
                    taken.cancel()
            if taken.done() and not taken.cancelled():
                yield taken.result()

    def pending(self) -> list[dict[str, Any]]:
        """Messages received and not yet taken, without waiting."""
        items = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
