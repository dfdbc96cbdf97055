"""The call widget: Python owns identity, configuration and the call API; the browser owns media.

Lasting state lives in synced traitlets (``state``, ``peer``, ``peers`` ...), which the
page sets.  Everything else is a custom comm message with a ``kind`` from
:mod:`nbcall._messages`: commands to the page (``call``, ``accept`` ...) leave through
:meth:`CallWidget._command`, events from the page arrive at :meth:`CallWidget._on_page_message`,
and both are checked against that table.  Messages from the browser reach the kernel only
between cells, so nothing here blocks waiting for the browser.

The parts: :mod:`nbcall._registry` (one widget per name in this kernel),
:mod:`nbcall._kernel_socket` (the page's signaling through the kernel),
:mod:`nbcall._media` (snapshots and recordings coming back), :mod:`nbcall._in_call`
(chat, screen, snapshot and recording methods).
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import logging
import os
import pathlib
import secrets
import sys
import warnings
from collections.abc import Callable
from typing import Any

import anywidget
import ipywidgets  # type: ignore[import-untyped]
import traitlets

from ._actions import CallActions
from ._enums import (
    CALL_STATES,
    CONNECT_VIA,
    DEPRECATED_TRANSPORTS,
    ICE_POLICIES,
    PEER_STATUSES,
    RECORDING_STATES,
    TOPOLOGIES,
    TRANSPORTS,
)
from ._errors import CallError, PageError
from ._in_call import InCallFeatures
from ._kernel_socket import KernelSockets
from ._media import MediaInbox
from ._messages import TO_KERNEL, TO_PAGE, problem
from ._registry import WIDGETS
from ._room_actions import RoomActions
from .ice import default_ice_servers, validate_ice_servers
from .signaling.names import InvalidName, normalize_name

__all__ = ["CallError", "CallWidget"]

log = logging.getLogger("nbcall.widget")

_STATIC = pathlib.Path(__file__).parent / "static"
_KEPT_PROBLEMS = 20  # page messages that could not be handled, kept in CallWidget._page_problems
Handler = Callable[[dict[str, Any], list[Any]], None]


def _warn_deprecated(message: str) -> None:
    """A DeprecationWarning attributed to the user's code, past nbcall's and traitlets' frames.

    (Python shows DeprecationWarnings by default only when attributed to ``__main__``, e.g. a
    notebook cell; a trait validator runs a dozen frames below the assignment.)
    """
    packages = (sys.modules["nbcall"], traitlets, anywidget, ipywidgets)
    internal = (*(os.path.dirname(m.__file__ or "") + os.sep for m in packages), contextlib.__file__)
    caller = inspect.currentframe()
    frame = caller.f_back if caller is not None else None
    if frame is None:  # an interpreter without frames: warn where the user's code cannot be found
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(internal):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)


class CallWidget(CallActions, RoomActions, InCallFeatures, anywidget.AnyWidget):
    """A WebRTC video call widget: local preview, remote video, call controls, online users.

    >>> alice = CallWidget(user="alice")   # starts (or reuses) the embedded signaling server
    >>> alice                              # display it; the browser registers "alice"
    >>> alice.call("bob")                  # ring bob (before the page is up: as soon as it is)

    Media flows browser to browser; the kernel only configures and observes the call.
    """

    _esm = _STATIC / "widget.js"
    _css = _STATIC / "widget.css"

    user = traitlets.Unicode(help="This widget's user name, registered on the signaling server.").tag(sync=True)
    server = traitlets.Unicode(
        help="Signaling server URL (ws://...). Default: $NBCALL_SERVER (a shared service), else the embedded "
        "server started or found by nbcall.serve()."
    ).tag(sync=True)
    state = traitlets.Enum(
        CALL_STATES,
        default_value="registering",
        help="Call state, set by the browser: "
        + ", ".join(CALL_STATES)
        + ". While a call is being set up, connecting and connected reach Python at most 0.5 s late, in one "
        "update (a call's start, a ringing call, an error and the end of a call at once): docs/widget.md.",
    ).tag(sync=True)
    peer = traitlets.Unicode("", help="The other side of the current (or last) call.").tag(sync=True)
    incoming = traitlets.Unicode("", help="The caller's name while a call is ringing here, else empty.").tag(sync=True)
    peers = traitlets.List(traitlets.Unicode(), help="Users online on the server, excluding this one.").tag(sync=True)
    error = traitlets.Unicode("", help="The last problem, in words (empty when none).").tag(sync=True)
    end_reason = traitlets.Unicode(
        "", help="Why the last call ended: hangup, rejected, busy, cancelled, timeout, disconnected, failed, lost, ..."
    ).tag(sync=True)
    audio = traitlets.Bool(True, help="Send the microphone (can be toggled during a call).").tag(sync=True)
    preview = traitlets.Bool(
        False,
        help="Keep the camera (and its light) on between calls, shown in the widget: a call then starts "
        "faster, with no camera to open. Off by default: nothing is filmed until a call.",
    ).tag(sync=True)
    auto_answer = traitlets.Bool(
        False,
        help="Answer every incoming 1:1 call at once, in the page, without a round trip through the "
        "kernel (on_incoming still runs: an accept() there is then a no-op, a reject() hangs up). "
        "Anyone who can reach the server can then see your camera: for demos and bots. Room "
        "invitations still wait for accept().",
    ).tag(sync=True)
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
        (*CONNECT_VIA, *DEPRECATED_TRANSPORTS),  # a deprecated name is replaced by _check_connect_via
        default_value="auto",
        help="How the page should reach the signaling server: 'auto' tries the Jupyter server's own endpoint "
        "(same-origin), then a direct websocket, then the kernel; or force 'same-origin', 'direct' or 'kernel' "
        "('relay' is a deprecated name of 'kernel').",
    ).tag(sync=True)
    transport = traitlets.Enum(
        ("", *TRANSPORTS),
        default_value="",
        help="The transport in use, set by the page: 'same-origin', 'direct' or 'kernel' ('' until connected). "
        "The kernel transport passes through this kernel, which reads the page's messages only between cells.",
    ).tag(sync=True)
    peer_status = traitlets.Enum(
        PEER_STATUSES,
        default_value="",
        help="How the other side of a connected call is doing, set by the page: 'connected', 'reconnecting' "
        "(nothing from it for ~1.5 s: no heartbeat on the data channel, no media; or the server says its "
        "signaling dropped), '' with no connected call. observe(names=['peer_status']) to follow it.",
    ).tag(sync=True)
    lost_after = traitlets.Float(
        10.0,
        help="Seconds of silence from the other side (no heartbeat, no media) after which the call ends "
        "with end_reason 'lost'. Must be > 0.",
    ).tag(sync=True)
    stats = traitlets.Dict(
        help="Call quality from the browser, refreshed every second while connected: rtt_ms, inbound_kbps, "
        "outbound_kbps, fps, width, height, packet_loss_pct, candidate_type (host/srflx/prflx/relay), quality, "
        "frames_decoded, bytes_received, bytes_sent, out_fps, out_width, out_height, setup_ms."
    ).tag(sync=True)
    # Rooms (nbcall/_room_actions.py, docs/rooms.md); the page sets these.
    room = traitlets.Unicode("", help="The room this widget is in ('' when in none): join(), call([...]).").tag(
        sync=True
    )
    participants = traitlets.List(
        traitlets.Dict(),
        help="The room's other members, [{'name', 'state', 'audio', 'video', 'speaking', 'quality'}]: state is "
        "ringing (invited), connecting, connected or reconnecting; audio/video what they send; speaking: the "
        "active speaker; quality: good, fair, poor ('' unknown). Empty outside a room.",
    ).tag(sync=True)
    topology = traitlets.Enum(
        TOPOLOGIES,
        default_value="",
        help="How the call carries media: 'p2p' (one-to-one), 'mesh' (a small room: everyone connected to everyone), "
        "'sfu' (a larger room, through the SFU), '' with no call.",
    ).tag(sync=True)
    room_video = traitlets.Dict(
        help="What this widget sends in a room: {'width', 'height', 'fps'} (default 640x360 at 24 fps; the "
        "browser gets as close as its camera allows). Smaller saves uplink and CPU in a mesh.",
    ).tag(sync=True)
    room_invite = traitlets.Dict(
        help="While someone invites this widget into a room: {'room', 'from'}; accept() joins it, reject() declines."
    ).tag(sync=True)
    # In-call features (nbcall/_in_call.py, js/features/; docs/widget.md "In a call").
    remote_audio = traitlets.Bool(True, help="The other side sends its microphone (False: it muted).").tag(sync=True)
    remote_video = traitlets.Bool(True, help="The other side sends video (False: its camera is off).").tag(sync=True)
    cameras = traitlets.List(
        traitlets.Dict(), help="Cameras of the browser, [{'id', 'label'}] (labels once the camera was allowed)."
    ).tag(sync=True)
    microphones = traitlets.List(traitlets.Dict(), help="Microphones of the browser, [{'id', 'label'}].").tag(sync=True)
    camera = traitlets.Unicode("", help="Camera device id to use ('' = the default); switches live in a call.").tag(
        sync=True
    )
    microphone = traitlets.Unicode(
        "", help="Microphone device id to use ('' = the default); switches live in a call."
    ).tag(sync=True)
    screen_share = traitlets.Bool(
        False, help="Send the screen instead of the camera (set by share_screen()/stop_sharing() or the widget)."
    ).tag(sync=True)
    # Kernel-side, not synced: the page reports each chat line once (chat_sent/chat_received).
    messages = traitlets.List(
        traitlets.Dict(),
        help="Chat history of this widget: [{'from', 'text', 'time' (epoch seconds)}], newest last; at most "
        "200 lines and 256 KiB (oldest dropped first).",
    )
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
    # Actions asked for before the page could carry them out (nbcall/_actions.py); only the kernel writes it.
    _queued = traitlets.List(
        traitlets.Dict(), help="[{'id', 'wait', 'action', 'command', 'key'?}] waiting for the page, in order."
    ).tag(sync=True)

    def __init__(self, user: str, server: str | None = None, **kwargs: Any) -> None:
        try:
            display_name = normalize_name(user)
        except InvalidName as exc:
            raise ValueError(f"invalid user name {user!r}: {exc}") from None
        if server is None:
            # Imported here so that a widget given an explicit URL never starts a server.
            from .signaling.embedded import default_server

            server = default_server()  # $NBCALL_SERVER (a shared service), else the embedded one
        if not server.startswith(("ws://", "wss://")):
            raise ValueError(f"server must be a ws:// or wss:// URL, not {server!r}")
        # Before our comm opens, so that the page ends the earlier widget's call first.
        replaces = WIDGETS.close_earlier(server, display_name)
        replaces = bool(kwargs.pop("_replaces", False)) or replaces
        super().__init__(
            user=display_name, server=server, _credential=secrets.token_urlsafe(18), _replaces=replaces, **kwargs
        )
        WIDGETS.register(server, display_name, self)
        self._views_seen = 0
        self._frontend_ready = False
        self._sockets = KernelSockets(lambda: self.server, self._command)
        self._media = MediaInbox(
            set_recording_state=lambda state: setattr(self, "recording_state", state),
            set_error=lambda text: setattr(self, "error", text),
        )
        # Page messages that could not be handled (newest last), for debugging; and how many in all.
        self._page_problems: collections.deque[str] = collections.deque(maxlen=_KEPT_PROBLEMS)
        self._page_problem_count = 0
        self._handlers: dict[str, Handler] = {
            "ready": self._on_ready,
            "view": self._on_view,
            "action_failed": self._on_action_failed,
            "queued_done": self._on_queued_done,
            "protocol_error": self._on_protocol_error,
            **self._sockets.handlers(),
            **self._media.handlers(),
            **self._chat_handlers(),
        }
        self._init_actions()
        self.on_msg(self._on_page_message)

    @traitlets.default("ice_servers")
    def _default_ice_servers(self) -> list[dict[str, Any]]:
        return default_ice_servers()

    @traitlets.validate("ice_servers")
    def _check_ice_servers(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            return validate_ice_servers(proposal["value"])
        except ValueError as exc:
            raise traitlets.TraitError(str(exc)) from None

    @traitlets.validate("room_video")
    def _check_room_video(self, proposal: dict[str, Any]) -> dict[str, int]:
        value = dict(proposal["value"])
        limits = {"width": 3840, "height": 2160, "fps": 60}
        for key, item in value.items():
            if key not in limits or not isinstance(item, int) or isinstance(item, bool) or not 0 < item <= limits[key]:
                raise traitlets.TraitError(
                    f"room_video takes width (≤ 3840), height (≤ 2160) and fps (≤ 60) as positive integers, "
                    f"not {key}={item!r}"
                )
        return value

    @traitlets.validate("lost_after")
    def _check_lost_after(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not value > 0 or value == float("inf"):
            raise traitlets.TraitError(f"lost_after must be a number of seconds > 0, not {proposal['value']!r}")
        return value

    @traitlets.validate("connect_via")
    def _check_connect_via(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value in DEPRECATED_TRANSPORTS:
            new = DEPRECATED_TRANSPORTS[value]
            _warn_deprecated(f"connect_via={value!r} is deprecated: use connect_via={new!r}")
            return new
        return value

    # -- messages between the kernel and the page ----------------------------------------------

    def _command(self, kind: str, /, **fields: Any) -> None:
        """Send one command to the page; a message that ``TO_PAGE`` does not allow raises ValueError (a bug)."""
        content = {"kind": kind, **fields}
        trouble = problem(TO_PAGE, content)
        if trouble is None:
            extra = sorted(set(fields) - set(TO_PAGE[kind].fields))
            trouble = f"'{kind}' has no field(s) {', '.join(extra)}" if extra else None
        if trouble is not None:
            raise ValueError(f"malformed command to the page: {trouble}")
        self.send(content)

    def _on_page_message(self, _widget: Any, content: Any, buffers: Any) -> None:
        """The one entry of page -> kernel messages: check against ``TO_KERNEL``, then route by kind.

        Never raises into the comm: a message that is invalid, of an unknown kind, or whose
        handler fails is logged and kept in ``_page_problems``.
        """
        received = list(buffers or [])
        trouble = problem(TO_KERNEL, content, len(received))
        if trouble is not None:
            self._page_problem(f"invalid message from the page: {trouble}", content)
            return
        try:
            self._handlers[content["kind"]](content, received)
        except Exception as exc:
            self._page_problem(f"handling {content['kind']!r} failed: {exc!r}", content, exc_info=True)

    def _page_problem(self, text: str, content: Any, exc_info: bool = False) -> None:
        shown = repr(content)
        shown = shown if len(shown) <= 300 else shown[:300] + "..."
        log.warning("CallWidget(%r): %s: %s", self.user, text, shown, exc_info=exc_info)
        self._page_problems.append(f"{text}: {shown}")
        self._page_problem_count += 1

    def _on_ready(self, _content: dict[str, Any], _buffers: list[Any]) -> None:
        self._frontend_ready = True

    def _on_view(self, _content: dict[str, Any], _buffers: list[Any]) -> None:
        self._frontend_ready = True
        self._views_seen += 1

    def _on_action_failed(self, content: dict[str, Any], _buffers: list[Any]) -> None:
        self._action_failed(content["action"], content["code"], content["message"])

    def _on_protocol_error(self, content: dict[str, Any], _buffers: list[Any]) -> None:
        self._page_problem("the page could not handle a message from the kernel", content["detail"])

    def send(self, content: Any, buffers: Any = None) -> None:
        """Send a custom comm message to the page (anywidget's ``send``).

        ``send("text")`` (a string) is deprecated: it sends a chat message; use :meth:`send_chat`.
        """
        if isinstance(content, str):
            warnings.warn('send("text") is deprecated: use send_chat("text")', DeprecationWarning, stacklevel=2)
            self.send_chat(content)
        else:
            super().send(content, buffers)

    def close(self) -> None:
        """Close the widget: the page ends any call, and the kernel's sockets for it close."""
        sockets: KernelSockets | None = getattr(self, "_sockets", None)  # absent if __init__ failed early
        if sockets is not None:
            sockets.close_all()
        super().close()

    @property
    def displayed(self) -> bool:
        """True once a view of this widget has been rendered in a browser (reported between cells)."""
        return self._views_seen > 0

    def _require_connected(self, action: str) -> None:
        self._require_open(action)
        if self.state != "connected":
            raise CallError(
                f"cannot {action}: no connected call (the widget is {self.state})", code=PageError.NOT_CONNECTED
            )

    def __repr__(self) -> str:
        return f"CallWidget(user={self.user!r}, state={self.state!r}, peer={self.peer!r})"
