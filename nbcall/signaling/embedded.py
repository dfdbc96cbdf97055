"""One signaling server per process, on its own event loop in a daemon thread.

A notebook kernel's own loop is busy running cells, so the server gets a loop of its
own.  A second process (another kernel) that finds the default port taken by an nbcall
server uses that one instead of failing.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from .server import DEFAULT_HOST, DEFAULT_PORT, HEALTH_PATH, ServerConfig, SignalingServer

log = logging.getLogger("nbcall.server")

_lock = threading.Lock()
_current: ServerHandle | None = None


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but optional in spirit
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@dataclass
class ServerHandle:
    """A running signaling server: where it is and how to stop it.

    ``owned`` is False when this process found another process's server and is only
    using it; ``stop()`` then does nothing to that server.
    """

    url: str
    host: str
    port: int
    owned: bool
    _server: SignalingServer | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        if not self.owned:
            return probe(self.host, self.port) is not None
        return self._thread is not None and self._thread.is_alive()

    def online(self) -> int:
        """How many users are registered right now."""
        info = probe(self.host, self.port)
        return int(info["online"]) if info else 0

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (if this process started it) and release its port."""
        global _current
        with _lock:
            if _current is self:
                _current = None
        if not self.owned or self._loop is None or self._server is None:
            return
        loop, server = self._loop, self._server
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(server.stop(), loop)
            try:
                future.result(timeout)
            finally:
                loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        self._loop = None


def probe(host: str, port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """Return the health record of an nbcall server at host:port, or None."""
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1"
    try:
        with urllib.request.urlopen(f"http://{shown}:{port}{HEALTH_PATH}", timeout=timeout) as reply:
            info = json.loads(reply.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return info if isinstance(info, dict) and info.get("server") == "nbcall" else None


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    token: str | None = None,
    origins: list[str] | None = None,
    **config: Any,
) -> ServerHandle:
    """Start the process's embedded signaling server, or return the one already running.

    With the default port, a port already held by another nbcall server (say, another
    kernel's) is reused rather than an error.  ``port=0`` picks a free port.  Further
    keyword arguments go to :class:`ServerConfig`.
    """
    global _current
    with _lock:
        if _current is not None and _current.running:
            return _current
        cfg = ServerConfig(host=host, port=port, token=token, origins=origins, **config)
        try:
            handle = _start_in_thread(cfg)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            info = probe(host, port)
            if info is None:
                raise OSError(
                    exc.errno,
                    f"port {port} on {host} is in use by something that is not an nbcall server; "
                    "pass another port, or port=0 for any free one",
                ) from None
            log.info("using the nbcall server already running on %s:%s", host, port)
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            handle = ServerHandle(url=f"ws://{shown}:{port}", host=host, port=port, owned=False)
        _current = handle
        return handle


def current() -> ServerHandle | None:
    """The server :func:`serve` started or found in this process, if any."""
    return _current


def _start_in_thread(cfg: ServerConfig) -> ServerHandle:
    loop = _new_loop()
    server = SignalingServer(cfg)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="nbcall-signaling", daemon=True)
    thread.start()
    started.wait()
    if failure:
        raise failure[0]
    return ServerHandle(
        url=server.url, host=cfg.host, port=server.port, owned=True, _server=server, _loop=loop, _thread=thread
    )
