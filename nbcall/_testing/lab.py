"""Driving notebooks in a real JupyterLab page: open, Run All, run Python in the kernel.

The server is started by jupyter.JupyterLab, the browser by chromium.launch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

import nbformat
from playwright.async_api import Browser, BrowserContext, Page

# Find our notebook panel among the main-area widgets (shell.currentWidget can be null while
# the layout restores) and report ready only when the kernel is idle and plugins are active.
_READY = """
(path) => {
  const app = window.jupyterapp;
  if (!app || !app.commands.hasCommand('notebook:run-all-cells')) return false;
  if (!window.__panel) {
    for (const w of app.shell.widgets('main')) {
      if (w.context && w.context.path === path) { window.__panel = w; break; }
    }
  }
  const p = window.__panel;
  if (!p || !p.sessionContext.isReady) return false;
  const kernel = p.sessionContext.session && p.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
}
"""

_EXECUTE = """
async (code) => {
  const kernel = window.__panel.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code, store_history: false });
  let out = '';
  future.onIOPub = (msg) => {
    const c = msg.content;
    const t = msg.header.msg_type;
    if (t === 'stream') out += c.text;
    else if (t === 'execute_result') out += c.data['text/plain'] + '\\n';
    else if (t === 'error') out += `${c.ename}: ${c.evalue}\\n`;
  };
  await future.done;
  return out;
}
"""


# Every member of a test's room lives in one browser, whose fake microphones all beep at
# the same moments: played aloud, the others' beeps are the echo Chromium's canceller
# removes from each microphone, and every member's audio level reads ~0 (measured: beep
# peaks 0.02 with playback, 0.08-0.45 with playback at volume 0).  Members on separate
# machines do not hear each other's microphones, so tests of who speaks play remote media
# at volume 0 (rather than muted, which the widget sets itself).
SILENT_PLAYBACK = """
document.addEventListener('playing', (event) => { event.target.volume = 0; }, true);
"""

DIAGNOSE = """() => JSON.stringify({
  phones: Object.fromEntries(
    Object.entries((window.__nbcall || {}).phones || {}).map(([k, p]) => [k, [p.state, p.error]])),
  outputs: [...document.querySelectorAll('.jp-OutputArea-output')].map((e) => e.innerText.slice(0, 300)),
  status: document.querySelector('#jp-main-statusbar')?.innerText,
})"""


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code cells (Python 3 kernel) at ``path``."""
    # nbformat's functions carry no annotations.
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]  # type: ignore[no-untyped-call]
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]


class Notebook:
    """One notebook open in its own page (and its own kernel)."""

    def __init__(self, page: Page, context: BrowserContext, path: str) -> None:
        self.page = page
        self.context = context
        self.path = path

    async def py(self, code: str) -> str:
        """Run code in the notebook's kernel; return its printed output (and errors)."""
        return str(await self.page.evaluate(_EXECUTE, code))

    async def wait_py(self, expr: str, expected: str, timeout: float = 20.0) -> float:
        """Poll a Python expression until it prints ``expected``; return the seconds it took.

        Each poll is its own execute request, so the widget's comm messages are processed
        in between, the way a user's next cell would see them.
        """
        start = time.monotonic()
        last = ""
        while time.monotonic() - start < timeout:
            last = (await self.py(f"_v = ({expr})\nprint(_v if isinstance(_v, str) else repr(_v))")).strip()
            if last == expected:
                return time.monotonic() - start
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.path}: {expr} is {last!r}, expected {expected!r} after {timeout} s")

    async def call_and_connect(self, caller: str, callee: str, callee_user: str, timeout: float = 20.0) -> None:
        """``caller.call(callee_user)`` from Python, ``callee.accept()`` once it rings; wait until
        both are connected (``caller``/``callee`` are the notebook's variable names)."""
        await self.wait_py(f"{callee_user!r} in {caller}.peers", "True")
        out = await self.py(f"{caller}.call({callee_user!r})")
        assert out == "", out
        await self.wait_py(f"{callee}.state", "ringing")
        await self.py(f"{callee}.accept()")
        await self.wait_py(f"({caller}.state, {callee}.state)", "('connected', 'connected')", timeout=timeout)

    async def js_state(self, user: str) -> str:
        return str(await self.page.evaluate("(u) => window.__nbcall.phones[u]?.state ?? 'none'", user))

    async def wait_js(self, predicate: str, arg: Any = None, timeout: float = 20.0) -> None:
        await self.page.wait_for_function(predicate, arg=arg, timeout=timeout * 1000)

    async def video_stats(self, user: str) -> dict[str, Any]:
        """Inbound video numbers of ``user``'s call as seen in the page (getStats + <video>)."""
        return dict(
            await self.page.evaluate(
                """async (u) => {
                  const phone = window.__nbcall.phones[u];
                  if (!phone || !phone.call) return { frames: 0, width: 0, fps: 0, state: 'none' };
                  const s = await phone.call.stats();
                  const video = document.querySelector(`.nbcall-root[data-user="${u}"] video.nbcall-remote`);
                  return { frames: s.frames_decoded, fps: s.fps, width: video ? video.videoWidth : -1,
                           height: video ? video.videoHeight : -1, state: phone.pc.connectionState };
                }""",
                user,
            )
        )

    async def assert_video_flows(self, user: str, timeout: float = 10.0) -> dict[str, Any]:
        """The remote video of ``user`` plays: it has a size and decoded frames keep rising."""
        deadline = time.monotonic() + timeout
        first = await self.video_stats(user)
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # 5 frames of the fake camera's ~20 fps take 0.25 s
            now = await self.video_stats(user)
            if now["width"] > 0 and first["frames"] > 0 and now["frames"] >= first["frames"] + 5:
                return now
            if first["frames"] == 0:
                first = now
        raise AssertionError(f"{user}: remote video not flowing: first {first}, last {await self.video_stats(user)}")

    async def click(self, user: str, css: str) -> None:
        await self.page.locator(f'.nbcall-root[data-user="{user}"] {css}').first.click()

    async def run_all(self, users: list[str]) -> None:
        """Run All, then wait until every user's widget is rendered and registered (idle)."""
        page = self.page
        await page.evaluate(
            """async () => {
              const app = window.jupyterapp;
              app.shell.activateById(window.__panel.id);
              await app.commands.execute('notebook:run-all-cells');
            }"""
        )
        try:
            await self.wait_js(
                "(users) => users.every((u) => window.__nbcall && window.__nbcall.phones[u] && "
                "window.__nbcall.phones[u].state === 'idle' && "
                'document.querySelector(`.nbcall-root[data-user="${u}"]`))',
                users,
                timeout=30,
            )
        except Exception:
            print(await page.evaluate(DIAGNOSE))
            raise

    async def close(self) -> None:
        await self.context.close()


class Lab:
    """A JupyterLab server (started by the fixture) and the pages opened on it."""

    def __init__(self, browser: Browser, base: str, token: str, root: Path, signaling_url: str) -> None:
        self.browser = browser
        self.base = base
        self.token = token
        self.root = root
        self.signaling_url = signaling_url
        self.open_notebooks: list[Notebook] = []

    def widgets_notebook(self, name: str, users: list[str] | dict[str, str], extra: list[str] | None = None) -> str:
        """Write a notebook showing one CallWidget per user (one cell each); return its path.

        ``users`` maps variable names to user names; a list uses "alice" for "alice-t".
        """
        named = users if isinstance(users, dict) else {user.split("-")[0]: user for user in users}
        cells = ["import nbcall\nSERVER = " + json.dumps(self.signaling_url)]
        for var, user in named.items():
            cells.append(f"{var} = nbcall.CallWidget({user!r}, server=SERVER)\n{var}")
        cells += extra or []
        path = f"{name}.ipynb"
        write_notebook(self.root / path, cells)
        return path

    async def open(
        self,
        path: str,
        *,
        users: list[str],
        context: BrowserContext | None = None,
        run_all: bool = True,
        ui: str = "lab",
        silent_playback: bool = False,
    ) -> Notebook:
        """Open ``path`` in a new page, wait for a ready kernel, Run All, wait for the widgets to register.

        ``ui``: "lab" (JupyterLab) or "notebook7" (the Notebook 7 interface of the same server).
        ``silent_playback``: remote media play at volume 0 (tests of who speaks; not with tests
        that read the played audio's energy, which volume 0 zeroes too).
        """
        if context is None:
            context = await self.browser.new_context(viewport={"width": 1200, "height": 1400})
        page = await context.new_page()
        if silent_playback:  # rooms whose members all live in this browser: see SILENT_PLAYBACK
            await page.add_init_script(SILENT_PLAYBACK)
        page.on("pageerror", lambda exc: print(f"[{path}] page error: {exc}"))
        page.on(
            "console",
            lambda msg: print(f"[{path}] console {msg.type}: {msg.text}") if msg.type in ("error", "warning") else None,
        )
        if ui == "notebook7":
            await page.goto(f"{self.base}/notebooks/{path}?token={self.token}")
        else:
            workspace = "ws" + secrets.token_hex(4)  # one workspace per page, or pages fight over "default"
            await page.goto(f"{self.base}/lab/workspaces/{workspace}/tree/{path}?token={self.token}")
        await page.wait_for_function(_READY, arg=path, timeout=60_000)
        nb = Notebook(page, context, path)
        self.open_notebooks.append(nb)
        if run_all:
            await nb.run_all(users)
        return nb

    async def close_all(self) -> None:
        for nb in self.open_notebooks:
            with contextlib.suppress(Exception):  # already closed by the test
                await nb.close()
