"""In-call features of :class:`~nbcall.CallWidget`: chat, screen sharing, snapshots, recordings.

A mixin: the traits are declared with the others in :mod:`nbcall.widget`; what the page
sends back (frames, recording chunks) is assembled by :class:`nbcall._media.MediaInbox`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Protocol

from ._enums import RECORDING_SOURCES, SNAPSHOT_SOURCES
from ._errors import CallError
from ._media import MediaInbox, Snapshot


class _Widget(Protocol):
    """What these methods use of :class:`~nbcall.CallWidget` (its traits and helpers)."""

    user: str
    state: str
    screen_share: bool
    recording_state: str
    _media: MediaInbox

    def _command(self, kind: str, /, **fields: Any) -> None: ...
    def _require_frontend(self, action: str) -> None: ...
    def _require_connected(self, action: str) -> None: ...
    def observe(self, handler: Callable[[dict[str, Any]], None], names: list[str]) -> None: ...
    def send_chat(self, text: str) -> None: ...
    def on_chat(self, callback: Callable[[dict[str, Any]], Any]) -> None: ...


class InCallFeatures:
    """Methods of a connected call; mixed into :class:`~nbcall.CallWidget`."""

    # -- chat ----------------------------------------------------------------------------------

    def send_chat(self: _Widget, text: str) -> None:
        """Send a chat message to the other side over the call's data channel.

        It appears in both widgets' ``messages`` (this side's once the page has sent it).
        Raises :class:`~nbcall.CallError` when there is no connected call.
        """
        if not isinstance(text, str) or not text:
            raise CallError("a chat message is a non-empty string")
        self._require_connected("send a message")
        self._command("chat", text=text)

    def on_chat(self: _Widget, callback: Callable[[dict[str, Any]], Any]) -> None:
        """Call ``callback({'from', 'text', 'time'})`` for every chat message received from the other side."""

        def handler(change: dict[str, Any]) -> None:
            seen = {(m.get("from"), m.get("time"), m.get("text")) for m in change["old"] or []}
            for message in change["new"]:
                if (message.get("from"), message.get("time"), message.get("text")) in seen:
                    continue
                if message.get("from") != self.user:
                    callback(message)

        self.observe(handler, names=["messages"])

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
        self._require_connected("share the screen")
        self.screen_share = True

    def stop_sharing(self: _Widget) -> None:
        """Go back from the screen to the camera."""
        self._require_frontend("stop sharing")
        self.screen_share = False

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self: _Widget, which: str = "remote", callback: Callable[[Snapshot], Any] | None = None) -> Snapshot:
        """Ask the browser for the current frame of the ``remote`` or ``local`` video.

        Returns a :class:`~nbcall._media.Snapshot` at once, **empty**: the frame arrives
        when the kernel next reads the page's messages, i.e. after the current cell. Read
        ``.png``/``.array`` in a later cell (``.ready`` tells), or pass ``callback(snapshot)``.
        This never blocks: a cell cannot wait for a message only delivered after it ends.
        """
        if which not in SNAPSHOT_SOURCES:
            raise ValueError(f"which must be one of {SNAPSHOT_SOURCES}, not {which!r}")
        self._require_connected("take a snapshot")
        snap = self._media.expect_snapshot(which, callback)
        self._command("snapshot", id=str(snap.id), which=which)
        return snap

    @property
    def snapshots(self: _Widget) -> list[Snapshot]:
        """Every frame received, newest last (the last 20), including those of the widget's button."""
        return self._media.snapshots

    # -- recordings ----------------------------------------------------------------------------

    def start_recording(self: _Widget, which: str = "remote") -> None:
        """Record the ``remote`` video, the ``local`` one, or ``both`` (remote with local inset, audio mixed).

        The browser records WebM (VP8/VP9 + Opus) and sends it in chunks every 0.5 s.
        """
        if which not in RECORDING_SOURCES:
            raise ValueError(f"which must be one of {RECORDING_SOURCES}, not {which!r}")
        self._require_connected("record")
        if self.recording_state in ("recording", "stopping"):
            raise CallError(f"already {self.recording_state}")
        self._media.expect_recording()
        self._command("recording_start", which=which)

    def stop_recording(self: _Widget, path: str | None = None) -> None:
        """Stop recording; the file arrives in the next messages: ``recording`` holds it when
        ``recording_state`` is ``done`` (also written to ``path`` if given, and handed to
        :meth:`on_recording` callbacks). A call that ends stops its recording the same way."""
        self._require_frontend("stop recording")
        if self.recording_state != "recording":
            raise CallError(f"not recording (recording_state is {self.recording_state})")
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
