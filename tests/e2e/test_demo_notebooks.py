"""The demo notebooks in notebooks/ work as a newcomer runs them, in Lab: Run All, and one cell at a time."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from nbcall._testing.lab import Lab, Notebook

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

_RUN_CELL = """
async (index) => {
  const app = window.jupyterapp;
  const panel = window.__panel;
  app.shell.activateById(panel.id);
  panel.content.activeCellIndex = index;
  await app.commands.execute('notebook:run-cell');
  const cell = panel.content.widgets[index];
  return cell.model.type === 'code' ? JSON.stringify(cell.model.sharedModel.outputs) : '[]';
}
"""


def copy_demo(lab: Lab, name: str, tag: str = "") -> str:
    """Copy a demo into Lab's folder, pointed at the test's server instead of port 9900.

    ``tag`` makes the copy's path new: Lab reuses the kernel of a path opened before, and
    that kernel's widgets would come back to life in the new page.
    """
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    port = urlparse(lab.signaling_url).port
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "9900" not in cell.source
            cell.source = cell.source.replace("nbcall.serve()", f"nbcall.serve(port={port})")
    nbformat.write(nb, lab.root / f"demo_{tag}{name}")
    return f"demo_{tag}{name}"


async def run_cell(nb: Notebook, index: int) -> str:
    """Run one cell like Shift+Enter; let the browser report back as a user's pause would."""
    outputs = str(await nb.page.evaluate(_RUN_CELL, index))
    assert '"output_type": "error"' not in outputs and '"output_type":"error"' not in outputs, outputs
    # Wait until no widget is still registering: the next cell needs the browser's report.
    await nb.wait_js(
        "() => Object.values((window.__nbcall || {}).phones || {}).every((p) => p.state !== 'registering')"
    )
    await nb.py("pass")  # a round trip through the kernel: pending comm messages are handled
    return outputs


_RUN_ALL = """
async () => {
  const app = window.jupyterapp;
  const panel = window.__panel;
  app.shell.activateById(panel.id);
  await app.commands.execute('notebook:run-all-cells');  // resolves once every cell has run
  return panel.content.widgets
    .filter((cell) => cell.model.type === 'code')
    .map((cell) => JSON.stringify(cell.model.sharedModel.outputs));
}
"""


async def run_all(nb: Notebook) -> list[str]:
    """Run ▸ Run All Cells, as a newcomer does first; no cell may end in an error."""
    outputs = [str(o) for o in await nb.page.evaluate(_RUN_ALL)]
    for out in outputs:
        assert '"output_type": "error"' not in out and '"output_type":"error"' not in out, out
    return outputs


async def run_all_until_connected(lab: Lab, name: str, caller: str, callee: str) -> Notebook:
    """A fresh copy of demo ``name``, Run All, until ``caller`` and ``callee`` (two Python names) are connected."""
    nb = await lab.open(copy_demo(lab, name, tag="run_all_"), users=[], run_all=False)
    try:
        await run_all(nb)
        await nb.wait_py(f"{caller}.state, {callee}.state", "('connected', 'connected')")
    except BaseException:
        await nb.close()
        raise
    return nb


async def assert_no_failures(nb: Notebook, *widgets: str) -> None:
    """Nothing waits, nothing failed, nothing the page sent was refused."""
    for w in widgets:
        await nb.wait_py(f"{w}.waiting", "[]")
        got = (await nb.py(f"print(repr({w}.error), {w}._page_problem_count)")).strip()
        assert got == "'' 0", f"{w}: {got}"


async def hang_up(nb: Notebook, caller: str, callee: str) -> None:
    """End the call before the page closes: a page that vanishes mid-call keeps its name for the grace."""
    await nb.py(f"{caller}.hangup()")
    await nb.wait_py(f"{caller}.state, {callee}.state", "('ended', 'ended')")


def code_cells(nb: Notebook, path: Path) -> list[tuple[int, str]]:
    cells = nbformat.read(path, as_version=4).cells
    return [(i, c.source) for i, c in enumerate(cells) if c.cell_type == "code"]


async def test_first_call_notebook(lab: Lab) -> None:
    path = copy_demo(lab, "first_call.ipynb")
    nb = await lab.open(path, users=[], run_all=False)
    try:
        for index, source in code_cells(nb, lab.root / path):
            if source.startswith('print("alice sees"'):
                # Presence is batched (250 ms): a person reading the markdown is slower than that.
                await nb.wait_py("alice.peers, bob.peers", "(['bob'], ['alice'])")
            out = await run_cell(nb, index)
            if source.startswith("bob.accept()"):
                await nb.wait_py("alice.state, bob.state", "('connected', 'connected')")
                await nb.assert_video_flows("alice")
                await nb.assert_video_flows("bob")
            if source.startswith('print("alice sees"'):
                assert "['bob']" in out and "['alice']" in out, out
        await nb.py("alice.hangup()")  # what the notebook's last section says to do
        await nb.wait_py("alice.end_reason, bob.end_reason", "('hangup', 'hangup')")
    finally:
        await nb.close()


async def test_first_call_notebook_run_all(lab: Lab) -> None:
    """Run All: the call waits for the pages, rings, bob's queued accept answers, video flows both ways."""
    nb = await run_all_until_connected(lab, "first_call.ipynb", "alice", "bob")
    try:
        await nb.assert_video_flows("alice")
        await nb.assert_video_flows("bob")
        await assert_no_failures(nb, "alice", "bob")
        await hang_up(nb, "alice", "bob")
    finally:
        await nb.close()


async def test_two_kernel_notebooks(lab: Lab) -> None:
    a_path, b_path = copy_demo(lab, "two_kernels_alice.ipynb"), copy_demo(lab, "two_kernels_bob.ipynb")
    alice = await lab.open(a_path, users=[], run_all=False)
    bob = await lab.open(b_path, users=[], run_all=False)
    try:
        a_cells, b_cells = code_cells(alice, lab.root / a_path), code_cells(bob, lab.root / b_path)
        # alice: server + widget; bob: server (reused, not owned) + widget
        for index, _ in a_cells[:2]:
            await run_cell(alice, index)
        for index, _ in b_cells[:2]:
            await run_cell(bob, index)
        assert (await bob.py("print(server.owned)")).strip() == "False"
        await alice.wait_py("alice.peers", "['bob']")
        await run_cell(alice, a_cells[2][0])  # alice.peers
        t0 = time.monotonic()
        await run_cell(alice, a_cells[3][0])  # alice.call("bob")
        await bob.wait_py("bob.state", "ringing")
        await run_cell(bob, b_cells[2][0])  # bob.accept()
        await alice.wait_py("alice.state", "connected")
        await bob.wait_py("bob.state", "connected")
        print(f"two-kernel demo: call -> connected {time.monotonic() - t0:.2f} s")
        await bob.assert_video_flows("bob")
        for index, _ in a_cells[4:]:  # state
            await run_cell(alice, index)
        await alice.py("alice.hangup()")
        await bob.wait_py("bob.state, bob.end_reason", "('ended', 'hangup')")
        info = json.loads((await alice.py("import json; print(json.dumps(alice.stats))")).strip())
        assert info.get("setup_ms", 0) > 0, info
    finally:
        await alice.close()
        await bob.close()


async def test_first_call_notebook_by_clicking(lab: Lab) -> None:
    """The demo as a person uses it: run the cells that show the widgets (twice, as people
    do), then only click: Call next to bob, Answer, Hang up."""
    path = copy_demo(lab, "first_call.ipynb")
    nb = await lab.open(path, users=[], run_all=False)
    try:
        setup = []
        for index, source in code_cells(nb, lab.root / path):
            if source.startswith("print("):
                break  # from here on the notebook drives the call from Python; we click instead
            setup.append(index)
        for index in setup + setup[1:]:  # the widget cells run again replace the first widgets
            await run_cell(nb, index)
        assert (await nb.py("print(alice._replaces, bob._replaces)")).strip() == "True True"
        await nb.wait_py("alice.state, bob.state, alice.peers, bob.peers", "('idle', 'idle', ['bob'], ['alice'])")
        await nb.click("alice", '.nbcall-peer[data-user="bob"] .nbcall-call')
        ringing = nb.page.locator('.nbcall-root[data-user="bob"] .nbcall-incoming')
        await ringing.wait_for(state="visible")
        assert "alice" in await ringing.inner_text()
        await nb.click("bob", ".nbcall-answer")
        await nb.wait_py("alice.state, bob.state", "('connected', 'connected')")
        await nb.assert_video_flows("alice")
        await nb.assert_video_flows("bob")
        await nb.click("bob", ".nbcall-hangup")
        await nb.wait_py("alice.end_reason, bob.end_reason", "('hangup', 'hangup')")
    finally:
        await nb.close()


async def test_two_kernel_notebooks_run_all(lab: Lab) -> None:
    """Run All in alice's notebook, then in bob's: alice's call waits for bob, bob's accept for the ring."""
    a_path = copy_demo(lab, "two_kernels_alice.ipynb", tag="run_all_")
    b_path = copy_demo(lab, "two_kernels_bob.ipynb", tag="run_all_")
    alice = await lab.open(a_path, users=[], run_all=False)
    bob = await lab.open(b_path, users=[], run_all=False)
    try:
        await run_all(alice)
        await alice.wait_py("alice.state, alice.waiting", "('idle', ['call bob'])")
        await run_all(bob)
        await alice.wait_py("alice.state", "connected")
        await bob.wait_py("bob.state", "connected")
        await alice.assert_video_flows("alice")
        await bob.assert_video_flows("bob")
        await assert_no_failures(alice, "alice")
        await assert_no_failures(bob, "bob")
        await alice.py("alice.hangup()")
        await bob.wait_py("bob.state", "ended")
    finally:
        await alice.close()
        await bob.close()


GROUP = ("ann", "ben", "cat", "dan", "eve")


@pytest.mark.janus  # the notebook starts its own Janus for the fifth member
async def test_group_call_notebook(lab: Lab) -> None:
    """Three widgets join a mesh, then two more move the room to the notebook's own Janus."""
    from .test_rooms_lab import assert_tiles_flow

    path = copy_demo(lab, "group_call.ipynb")
    nb = await lab.open(path, users=[], run_all=False)
    try:
        for index, source in code_cells(nb, lab.root / path):
            if source.startswith("ann.topology"):  # a person reads for longer than the links take
                await nb.wait_py("all(p['state'] == 'connected' for p in ann.participants)", "True", timeout=30)
            if source.startswith("[m["):
                await nb.wait_py("bool(snap.ready)", "True")
            out = await run_cell(nb, index)
            if source.startswith("ann.topology") and "sfu" not in out:
                arrivals = out.replace("'ben', 'cat'", "'cat', 'ben'")  # in either order
                assert "'mesh'" in out and "('ben', 'connected')" in out and "'cat', 'ben'" in arrivals, out
            if source.startswith("import nbcall"):
                assert "SfuConfig(" in out, out  # the notebook's own Janus started
            if source.startswith("for w in (ann, ben, cat)"):
                await nb.wait_py("[len(w.participants) for w in (ann, ben, cat)]", "[2, 2, 2]", timeout=30)
                await assert_tiles_flow(nb, "ann", ["ben", "cat"])
            if source.startswith("dan.join"):
                await nb.wait_py("[w.topology for w in (ann, ben, cat, dan, eve)]", str(["sfu"] * 5), timeout=40)
                await nb.wait_py(
                    "[sorted(p['state'] for p in w.participants) for w in (ann, ben, cat, dan, eve)]",
                    str([["connected"] * 4] * 5),
                    timeout=40,
                )
                await assert_tiles_flow(nb, "eve", ["ann", "ben", "cat", "dan"], timeout=30, mesh=False)
        assert "hello everyone" in await nb.py("print([m['text'] for m in ben.messages])")
        await assert_no_failures(nb, *GROUP)
        await nb.py("for w in (ann, ben, cat, dan, eve):\n    w.leave()")  # what the last section says
        await nb.wait_py("[w.room for w in (ann, ben, cat, dan, eve)]", str([""] * 5))
    finally:
        await nb.close()


@pytest.mark.janus
async def test_group_call_notebook_run_all(lab: Lab) -> None:
    """Run All: every join waits for its page; the room ends up on the SFU with all five in it."""
    nb = await lab.open(copy_demo(lab, "group_call.ipynb", tag="run_all_"), users=[], run_all=False)
    try:
        await run_all(nb)
        await nb.wait_py("[w.topology for w in (ann, ben, cat, dan, eve)]", str(["sfu"] * 5), timeout=60)
        await nb.wait_py(
            "[sorted(p['state'] for p in w.participants) for w in (ann, ben, cat, dan, eve)]",
            str([["connected"] * 4] * 5),
            timeout=40,
        )
        await assert_no_failures(nb, *GROUP)
        await nb.py("for w in (ann, ben, cat, dan, eve):\n    w.leave()")
        await nb.wait_py("[w.room for w in (ann, ben, cat, dan, eve)]", str([""] * 5))
    finally:
        await nb.close()
