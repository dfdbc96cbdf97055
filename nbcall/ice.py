"""ICE configuration: STUN/TURN servers for the browser, and short-lived TURN credentials.

A TURN server's shared secret must never reach a browser.  coturn's ``use-auth-secret``
mode (the "TURN REST API") lets the kernel mint credentials that expire: the username
is ``<expiry unix time>:<user>`` and the password is base64(HMAC-SHA1(secret, username)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Sequence
from typing import Any

ICE_SERVERS_ENV = "NBCALL_ICE_SERVERS"


def turn_credentials(
    secret: str,
    urls: str | Sequence[str],
    *,
    user: str = "nbcall",
    ttl: int = 3600,
    now: float | None = None,
) -> dict[str, Any]:
    """An ``RTCIceServer`` dict with TURN credentials valid for ``ttl`` seconds.

    >>> turn_credentials("s3cret", "turn:turn.example.org:3478", user="alice", ttl=600)
    {'urls': ['turn:turn.example.org:3478'], 'username': '1700000600:alice', 'credential': '...'}
    """
    if not secret:
        raise ValueError("the TURN secret is empty")
    if ttl <= 0:
        raise ValueError("ttl must be a positive number of seconds")
    if ":" in user:
        raise ValueError("the user part of a TURN username cannot contain ':'")
    url_list = [urls] if isinstance(urls, str) else list(urls)
    for url in url_list:
        if not url.startswith(("turn:", "turns:", "stun:", "stuns:")):
            raise ValueError(f"not a STUN/TURN URL: {url!r} (expected turn:host:port or turns:...)")
    expiry = int((time.time() if now is None else now) + ttl)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"urls": url_list, "username": username, "credential": base64.b64encode(digest).decode()}


def default_ice_servers() -> list[dict[str, Any]]:
    """The package-wide default: ``NBCALL_ICE_SERVERS`` (a JSON list of RTCIceServer dicts), or []."""
    raw = os.environ.get(ICE_SERVERS_ENV, "").strip()
    if not raw:
        return []
    try:
        servers = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{ICE_SERVERS_ENV} is not valid JSON: {exc}") from None
    if isinstance(servers, dict):
        servers = [servers]
    return validate_ice_servers(servers)


def validate_ice_servers(servers: Any) -> list[dict[str, Any]]:
    """Check a list of RTCIceServer dicts, raising ValueError with the reason."""
    if not isinstance(servers, list):
        raise ValueError("ice_servers must be a list of {'urls': ..., 'username': ..., 'credential': ...}")
    for server in servers:
        if not isinstance(server, dict) or "urls" not in server:
            raise ValueError(f"each ICE server needs 'urls': {server!r}")
        urls = server["urls"]
        for url in [urls] if isinstance(urls, str) else urls:
            if not isinstance(url, str) or not url.startswith(("turn:", "turns:", "stun:", "stuns:")):
                raise ValueError(f"not a STUN/TURN URL: {url!r}")
            if url.startswith("turn") and not ("username" in server and "credential" in server):
                raise ValueError(f"TURN server {url} needs 'username' and 'credential' (see nbcall.turn_credentials)")
    return servers
