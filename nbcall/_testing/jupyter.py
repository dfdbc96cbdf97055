"""One JupyterLab server on 127.0.0.1: a free port, a token, the app exposed to the page."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from .processes import HOST, free_port, stop_process, wait_for_port


class JupyterLab:
    """``jupyter lab`` serving ``root``, started at once; ``wait_ready()``, then ``stop()``.

    Also a context manager (waits on entry, stops on exit). ``window.jupyterapp`` is exposed
    in Lab pages, and Notebook 7's app too (the same server serves ``/notebooks/...``): the
    tests and benchmarks use them to see when a notebook's kernel and plugins are ready.
    """

    def __init__(self, root: Path, env: Mapping[str, str], log: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://{HOST}:{self.port}"
        self.log = log
        cmd = [
            str(Path(sys.executable).parent / "jupyter-lab"),
            "--no-browser",
            f"--ip={HOST}",
            f"--port={self.port}",
            "--allow-root",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True",
            "--ServerApp.port_retries=0",
        ]
        self._log = log.open("wb")
        self.proc = subprocess.Popen(cmd, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT, cwd=root)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once ``/api/status`` answers (about 5 s); raise if Lab exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}: see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """``POST /api/shutdown`` (which stops its kernels too), then by pid whatever that did."""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            request = urllib.request.Request(f"{self.base}/api/shutdown?token={self.token}", method="POST")
            urllib.request.urlopen(request, timeout=5).close()
            self.proc.wait(10)
        stop_process(self.proc, timeout=10)
        self._log.close()

    def __enter__(self) -> JupyterLab:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_jupyter_server(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    """A plain Jupyter server (with the nbcall extension) on 127.0.0.1, its config under ``home``;
    stop it with :func:`stop_jupyter_server`.  Returns (process, port, token)."""
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env[var] = str(home / var.lower())
    port, token = free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip", "127.0.0.1", f"--port={port}",
         "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home}"],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    try:
        wait_for_port(port, proc, timeout=30)
    except BaseException:
        stop_process(proc)
        raise
    return proc, port, token


def stop_jupyter_server(proc: subprocess.Popen[bytes], port: int, token: str) -> None:
    """POST /api/shutdown, then stop the process by pid whatever that did."""
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/shutdown?token={token}", method="POST")
        urllib.request.urlopen(request, timeout=5).close()
        proc.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        pass
    stop_process(proc)
