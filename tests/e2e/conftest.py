"""Real JupyterLab + real headless Chromium + a real nbcall server, shared by the e2e tests.

One Lab server, one browser and one signaling server per test session (each takes
seconds to start); every test opens its own notebooks under unique user names.
Every test here is marked ``browser`` and ``slow`` (by ../conftest.py).
The fixtures are thin: the helpers are in nbcall/_testing, shared with the benchmarks.
See ../shared/docs/testing.md for why the flags and waits are what they are.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from nbcall._testing import chromium
from nbcall._testing.jupyter import JupyterLab
from nbcall._testing.lab import Lab
from nbcall._testing.processes import free_port, nbcall_server_cmd, serving
from nbcall._testing.sandbox import sandbox_env as sandbox_environment

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home for everything Chromium, Jupyter and npm would write under $HOME."""
    return tmp_path_factory.mktemp("e2e-home")


@pytest.fixture(scope="session")
def sandbox_env(sandbox: Path) -> dict[str, str]:
    return sandbox_environment(sandbox)


@pytest.fixture(scope="session")
def signaling_url(sandbox_env: dict[str, str]) -> Iterator[str]:
    """A standalone nbcall server on a free port (a child process, stopped by pid)."""
    port = free_port()
    with serving(nbcall_server_cmd(port, "--log-level", "WARNING"), port, env=sandbox_env):
        yield f"ws://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def lab_server(sandbox: Path, sandbox_env: dict[str, str]) -> Iterator[tuple[str, str, Path]]:
    """JupyterLab on 127.0.0.1 with a token: yields (base URL, token, root dir)."""
    with JupyterLab(sandbox / "notebooks", sandbox_env, sandbox / "lab.log") as lab:
        yield lab.base, lab.token, lab.root


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
        chromium_browser = await chromium.launch(pw, sandbox_env)
        try:
            yield chromium_browser
        finally:
            await chromium_browser.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def lab(browser: Browser, lab_server: tuple[str, str, Path], signaling_url: str) -> AsyncIterator[Lab]:
    base, token, root = lab_server
    the_lab = Lab(browser, base, token, root, signaling_url)
    try:
        yield the_lab
    finally:
        await the_lab.close_all()
