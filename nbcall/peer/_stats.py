"""``Peer.stats``: the numbers of the current or last call, like the widget's ``stats``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._channel import Channel
    from ._control import Control
    from ._inbox import Inbox
    from ._tracks import AudioSourceTrack, SourceTrack, TransformTrack
    from ._workers import Worker


def collect(
    *,
    control: Control,
    inbox: Inbox,
    events: Worker[Any],
    out_video: SourceTrack | TransformTrack | None,
    out_audio: AudioSourceTrack | None,
    channel: Channel | None,
    net_stats: Mapping[str, Any],
) -> dict[str, Any]:
    """A fresh dict (safe to keep): counters since the Peer started, rates over the last seconds."""
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
        "callback_errors": inbox.callback_errors + events.errors,
        "transform_errors": inbox.transform_errors,
        "last_error": inbox.last_error,
        "frames_sent": out_video.sent if out_video else 0,
        "source_errors": (out_video.errors if out_video else 0) + (out_audio.errors if out_audio else 0),
        "events_dropped": events.dropped,
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
    stats.update(net_stats)
    return stats
