"""Real JupyterLab + real headless Chromium + a real nbcall server, shared by the e2e tests.

One Lab server, one browser and one signaling server per test session (each takes
seconds to start); every test opens its own notebooks under unique user names.
See ../shared/docs/testing.md for why the flags and waits are what they are.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from ..conftest import free_port, nbcall_server_cmd, serving, stop_process
from .lab import Lab

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    # Three fake cameras, so switching can be tested (the second one is a Y16 "depth" camera
    # that WebRTC cannot encode; the third, MJPEG, works like the first).
    "--use-fake-device-for-media-stream=device-count=3",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--allow-loopback-in-peer-connection",
]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home for everything Chromium, Jupyter and npm would write under $HOME."""
    return tmp_path_factory.mktemp("e2e-home")


@pytest.fixture(scope="session")
def sandbox_env(sandbox: Path) -> dict[str, str]:
    dirs = {
        "XDG_CONFIG_HOME": "config",
        "XDG_CACHE_HOME": "cache",
        "XDG_DATA_HOME": "data",
        "XDG_RUNTIME_DIR": "runtime",
        "JUPYTER_CONFIG_DIR": "jupyter-config",
        "JUPYTER_DATA_DIR": "jupyter-data",
        "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
        "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces",
        "IPYTHONDIR": "ipython",
    }
    env = dict(os.environ)
    for var, sub in dirs.items():
        path = sandbox / sub
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        env[var] = str(path)
    env["npm_config_logs_max"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    # No news pop-up over the notebook.
    news = sandbox / "lab-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return env


@pytest.fixture(scope="session")
def signaling_url(sandbox_env: dict[str, str]) -> Iterator[str]:
    """A standalone nbcall server on a free port (a child process, stopped by pid)."""
    port = free_port()
    with serving(nbcall_server_cmd(port, "--log-level", "WARNING"), port, env=sandbox_env):
        yield f"ws://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def lab_server(sandbox: Path, sandbox_env: dict[str, str]) -> Iterator[tuple[str, str, Path]]:
    """JupyterLab on 127.0.0.1 with a token: yields (base URL, token, root dir)."""
    root = sandbox / "notebooks"
    root.mkdir()
    port = free_port()
    token = secrets.token_hex(16)
    cmd = [
        str(Path(sys.executable).parent / "jupyter-lab"),
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--allow-root",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        # The same server serves Notebook 7 (/notebooks/...); expose its app too.
        "--JupyterNotebookApp.expose_app_in_browser=True",
        "--ServerApp.port_retries=0",
    ]
    log = (sandbox / "lab.log").open("wb")
    proc = subprocess.Popen(cmd, env=sandbox_env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}: see {sandbox / 'lab.log'}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield base, token, root
    finally:
        try:
            request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=5).close()
            proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        stop_process(proc)  # by pid, whatever the shutdown call did
        log.close()


@pytest.fixture(scope="session")
def seed_page_url() -> Iterator[str]:
    """A plain HTTP server for tests/e2e/seed_page.html (the seed's client code)."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(HERE))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/seed_page.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(sandbox_env: dict[str, str]) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, env=sandbox_env)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def lab(browser: Browser, lab_server: tuple[str, str, Path], signaling_url: str) -> AsyncIterator[Lab]:
    base, token, root = lab_server
    the_lab = Lab(browser, base, token, root, signaling_url)
    try:
        yield the_lab
    finally:
        await the_lab.close_all()
