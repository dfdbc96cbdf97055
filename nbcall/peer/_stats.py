"""``Peer.stats``: the numbers of the current or last call, like the widget's ``stats``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._peer import Peer


def collect(peer: Peer) -> dict[str, Any]:
    """A fresh dict (safe to keep): counters since the Peer started, rates over the last seconds."""
    inbox = peer.inbox
    control = peer._control
    out_video, out_audio, channel = peer._out_video, peer._out_audio, peer._channel
    width, height = inbox.size
    stats: dict[str, Any] = {
        "state": control.state,
        "setup_ms": control.setup_ms,
        "frames_received": inbox.received,
        "frames_delivered": inbox.delivered,
        "frames_skipped": inbox.video.dropped,
        "frames_oversized": inbox.oversized,
        "fps": inbox.fps(),
        "width": width,
        "height": height,
        "audio_chunks_received": inbox.audio_received,
        "audio_chunks_dropped": inbox.audio.dropped,
        "callback_errors": inbox.callback_errors + peer._events.errors,
        "transform_errors": inbox.transform_errors,
        "last_error": inbox.last_error,
        "frames_sent": out_video.sent if out_video else 0,
        "source_errors": (out_video.errors if out_video else 0) + (out_audio.errors if out_audio else 0),
        "events_dropped": peer._events.dropped,
        "channel": {
            "open": bool(channel and channel.open),
            "received": channel.received if channel else 0,
            "ignored": channel.ignored if channel else 0,
            "dropped": dict(channel.dropped) if channel else {"flood": 0, "malformed": 0},
        },
    }
    session = control.session
    if session is not None:
        stats["candidates_refused"] = session.candidates_refused
    stats.update(peer._net_stats)
    return stats
