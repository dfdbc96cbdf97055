"""`./dev demo`, the README's first command: Lab on the repository, the demo notebook, a clean log.

The very command line of ``dev`` runs here (its install step skipped: the suite runs after
it), with ``--no-browser`` and a free port. Lab's own node scripts must run from the
checkout: a ``"type": "module"`` in the repository's package.json once made them fail
(``require is not defined in ES module scope``) and Lab then said it could not tell its
build status.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from nbcall._testing.processes import HOST, free_port, stop_process
from nbcall._testing.sandbox import sandbox_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "notebooks/first_call.ipynb"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_dev_demo_opens_the_demo_notebook_with_a_clean_log(tmp_path: Path) -> None:
    port = free_port()
    env = sandbox_env(tmp_path / "home")
    env["NBCALL_DEMO_NO_SETUP"] = "1"
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / "dev"), "demo", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        url = ""
        deadline = time.monotonic() + 60
        while not url:
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.3)
            found = re.search(rf"http://{re.escape(HOST)}:{port}/\S+", log.read_text(errors="replace"))
            url = found[0] if found else ""
        # The URL Jupyter prints is the notebook's own, token included.
        assert f"/lab/tree/{NOTEBOOK}?token=" in url, url
        token = url.split("token=", 1)[1]
        with urllib.request.urlopen(f"http://{HOST}:{port}/api/contents/{NOTEBOOK}?token={token}", timeout=10) as r:
            assert r.status == 200  # the repository is Jupyter's root: the path resolves
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(f"http://{HOST}:{port}/?token={token}", timeout=10)
        location = redirect.value.headers["Location"].split("?")[0]
        assert location.endswith(f"/lab/tree/{NOTEBOOK}"), location
        # Lab checks its build status with node at start-up; give it the time that takes.
        with urllib.request.urlopen(f"http://{HOST}:{port}/lab/api/build?token={token}", timeout=30) as r:
            assert r.status == 200
        time.sleep(1)
        text = log.read_text(errors="replace")
        for trouble in ("require is not defined", "Could not determine jupyterlab build status", "yarn configuration"):
            assert trouble not in text, text[-3000:]
    finally:
        stop_process(proc, timeout=10)
