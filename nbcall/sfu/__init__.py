"""The SFU for larger rooms: a Janus (VideoRoom plugin) that the server, not the page, administers.

- :class:`LocalJanus` starts Janus on 127.0.0.1 with a configuration of its own (demo, tests);
- :class:`RoomAdmin` creates and destroys rooms with the plugin's admin key, each with a PIN
  that only members the signaling server lets in are given, and a token per member;
- :class:`SfuConfig` names the Janus a signaling server uses (``nbcall.serve(sfu=...)``).
"""

from .config import SfuConfig
from .janus import JanusError, LocalJanus, janus_binary
from .videoroom import RoomAdmin, VideoRoom

Room = VideoRoom  # its name before 0.3 (nbcall.signaling has a Room of its own)

__all__ = ["JanusError", "LocalJanus", "Room", "RoomAdmin", "SfuConfig", "VideoRoom", "janus_binary"]
