"""A call participant in Python: ``nbcall.Peer`` on aiortc (the ``peer`` extra).

Frames in as numpy (``on_frame``, ``frames()``, ``latest_frame()``), frames out from numpy
(``video=``, ``video_transform=``), audio both ways, chat and media state over the widget's
data channel.  See docs/peer.md.
"""

from ._inbox import AudioChunk, Frame
from ._peer import Peer
from ._tracks import tone

__all__ = ["AudioChunk", "Frame", "Peer", "tone"]
