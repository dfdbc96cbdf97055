"""Recordings of :class:`~nbcall.CallWidget`: of a 1:1 call, or of a room.

In a 1:1 call ``start_recording`` records the ``remote`` video, the ``local`` one, or
``both``.  In a room (docs/widget.md "Recording") it records the ``grid`` (every member's
tile and ours, laid out like the widget's grid, everyone's audio mixed), one member by
name (resolved like a snapshot's: the server's spelling, ``remote`` being the first
member), or ``local`` (ours); ``both`` is the grid there.  What Python can check it checks
at once: a name that is nobody in the room, ``grid`` with no room; a recording asked for
while a join is on its way waits in the page for the room, like ``invite``.

The page records WebM and sends it in chunks; :class:`nbcall._media.MediaInbox` assembles
them.  A mixin, with the traits declared in :mod:`nbcall.widget`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ._enums import RECORDING_SOURCES, ROOM_RECORDING_SOURCES
from ._errors import CallError, PageError
from ._media import MediaInbox
from ._room_actions import _members
from .signaling.names import name_key

GRID = "grid"


class _Widget(Protocol):
    """What these methods use of :class:`~nbcall.CallWidget`."""

    state: str
    room: str
    participants: list[dict[str, Any]]
    recording_state: str
    _media: MediaInbox
    _queued: list[dict[str, Any]]
    _command_in_flight: bool

    def _command(self, kind: str, /, **fields: Any) -> None: ...
    def _require_open(self, action: str) -> None: ...
    def _must_wait(self, action: str, wait: str) -> bool: ...
    def _when_connected(self, action: str) -> bool: ...
    def _enqueue(self, action: str, wait: str, command: dict[str, Any], key: str = "") -> None: ...
    def _member_to_wait_for(self, which: str) -> str | None: ...
    def _room_coming(self) -> bool: ...


def _room_source(widget: _Widget, which: str) -> str:
    """``which`` as the page takes it in the widget's room: a fixed source, or a member's name
    as the server spells it; ValueError naming who is in the room otherwise."""
    if which in ROOM_RECORDING_SOURCES or which in RECORDING_SOURCES:
        return which
    members = _members(widget.participants)
    key = name_key(which) if which else ""
    if key not in members:
        present = ", ".join(members.values()) or "nobody else"
        raise ValueError(
            f"which must be 'grid', 'local' or a room member's name (in the room: {present}), not {which!r}"
        )
    return members[key]


class RecordingFeatures:
    """``start_recording``, ``stop_recording``, ``recording``, ``on_recording`` (mixed into CallWidget)."""

    def start_recording(self: _Widget, which: str = "remote") -> None:
        """Record, as WebM (VP8/VP9 + Opus) sent in chunks every 0.5 s.

        In a 1:1 call: the ``remote`` video, the ``local`` one, or ``both`` (remote with local
        inset, both sides' audio mixed).  In a room: ``"grid"`` (every member's tile and
        ours on a 1280x720 canvas, laid out like the widget's grid, everyone's audio mixed;
        members who join or leave meanwhile appear or disappear, the recording goes on), a
        member's name (that member's video in its shape, at least 640 px on its longer side,
        and its audio; it ends when the member leaves), ``"local"`` (ours), ``"remote"``
        (the first member) or ``"both"`` (the grid).  Leaving the room or ending the call
        stops a recording; its file still arrives (:meth:`stop_recording`).
        """
        if not isinstance(which, str):
            raise ValueError(f"which must be a string, not {which!r}")
        key = ""
        if self.room:
            which = _room_source(self, which)
            wait = "in_room"
            queued = self._must_wait("record", wait)
        elif which not in ROOM_RECORDING_SOURCES and which not in RECORDING_SOURCES:
            # A member's name before this widget is in its room (Run All): recorded once that
            # member is there, like a snapshot of it (nbcall/_room_actions.py).
            member = self._member_to_wait_for(which)
            if member is None:
                raise ValueError(
                    f"which must be one of {RECORDING_SOURCES}, or in a room 'grid' or a member's name, not {which!r}"
                )
            which, key, wait, queued = member, name_key(member), "member", True
        elif self._room_coming() or (which == GRID and self._command_in_flight):
            # A join is on its way (queued, or sent this cell): the page records once in the room.
            self._require_open("record")
            wait, queued = "in_room", True
        elif which == GRID:
            self._require_open("record")
            raise CallError(
                "start_recording('grid') records a room's grid, and this widget is in no room "
                "(join() one first; in a 1:1 call 'both' records both sides)",
                code=PageError.NOT_CONNECTED,
            )
        else:
            wait = "connected"
            queued = self._when_connected("record")
        if self.recording_state in ("recording", "stopping"):
            raise CallError(f"already {self.recording_state}", code=PageError.ALREADY_RECORDING)
        self._media.expect_recording()
        if queued:
            self._enqueue("record", wait, {"kind": "recording_start", "which": which}, key=key)
        else:
            self._command("recording_start", which=which)

    def stop_recording(self: _Widget, path: str | None = None) -> None:
        """Stop recording; the file arrives in the next messages: ``recording`` holds it when
        ``recording_state`` is ``done`` (also written to ``path`` if given, and handed to
        :meth:`on_recording` callbacks). A call that ends, or leaving the room, stops its
        recording the same way."""
        self._require_open("stop recording")
        starts = [entry for entry in self._queued if entry["command"]["kind"] == "recording_start"]
        if starts:
            # The stop waits behind its start, for the same moment (a call, or the room).
            self._media.expect_stop(path)
            self._enqueue("stop recording", str(starts[-1]["wait"]), {"kind": "recording_stop"})
            return
        if self.recording_state != "recording":
            raise CallError(f"not recording (recording_state is {self.recording_state})", code=PageError.NOT_RECORDING)
        self._media.expect_stop(path)
        self.recording_state = "stopping"
        self._command("recording_stop")

    @property
    def recording(self: _Widget) -> bytes | None:
        """The last finished recording (WebM bytes), None while there is none or it is still arriving."""
        return self._media.recording

    def on_recording(self: _Widget, callback: Callable[[bytes], Any]) -> None:
        """Call ``callback(webm_bytes)`` whenever a recording is complete in the kernel."""
        self._media.on_recording(callback)
