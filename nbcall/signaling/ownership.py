"""Proving that a signaling server on a port is this user's: the runtime file and the proof.

The process that starts an embedded server writes ``nbcall-server-<port>.json`` (port, pid
and a random secret) into the Jupyter runtime directory, mode 0600; another process of the
same user reads it (only a regular file owned by this user, unreadable by others, in a
directory others cannot write) and challenges the server on that port to prove it knows
the secret.  :mod:`nbcall.signaling.embedded` does both sides; "Finding a running server"
in docs/protocol.md is the rule in prose.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import Any

from .._version import __version__

log = logging.getLogger("nbcall.server")

RUNTIME_FILE = "nbcall-server-{port}.json"
_MAX_FILE_BYTES = 4096
_POSIX = sys.platform != "win32"


def proof(secret: bytes, port: int, nonce: str) -> str:
    """What a server that knows ``secret`` and listens on ``port`` answers to ``nonce``."""
    return hmac.new(secret, f"nbcall-server-proof\n{port}\n{nonce}".encode(), hashlib.sha256).hexdigest()


def runtime_dir() -> Path:
    """Jupyter's runtime directory (``jupyter --runtime-dir``; ``$JUPYTER_RUNTIME_DIR`` if set)."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:  # pragma: no cover - a kernel always has jupyter_core (ipykernel needs it)
        if os.environ.get("JUPYTER_RUNTIME_DIR"):
            return Path(os.environ["JUPYTER_RUNTIME_DIR"])
        if os.environ.get("JUPYTER_DATA_DIR"):
            return Path(os.environ["JUPYTER_DATA_DIR"]) / "runtime"
        if sys.platform == "darwin":
            return Path.home() / "Library" / "Jupyter" / "runtime"
        if sys.platform == "win32":
            return Path(os.environ.get("APPDATA") or Path.home()) / "jupyter" / "runtime"
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(data) / "jupyter" / "runtime"
    return Path(jupyter_runtime_dir())


def runtime_file(port: int) -> Path:
    """Where the server on ``port`` started by :func:`serve` leaves its port, pid and secret."""
    return runtime_dir() / RUNTIME_FILE.format(port=port)


def dir_problem(directory: Path) -> str | None:
    """Why files in ``directory`` cannot be trusted to be ours, or None."""
    try:
        st = directory.stat()
    except OSError as exc:
        return f"{directory} is not usable ({exc.strerror or exc})"
    if not stat.S_ISDIR(st.st_mode):
        return f"{directory} is not a directory"
    if _POSIX:
        if st.st_uid != os.getuid():
            return f"{directory} belongs to uid {st.st_uid}, not to this user ({os.getuid()})"
        if st.st_mode & 0o022:
            return f"{directory} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def write_runtime_file(port: int, host: str, url: str, secret: bytes) -> Path | None:
    """Write the file another process checks before adopting this server; None if we cannot."""
    directory = runtime_dir()
    path = directory / RUNTIME_FILE.format(port=port)
    record = {
        "port": port,
        "pid": os.getpid(),
        "host": host,
        "url": url,
        "secret": secret.hex(),
        "version": __version__,
    }
    tmp = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        problem = dir_problem(directory)
        if problem is not None:
            raise OSError(problem)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, 0o600)
        with os.fdopen(fd, "w") as out:
            if _POSIX:
                os.fchmod(out.fileno(), 0o600)
            json.dump(record, out)
        os.replace(tmp, path)  # replaces a stale file (or a symlink) by name; never writes through one
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        log.warning("cannot write %s (%s): other kernels will not use this server", path, exc.strerror or exc)
        return None
    return path


def read_runtime_file(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The file's record (``port``, ``pid``, ``secret`` as bytes), or None and why not."""
    if not path.parent.exists():
        return None, f"there is no {path}"
    problem = dir_problem(path.parent)
    if problem is not None:
        return None, problem
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        if path.is_symlink():  # O_NOFOLLOW catches this too; this gives the clearer reason
            return None, f"{path} is a symlink"
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None, f"there is no {path}"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, f"{path} is a symlink"
        return None, f"{path} is not readable ({exc.strerror or exc})"
    with os.fdopen(fd, "rb") as file:
        st = os.fstat(file.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None, f"{path} is not a regular file"
        if _POSIX and st.st_uid != os.getuid():
            return None, f"{path} belongs to uid {st.st_uid}, not to this user ({os.getuid()})"
        if _POSIX and st.st_mode & 0o077:
            return None, f"{path} is readable or writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
        data = file.read(_MAX_FILE_BYTES + 1)
    try:
        record = json.loads(data) if len(data) <= _MAX_FILE_BYTES else {}
        secret = bytes.fromhex(record["secret"])
        port, pid = record["port"], record["pid"]
    except (ValueError, TypeError, KeyError):
        return None, f"{path} is not an nbcall runtime file"
    if not (isinstance(port, int) and isinstance(pid, int) and len(secret) >= 16):
        return None, f"{path} is not an nbcall runtime file"
    return {"port": port, "pid": pid, "secret": secret}, ""


def pid_alive(pid: int) -> bool | None:
    """Whether a process with this pid exists (None: cannot tell).  Pids are reused, so this proves nothing."""
    if not _POSIX:
        return None  # os.kill on Windows terminates: never probe with it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


def remove_runtime_file(path: Path, secret: bytes) -> None:
    """Remove ``path`` if it is this very process's file (not a forked child's, not a newer server's)."""
    record, _ = read_runtime_file(path)
    if record is not None and record["pid"] == os.getpid() and hmac.compare_digest(record["secret"], secret):
        with contextlib.suppress(OSError):
            path.unlink()
