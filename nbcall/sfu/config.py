"""Which Janus a signaling server uses for rooms that outgrow a mesh: :class:`SfuConfig`.

Three ways to name one, the same everywhere (``nbcall.serve(sfu=...)``, ``$NBCALL_SFU``,
``nbcall-server --sfu``): an :class:`SfuConfig`, a running :class:`~.janus.LocalJanus`, or
the word ``local`` (start a LocalJanus for that server, stopped with it).  The env var and
the CLI also take JSON: ``{"admin_url": .., "public_url": .., "admin_key": ..}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from .janus import LocalJanus

ENV = "NBCALL_SFU"
LOCAL = "local"


@dataclass(frozen=True)
class SfuConfig:
    """A Janus (VideoRoom plugin) the signaling server administers.

    ``admin_url``: Janus's HTTP API as the server reaches it (``http://127.0.0.1:8088/janus``);
    ``public_url``: the URL pages connect to (``wss://sfu.example.org``, Janus's WebSockets
    transport); ``admin_key``: the VideoRoom plugin's ``admin_key`` (rooms are created only
    with it); ``timeout``: seconds one HTTP request to Janus may take.
    """

    admin_url: str
    public_url: str
    admin_key: str
    timeout: float = 5.0

    def __repr__(self) -> str:  # the admin key stays out of logs and tracebacks
        return f"SfuConfig(admin_url={self.admin_url!r}, public_url={self.public_url!r}, admin_key='…')"

    def check(self) -> None:
        """Raise ValueError for a configuration that cannot work."""
        if urlsplit(self.admin_url).scheme not in ("http", "https"):
            raise ValueError(f"the SFU's admin_url must be an http:// or https:// URL, not {self.admin_url!r}")
        if urlsplit(self.public_url).scheme not in ("ws", "wss", "http", "https"):
            raise ValueError(f"the SFU's public_url must be a ws://, wss:// (or http) URL, not {self.public_url!r}")
        if not self.admin_key:
            raise ValueError("the SFU's admin_key must not be empty")
        if not self.timeout > 0:
            raise ValueError("the SFU's timeout must be positive")

    @classmethod
    def of(cls, janus: LocalJanus) -> SfuConfig:
        """The configuration of a running :class:`LocalJanus` (pages reach it on 127.0.0.1)."""
        return cls(janus.http_url, janus.ws_url, janus.admin_key)

    @classmethod
    def parse(cls, text: str) -> SfuConfig:
        """``{"admin_url": .., "public_url": .., "admin_key": ..}`` (JSON), checked."""
        try:
            data = json.loads(text)
        except ValueError:
            raise ValueError(f"the SFU must be 'local' or a JSON object, not {text[:40]!r}") from None
        keys = {"admin_url", "public_url", "admin_key"}
        if not isinstance(data, dict) or not keys <= data.keys() or not data.keys() <= keys | {"timeout"}:
            raise ValueError('the SFU\'s JSON must be {"admin_url": .., "public_url": .., "admin_key": ..}')
        if not all(isinstance(data[k], str) for k in keys) or not isinstance(data.get("timeout", 5.0), (int, float)):
            raise ValueError("the SFU's admin_url, public_url and admin_key must be strings")
        config = cls(**data)
        config.check()
        return config


SfuSpec = SfuConfig | LocalJanus | str


def resolve(spec: SfuSpec | None) -> tuple[SfuConfig | None, LocalJanus | None]:
    """The configuration ``spec`` names, and the LocalJanus started for it (the caller stops it).

    ``"local"`` starts a :class:`LocalJanus` (raises :class:`~.janus.JanusError` when janus
    is not installed or does not start); any other string is :meth:`SfuConfig.parse`'s JSON;
    a running LocalJanus stays the caller's, one not started yet is started here and returned.
    """
    if spec is None:
        return None, None
    if isinstance(spec, SfuConfig):
        spec.check()
        return spec, None
    if isinstance(spec, LocalJanus):
        if spec.proc is None:
            return SfuConfig.of(spec.start()), spec
        return SfuConfig.of(spec), None
    if spec.strip() == LOCAL:
        janus = LocalJanus().start()
        return SfuConfig.of(janus), janus
    return SfuConfig.parse(spec), None


def from_env() -> str | None:
    """``$NBCALL_SFU`` (``local`` or JSON), or None when unset or empty."""
    value = os.environ.get(ENV, "").strip()
    return value or None
