"""A local Janus (the SFU for rooms) on 127.0.0.1: its own small configuration, free ports, stopped by pid.

Debian's ``janus`` loads every plugin and transport in ``/etc/janus`` and binds every
interface.  :class:`LocalJanus` writes a configuration folder of its own instead: only the
VideoRoom plugin, only the HTTP and WebSockets transports, both bound to 127.0.0.1 on free
ports, ICE on loopback, and two secrets that never leave the kernel:

- ``admin_key``: the VideoRoom plugin creates, edits and destroys rooms only with it, so no
  page can make or remove a room (:mod:`nbcall.sfu.videoroom` holds it);
- ``admin_secret``: Janus's own admin API (unused by nbcall, but it must not be guessable).

Media: as root, ICE only on an interface of its own with a loopback-range address
(:mod:`nbcall.sfu.ice_link`: libnice never gathers on ``lo``); otherwise on the machine's
interfaces.

Who may join a room is decided by the server that holds each room's PIN (see
:mod:`nbcall.sfu.videoroom`), not by the page.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from .ice_link import IceLink

PLUGINS = Path("/usr/lib/x86_64-linux-gnu/janus/plugins")
TRANSPORTS = Path("/usr/lib/x86_64-linux-gnu/janus/transports")
EVENTS = Path("/usr/lib/x86_64-linux-gnu/janus/events")
LOGGERS = Path("/usr/lib/x86_64-linux-gnu/janus/loggers")
HOST = "127.0.0.1"
KEEP_PLUGINS = {"libjanus_videoroom.so"}
KEEP_TRANSPORTS = {"libjanus_http.so", "libjanus_websockets.so"}
# Janus leaves within a second of SIGTERM, or hangs in its shutdown (seen: stuck after
# "De-initializing SCTP..." for minutes).  Its owner (a kernel, nbcall-server) is itself
# given about 5 s to stop before it is killed; waiting that long here left Janus orphaned.
STOP_GRACE = 2.0


class JanusError(RuntimeError):
    """Janus could not be started, or refused a request (the message says which and why)."""


def janus_binary() -> str | None:
    """The ``janus`` executable, or None when it is not installed (``apt-get install janus``)."""
    return shutil.which("janus")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _others(folder: Path, keep: set[str]) -> str:
    """The libraries of ``folder`` to disable: every ``.so`` but ``keep``."""
    names = sorted(p.name for p in folder.glob("*.so")) if folder.is_dir() else []
    return ",".join(name for name in names if name not in keep)


def _jcfg(sections: dict[str, dict[str, object]]) -> str:
    """Janus's libconfig syntax; values are JSON literals (strings quoted, numbers and booleans bare)."""
    out = []
    for name, values in sections.items():
        body = "".join(f"\t{key} = {json.dumps(value)}\n" for key, value in values.items())
        out.append(f"{name}: {{\n{body}}}\n")
    return "\n".join(out)


class LocalJanus:
    """``janus`` on 127.0.0.1 with a configuration of its own; ``start()``, then ``stop()`` (or ``with``).

    ``http_url`` (``http://127.0.0.1:PORT/janus``) and ``ws_url`` (``ws://127.0.0.1:PORT``)
    are its API; ``admin_key`` creates rooms.  RTP uses ``rtp_ports`` (a small range, so
    several Janus on one machine do not collide unless asked to).
    """

    def __init__(self, folder: Path | None = None, *, rtp_ports: tuple[int, int] | None = None) -> None:
        binary = janus_binary()
        if binary is None:
            raise JanusError("janus is not installed: `apt-get install janus` (./dev setup does it)")
        self.binary = binary
        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="nbcall-janus-")) if folder is None else folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.http_port, self.ws_port = _free_port(), _free_port()
        low = 20000 + secrets.randbelow(400) * 100 if rtp_ports is None else rtp_ports[0]
        self.rtp_ports = rtp_ports or (low, low + 99)
        self.admin_key = secrets.token_urlsafe(24)
        self.admin_secret = secrets.token_urlsafe(24)
        self.http_url = f"http://{HOST}:{self.http_port}/janus"
        self.ws_url = f"ws://{HOST}:{self.ws_port}"
        self.log = self.folder / "janus.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ice = IceLink()
        self.ice_interface: str | None = None  # the interface Janus gathers candidates on (None: all)

    def _write_config(self) -> None:
        general: dict[str, object] = {
            "configs_folder": str(self.folder),
            "plugins_folder": str(PLUGINS),
            "transports_folder": str(TRANSPORTS),
            "events_folder": str(EVENTS),
            "loggers_folder": str(LOGGERS),
            "debug_level": 4,
            "admin_secret": self.admin_secret,
            "protected_folders": ["/bin", "/boot", "/dev", "/etc", "/proc", "/sbin", "/sys", "/usr", "/var"],
        }
        # One loopback-range address of its own when it can (ice_link.py): nothing leaves the machine.
        nat: dict[str, object] = {"nice_debug": False}
        if self.ice_interface:
            nat["ice_enforce_list"] = self.ice_interface
        (self.folder / "janus.jcfg").write_text(
            _jcfg({
                "general": general,
                "media": {"rtp_port_range": f"{self.rtp_ports[0]}-{self.rtp_ports[1]}"},
                "nat": nat,
                "plugins": {"disable": _others(PLUGINS, KEEP_PLUGINS)},
                "transports": {"disable": _others(TRANSPORTS, KEEP_TRANSPORTS)},
                "events": {"broadcast": False, "disable": _others(EVENTS, set())},
                "loggers": {"disable": _others(LOGGERS, set())},
            }),
            encoding="utf-8",
        )  # fmt: skip
        (self.folder / "janus.transport.http.jcfg").write_text(
            _jcfg({
                "general": {"json": "plain", "base_path": "/janus", "http": True, "port": self.http_port,
                            "ip": HOST, "https": False},
                "admin": {"admin_http": False},
            }),
            encoding="utf-8",
        )  # fmt: skip
        (self.folder / "janus.transport.websockets.jcfg").write_text(
            _jcfg({
                "general": {"json": "plain", "ws": True, "ws_port": self.ws_port, "ws_ip": HOST, "wss": False},
                "admin": {"admin_ws": False},
            }),
            encoding="utf-8",
        )  # fmt: skip
        # string_ids: rooms are named like users ("standup"), not numbered.
        (self.folder / "janus.plugin.videoroom.jcfg").write_text(
            _jcfg({"general": {"admin_key": self.admin_key, "string_ids": True, "lock_rtp_forward": True}}),
            encoding="utf-8",
        )

    def start(self, timeout: float = 15.0) -> LocalJanus:
        """Start Janus and return once its HTTP API answers ``info`` (about a second)."""
        self.ice_interface = self.ice.open()
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> LocalJanus:
        self._write_config()
        log = self.log.open("wb")
        cmd = [self.binary, "-F", str(self.folder), "-i", HOST, "-o", "-N", "-L", str(self.log)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise JanusError(f"janus exited with {self.proc.returncode}: {self.tail()}")
            try:
                plugins = self.info().get("plugins")
                if isinstance(plugins, dict) and "janus.plugin.videoroom" in plugins:
                    return self
                raise JanusError(f"janus started without its VideoRoom plugin: {self.tail()}")
            except OSError:
                if time.monotonic() > deadline:
                    raise JanusError(f"janus did not answer within {timeout} s: {self.tail()}") from None
                time.sleep(0.1)

    def info(self) -> dict[str, object]:
        """``GET /janus/info``: version, plugins and transports."""
        with urllib.request.urlopen(f"{self.http_url}/info", timeout=2) as response:
            data = json.loads(response.read())
        return data if isinstance(data, dict) else {}

    def tail(self, chars: int = 2000) -> str:
        """The end of Janus's log (for error messages)."""
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE: by pid. Removes the configuration folder and the ICE link it made."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.ice.close()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> LocalJanus:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
