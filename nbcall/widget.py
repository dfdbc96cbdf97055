"""The call widget: Python owns identity, configuration and the call API; the browser owns media.

Lasting state lives in synced traitlets (``state``, ``peer``, ``peers`` ...), which the
frontend sets; actions are custom messages with a ``kind`` sent to the frontend
(``call``, ``accept``, ``reject``, ``hangup``).  Messages from the browser reach the kernel
only between cells, so nothing here blocks waiting for the browser.
"""

from __future__ import annotations

import pathlib
import secrets
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from .ice import default_ice_servers, validate_ice_servers
from .signaling.names import InvalidName, name_key, normalize_name

STATES = ("idle", "registering", "calling", "ringing", "connecting", "connected", "ended", "error")
TRANSPORTS = ("direct",)
# States in which a new call can be placed: registered and not in a call.
_CAN_CALL = ("idle", "ended")
_IN_CALL = ("calling", "connecting", "connected")

_STATIC = pathlib.Path(__file__).parent / "static"


class CallError(RuntimeError):
    """An action that cannot work right now; the message says why."""


class CallWidget(anywidget.AnyWidget):
    """A WebRTC video call widget: local preview, remote video, call controls, online users.

    >>> alice = CallWidget(user="alice")   # starts (or reuses) the embedded signaling server
    >>> alice                              # display it; the browser registers "alice"
    >>> alice.call("bob")                  # in a later cell: ring bob

    Media flows browser to browser; the kernel only configures and observes the call.
    """

    _esm = _STATIC / "widget.js"
    _css = _STATIC / "widget.css"

    user = traitlets.Unicode(help="This widget's user name, registered on the signaling server.").tag(sync=True)
    server = traitlets.Unicode(
        help="Signaling server URL (ws://...). Default: the embedded server started or found by nbcall.serve()."
    ).tag(sync=True)
    state = traitlets.Enum(
        STATES, default_value="registering", help="Call state, set by the browser: " + ", ".join(STATES) + "."
    ).tag(sync=True)
    peer = traitlets.Unicode("", help="The other side of the current (or last) call.").tag(sync=True)
    incoming = traitlets.Unicode("", help="The caller's name while a call is ringing here, else empty.").tag(sync=True)
    peers = traitlets.List(traitlets.Unicode(), help="Users online on the server, excluding this one.").tag(sync=True)
    error = traitlets.Unicode("", help="The last problem, in words (empty when none).").tag(sync=True)
    end_reason = traitlets.Unicode(
        "", help="Why the last call ended: hangup, rejected, busy, cancelled, timeout, disconnected, failed, ..."
    ).tag(sync=True)
    audio = traitlets.Bool(True, help="Send the microphone (can be toggled during a call).").tag(sync=True)
    video = traitlets.Bool(True, help="Send the camera (can be toggled during a call).").tag(sync=True)
    ice_servers = traitlets.List(
        traitlets.Dict(),
        help="RTCIceServer dicts (STUN/TURN) for the next call. Default: $NBCALL_ICE_SERVERS, else [] "
        "(enough on one machine).",
    ).tag(sync=True)
    transport = traitlets.Enum(
        TRANSPORTS, default_value="direct", help="How the page reaches the signaling server: 'direct' websocket."
    ).tag(sync=True)
    stats = traitlets.Dict(
        help="Call numbers from the browser, refreshed every 2 s while connected "
        "(setup_ms, frames_decoded, fps, width, height, rtt_ms)."
    ).tag(sync=True)
    # Lets a reloaded page (or a reconnecting websocket) take the name back cleanly.
    _credential = traitlets.Unicode(help="Credential for re-registering this name.").tag(sync=True)

    def __init__(self, user: str, server: str | None = None, **kwargs: Any) -> None:
        try:
            display_name = normalize_name(user)
        except InvalidName as exc:
            raise ValueError(f"invalid user name {user!r}: {exc}") from None
        if server is None:
            # Imported here so that a widget given an explicit URL never starts a server.
            from .signaling.embedded import serve

            server = serve().url
        if not server.startswith(("ws://", "wss://")):
            raise ValueError(f"server must be a ws:// or wss:// URL, not {server!r}")
        super().__init__(user=display_name, server=server, _credential=secrets.token_urlsafe(18), **kwargs)
        self._views_seen = 0
        self._frontend_ready = False
        self.on_msg(self._on_frontend_msg)

    @traitlets.default("ice_servers")
    def _default_ice_servers(self) -> list[dict[str, Any]]:
        return default_ice_servers()

    @traitlets.validate("ice_servers")
    def _check_ice_servers(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            return validate_ice_servers(proposal["value"])
        except ValueError as exc:
            raise traitlets.TraitError(str(exc)) from None

    # -- frontend events ---------------------------------------------------------------

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("kind")
        if kind == "ready":
            self._frontend_ready = True
        elif kind == "view":
            self._frontend_ready = True
            self._views_seen += 1

    @property
    def displayed(self) -> bool:
        """True once a view of this widget has been rendered in a browser (reported between cells)."""
        return self._views_seen > 0

    def _require_frontend(self, action: str) -> None:
        if not self.displayed:
            raise CallError(
                f"cannot {action}: the widget has not been displayed yet. Show it first (put it last in a cell "
                "or call display(widget)), then run the action in a later cell — the browser reports in between cells"
            )

    # -- actions -----------------------------------------------------------------------

    def call(self, user: str) -> None:
        """Ring ``user``. Raises :class:`CallError` at once when the call cannot work."""
        self._require_frontend("call")
        try:
            target = normalize_name(user)
        except InvalidName as exc:
            raise CallError(f"cannot call {user!r}: {exc}") from None
        if name_key(target) == name_key(self.user):
            raise CallError("cannot call yourself")
        if self.state not in _CAN_CALL:
            if self.state == "error":
                detail = f": {self.error}" if self.error else ""
            elif self.state == "registering":
                detail = " (the page is still connecting to the signaling server)"
            else:
                detail = f" with {self.peer}" if self.peer else ""
            raise CallError(f"cannot call while {self.state}{detail}")
        online = {name_key(p): p for p in self.peers}
        if name_key(target) not in online:
            raise CallError(f"cannot call {target!r}: not online (online: {', '.join(self.peers) or 'nobody'})")
        self.send({"kind": "call", "to": online[name_key(target)]})

    def accept(self) -> None:
        """Answer the ringing incoming call."""
        self._require_frontend("accept")
        if self.state != "ringing":
            raise CallError(f"nothing to accept: the widget is {self.state}, not ringing")
        self.send({"kind": "accept"})

    def reject(self) -> None:
        """Decline the ringing incoming call."""
        self._require_frontend("reject")
        if self.state != "ringing":
            raise CallError(f"nothing to reject: the widget is {self.state}, not ringing")
        self.send({"kind": "reject"})

    def hangup(self) -> None:
        """End the current call (or stop ringing someone)."""
        self._require_frontend("hang up")
        if self.state not in _IN_CALL:
            raise CallError(f"no call to hang up: the widget is {self.state}")
        self.send({"kind": "hangup"})

    # -- callbacks ---------------------------------------------------------------------

    def on_incoming(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(caller_name)`` whenever a call starts ringing here."""

        def handler(change: dict[str, Any]) -> None:
            if change["new"]:
                callback(change["new"])

        self.observe(handler, names=["incoming"])

    def on_state(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(new_state)`` on every state change."""

        def handler(change: dict[str, Any]) -> None:
            callback(change["new"])

        self.observe(handler, names=["state"])

    def __repr__(self) -> str:
        return f"CallWidget(user={self.user!r}, state={self.state!r}, peer={self.peer!r})"
