"""What a :class:`~nbcall.peer.Peer` is now: its call state, chat and media state, read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._in_call import ChatHistory, ChatLine

if TYPE_CHECKING:
    from ._channel import Channel
    from ._control import Control


class PeerInfo:
    """The Peer's read-only properties (mixed into :class:`~nbcall.peer.Peer`)."""

    _control: Control
    _channel: Channel | None
    _closed: bool
    _peer_silent: bool
    _history: ChatHistory

    @property
    def state(self) -> str:
        """``registering``, ``idle``, ``calling``, ``ringing``, ``connecting``, ``connected``, ``ended``, ``error``."""
        return self._control.state

    @property
    def peer(self) -> str:
        """The other side of the current or last call."""
        return self._control.peer

    @property
    def incoming(self) -> str:
        """The caller while a call rings here, else ``""``."""
        return self._control.incoming

    @property
    def peers(self) -> list[str]:
        """Users online on the server, without this one."""
        return sorted(self._control.peers.values())

    @property
    def end_reason(self) -> str:
        """Why the last call ended (the widget's reasons: ``hangup``, ``rejected``, ``lost`` ...)."""
        return self._control.end_reason

    @property
    def error(self) -> str:
        """The last problem in words, ``""`` if none."""
        return self._control.error

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def peer_status(self) -> str:
        """``""`` with no connected call, ``connected``, or ``reconnecting`` (silent for 1.5 s)."""
        if self.state != "connected":
            return ""
        return "reconnecting" if self._peer_silent else "connected"

    @property
    def remote_audio(self) -> bool:
        """The other side says it sends its microphone (its ``media`` message)."""
        return self._channel.remote_audio if self._channel else True

    @property
    def remote_video(self) -> bool:
        return self._channel.remote_video if self._channel else True

    @property
    def messages(self) -> list[ChatLine]:
        """Chat lines both ways, newest last: at most 200 lines and 256 KiB."""
        return self._history.lines()

    @property
    def chat_dropped(self) -> dict[str, int]:
        """Data-channel messages from the other side dropped this call: ``flood``, ``malformed``."""
        return dict(self._channel.dropped) if self._channel else {"flood": 0, "malformed": 0}
