"""One signaling server per process, on its own event loop in a daemon thread.

A notebook kernel's own loop is busy running cells, so the server gets a loop of its
own.  A second process (another kernel) that finds the port taken adopts the server
there only if it proves it is an nbcall server of the same user; otherwise it starts its
own server on a free port and says so (see "Finding a running server" in
docs/protocol.md):

- The process that starts a server writes ``nbcall-server-<port>.json`` (port, pid and a
  random secret) into the Jupyter runtime directory, mode 0600, and removes it on stop.
- A process that finds the port taken reads that file (only if it is a regular file,
  not a symlink, owned by this user, not readable by others, in a directory others
  cannot write) and sends ``GET /health?challenge=<nonce>``.  The server adds
  ``"proof": HMAC-SHA256(secret, "nbcall-server-proof\\n<port>\\n<nonce>")`` to its
  health record; the port is the one the server listens on, so a squatter that passes
  the challenge to a real server elsewhere gets a proof for the wrong port.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import errno
import hmac
import http.client
import json
import logging
import os
import re
import secrets
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from ..sfu import LocalJanus, SfuConfig
from ..sfu.config import SfuSpec, from_env, resolve
from .ownership import pid_alive, proof, read_runtime_file, remove_runtime_file, runtime_file, write_runtime_file
from .server import DEFAULT_HOST, DEFAULT_PORT, HEALTH_PATH, ServerConfig, SignalingServer

log = logging.getLogger("nbcall.server")

_lock = threading.Lock()
_current: ServerHandle | None = None

FILE_WAIT = 1.0  # seconds to wait for the file of a server that has just bound its port
_NONCE = re.compile(r"[0-9a-f]{32,128}")


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
    using it (``adopted`` is then True); ``stop()`` then does nothing to that server.
    ``note`` says in a sentence what :func:`serve` did and why: started, adopted, or
    started on another port because the one asked for was held by something unproven.
    """

    url: str
    host: str
    port: int
    owned: bool
    adopted: bool = False
    note: str = ""
    runtime_file: Path | None = None
    _server: SignalingServer | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _secret: bytes | None = field(default=None, repr=False)

    @property
    def sfu(self) -> SfuConfig | None:
        """The Janus this server's rooms move to (None: none, or not this process's server)."""
        return self._server.config.sfu if self._server is not None else None

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
        """Stop the server (if this process started it), remove its runtime file, release its port."""
        global _current
        with _lock:
            if _current is self:
                _current = None
        if not self.owned or self._loop is None or self._server is None:
            return
        self._forget_runtime_file()  # first: nobody adopts a server that is going away
        loop, server = self._loop, self._server
        # Its Janus is stopped here, after the server: stopping a process may take seconds
        # that the server's own stop should not wait for.
        janus, server.owned_janus = server.owned_janus, None
        try:
            if loop.is_running():
                future = asyncio.run_coroutine_threadsafe(server.stop(), loop)
                try:
                    future.result(timeout)
                finally:
                    loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout)
            self._loop = None
        finally:
            if janus is not None:
                janus.stop()

    def release_at_exit(self) -> None:
        """The process is exiting with the server still up: remove its runtime file and stop
        its Janus, a child process that would outlive the kernel (the server dies with us)."""
        if not self.owned:
            return
        self._forget_runtime_file()
        janus = self._server.owned_janus if self._server is not None else None
        if janus is not None:
            janus.stop()

    def _forget_runtime_file(self) -> None:
        path, secret = self.runtime_file, self._secret
        self.runtime_file = None
        if path is None or secret is None:
            return
        remove_runtime_file(path, secret)


def probe(host: str, port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """Return the health record of an nbcall server at host:port, or None.

    Anyone can answer like this: it says what a port claims to be, not whose it is.
    """
    info = _get_json(host, port, HEALTH_PATH, timeout)
    return info if info is not None and info.get("server") == "nbcall" else None


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    token: str | None = None,
    origins: list[str] | None = None,
    sfu: SfuSpec | None = None,
    **config: Any,
) -> ServerHandle:
    """Start the process's embedded signaling server, or return the one already running.

    A port already held by an nbcall server of this user (say, another kernel's) is
    used rather than an error, once that server proves it (see the module docstring).
    A port held by anything else, or by a server that cannot prove it, is left alone:
    this process's server starts on a free port instead, with a warning, and
    ``handle.note`` says why.  ``port=0`` picks a free port.  Further keyword arguments
    go to :class:`ServerConfig`.

    ``sfu``: the Janus rooms move to past their mesh limit (docs/rooms.md): an
    :class:`~nbcall.sfu.SfuConfig`, a :class:`~nbcall.sfu.LocalJanus`, or ``"local"`` (start
    a LocalJanus on 127.0.0.1 for this server, stopped with it; raises
    :class:`~nbcall.sfu.JanusError` when janus is not installed).  None: ``$NBCALL_SFU``
    (``local`` or ``{"admin_url": .., "public_url": .., "admin_key": ..}``), else no SFU.
    """
    global _current
    with _lock:
        if _current is not None and _current.running:
            if sfu is not None and _current.sfu is None:
                warnings.warn(
                    "nbcall.serve(sfu=...): this process's server is already running without an SFU, and is "
                    "used as it is; call nbcall.serve(sfu=...) before the first CallWidget (or restart the kernel)",
                    stacklevel=2,
                )
            return _current
        sfu_config, janus = resolve(sfu if sfu is not None else from_env())
        try:
            cfg = ServerConfig(host=host, port=port, token=token, origins=origins, sfu=sfu_config, **config)
            handle = _serve(cfg, janus)
        except BaseException:
            if janus is not None:
                janus.stop()
            raise
        if janus is not None and not handle.owned:
            janus.stop()  # another process's server is used: this one's Janus is not needed
        _current = handle
        return handle


def _serve(cfg: ServerConfig, janus: LocalJanus | None) -> ServerHandle:
    """Start a server for ``cfg``, or adopt the one holding its port, or start one on another port."""
    host, port = cfg.host, cfg.port
    try:
        handle = _start_in_thread(cfg, janus)
        handle.note = f"started an nbcall server on {_shown(host)}:{handle.port}"
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or port == 0:
            raise
        ok, why = _adopt(host, port)
        if ok:
            log.info("using the nbcall server already running on %s:%s (%s)", host, port, why)
            return ServerHandle(
                url=f"ws://{_shown(host)}:{port}", host=host, port=port, owned=False, adopted=True, note=why
            )
        handle = _start_in_thread(dataclasses.replace(cfg, port=0), janus)
        handle.note = (
            f"port {port} on {host} is taken by {why}; not using it: "
            f"started this process's nbcall server on port {handle.port} instead"
        )
        log.warning("%s", handle.note)
    return handle


def current() -> ServerHandle | None:
    """The server :func:`serve` started or found in this process, if any."""
    return _current


# -- the server side of the proof ------------------------------------------------------


class EmbeddedServer(SignalingServer):
    """A signaling server that answers ``GET /health?challenge=<hex nonce>`` with a proof.

    The health record is whatever :class:`SignalingServer` answers, plus ``"proof"``.
    """

    def __init__(self, config: ServerConfig, secret: bytes) -> None:
        super().__init__(config)
        self.secret = secret

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        response = super()._process_request(connection, request)
        if response is None or response.status_code != 200:
            return response
        url = urlsplit(request.path)
        nonce = parse_qs(url.query).get("challenge", [""])[0]
        if url.path != HEALTH_PATH or not _NONCE.fullmatch(nonce):
            return response
        try:
            body = json.loads(response.body)
        except ValueError:  # pragma: no cover - the health reply is JSON
            return response
        if not isinstance(body, dict):  # pragma: no cover
            return response
        body["proof"] = proof(self.secret, self.port, nonce)
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = response.headers.copy()
        del headers["Content-Length"]
        headers["Content-Length"] = str(len(data))
        return Response(response.status_code, response.reason_phrase, headers, data)


def _start_in_thread(cfg: ServerConfig, janus: LocalJanus | None = None) -> ServerHandle:
    loop = _new_loop()
    secret = secrets.token_bytes(32)
    server = EmbeddedServer(cfg, secret)
    server.owned_janus = janus
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
        server.owned_janus = None  # the caller still owns it: it may try another port
        raise failure[0]
    port = server.port
    return ServerHandle(
        url=server.url,
        host=cfg.host,
        port=port,
        owned=True,
        runtime_file=write_runtime_file(port, cfg.host, server.url, secret),
        _server=server,
        _loop=loop,
        _thread=thread,
        _secret=secret,
    )


# -- the adopting side -----------------------------------------------------------------


def _adopt(host: str, port: int) -> tuple[bool, str]:
    """Whether the server holding host:port proved it is this user's nbcall server, and a reason."""
    info = probe(host, port)
    if info is None:
        return False, "something that does not answer as an nbcall server"
    path = runtime_file(port)
    unproven = "a server that answers as nbcall but does not prove it is this user's"
    deadline = time.monotonic() + FILE_WAIT
    while True:  # a server that has just bound the port writes its file a moment later
        record, problem = read_runtime_file(path)
        wait = record is None and problem.startswith("there is no")
        if record is not None and record["port"] != port:
            problem = f"{path} is for port {record['port']}"
        elif record is not None and pid_alive(record["pid"]) is False:
            problem, wait = f"{path} is stale (pid {record['pid']} is gone)", True
        elif record is not None:
            break
        if not wait or time.monotonic() >= deadline:
            return False, f"{unproven}: {problem}"
        time.sleep(0.05)
    nonce = secrets.token_hex(16)
    answer = _get_json(host, port, f"{HEALTH_PATH}?challenge={nonce}", 2.0)
    offered = answer.get("proof") if answer is not None else None
    expected = proof(record["secret"], port, nonce)
    if not isinstance(offered, str) or not hmac.compare_digest(offered.encode(), expected.encode()):
        return False, f"{unproven}: no valid proof of the secret in {path}"
    return True, f"adopted the nbcall server of pid {record['pid']} on port {port} (proved the secret in {path})"


def _shown(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _get_json(host: str, port: int, path: str, timeout: float) -> dict[str, Any] | None:
    """GET a JSON object over plain HTTP: no proxy, no redirects (unlike urllib)."""
    target = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    conn = http.client.HTTPConnection(target, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        reply = conn.getresponse()
        if reply.status != 200:
            return None
        info = json.loads(reply.read(65536))
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    return info if isinstance(info, dict) else None


@atexit.register
def _remove_runtime_file_at_exit() -> None:
    handle = _current
    if handle is not None:
        handle.release_at_exit()


def default_server() -> str:
    """The signaling server a widget or Peer uses when given none: ``$NBCALL_SERVER``, else :func:`serve`'s.

    ``NBCALL_SERVER`` names a shared signaling service (a JupyterHub where every user's kernel
    runs elsewhere): then no embedded server is started. Raises ValueError for a URL that is
    not ``ws://`` or ``wss://``.
    """
    shared = os.environ.get("NBCALL_SERVER", "").strip()
    if shared:
        if not shared.startswith(("ws://", "wss://")):
            raise ValueError(f"NBCALL_SERVER must be a ws:// or wss:// URL, not {shared!r}")
        return shared
    return str(serve().url)
