"""The CallWidgets of this kernel by name, so that re-running a cell replaces the earlier widget.

Running ``w = CallWidget("alice")`` a second time must not fail with ``name_taken`` against
the widget it replaces: the earlier widget of that name (on the same server) is closed
before the new one's comm opens, and the new one tells its page that it replaces one, so
the page waits briefly for the old registration to leave the server.
"""

from __future__ import annotations

import weakref
from typing import Any, Protocol

from .signaling.names import name_key


class _Widget(Protocol):
    @property
    def comm(self) -> Any: ...

    def close(self) -> None: ...


class NameRegistry:
    """Live widgets of one kernel by ``(server, name key)``; holds them weakly."""

    def __init__(self) -> None:
        self._widgets: dict[tuple[str, str], weakref.ref[_Widget]] = {}

    def close_earlier(self, server: str, name: str) -> bool:
        """Close the open widget registered as ``name`` on ``server``, if any; say whether there was one."""
        ref = self._widgets.get((server, name_key(name)))
        earlier = ref() if ref is not None else None
        if earlier is None or earlier.comm is None:
            return False
        earlier.close()
        return True

    def register(self, server: str, name: str, widget: _Widget) -> None:
        """Record ``widget`` as the one registered as ``name`` on ``server``."""
        self._widgets[(server, name_key(name))] = weakref.ref(widget)


#: The registry of this kernel (one per process).
WIDGETS = NameRegistry()
