"""Which signaling servers the Jupyter server's endpoint may carry a page's frames to.

The page asks for one (``{base_url}nbcall/signal?upstream=URL``), but the page does not
decide: a page's script is not trusted to make the Jupyter server open connections where
it likes (that would make the endpoint a way into other hosts).  Allowed are:

- a ``ws://``/``wss://`` server on this machine's loopback (the kernel's embedded server);
- servers the Jupyter server's **administrator** lists, e.g. a shared signaling service on a
  JupyterHub (``NBCALL_SERVER`` in the single-user environment points kernels at it):
  ``tornado_settings["nbcall"]["upstreams"]`` in the Jupyter server's configuration, or
  ``$NBCALL_UPSTREAMS`` (whitespace- or comma-separated) in its environment.

An entry is a ``ws://`` or ``wss://`` URL: scheme, host and port must equal the target's
(hosts compared case-insensitively, default ports filled in), and the target's path must be
the entry's path or below it (``wss://signal.example.org/nbcall`` allows ``/nbcall`` and
``/nbcall/x``, not ``/nbcallx``). The target's query (a server ``?token=``) is passed on as
it is; user info (``user@host``) and fragments are refused outright.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .signaling.admission import is_loopback

ENV = "NBCALL_UPSTREAMS"
_DEFAULT_PORTS = {"ws": 80, "wss": 443}


@dataclass(frozen=True)
class Upstream:
    """One allowed place: scheme, host, port, and a path prefix ('' = any path)."""

    scheme: str
    host: str
    port: int
    path: str

    def allows(self, target: Upstream) -> bool:
        if (self.scheme, self.host, self.port) != (target.scheme, target.host, target.port):
            return False
        return not self.path or target.path == self.path or target.path.startswith(self.path + "/")


def _parse(url: str) -> Upstream:
    """``url`` as an :class:`Upstream`; ValueError when it is not a plain ws:// or wss:// URL."""
    parts = urlsplit(url.strip())
    port = parts.port  # ValueError for a port that is not one
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    if "@" in parts.netloc or parts.fragment:
        raise ValueError(f"user info and fragments are not allowed: {url!r}")
    # "/nbcall/../admin" would match the prefix "/nbcall" and mean something else upstream.
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")) or "\\" in parts.path:
        raise ValueError(f"dot segments are not allowed in the path: {url!r}")
    return Upstream(parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme], parts.path.rstrip("/"))


def allow_list(configured: Iterable[str] | None = None, environ: dict[str, str] | None = None) -> list[Upstream]:
    """The administrator's entries (configuration, then environment).

    Raises ValueError naming a bad entry: a mistyped allow-list must stop the Jupyter
    server's extension from loading, not silently allow nothing (or something else).
    """
    env = os.environ if environ is None else environ
    entries = [*(configured or []), *re.split(r"[\s,]+", env.get(ENV, ""))]
    out = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ValueError(f"an upstream must be a URL string, not {entry!r}")
        if entry.strip():
            out.append(_parse(entry))
    return out


def allowed(target: str, allow: Iterable[Upstream]) -> bool:
    """Whether the endpoint may connect to ``target`` for a page."""
    try:
        wanted = _parse(target)
    except ValueError:
        return False
    if is_loopback(wanted.host):
        return True
    return any(entry.allows(wanted) for entry in allow)
