"""The call widget: Python owns identity, configuration and the call API; the browser owns media.

Lasting state lives in synced traitlets (``state``, ``peer``, ``peers`` ...), which the
frontend sets; actions are custom messages with a ``kind`` sent to the frontend
(``call``, ``accept``, ``reject``, ``hangup``).  Messages from the browser reach the kernel
only between cells, so nothing here blocks waiting for the browser.
"""

from __future__ import annotations

import pathlib
import secrets
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

import anywidget
import traitlets

from ._media import RECORD_WHICH, WHICH, RecordingAssembler, Snapshot
from .ice import default_ice_servers, validate_ice_servers
from .relay import KernelRelay
from .signaling.names import InvalidName, name_key, normalize_name

STATES = ("idle", "registering", "calling", "ringing", "connecting", "connected", "ended", "error")
# How the page reaches the signaling server (see js/transports.js and nbcall/relay.py).
TRANSPORTS = ("same-origin", "direct", "relay")
ICE_POLICIES = ("all", "relay")
_MAX_RELAYS = 4  # kernel relay sockets per widget (one is normal; a reload opens another)
# States in which a new call can be placed: registered and not in a call.
_CAN_CALL = ("idle", "ended")
_IN_CALL = ("calling", "connecting", "connected")

_STATIC = pathlib.Path(__file__).parent / "static"
# Messages from the page about in-call features (js/features.js, js/recorder.js).
_MEDIA_KINDS = ("snapshot", "recording_started", "recording_chunk", "recording_done", "recording_failed")
RECORDING_STATES = ("idle", "recording", "stopping", "done", "error")
_MAX_SNAPSHOTS = 20  # snapshots kept in CallWidget.snapshots


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
    ice_transport_policy = traitlets.Enum(
        ICE_POLICIES,
        default_value="all",
        help="'relay' sends media only through TURN servers (hides IP addresses; needs a TURN server in ice_servers).",
    ).tag(sync=True)
    connect_via = traitlets.Enum(
        ("auto", *TRANSPORTS),
        default_value="auto",
        help="How the page should reach the signaling server: 'auto' tries the Jupyter server's own endpoint "
        "(same-origin), then a direct websocket, then the kernel relay; or force one of them.",
    ).tag(sync=True)
    transport = traitlets.Enum(
        ("", *TRANSPORTS),
        default_value="",
        help="The transport in use, set by the page: 'same-origin', 'direct' or 'relay' ('' until connected). "
        "The relay passes through the kernel, which reads the page's messages only between cells.",
    ).tag(sync=True)
    stats = traitlets.Dict(
        help="Call quality from the browser, refreshed every second while connected: rtt_ms, inbound_kbps, "
        "outbound_kbps, fps, width, height, packet_loss_pct, candidate_type (host/srflx/prflx/relay), quality, "
        "frames_decoded, bytes_received, bytes_sent, out_fps, out_width, out_height, setup_ms."
    ).tag(sync=True)
    # In-call features (js/features.js; docs/widget.md "In a call").
    remote_audio = traitlets.Bool(True, help="The other side sends its microphone (False: it muted).").tag(sync=True)
    remote_video = traitlets.Bool(True, help="The other side sends video (False: its camera is off).").tag(sync=True)
    cameras = traitlets.List(
        traitlets.Dict(), help="Cameras of the browser, [{'id', 'label'}] (labels once the camera was allowed)."
    ).tag(sync=True)
    microphones = traitlets.List(traitlets.Dict(), help="Microphones of the browser, [{'id', 'label'}].").tag(
        sync=True
    )
    camera = traitlets.Unicode("", help="Camera device id to use ('' = the default); switches live in a call.").tag(
        sync=True
    )
    microphone = traitlets.Unicode(
        "", help="Microphone device id to use ('' = the default); switches live in a call."
    ).tag(sync=True)
    screen_share = traitlets.Bool(
        False, help="Send the screen instead of the camera (set by share_screen()/stop_sharing() or the widget)."
    ).tag(sync=True)
    messages = traitlets.List(
        traitlets.Dict(), help="Chat history of this widget: [{'from', 'text', 'time' (epoch seconds)}]."
    ).tag(sync=True)
    recording_state = traitlets.Enum(
        RECORDING_STATES, default_value="idle", help="idle, recording, stopping, done (see .recording) or error."
    ).tag(sync=True)
    connected_at = traitlets.Float(
        0.0, help="When the current or last call connected (epoch seconds, browser clock); 0 before."
    ).tag(sync=True)
    duration = traitlets.Float(
        0.0, help="Seconds the current call has been connected (ticks every second); the last call's once ended."
    ).tag(sync=True)
    # Lets a reloaded page (or a reconnecting websocket) take the name back cleanly.
    _credential = traitlets.Unicode(help="Credential for re-registering this name.").tag(sync=True)
    # Re-running `w = CallWidget("alice")` must not fail with name_taken against the widget it
    # replaces: the old one is closed, and the page waits briefly for its registration to go.
    _replaces = traitlets.Bool(False, help="This widget replaced one of the same name in this kernel.").tag(sync=True)
    _by_name: ClassVar[dict[tuple[str, str], weakref.ref[CallWidget]]] = {}

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
        slot = (server, name_key(display_name))
        earlier = self._by_name.get(slot)
        previous = earlier() if earlier is not None else None
        replaces = bool(kwargs.pop("_replaces", False)) or (previous is not None and previous.comm is not None)
        if previous is not None and previous.comm is not None:
            previous.close()  # before our comm opens, so the page ends it first
        super().__init__(
            user=display_name, server=server, _credential=secrets.token_urlsafe(18), _replaces=replaces, **kwargs
        )
        self._by_name[slot] = weakref.ref(self)
        self._views_seen = 0
        self._frontend_ready = False
        self._relays: dict[str, KernelRelay] = {}
        self.on_msg(self._on_frontend_msg)
        self._snapshots: dict[str, Snapshot] = {}
        self.snapshots: list[Snapshot] = []  # every frame received, newest last (also the widget's button)
        self._recordings: dict[str, RecordingAssembler] = {}
        self._recording: bytes | None = None
        self._recording_path: str | None = None
        self._recording_callbacks: list[Callable[[bytes], Any]] = []

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
        if kind in _MEDIA_KINDS:
            self._on_media_msg(str(kind), content, list(_buffers or []))
            return
        if isinstance(kind, str) and kind.startswith("relay-"):
            self._on_relay(kind, content)
        elif kind == "ready":
            self._frontend_ready = True
        elif kind == "view":
            self._frontend_ready = True
            self._views_seen += 1

    def _on_relay(self, kind: str, content: dict[str, Any]) -> None:
        """The page's signaling through the kernel (its ``relay`` transport)."""
        sid = content.get("id")
        if not isinstance(sid, str) or len(sid) > 64:
            return
        if kind == "relay-open":
            while len(self._relays) >= _MAX_RELAYS:
                self._relays.pop(next(iter(self._relays))).close()
            # Always this widget's own server: the page does not choose where the kernel connects.
            self._relays[sid] = KernelRelay(
                self.server,
                on_open=lambda: self.send({"kind": "relay-opened", "id": sid}),
                on_message=lambda frame: self.send({"kind": "relay-message", "id": sid, "data": frame}),
                on_closed=lambda code, reason: self._relay_closed(sid, code, reason),
            )
        elif kind == "relay-send":
            relay = self._relays.get(sid)
            data = content.get("data")
            if relay is not None and isinstance(data, str):
                relay.send(data)
        elif kind == "relay-close":
            relay = self._relays.pop(sid, None)
            if relay is not None:
                relay.close()

    def _relay_closed(self, sid: str, code: int, reason: str) -> None:
        self._relays.pop(sid, None)
        if self.comm is not None:
            self.send({"kind": "relay-closed", "id": sid, "code": code, "reason": reason})

    def close(self) -> None:
        """Close the widget: the page ends any call, and kernel relay sockets close."""
        relays: dict[str, KernelRelay] = getattr(self, "_relays", {})  # absent if __init__ failed early
        for relay in list(relays.values()):
            relay.close()
        relays.clear()
        super().close()

    @property
    def displayed(self) -> bool:
        """True once a view of this widget has been rendered in a browser (reported between cells)."""
        return self._views_seen > 0

    def _require_frontend(self, action: str) -> None:
        if self.comm is None:
            raise CallError(
                f"cannot {action}: this widget was closed (a newer CallWidget({self.user!r}) in this kernel "
                "replaces the earlier one); use the new widget"
            )
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

    # -- in-call features --------------------------------------------------------------

    def _require_connected(self, action: str) -> None:
        self._require_frontend(action)
        if self.state != "connected":
            raise CallError(f"cannot {action}: no connected call (the widget is {self.state})")

    def send(self, content: Any, buffers: Any = None) -> None:
        """``send("text")`` sends a chat message (see :meth:`send_message`); a dict is a comm message to the page."""
        if isinstance(content, str):
            self.send_message(content)
        else:
            super().send(content, buffers)

    def send_message(self, text: str) -> None:
        """Send a chat message to the other side over the call's data channel.

        It appears in both widgets' ``messages`` (this side's once the page has sent it).
        Raises :class:`CallError` when there is no connected call.
        """
        if not isinstance(text, str) or not text:
            raise CallError("a chat message is a non-empty string")
        self._require_connected("send a message")
        self.send({"kind": "chat", "text": text})

    def on_message(self, callback: Callable[[dict[str, Any]], Any]) -> None:
        """Call ``callback({'from', 'text', 'time'})`` for every chat message received from the other side."""

        def handler(change: dict[str, Any]) -> None:
            seen = {(m.get("from"), m.get("time"), m.get("text")) for m in change["old"] or []}
            for message in change["new"]:
                if (message.get("from"), message.get("time"), message.get("text")) in seen:
                    continue
                if message.get("from") != self.user:
                    callback(message)

        self.observe(handler, names=["messages"])

    def share_screen(self) -> None:
        """Send a screen (the browser asks which) instead of the camera, in the current call."""
        self._require_connected("share the screen")
        self.screen_share = True

    def stop_sharing(self) -> None:
        """Go back from the screen to the camera."""
        self._require_frontend("stop sharing")
        self.screen_share = False

    def snapshot(self, which: str = "remote", callback: Callable[[Snapshot], Any] | None = None) -> Snapshot:
        """Ask the browser for the current frame of the ``remote`` or ``local`` video.

        Returns a :class:`~nbcall._media.Snapshot` at once, **empty**: the frame arrives
        when the kernel next reads the page's messages, i.e. after the current cell. Read
        ``.png``/``.array`` in a later cell (``.ready`` tells), or pass ``callback(snapshot)``.
        This never blocks: a cell cannot wait for a message only delivered after it ends.
        """
        if which not in WHICH:
            raise ValueError(f"which must be one of {WHICH}, not {which!r}")
        self._require_connected("take a snapshot")
        request_id = secrets.token_hex(6)
        snap = Snapshot(which, request_id)
        if callback is not None:
            snap.on_ready(callback)
        self._snapshots[request_id] = snap
        self.send({"kind": "snapshot", "id": request_id, "which": which})
        return snap

    def start_recording(self, which: str = "remote") -> None:
        """Record the ``remote`` video, the ``local`` one, or ``both`` (remote with local inset, audio mixed).

        The browser records WebM (VP8/VP9 + Opus) and sends it in chunks every 0.5 s.
        """
        if which not in RECORD_WHICH:
            raise ValueError(f"which must be one of {RECORD_WHICH}, not {which!r}")
        self._require_connected("record")
        if self.recording_state in ("recording", "stopping"):
            raise CallError(f"already {self.recording_state}")
        self._recording = None
        self._recording_path = None
        self.send({"kind": "record_start", "which": which})

    def stop_recording(self, path: str | None = None) -> None:
        """Stop recording; the file arrives in the next messages: ``recording`` holds it when
        ``recording_state`` is ``done`` (also written to ``path`` if given, and handed to
        :meth:`on_recording` callbacks). A call that ends stops its recording the same way."""
        self._require_frontend("stop recording")
        if self.recording_state != "recording":
            raise CallError(f"not recording (recording_state is {self.recording_state})")
        self._recording_path = path
        self.recording_state = "stopping"
        self.send({"kind": "record_stop"})

    @property
    def recording(self) -> bytes | None:
        """The last finished recording (WebM bytes), None while there is none or it is still arriving."""
        return self._recording

    def on_recording(self, callback: Callable[[bytes], Any]) -> None:
        """Call ``callback(webm_bytes)`` whenever a recording is complete in the kernel."""
        self._recording_callbacks.append(callback)

    def _on_media_msg(self, kind: str, content: dict[str, Any], buffers: list[Any]) -> None:
        rid = str(content.get("id") or "")
        if kind == "snapshot":
            snap = self._snapshots.pop(rid, None) or Snapshot(str(content.get("which", "remote")), rid or None)
            snap._fill(content, buffers)
            if snap.ready:
                self.snapshots = [*self.snapshots, snap][-_MAX_SNAPSHOTS:]
        elif kind == "recording_started":
            self._recordings = {rid: RecordingAssembler(rid, str(content.get("which")), str(content.get("mime")))}
            self._recording = None
            self._recording_path = None  # a path belongs to the stop_recording() of this recording only
            self.recording_state = "recording"
        elif kind == "recording_chunk":
            assembler = self._recordings.get(rid)
            if assembler is not None:
                assembler.add(int(content.get("seq", -1)), buffers)
        elif kind == "recording_failed":
            self._recordings.pop(rid, None)
            self.recording_state = "error"
        elif kind == "recording_done":
            assembler = self._recordings.pop(rid, None)
            if assembler is None:
                return
            try:
                data = assembler.finish(int(content.get("chunks", 0)))
            except ValueError as exc:
                self.error = str(exc)
                self.recording_state = "error"
                return
            self._recording = data
            path, self._recording_path = self._recording_path, None
            if path:
                pathlib.Path(path).write_bytes(data)
            self.recording_state = "done"
            for callback in list(self._recording_callbacks):
                callback(data)

    def __repr__(self) -> str:
        return f"CallWidget(user={self.user!r}, state={self.state!r}, peer={self.peer!r})"
