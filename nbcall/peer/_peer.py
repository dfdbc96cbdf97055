"""``nbcall.Peer``: a call participant that lives in Python (aiortc), not in a browser."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from .._enums import CAN_CALL_STATES
from .._errors import CallError, PageError
from .._in_call import ChatHistory, ChatLine
from .._messages import SILENT_AFTER_MS
from ..signaling.names import InvalidName, name_key, normalize_name
from ..signaling.protocol import ErrorCode
from ._channel import HEARTBEAT_S, Channel
from ._control import BUSY_STATES, Control
from ._inbox import Array, AudioChunk, Frame, Inbox
from ._info import PeerInfo
from ._loop import LoopThread
from ._session import MediaSession
from ._stats import collect
from ._tracks import AudioSource, AudioSourceTrack, SourceTrack, TransformTrack, VideoSource
from ._workers import Worker

log = logging.getLogger("nbcall.peer")

EVENT_QUEUE = 1000  # state, ringing and chat events waiting for callbacks
STATS_EVERY_S = 1.0
_live: weakref.WeakValueDictionary[tuple[str, str], Peer] = weakref.WeakValueDictionary()
_live_lock = threading.Lock()


class Peer(PeerInfo):
    """A call participant in Python: registers ``name`` on a signaling server, calls and answers.

    ``Peer(name, server=None, *, video=None, video_transform=None, audio=None, size=(640, 480),
    fps=30, ice_servers=(), lost_after=10, loopback=True, timeout=10)``

    - ``server``: a ``ws://``/``wss://`` URL; default: the kernel's embedded server
      (:func:`nbcall.serve`).
    - ``video``: what to send: a callable ``fn(index, t) -> HxWx3 uint8`` or an iterable of
      such arrays, at ``fps`` (``size`` is the black frame's before the first).
    - ``video_transform``: ``fn(HxWx3 uint8) -> HxWx3 uint8``: send back a transform of each
      frame received (instead of ``video``).
    - ``audio``: ``fn(samples, t) -> int16 or float array`` of 48 kHz mono, e.g. :func:`tone`.

    The constructor waits (at most ``timeout`` s) for the registration, then returns; every
    other method returns at once.  Media, signaling and callbacks run in the Peer's own
    threads, so a busy cell never stops them.  See docs/peer.md.
    """

    def __init__(
        self,
        name: str,
        server: str | None = None,
        *,
        video: VideoSource | None = None,
        video_transform: Callable[[Array], Array] | None = None,
        audio: AudioSource | None = None,
        size: tuple[int, int] = (640, 480),
        fps: float = 30.0,
        ice_servers: list[dict[str, Any]] | tuple[()] = (),
        lost_after: float = 10.0,
        loopback: bool = True,
        timeout: float = 10.0,
    ) -> None:
        try:
            self.name = normalize_name(name)
        except InvalidName as exc:
            raise ValueError(f"invalid name {name!r}: {exc}") from None
        if video is not None and video_transform is not None:
            raise ValueError("give video= or video_transform=, not both")
        if not 0 < fps <= 60 or not lost_after > 0:
            raise ValueError("fps must be in (0, 60] and lost_after > 0")
        if server is None:
            from ..signaling.embedded import default_server

            server = default_server()
        self.server = server
        self._video, self._audio, self._size, self._fps = video, audio, size, fps
        self._ice = list(ice_servers)
        self.lost_after = float(lost_after)
        self._closed = False
        self._state_callbacks: list[Callable[[str], Any]] = []
        self._incoming_callbacks: list[Callable[[str], Any]] = []
        self._chat_callbacks: list[Callable[[ChatLine], Any]] = []
        self._history = ChatHistory()
        self._channel: Channel | None = None
        self._out_video: SourceTrack | TransformTrack | None = None
        self._out_audio: AudioSourceTrack | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_media = 0.0
        self._peer_silent = False
        self._net_stats: dict[str, Any] = {}
        self._views: list[Any] = []
        self.inbox = Inbox(self.name)
        self.inbox.transform = video_transform
        self._events = Worker[tuple[str, Any]](f"nbcall-peer-{self.name}-events", self._event, EVENT_QUEUE)
        key = (server, name_key(self.name))
        with _live_lock:
            old = _live.get(key)
        replaced = old is not None and not old.closed
        if old is not None:
            old.close()  # a cell run again: the earlier Peer of this name leaves first
        self._loop = LoopThread(f"nbcall-peer-{self.name}", loopback=loopback)
        self._control = Control(self, server, self.name)
        try:
            self._loop.run(self._control.start(name_grace=5.0 if replaced else 0.0), timeout)
        except BaseException as exc:
            self._shutdown_threads()
            if isinstance(exc, CallError):
                raise
            raise CallError(
                f"cannot register {self.name!r} on {server}: {type(exc).__name__}: {exc}",
                code=PageError.SERVER_UNREACHABLE,
            ) from exc
        self.name = self._control.user
        with _live_lock:
            _live[key] = self
        self._loop.submit(self._ticker())

    @property
    def stats(self) -> dict[str, Any]:
        """Numbers of the current or last call (see docs/peer.md "Stats")."""
        return collect(
            control=self._control,
            inbox=self.inbox,
            events=self._events,
            out_video=self._out_video,
            out_audio=self._out_audio,
            channel=self._channel,
            net_stats=self._net_stats,
        )

    def last_sent_frame(self) -> Array | None:
        """The video frame this Peer sent last (its source's or ``video_transform``'s), or None."""
        out = self._out_video
        return out.last_frame if out is not None else None

    def __repr__(self) -> str:
        return f"<nbcall.Peer {self.name!r} {self.state}{' with ' + self.peer if self.peer else ''}>"

    # -- actions ------------------------------------------------------------------------------

    def _require_open(self, action: str) -> None:
        if self._closed:
            raise CallError(f"{action}: this Peer is closed", code=PageError.CLOSED)

    def call(self, user: str) -> None:
        """Ring ``user`` (online on the server); returns at once, watch ``state``."""
        self._require_open("call")
        try:
            wanted = name_key(normalize_name(user))
        except InvalidName as exc:
            raise CallError(f"cannot call {user!r}: {exc}", code=ErrorCode.INVALID_NAME) from None
        if wanted == name_key(self.name):
            raise CallError("cannot call yourself", code=ErrorCode.SELF_CALL)
        if self.state not in CAN_CALL_STATES:
            code = ErrorCode.NOT_REGISTERED if self.state == "error" else PageError.IN_CALL
            raise CallError(f"cannot call while {self.state}", code=code)
        peer = self._control.peers.get(wanted)
        if peer is None:
            raise CallError(f"cannot call {user!r}: not online", code=ErrorCode.UNKNOWN_PEER)
        self._loop.submit(self._control.call(peer, wanted))

    def accept(self) -> None:
        """Answer the ringing call."""
        self._require_open("accept")
        if self.state != "ringing":
            raise CallError(f"nothing to accept ({self.state})", code=ErrorCode.NO_CALL)
        self._loop.submit(self._control.accept())

    def reject(self) -> None:
        """Decline the ringing call (the caller's end reason: ``rejected``)."""
        self._require_open("reject")
        if self.state != "ringing":
            raise CallError(f"nothing to reject ({self.state})", code=ErrorCode.NO_CALL)
        self._loop.submit(self._control.reject())

    def hangup(self) -> None:
        """End the call (while calling: cancel; while ringing: reject)."""
        self._require_open("hangup")
        if self.state not in BUSY_STATES:
            raise CallError(f"no call to hang up ({self.state})", code=ErrorCode.NO_CALL)
        self._loop.submit(self._control.hangup())

    def send_chat(self, text: str) -> None:
        """Send a chat line (1 to 4000 characters; 5 a second, bursts of 20) to a connected peer."""
        self._require_open("send_chat")
        channel = self._channel
        if self.state != "connected" or channel is None:
            raise CallError(f"chat: not in a call with a data channel ({self.state})", code=PageError.NOT_CONNECTED)
        refused = channel.check_chat(text)
        if refused is not None:
            raise refused
        self._loop.call(channel.send_chat, text)

    def wait(self, *states: str, timeout: float = 10.0) -> str:
        """Block the calling thread until ``state`` is one of ``states`` (scripts and tests); returns it."""
        deadline = time.monotonic() + timeout
        while self.state not in states:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: state is {self.state!r}, not {states} after {timeout} s")
            time.sleep(0.02)
        return self.state

    def close(self) -> None:
        """End any call (the other side hears ``closed``), leave the server, stop every thread.

        Closing again does nothing.  Also done at interpreter exit, and when a new Peer of the
        same name and server is made in this process (a cell run again).
        """
        if self._closed:
            return
        self._closed = True
        if self._loop.alive and not self._loop.in_loop():
            try:
                self._loop.run(self._control.shutdown(), 5.0)
            except Exception as exc:
                log.warning("%s: closing: %s", self.name, exc)
        self._shutdown_threads()
        for view in self._views:
            view.stop()

    def _shutdown_threads(self) -> None:
        self._closed = True
        self._loop.stop()
        self.inbox.stop()
        self._events.stop()

    # -- callbacks ------------------------------------------------------------------------------

    def on_incoming(self, callback: Callable[[str], Any]) -> None:
        """``callback(caller)`` when a call rings here (``lambda c: peer.accept()`` answers)."""
        self._incoming_callbacks.append(callback)

    def on_state(self, callback: Callable[[str], Any]) -> None:
        """``callback(state)`` on every state change, in order."""
        self._state_callbacks.append(callback)

    def on_chat(self, callback: Callable[[ChatLine], Any]) -> None:
        """``callback({"from", "text", "time"})`` for every chat line from the other side."""
        self._chat_callbacks.append(callback)

    def on_frame(self, callback: Callable[[Frame], Any]) -> None:
        """``callback(frame)`` with the newest received :class:`Frame` (a slow callback skips frames)."""
        self.inbox.frame_callbacks.append(callback)

    def on_audio(self, callback: Callable[[AudioChunk], Any]) -> None:
        """``callback(chunk)`` with received :class:`AudioChunk` s (PCM int16 and sample rate)."""
        self.inbox.audio_callbacks.append(callback)

    def latest_frame(self) -> Frame | None:
        """The newest received frame, or None before the first."""
        return self.inbox.latest

    def frames(self) -> AsyncIterator[Frame]:
        """``async for frame in peer.frames():`` the newest frame each time (ends at close)."""
        return self.inbox.frames()

    def view(self, fps: float = 2.0, width: int = 240) -> Any:
        """A small live preview widget (received | sent), refreshed at most ``fps`` times a second."""
        from ._view import PeerView

        view = PeerView(self, fps=fps, width=width)
        self._views.append(view)
        return view.widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.view())  # type: ignore[no-untyped-call]

    # -- hooks of the Control (on the Peer's loop) ----------------------------------------------

    def _event(self, event: tuple[str, Any]) -> None:
        kind, value = event
        callbacks: list[Callable[[Any], Any]] = {
            "state": self._state_callbacks,
            "ringing": self._incoming_callbacks,
            "chat": self._chat_callbacks,
        }[kind]  # type: ignore[assignment]
        for callback in list(callbacks):
            self.inbox.run_callback(callback, value, f"on_{kind}")

    def state_changed(self, state: str) -> None:
        self._events.put(("state", state))

    def ringing(self, caller: str) -> None:
        self._events.put(("ringing", caller))

    def new_session(self, data_channel: bool) -> MediaSession:
        tracks: list[Any] = []
        self._out_video = self._out_audio = None
        if self._video is not None:
            self._out_video = SourceTrack(self._video, self._size, self._fps)
        elif self.inbox.transform is not None:
            self._out_video = TransformTrack(self._loop.loop)
        self.inbox.transform_track = self._out_video if isinstance(self._out_video, TransformTrack) else None
        if self._out_video is not None:
            tracks.append(self._out_video)
        if self._audio is not None:
            self._out_audio = AudioSourceTrack(self._audio)
            tracks.append(self._out_audio)
        session = MediaSession(
            send=self._send_signal, tracks=tracks, data_channel=data_channel, config=self._ice,
            on_track=self._on_track, on_state=self._control.connection_state,
        )  # fmt: skip
        self._channel = None
        self._peer_silent = False
        self._net_stats = {}
        if session.channel is not None:
            self._channel = Channel(
                session.channel, me=self.name, peer=self._control.peer, history=self._history,
                on_chat=lambda line: self._events.put(("chat", line)), media=self._media_state,
            )  # fmt: skip
        return session

    async def end_session(self, session: MediaSession) -> None:
        self.inbox.transform_track = None
        await session.close()

    def connected(self) -> None:
        self._last_media = time.monotonic()

    def _media_state(self) -> dict[str, bool]:
        return {"audio": self._audio is not None, "video": self._out_video is not None}

    async def _send_signal(self, message: dict[str, Any]) -> None:
        control = self._control
        out = {**message, "to": control.peer}
        if control.call_id and not control.seed_call:
            out["call_id"] = control.call_id
        await control.send(out)

    def _on_track(self, track: Any) -> None:
        task = asyncio.get_running_loop().create_task(self.inbox.pump(track, self._life))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _life(self) -> None:
        self._last_media = time.monotonic()

    async def _ticker(self) -> None:
        """Heartbeats, the other side's liveness and network stats, while a call is connected."""
        last_stats = 0.0
        while not self._closed:
            await asyncio.sleep(HEARTBEAT_S)
            control, channel = self._control, self._channel
            if control.state != "connected":
                continue
            if channel is not None and channel.open:
                channel.beat()
            silence = time.monotonic() - self._last_media
            if channel is not None:
                silence = min(silence, channel.silence())
            self._peer_silent = silence * 1000 >= SILENT_AFTER_MS
            if silence >= self.lost_after:
                await control.lost()
                continue
            session = control.session
            if session is not None and time.monotonic() - last_stats >= STATS_EVERY_S:
                last_stats = time.monotonic()
                with contextlib.suppress(Exception):
                    self._net_stats = await session.stats()


def _close_all() -> None:
    with _live_lock:
        peers = list(_live.values())
    for peer in peers:
        with contextlib.suppress(Exception):
            peer.close()


atexit.register(_close_all)
