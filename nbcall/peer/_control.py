"""A Peer's side of the signaling protocol and its call state (runs on the Peer's loop).

The same moves as the widget's Phone (js/call/phone.js), through the same table of call
states (``CALL_TRANSITIONS``, ``nbcall/_call_state.py``; ``tests/call_transitions.json``
holds the cases both are tested on): register; ``invite`` -> ``ringing`` -> ``accept`` ->
the caller offers; a plain seed ``offer`` to an idle Peer rings like an invite;
``reject``/``busy``/``cancel``/``hangup`` from the other side end the call with their
reason.  Messages are taken from the call's peer only (the server's ``from_key``), whatever
the server forwards.  The connection is a :class:`~nbcall.signaling.client.SignalingClient`;
a dropped one is replaced, registering with the credential and announcing the call, so a
call survives a signaling blink as the widget's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any, Protocol, cast

from websockets.exceptions import ConnectionClosed, WebSocketException

from .._call_state import CallState
from .._enums import CAN_CALL_STATES, END_REASONS, IN_CALL_STATES
from .._errors import CallError, server_code
from ..signaling import wire
from ..signaling import wire_types as w
from ..signaling.client import SignalingClient, SignalingError
from ..signaling.protocol import ErrorCode
from ._session import MAX_PENDING_SIGNALS, MediaSession

log = logging.getLogger("nbcall.peer")

BUSY_STATES = (*IN_CALL_STATES, "ringing")  # what a new call would be busy with, as in the page
SIGNALS = tuple(sorted(wire.SEED_FORWARDED))  # a tuple: a hostile "type" may be unhashable
ENDINGS = ("reject", "cancel", "hangup")  # and busy, which carries no reason
NAME_RETRY_S = 0.2
RECONNECT_S = 1.0
CLIENT = "nbcall-peer"
# What the call's other side negotiates with, as the server forwards it.
Signal = w.ServerOffer | w.ServerAnswer | w.ServerCandidate


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


class Hooks(Protocol):
    """What the Control needs from its Peer."""

    def state_changed(self, state: str) -> None: ...
    def ringing(self, caller: str) -> None: ...
    def new_session(self, data_channel: bool) -> MediaSession: ...
    async def end_session(self, session: MediaSession) -> None: ...
    def connected(self) -> None: ...


class Control:
    """Registration, the online list, and the state of the current call."""

    def __init__(self, hooks: Hooks, url: str, name: str) -> None:
        self.hooks = hooks
        self.url = url
        self.user = name
        self.key = ""
        self.credential: str | None = None
        self.server_id = ""
        # The call's state: moves only through the table the page's Phone uses too.
        self.machine = CallState("registering", hooks.state_changed)
        self.peer = ""
        self.peer_key = ""
        self.incoming = ""
        self.call_id: str | None = None
        self.seed_call = False
        self.end_reason = ""
        self.error = ""
        self.peers: dict[str, str] = {}  # key -> display name
        self.session: MediaSession | None = None
        self.pending: list[Signal] = []
        self.setup_start = 0.0
        self.setup_ms = 0
        self._client: SignalingClient | None = None  # the current connection
        self._reader: asyncio.Task[None] | None = None
        self._closing = False

    # -- the socket -------------------------------------------------------------------------

    async def start(self, name_grace: float) -> None:
        """Connect and register; raises CallError when refused (name_grace: retry name_taken that long)."""
        deadline = time.monotonic() + name_grace
        while True:
            reply = await self._register()
            if reply.get("type") == "registered":
                break
            code = _str(reply.get("code"))
            if code == ErrorCode.NAME_TAKEN and time.monotonic() < deadline:
                await asyncio.sleep(NAME_RETRY_S)
                continue
            self._set_state("error", "register refused")
            self.error = f"cannot register as {self.user}: {code}: {_str(reply.get('message'))}"
            raise CallError(self.error, code=server_code(code))
        self._registered(cast(w.ServerRegistered, reply))
        self._reader = asyncio.create_task(self._read())

    async def _register(self) -> dict[str, Any]:
        """A new connection, registered (with the credential, announcing the call): the
        server's ``registered``, or its refusal."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
        self._client = None
        client = SignalingClient(self.url, credential=self.credential, presence=True, client=CLIENT)
        await client.connect(timeout=5)
        self._client = client
        announce = None
        if self.state in ("connecting", "connected") and self.peer and self.call_id and not self.seed_call:
            announce = {"peer": self.peer, "call_id": self.call_id}
        try:
            return await client.register(self.user, timeout=5, call=announce)
        except SignalingError as refused:
            return refused.reply

    def closing(self) -> bool:
        return self._closing

    async def _read(self) -> None:
        while not self.closing():
            client = self._client
            assert client is not None
            async for message in client.messages():
                try:
                    await self.on_message(message)
                except Exception:
                    log.exception("%s: could not handle %s from the server", self.user, message.get("type"))
            if self.closing():
                return
            await self._reconnect()

    async def _reconnect(self) -> None:
        """Our socket dropped: register again with the credential (announcing the call) until it works."""
        log.warning("%s: signaling connection lost; reconnecting", self.user)
        if self.state not in BUSY_STATES:
            self._set_state("registering", "socket dropped")
        while not self._closing:
            try:
                reply = await self._register()
            except (OSError, TimeoutError, WebSocketException) as exc:
                self.error = f"signaling server {self.url} unreachable: {exc}"
                await asyncio.sleep(RECONNECT_S)
                continue
            if reply.get("type") == "registered":
                self._registered(cast(w.ServerRegistered, reply))
                return
            self.error = f"cannot register as {self.user}: {_str(reply.get('code'))}"
            await self._end("disconnected")
            self._set_state("error", "register refused on reconnect")
            self._closing = True
            return

    async def send(self, message: dict[str, Any]) -> None:
        client = self._client
        if client is None or client.closed.is_set():
            return
        try:
            await client.send(message)
        except ConnectionClosed:
            log.info("%s: %s not sent: the signaling socket is closed", self.user, message.get("type"))

    async def shutdown(self) -> None:
        """End any call (telling the other side: ``closed``), leave the server."""
        if self.state == "ringing":
            await self.reject()
        elif self.state in BUSY_STATES:
            tell = "cancel" if self.state == "calling" else "hangup"
            await self._end("closed", tell=tell, told=None if tell == "cancel" else "closed")
        self._closing = True
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    # -- state ------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self.machine.state

    def _set_state(self, state: str, why: str) -> None:
        """Move the call's state (a listed move to the current state changes nothing)."""
        self.machine.move(state, why)

    def _registered(self, reply: w.ServerRegistered) -> None:
        self.key = _str(reply.get("key")) or self.key
        self.user = _str(reply.get("username")) or self.user
        self.credential = _str(reply.get("credential")) or self.credential
        self._replace_peers(reply.get("users"), reply.get("keys"))
        server_id = _str(reply.get("server_id"))
        restarted = bool(server_id and self.server_id and server_id != self.server_id)
        self.server_id = server_id or self.server_id
        call = reply.get("call") if isinstance(reply.get("call"), dict) else None
        ours = call is not None and call.get("peer_key") in (None, self.peer_key)
        if self.state in BUSY_STATES and not ours and not (restarted and self.state in ("connecting", "connected")):
            asyncio.get_running_loop().create_task(self._end("disconnected"))
        elif self.state in ("registering", "error"):
            self._set_state("idle", "registered")
        self.error = ""

    def _replace_peers(self, users: object, keys: object) -> None:
        if isinstance(users, list) and isinstance(keys, list):
            self.peers = {k: u for u, k in zip(users, keys, strict=False) if isinstance(u, str) and isinstance(k, str)}
            self.peers.pop(self.key, None)

    def _presence(self, message: w.ServerPresence) -> None:
        for name, key in zip(message.get("left") or [], message.get("left_keys") or [], strict=False):
            if isinstance(key, str) and self.peers.get(key) == name:
                del self.peers[key]
        for name, key in zip(message.get("joined") or [], message.get("joined_keys") or [], strict=False):
            if isinstance(key, str) and isinstance(name, str) and key != self.key:
                self.peers[key] = name
        if message.get("truncated"):
            asyncio.get_running_loop().create_task(self.send({"type": "list"}))

    def _from_peer(self, message: Mapping[str, Any]) -> bool:
        key = message.get("from_key")
        if isinstance(key, str):
            return bool(self.peer_key) and key == self.peer_key
        return bool(self.peer) and message.get("from") == self.peer  # seed shapes carry no key

    def _new_call(self, state: str, peer: str, peer_key: str, call_id: str | None, seed: bool = False) -> None:
        self.peer, self.peer_key, self.call_id, self.seed_call = peer, peer_key, call_id, seed
        self.incoming = peer if state == "ringing" else ""
        self.end_reason = ""
        self.error = ""
        self.pending = []
        self.setup_ms = 0
        self._set_state(state, "new call")
        if state == "ringing":
            self.hooks.ringing(peer)

    async def _end(self, reason: str, *, tell: str | None = None, told: str | None = None) -> None:
        """End the call for ``reason``; ``tell``: the message to send the other side first."""
        if tell and self.peer:
            message: dict[str, Any] = {"type": tell, "to": self.peer}
            if told:
                message["reason"] = told
            await self.send(message)
        was_busy = self.state in BUSY_STATES
        session, self.session = self.session, None
        self.pending = []
        self.incoming = ""
        self.end_reason = reason
        if was_busy:
            self._set_state("ended", "call ended")
        if session is not None:
            await self.hooks.end_session(session)

    # -- actions (validated by the Peer in the caller's thread, checked again here) ----------

    async def call(self, peer: str, peer_key: str) -> None:
        if self.state not in CAN_CALL_STATES:
            return
        self._new_call("calling", peer, peer_key, secrets.token_hex(6))
        self.setup_start = time.monotonic()
        await self.send({"type": "invite", "to": peer, "call_id": self.call_id})

    async def accept(self) -> None:
        if self.state != "ringing":
            return
        self.setup_start = time.monotonic()
        if not self.seed_call:
            await self.send({"type": "accept", "to": self.peer})
        self.incoming = ""
        self._set_state("connecting", "answered")
        self.session = self.hooks.new_session(not self.seed_call)
        pending, self.pending = self.pending, []
        for message in pending:
            await self._apply(message)

    async def reject(self) -> None:
        if self.state != "ringing":
            return
        # A seed caller cannot be told "rejected"; hang up so the server stops tracking it.
        if self.seed_call:
            await self._end("rejected", tell="hangup", told="rejected")
        else:
            await self._end("rejected", tell="reject")

    async def hangup(self) -> None:
        if self.state == "ringing":
            await self.reject()
        elif self.state == "calling":
            await self._end("cancelled", tell="cancel")
        elif self.state in BUSY_STATES:
            await self._end("hangup", tell="hangup")

    async def lost(self) -> None:
        """Nothing from the other side for lost_after seconds."""
        if self.state in ("connecting", "connected"):
            await self._end("lost", tell="hangup", told="lost")

    def connection_state(self, state: str) -> None:
        """The session's RTCPeerConnection state changed."""
        if state == "connected" and self.state == "connecting":
            self.setup_ms = round((time.monotonic() - self.setup_start) * 1000)
            self._set_state("connected", "media connected")
            self.hooks.connected()
        elif state == "failed" and self.state in ("connecting", "connected"):
            self.error = "call failed: no ICE path to the other side"
            asyncio.get_running_loop().create_task(self._end("failed", tell="hangup", told="failed"))

    async def _apply(self, message: Signal) -> None:
        session = self.session
        if session is None:
            return
        try:
            await session.handle(message)
        except Exception as exc:
            log.warning("%s: %s from %s could not be applied: %s", self.user, message.get("type"), self.peer, exc)
            if message.get("type") in ("offer", "answer") and self.state == "connecting":
                self.error = f"call: {type(exc).__name__}: {exc}"[:300]
                await self._end("failed", tell="hangup", told="failed")

    async def _offer(self) -> None:
        session = self.session
        if session is None:
            return
        try:
            await session.offer()
        except Exception as exc:
            log.exception("%s: could not make an offer", self.user)
            self.error = f"call: {type(exc).__name__}: {exc}"[:300]
            await self._end("failed", tell="hangup", told="failed")

    # -- what the server says ----------------------------------------------------------------

    async def on_message(self, message: dict[str, Any]) -> None:
        """One message from the server, to its handler.  The handlers are typed from the wire
        (``nbcall/signaling/wire_types.py``) and still read defensively: a server is not
        trusted to send only what it declares."""
        kind = message.get("type")
        if kind == "registered":
            self._registered(cast(w.ServerRegistered, message))
        elif kind == "presence":
            self._presence(cast(w.ServerPresence, message))
        elif kind == "users":
            users = cast(w.ServerUsers, message)
            self._replace_peers(users.get("users"), users.get("keys"))
        elif kind == "invite":
            self._invited(cast(w.ServerInvite, message))
        elif kind == "accept":
            await self._accepted(cast(w.ServerAccept, message))
        elif kind == "busy":
            if self._from_peer(message) and self.state in BUSY_STATES:
                await self._end("busy")
        elif kind in ENDINGS:
            await self._ended_there(cast(w.ServerReject | w.ServerCancel | w.ServerHangup, message))
        elif kind in SIGNALS:
            await self._signal(cast(Signal, message))
        elif kind == "error":
            await self._error(cast(w.ServerError, message))
        elif kind == "replaced":
            await self._replaced(cast(w.ServerReplaced, message))

    def _invited(self, message: w.ServerInvite) -> None:
        if self.state in CAN_CALL_STATES:  # else the server answers the caller busy
            caller = _str(message.get("from"))
            self._new_call("ringing", caller, _str(message.get("from_key")), _str(message.get("call_id")) or None)

    async def _accepted(self, message: w.ServerAccept) -> None:
        if self.state == "calling" and self._from_peer(message):
            self.seed_call = message.get("seed") is True
            self._set_state("connecting", "accepted")
            self.session = self.hooks.new_session(not self.seed_call)
            await self._offer()

    async def _ended_there(self, message: w.ServerReject | w.ServerCancel | w.ServerHangup) -> None:
        if self._from_peer(message) and self.state in BUSY_STATES:
            reason = _str(message.get("reason")) or str(message.get("type"))
            await self._end(reason if reason in END_REASONS else "hangup")

    async def _replaced(self, message: w.ServerReplaced) -> None:
        self._closing = True
        await self._end("replaced")
        self._set_state("error", "name taken over")
        self.error = _str(message.get("message")) or "replaced by another connection"

    async def _signal(self, message: Signal) -> None:
        from_peer = self._from_peer(message)
        if from_peer and self.session is not None:
            await self._apply(message)
        elif from_peer and self.state in ("ringing", "connecting"):
            if message.get("type") == "offer" and self.state == "ringing" and self.seed_call:
                self.pending = []  # a repeated seed offer replaces the first
            if len(self.pending) < MAX_PENDING_SIGNALS:
                self.pending.append(message)
        elif message.get("type") == "offer" and self.state in CAN_CALL_STATES:
            # A seed client calls with a plain offer and no invite: ring like any call.
            caller = _str(message.get("from"))
            if caller:
                self._new_call("ringing", caller, _str(message.get("from_key")), None, seed=True)
                self.pending = [message]

    async def _error(self, message: w.ServerError) -> None:
        code, request = _str(message.get("code")), message.get("request")
        text = f"{code}: {_str(message.get('message'))}"[:500]
        if code == ErrorCode.NO_CALL and request in ("hangup", "cancel", "reject"):
            return  # a call the server had already forgotten
        if request == "invite" and self.state == "calling":
            await self._end(code if code in END_REASONS else "failed")
        elif request in SIGNALS and code == ErrorCode.UNKNOWN_PEER and self.session is not None:
            await self._end("disconnected")
        self.error = text
