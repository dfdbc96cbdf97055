"""One JupyterLab server on 127.0.0.1: a free port, a token, the app exposed to the page."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from .processes import HOST, free_port, stop_process


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
