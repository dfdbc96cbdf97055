"""In-call features of :class:`~nbcall.CallWidget`: chat, screen sharing, snapshots (recordings: _recording.py).

A mixin: the traits are declared with the others in :mod:`nbcall.widget`; what the page
sends back (frames, recording chunks) is assembled by :class:`nbcall._media.MediaInbox`.

Chat cannot be used as a weapon (docs/widget.md "Chat"): the page checks and rate limits
what the peer sends and tells the kernel one line at a time (``chat_sent``,
``chat_received``); here each line is appended to a :class:`ChatHistory` bounded by count
and bytes, which backs the ``messages`` trait (kernel-side: it is never sent back to the
page), and ``on_chat`` callbacks run once per received line.  ``send_chat`` has the same
rate limit as the page, so Python cannot flood the peer either.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import traitlets

from ._enums import SNAPSHOT_SOURCES
from ._errors import CallError, PageError
from ._media import MediaInbox, Snapshot
from ._messages import CHAT_BURST, CHAT_RATE, MAX_CHAT_BYTES, MAX_CHAT_CHARS, MAX_CHAT_LINES
from ._recording import RecordingFeatures
from .signaling.bucket import TokenBucket
from .signaling.names import name_key
from .signaling.protocol import ErrorCode

log = logging.getLogger("nbcall.widget")

ChatLine = dict[str, Any]  # {"from": str, "text": str, "time": float}
Handler = Callable[[dict[str, Any], list[Any]], None]
_MAX_TIME = 1e11  # a sender's time past this (or not finite, or negative) is replaced by the kernel's clock
_QUIET_S = 10.0  # a drop report after this long without one is logged as a warning (the rest: debug)


def utf8_len(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (a lone surrogate counts 3), as the page counts them."""
    return len(text.encode("utf-8", "surrogatepass"))


def js_len(text: str) -> int:
    """Length of ``text`` as JavaScript counts it (UTF-16 code units): what MAX_CHAT_CHARS limits."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def line_bytes(line: ChatLine) -> int:
    """What a line costs in the history's byte bound: its sender and text in UTF-8."""
    return utf8_len(str(line.get("from", ""))) + utf8_len(str(line.get("text", "")))


class ChatHistory:
    """Chat lines, newest last: at most ``max_lines`` and ``max_bytes`` (oldest dropped first)."""

    def __init__(self, max_lines: int = MAX_CHAT_LINES, max_bytes: int = MAX_CHAT_BYTES) -> None:
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._lines: collections.deque[ChatLine] = collections.deque()
        self._costs: collections.deque[int] = collections.deque()
        self.bytes = 0

    def append(self, line: ChatLine) -> int:
        """Add a line; returns how many of the oldest went to stay within the bounds."""
        cost = line_bytes(line)
        self._lines.append(line)
        self._costs.append(cost)
        self.bytes += cost
        dropped = 0
        while len(self._lines) > self.max_lines or (self.bytes > self.max_bytes and len(self._lines) > 1):
            self._lines.popleft()
            self.bytes -= self._costs.popleft()
            dropped += 1
        return dropped

    def replace(self, lines: Iterable[ChatLine]) -> None:
        """Start again from ``lines`` (the newest of them that fit)."""
        self._lines.clear()
        self._costs.clear()
        self.bytes = 0
        for line in lines:
            self.append(line)

    def lines(self) -> list[ChatLine]:
        return list(self._lines)

    def __len__(self) -> int:
        return len(self._lines)


class ChatState:
    """The chat of one widget in the kernel: its history, send limit, callbacks and drop counts."""

    def __init__(self) -> None:
        self.history = ChatHistory()
        self.send_bucket = TokenBucket(CHAT_RATE, CHAT_BURST)
        self.callbacks: list[Callable[[ChatLine], Any]] = []
        self.dropped = {"flood": 0, "malformed": 0}
        self.last_report = -math.inf
        self.updating = False  # the kernel itself is setting `messages` from the page's chat events

    @contextlib.contextmanager
    def updating_messages(self) -> Iterator[None]:
        self.updating = True
        try:
            yield
        finally:
            self.updating = False


def _line_time(value: Any) -> float:
    """The sender's time if it is a plausible epoch time in seconds, else now."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) and 0 <= value <= _MAX_TIME else time.time()


class _Widget(Protocol):
    """What these methods use of :class:`~nbcall.CallWidget` (its traits and helpers)."""

    user: str
    state: str
    peer: str
    messages: list[dict[str, Any]]
    screen_share: bool
    recording_state: str
    _media: MediaInbox
    _queued: list[dict[str, Any]]
    room: str
    participants: list[dict[str, Any]]

    def _command(self, kind: str, /, **fields: Any) -> None: ...
    def _require_open(self, action: str) -> None: ...
    def _require_connected(self, action: str) -> None: ...
    def _must_wait(self, action: str, wait: str) -> bool: ...
    def _enqueue(self, action: str, wait: str, command: dict[str, Any], key: str = "") -> None: ...
    def _when_connected(self, action: str) -> bool: ...
    def _send_or_queue(self, queued: bool, action: str, kind: str, /, **fields: Any) -> None: ...
    def observe(self, handler: Callable[[dict[str, Any]], None], names: list[str]) -> None: ...
    def send_chat(self, text: str) -> None: ...
    def on_chat(self, callback: Callable[[dict[str, Any]], Any]) -> None: ...
    @property
    def _chat(self) -> ChatState: ...
    def _chat_append(self, line: ChatLine) -> ChatLine: ...
    def _member_named(self, which: str) -> str: ...
    def _member_to_wait_for(self, which: str) -> str | None: ...
    def _room_coming(self) -> bool: ...


class InCallFeatures(RecordingFeatures):
    """Methods of a connected call; mixed into :class:`~nbcall.CallWidget` (recordings: nbcall/_recording.py).

    Asked for while a call is still coming (the page has not reported yet, or the call is
    being placed or set up), they wait for it in the page (nbcall/_actions.py); with no call
    coming they raise :class:`~nbcall.CallError`.
    """

    def _when_connected(self: _Widget, action: str) -> bool:
        """True: ``action`` must wait for a call that is coming; False: the call is connected now
        (or this widget is in a room: chat and snapshots go to its members)."""
        if self.room and not self._queued:
            return False
        if self._room_coming() or (self.room and self._queued):
            return True  # it waits for the room (Run All: the join is still queued)
        if self._must_wait(action, "connected"):
            return True
        self._require_connected(action)
        return False

    def _send_or_queue(self: _Widget, queued: bool, action: str, kind: str, /, **fields: Any) -> None:
        if queued:
            wait = "in_room" if self.room or self._room_coming() else "connected"
            self._enqueue(action, wait, {"kind": kind, **fields})
        else:
            self._command(kind, **fields)

    # -- chat ----------------------------------------------------------------------------------

    @property
    def _chat(self) -> ChatState:
        """This widget's chat state (made on first use: trait validation may need it during ``__init__``)."""
        state: ChatState | None = self.__dict__.get("_chat_state")
        if state is None:
            state = self.__dict__["_chat_state"] = ChatState()
        return state

    def send_chat(self: _Widget, text: str) -> None:
        """Send a chat message to the other side over the call's data channel.

        It appears in both widgets' ``messages`` (this side's once the page has sent it).
        Raises :class:`~nbcall.CallError` when there is no connected call, when ``text`` is
        empty or longer than ``MAX_CHAT_CHARS`` (4000), and over the rate limit: at most 5
        lines a second with bursts of 20 (the other side drops the rest as a flood).
        """
        if not isinstance(text, str) or not text:
            raise CallError("a chat message is a non-empty string", code=PageError.INVALID_ARGUMENT)
        if js_len(text) > MAX_CHAT_CHARS:
            raise CallError(
                f"a chat message has at most {MAX_CHAT_CHARS} characters, not {js_len(text)}",
                code=ErrorCode.TOO_LARGE,
            )
        queued = self._when_connected("send a message")
        if not self._chat.send_bucket.take():
            raise CallError(
                f"cannot send a message: at most {CHAT_RATE} lines a second (bursts of {CHAT_BURST}), "
                "or the other side drops them as a flood; wait a moment",
                code=ErrorCode.RATE_LIMITED,
            )
        self._send_or_queue(queued, "send a message", "chat", text=text)

    def on_chat(self: _Widget, callback: Callable[[dict[str, Any]], Any]) -> None:
        """Call ``callback({'from', 'text', 'time'})`` once for every chat line received from the other side."""
        chat = self._chat
        chat.callbacks.append(callback)

        def handler(change: dict[str, Any]) -> None:
            # `messages` set by code rather than by the page's chat events: report what is new.
            if chat.updating:
                return
            old = change["old"] if isinstance(change["old"], list) else []  # Undefined before the first set
            seen = {(m.get("from"), m.get("time"), m.get("text")) for m in old}
            for message in change["new"]:
                if (message.get("from"), message.get("time"), message.get("text")) in seen:
                    continue
                if message.get("from") != self.user:
                    callback(message)

        self.observe(handler, names=["messages"])

    @property
    def chat_dropped(self: _Widget) -> dict[str, int]:
        """Channel messages from peers that the page dropped: ``flood`` (over the rate limit), ``malformed``."""
        return dict(self._chat.dropped)

    @traitlets.validate("messages")
    def _bound_messages(self: _Widget, proposal: Any) -> list[ChatLine]:
        """``messages`` set by code: bounded like the history, which starts again from it."""
        value: list[ChatLine] = proposal["value"]
        chat = self._chat
        if chat.updating:
            return value
        chat.history.replace(value)
        return value if len(chat.history) == len(value) else chat.history.lines()

    def _chat_append(self: _Widget, line: ChatLine) -> ChatLine:
        """One line into the bounded history, and ``messages`` from it."""
        chat = self._chat
        chat.history.append(line)
        with chat.updating_messages():
            self.messages = chat.history.lines()
        return line

    def _chat_handlers(self: _Widget) -> dict[str, Handler]:
        """The page's chat events, one line each (page -> kernel kinds of nbcall._messages)."""

        def text(content: dict[str, Any]) -> str:
            return str(content["text"])[:MAX_CHAT_CHARS]

        def sent(content: dict[str, Any], _buffers: list[Any]) -> None:
            self._chat_append({"from": self.user, "text": text(content), "time": _line_time(content["time"])})

        def received(content: dict[str, Any], _buffers: list[Any]) -> None:
            sender = str(content["from"])[:64] or self.peer
            line = self._chat_append({"from": sender, "text": text(content), "time": _line_time(content["time"])})
            for callback in list(self._chat.callbacks):
                try:
                    callback(line)
                except Exception:
                    log.warning("CallWidget(%r): an on_chat callback failed", self.user, exc_info=True)

        def dropped(content: dict[str, Any], _buffers: list[Any]) -> None:
            chat = self._chat
            flood, malformed = max(0, int(content["flood"])), max(0, int(content["malformed"]))
            chat.dropped["flood"] += flood
            chat.dropped["malformed"] += malformed
            now = time.monotonic()
            level = logging.WARNING if now - chat.last_report > _QUIET_S else logging.DEBUG
            chat.last_report = now
            log.log(
                level,
                "CallWidget(%r): dropped chat from %s: %d over the rate limit (flood), %d malformed",
                self.user,
                content["from"] or "the other side",
                flood,
                malformed,
            )

        return {"chat_sent": sent, "chat_received": received, "chat_dropped": dropped}

    def send_message(self: _Widget, text: str) -> None:
        """Deprecated: use :meth:`send_chat`."""
        warnings.warn("send_message() is deprecated: use send_chat()", DeprecationWarning, stacklevel=2)
        self.send_chat(text)

    def on_message(self: _Widget, callback: Callable[[dict[str, Any]], Any]) -> None:
        """Deprecated: use :meth:`on_chat`."""
        warnings.warn("on_message() is deprecated: use on_chat()", DeprecationWarning, stacklevel=2)
        self.on_chat(callback)

    # -- screen --------------------------------------------------------------------------------

    def share_screen(self: _Widget) -> None:
        """Send a screen (the browser asks which) instead of the camera, in the current call."""
        if self._when_connected("share the screen"):
            self._enqueue("share the screen", "connected", {"kind": "screen", "on": True})
        else:
            self.screen_share = True

    def stop_sharing(self: _Widget) -> None:
        """Go back from the screen to the camera."""
        if self._must_wait("stop sharing", "connected"):
            self._enqueue("stop sharing", "connected", {"kind": "screen", "on": False})
        else:
            self.screen_share = False

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self: _Widget, which: str = "remote", callback: Callable[[Snapshot], Any] | None = None) -> Snapshot:
        """Ask the browser for the current frame of the ``remote`` or ``local`` video
        (in a room: ``which`` may be a member's name, e.g. ``snapshot("bob")``).

        Returns a :class:`~nbcall._media.Snapshot` at once, **empty**: the frame arrives
        when the kernel next reads the page's messages, i.e. after the current cell. Read
        ``.png``/``.array`` in a later cell (``.ready`` tells), or pass ``callback(snapshot)``.
        This never blocks: a cell cannot wait for a message only delivered after it ends.
        """
        if which not in SNAPSHOT_SOURCES:
            member = self._member_to_wait_for(which)
            if member is not None:  # Run All: the frame is taken once that member is in the room
                snap = self._media.expect_snapshot(member, callback)
                command = {"kind": "snapshot", "id": str(snap.id), "which": member}
                self._enqueue(f"take a snapshot of {member}", "member", command, key=name_key(member))
                return snap
            which = self._member_named(which)
        queued = self._when_connected("take a snapshot")
        snap = self._media.expect_snapshot(which, callback)
        self._send_or_queue(queued, "take a snapshot", "snapshot", id=str(snap.id), which=which)
        return snap

    @property
    def snapshots(self: _Widget) -> list[Snapshot]:
        """Every frame received, newest last (the last 20), including those of the widget's button."""
        return self._media.snapshots
