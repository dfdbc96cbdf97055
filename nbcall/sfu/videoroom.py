"""VideoRoom rooms on a Janus, administered from the server side: create, destroy, list.

The server (never the page) holds the plugin's ``admin_key`` and each room's ``secret``
(to edit or destroy it) and ``pin`` (to join it).  A member is given the room's PIN only
when the signaling server lets it in, so a page that was not let in cannot join, and no
page can create or destroy rooms.  A room created with ``allowed`` also wants a token of
that list at every join: one token per member, removed when it leaves (:meth:`RoomAdmin.disallow`),
so a former member who kept the PIN cannot come back.  Rooms are created ``permanent: false`` (nothing written
to Janus's configuration) with simulcast-friendly settings (VP8).

This speaks Janus's plain HTTP API (long-poll sessions are not needed for these
synchronous requests): create a session, attach the VideoRoom plugin, send one request,
destroy the session.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from dataclasses import dataclass
from typing import Any

from .janus import JanusError

PLUGIN = "janus.plugin.videoroom"
DEFAULT_PUBLISHERS = 50  # the largest room


@dataclass(frozen=True)
class VideoRoom:
    """One VideoRoom room and what joining or managing it takes."""

    name: str
    pin: str  # given to a member the signaling server lets in
    secret: str  # kept by the server: edit or destroy the room
    publishers: int


class RoomAdmin:
    """Create and destroy rooms on one Janus (``http_url`` like ``http://127.0.0.1:8088/janus``)."""

    def __init__(self, http_url: str, admin_key: str, timeout: float = 5.0) -> None:
        self.http_url = http_url.rstrip("/")
        self.admin_key = admin_key
        self.timeout = timeout

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        message = {"transaction": secrets.token_hex(6), **body}
        request = urllib.request.Request(
            f"{self.http_url}{path}",
            data=json.dumps(message).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            data = json.loads(response.read())
        if not isinstance(data, dict):
            raise JanusError(f"janus answered {data!r}")
        if data.get("janus") == "error":
            error = data.get("error") or {}
            raise JanusError(f"janus refused: {error.get('reason', data)} (code {error.get('code')})")
        return data

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """One synchronous VideoRoom request; returns its ``plugindata.data`` (raises on an error)."""
        session = self._post("", {"janus": "create"})["data"]["id"]
        try:
            handle = self._post(f"/{session}", {"janus": "attach", "plugin": PLUGIN})["data"]["id"]
            reply = self._post(f"/{session}/{handle}", {"janus": "message", "body": body})
            data = reply.get("plugindata", {}).get("data", {})
            if not isinstance(data, dict):
                raise JanusError(f"janus answered {reply!r}")
            if data.get("error_code"):
                raise JanusError(f"videoroom refused: {data.get('error')} (code {data['error_code']})")
            return data
        finally:
            self._post(f"/{session}", {"janus": "destroy"})

    def create(self, name: str, publishers: int = DEFAULT_PUBLISHERS, *, allowed: list[str] | None = None) -> VideoRoom:
        """A new room ``name`` with a fresh PIN and secret (raises if it exists).

        ``allowed``: the tokens that may join (an empty list: none yet, see :meth:`allow`);
        None: anyone with the PIN.
        """
        room = VideoRoom(name, secrets.token_urlsafe(12), secrets.token_urlsafe(18), publishers)
        body: dict[str, Any] = {
            "request": "create",
            "room": name,
            "admin_key": self.admin_key,
            "secret": room.secret,
            "pin": room.pin,
            "is_private": True,  # not listed to whoever asks
            "publishers": publishers,
            "permanent": False,
            "videocodec": "vp8",  # simulcast: every browser can send VP8 layers
            "audiolevel_event": True,  # the active speaker
            "notify_joining": True,
        }
        if allowed is not None:  # present, even empty, is what makes Janus check tokens
            body["allowed"] = list(allowed)
        self.request(body)
        return room

    def _allowed(self, room: VideoRoom, action: str, tokens: list[str]) -> list[str]:
        data = self.request({"request": "allowed", "room": room.name, "secret": room.secret, "action": action,
                             "allowed": tokens})  # fmt: skip
        found = data.get("allowed", [])
        return [t for t in found if isinstance(t, str)] if isinstance(found, list) else []

    def allow(self, room: VideoRoom, tokens: list[str]) -> list[str]:
        """Add ``tokens`` to the room's ``allowed`` list; returns the whole list."""
        return self._allowed(room, "add", tokens)

    def disallow(self, room: VideoRoom, tokens: list[str]) -> list[str]:
        """Remove ``tokens`` from the room's ``allowed`` list; returns what is left."""
        return self._allowed(room, "remove", tokens)

    def allowed(self, room: VideoRoom) -> list[str]:
        """The room's ``allowed`` list as Janus has it."""
        return self._allowed(room, "add", [])

    def kick(self, room: VideoRoom, participant: str) -> bool:
        """Remove participant ``participant`` (its id) from the room; False when it is not there."""
        try:
            self.request({"request": "kick", "room": room.name, "secret": room.secret, "id": participant})
        except JanusError as exc:
            if "(code 428)" in str(exc):  # JANUS_VIDEOROOM_ERROR_NO_SUCH_FEED: never joined, or gone
                return False
            raise
        return True

    def destroy(self, room: VideoRoom) -> None:
        """Remove ``room``; its members are told by Janus and dropped."""
        self.request({"request": "destroy", "room": room.name, "secret": room.secret, "permanent": False})

    def exists(self, name: str) -> bool:
        return bool(self.request({"request": "exists", "room": name}).get("exists"))

    def participants(self, room: VideoRoom) -> list[dict[str, Any]]:
        """Who is in ``room`` (Janus's own view: ``id``, ``display``, ``publisher``)."""
        data = self.request({"request": "listparticipants", "room": room.name, "secret": room.secret})
        found = data.get("participants", [])
        return found if isinstance(found, list) else []
