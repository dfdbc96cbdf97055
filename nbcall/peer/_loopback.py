"""Same-machine calls when loopback is the only interface (CI sandboxes, ``unshare -n``).

aioice (aiortc's ICE) leaves 127.0.0.1 out of its host candidates
(``aioice.ice.get_host_addresses`` skips it) and has no option to add it: ``Connection``
takes ``use_ipv4``/``use_ipv6``, STUN and TURN servers, and a transport policy, and aiortc's
``RTCConfiguration`` exposes only ICE servers.  A machine whose only interface is loopback
therefore gathers no candidate at all, and a call to a browser on the same machine (which
offers 127.0.0.1 with ``--allow-loopback-in-peer-connection``) finds no path.

What this module does: ``aioice.ice.get_host_addresses`` is wrapped once, and the wrapper
adds ``127.0.0.1`` (when IPv4 is in use) **only when it runs on the event loop of a Peer**
that asked for it (:func:`include_loopback`); for every other caller in the process it
returns exactly what aioice returns.  The wrap is checked (the function must exist and
take ``use_ipv4``/``use_ipv6``), so a future aioice that renames it leaves loopback calls
failing with a warning rather than breaking anything else.  See docs/peer.md "Loopback".
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

log = logging.getLogger("nbcall.peer")

LOOPBACK_V4 = "127.0.0.1"
_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_lock = threading.Lock()
_installed = False


def _wrap(original: Callable[..., list[str]]) -> Callable[..., list[str]]:
    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = list(original(use_ipv4=use_ipv4, use_ipv6=use_ipv6))
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if use_ipv4 and loop is not None and loop in _loops and LOOPBACK_V4 not in addresses:
            addresses.append(LOOPBACK_V4)
        return addresses

    get_host_addresses.__wrapped__ = original  # type: ignore[attr-defined]
    get_host_addresses.__nbcall_loopback__ = True  # type: ignore[attr-defined]
    return get_host_addresses


def install() -> bool:
    """Wrap aioice's host-address lookup once per process; False if aioice has no such function."""
    global _installed
    with _lock:
        if _installed:
            return True
        import aioice.ice

        original: Any = getattr(aioice.ice, "get_host_addresses", None)
        if original is None or not callable(original):
            log.warning("aioice has no get_host_addresses: calls on a loopback-only machine will find no path")
            return False
        if getattr(original, "__nbcall_loopback__", False):
            _installed = True
            return True
        params = set(inspect.signature(original).parameters)
        if not {"use_ipv4", "use_ipv6"} <= params:
            log.warning(
                "aioice.ice.get_host_addresses%s is not what nbcall expects: loopback left out",
                inspect.signature(original),
            )
            return False
        aioice.ice.get_host_addresses = _wrap(original)
        _installed = True
        return True


def include_loopback(loop: asyncio.AbstractEventLoop) -> None:
    """ICE connections gathered on ``loop`` also offer a 127.0.0.1 host candidate."""
    if install():
        _loops.add(loop)
