"""The call's data channel, as the widget speaks it: chat, media state, heartbeats, liveness.

Everything the other side sends is hostile until checked (docs/widget.md "Chat"):

- a message that is not text, or longer than :data:`MAX_CHANNEL_CHARS`, is dropped
  (*malformed*) before it is parsed;
- all messages together pass a token bucket of :data:`CHANNEL_RATE` a second (bursts of
  :data:`CHANNEL_BURST`) before parsing: the rest are dropped (*flood*), so a flood costs a
  length check each;
- what is not JSON, has no known ``kind`` with the fields of ``DATA_CHANNEL``
  (``nbcall/_messages.py``), or is a chat line of 0 or more than MAX_CHAT_CHARS characters,
  is *malformed*; kinds this version does not know are ignored (counted in ``ignored``);
- chat lines pass the widget's own bucket (CHAT_RATE a second, bursts of CHAT_BURST;
  the rest are *flood*), a sender's ``time`` that is not a plausible epoch time becomes
  our clock, a message's own ``from`` is ignored (the sender is the call's peer), and the
  history keeps MAX_CHAT_LINES lines and MAX_CHAT_BYTES bytes;
- media state is kept as two booleans.

Any valid message is life; so are received frames (:meth:`Channel.alive`).  Heartbeats
leave every HEARTBEAT_INTERVAL_MS while the channel is open.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc.rtcdatachannel import RTCDataChannel

from .._errors import CallError, PageError
from .._in_call import ChatHistory, ChatLine, _line_time, js_len
from .._messages import (
    CHAT_BURST,
    CHAT_RATE,
    DATA_CHANNEL,
    HEARTBEAT_INTERVAL_MS,
    MAX_CHANNEL_CHARS,
    MAX_CHAT_CHARS,
    problem,
)
from ..signaling.bucket import TokenBucket
from ..signaling.protocol import ErrorCode

log = logging.getLogger("nbcall.peer")

CHANNEL_RATE = 100  # messages a second from the peer, all kinds together (heartbeats are 2)
CHANNEL_BURST = 200


class Channel:
    """The protocol on one call's data channel (lives on the Peer's loop)."""

    def __init__(
        self,
        channel: RTCDataChannel,
        *,
        me: str,
        peer: str,
        history: ChatHistory,
        on_chat: Callable[[ChatLine], None],
        media: Callable[[], dict[str, bool]],
    ) -> None:
        self.channel = channel
        self.me = me
        self.peer = peer
        self.history = history
        self.on_chat = on_chat
        self.media = media
        self.bucket = TokenBucket(CHANNEL_RATE, CHANNEL_BURST)
        self.chat_in = TokenBucket(CHAT_RATE, CHAT_BURST)
        self.chat_out = TokenBucket(CHAT_RATE, CHAT_BURST)
        self.dropped = {"flood": 0, "malformed": 0}
        self.ignored = 0
        self.received = 0
        self.remote_audio = True
        self.remote_video = True
        self.last_life = time.monotonic()
        self.seq = 0
        channel.on("message", self._on_message)
        channel.on("open", self._on_open)
        if channel.readyState == "open":
            self._on_open()

    @property
    def open(self) -> bool:
        return self.channel.readyState == "open"

    def alive(self) -> None:
        """Something came from the peer (a valid message, a frame)."""
        self.last_life = time.monotonic()

    def silence(self) -> float:
        """Seconds since the last sign of life."""
        return time.monotonic() - self.last_life

    def _on_open(self) -> None:
        self.alive()
        self.send_media()
        self.beat()

    def _send(self, message: dict[str, Any]) -> None:
        if self.open:
            self.channel.send(json.dumps(message, ensure_ascii=False))

    def beat(self) -> None:
        """One heartbeat (the Peer's timer calls this every HEARTBEAT_INTERVAL_MS)."""
        self.seq += 1
        self._send({"kind": "heartbeat", "seq": self.seq})

    def send_media(self) -> None:
        self._send({"kind": "media", **self.media()})

    def check_chat(self, text: object) -> CallError | None:
        """Why ``text`` cannot be sent (empty, too long, over the rate), as the error to raise, or None."""
        if not isinstance(text, str) or not text:
            return CallError(f"chat: a line is 1 to {MAX_CHAT_CHARS} characters", code=PageError.INVALID_ARGUMENT)
        if js_len(text) > MAX_CHAT_CHARS:
            return CallError(f"chat: a line is 1 to {MAX_CHAT_CHARS} characters", code=ErrorCode.TOO_LARGE)
        if not self.open:
            return CallError("chat: the data channel is not open", code=PageError.NOT_CONNECTED)
        if not self.chat_out.take():
            return CallError("chat: too many messages (at most 5 a second, bursts of 20)", code=ErrorCode.RATE_LIMITED)
        return None

    def send_chat(self, text: str) -> ChatLine:
        """Send an already checked line; returns it as the history keeps it."""
        line: ChatLine = {"from": self.me, "text": text, "time": time.time()}
        self._send({"kind": "chat", "text": text, "time": line["time"]})
        self.history.append(line)
        return line

    def _on_message(self, data: object) -> None:
        if not self.bucket.take():
            self.dropped["flood"] += 1
            return
        if not isinstance(data, str) or len(data) > MAX_CHANNEL_CHARS:
            self.dropped["malformed"] += 1
            return
        try:
            message = json.loads(data)
        except ValueError:
            self.dropped["malformed"] += 1
            return
        kind = message.get("kind") if isinstance(message, dict) else None
        if isinstance(kind, str) and kind not in DATA_CHANNEL:
            self.ignored += 1
            return
        if problem(DATA_CHANNEL, message) is not None:
            self.dropped["malformed"] += 1
            return
        assert isinstance(message, dict)
        if kind == "chat":
            text = message["text"]
            if not 1 <= js_len(text) <= MAX_CHAT_CHARS:
                self.dropped["malformed"] += 1
                return
            self.alive()
            if not self.chat_in.take():
                self.dropped["flood"] += 1
                return
            line: ChatLine = {"from": self.peer, "text": text, "time": _line_time(message.get("time"))}
            self.history.append(line)
            self.received += 1
            self.on_chat(line)
            return
        self.alive()
        self.received += 1
        if kind == "media":
            self.remote_audio = bool(message["audio"])
            self.remote_video = bool(message["video"])


HEARTBEAT_S = HEARTBEAT_INTERVAL_MS / 1000
