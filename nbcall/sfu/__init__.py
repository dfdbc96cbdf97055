"""The SFU for larger rooms: a Janus (VideoRoom plugin) that the server, not the page, administers.

- :class:`LocalJanus` starts Janus on 127.0.0.1 with a configuration of its own (demo, tests);
- :class:`RoomAdmin` creates and destroys rooms with the plugin's admin key, each with a PIN
  that only members the signaling server lets in are given.
"""

from .janus import JanusError, LocalJanus, janus_binary
from .rooms import Room, RoomAdmin

__all__ = ["JanusError", "LocalJanus", "Room", "RoomAdmin", "janus_binary"]
