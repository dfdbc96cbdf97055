"""The call set-up benchmark in a real JupyterLab: calls placed from Python, and Run All timings."""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import time
from typing import Any

from playwright.async_api import Browser

from nbcall._testing.jupyter import JupyterLab
from nbcall._testing.lab import Lab, Notebook, write_notebook

from ._setup_measure import Load, log, nbcall_result, two_page_result
from ._setup_probes import ARM_NBCALL_JS, ARM_SIDE_JS, IDLE_BOTH, PROBE_JS, RESULT_JS, RUN_ALL_JS, SIDE_RESULT_JS
from ._setup_settings import Setting, wait_for


async def call_from_kernel(nb: Notebook, callee: str) -> float:
    """Run ``alice.call(callee)`` in ``nb``'s kernel; t0, the kernel's time.time() just before, in epoch ms."""
    printed = await nb.py(f"_t0 = time.time()\nalice.call({callee!r})\nprint(repr(_t0))")
    try:
        return float(printed.strip()) * 1000
    except ValueError:
        raise RuntimeError(f"alice.call: {printed}") from None


class LabSetting(Setting):
    """A real JupyterLab: one notebook, two CallWidgets, calls placed from Python.

    ``connect_via="direct"``: the pages reach the nbcall server directly (lab-direct);
    ``preview=True``: both widgets keep their camera open between calls (lab-preview);
    ``auto_answer=True``: bob's page answers as the call rings, with no on_incoming (lab-auto).
    """

    name = "lab"

    def __init__(
        self,
        browser: Browser,
        server: JupyterLab,
        signaling_url: str,
        args: argparse.Namespace,
        connect_via: str = "",
        preview: bool = False,
        auto_answer: bool = False,
    ) -> None:
        self.browser, self.server, self.args = browser, server, args
        self.connect_via = connect_via
        self.preview = preview
        self.auto_answer = auto_answer
        if connect_via:
            self.name = f"lab-{connect_via}"
        if preview:
            self.name = "lab-preview"
        if auto_answer:
            self.name = "lab-auto-preview" if preview else "lab-auto"
        self.lab = Lab(browser, server.base, server.token, server.root, signaling_url)
        tag = secrets.token_hex(3)
        self.alice, self.bob = f"alice-l{tag}", f"bob-l{tag}"
        self.nb: Notebook | None = None
        self.clock: list[dict[str, float]] = []
        self.transport = ""

    async def setup(self) -> None:
        path = f"calls-{secrets.token_hex(3)}.ipynb"
        extra = f", connect_via={self.connect_via!r}" if self.connect_via else ""
        write_notebook(
            self.server.root / path,
            [
                "import time\nimport nbcall\nSERVER = " + json.dumps(self.lab.signaling_url),
                f"alice = nbcall.CallWidget({self.alice!r}, server=SERVER{extra})\nalice",
                f"bob = nbcall.CallWidget({self.bob!r}, server=SERVER{extra})\nbob",
                "bob.auto_answer = True" if self.auto_answer else "bob.on_incoming(lambda caller: bob.accept())",
            ],
        )
        context = await self.browser.new_context(viewport={"width": 1200, "height": 1400})
        await context.add_init_script(PROBE_JS)
        self.nb = nb = await self.lab.open(path, users=[self.alice, self.bob], context=context)
        await nb.wait_py(f"{self.bob!r} in alice.peers and {self.alice!r} in bob.peers", "True", timeout=20)
        self.transport = await nb.page.evaluate("(a) => window.__nbcall.phones[a].transport", self.alice)
        if self.preview:
            # Both cameras kept open between calls (the widgets' `preview` trait; opt-in, off by default).
            await nb.py("alice.preview = bob.preview = True")
            await wait_for(
                nb.page, "(users) => users.every((u) => window.__nbcall.phones[u].localStream)", [self.alice, self.bob]
            )
        # Mark when the widget's custom comm messages reach Lab's kernel connection (before the
        # widget manager hands them to the model), to split kernel -> page latency in two.
        await nb.page.evaluate(
            """() => window.__panel.sessionContext.session.kernel.anyMessage.connect((_, args) => {
                 const m = args.msg;
                 if (m.header.msg_type !== 'comm_msg') return;
                 const data = m.content && m.content.data;
                 if (args.direction === 'recv' && data && data.method === 'custom' && data.content)
                   window.__probe.mark(`kmsg:${data.content.kind}`);
                 else if (args.direction === 'send' && data && data.method === 'update' && data.state
                          && data.state.state) window.__probe.mark(`ksend:${data.state.state}`);
               })"""
        )

    async def clock_offset(self) -> dict[str, float]:
        """Page epoch clock minus the kernel's time.time(), bracketed by two kernel readings."""
        assert self.nb is not None
        out = await self.nb.page.evaluate(
            """async () => {
              const kernel = window.__panel.sessionContext.session.kernel;
              const read = async () => { let o = ''; const f = kernel.requestExecute(
                { code: 'print(repr(time.time()))', store_history: false });
                f.onIOPub = (m) => { if (m.header.msg_type === 'stream') o += m.content.text; }; await f.done;
                return parseFloat(o) * 1000; };
              const k1 = await read(); const page = window.__probe.epoch(); const k2 = await read();
              return { k1, page, k2 };
            }"""
        )
        return {
            "offset_ms": round(out["page"] - (out["k1"] + out["k2"]) / 2, 1),
            "bracket_ms": round(out["k2"] - out["k1"], 1),
        }

    async def one_call(self) -> dict[str, Any]:
        nb = self.nb
        assert nb is not None
        args = self.args
        self.clock.append(await self.clock_offset())
        await nb.page.evaluate(f"({ARM_NBCALL_JS})", [self.alice, self.bob, args.poll_ms, args.timeout * 1000])
        load = Load()
        t0 = await call_from_kernel(nb, self.bob)
        res = await nb.page.evaluate(RESULT_JS)
        busy = load.done()
        out = nbcall_result(res, t0, busy)
        await nb.py("alice.hangup()")
        await wait_for(nb.page, IDLE_BOTH, [self.alice, self.bob])
        await nb.wait_py("alice.state + ',' + bob.state", "ended,ended", timeout=20)
        return out

    async def teardown(self) -> None:
        if self.nb:
            with contextlib.suppress(Exception):
                await self.nb.py("alice.close(); bob.close()")
                await self.nb.page.evaluate("() => window.__panel.sessionContext.shutdown()")
        await self.lab.close_all()


class TwoNotebookLabSetting(Setting):
    """JupyterLab, two notebooks in two browser contexts (two kernels, like two users' machines,
    as the seed's two pages): alice's kernel calls, bob's answers from Python (``on_incoming``)
    or, with ``auto_answer``, bob's page answers as it rings.  t0: ``time.time()`` in alice's
    kernel right before ``alice.call(bob)``."""

    def __init__(
        self, browser: Browser, server: JupyterLab, signaling_url: str, args: argparse.Namespace,
        auto_answer: bool = False,
    ) -> None:  # fmt: skip
        self.browser, self.server, self.args, self.auto_answer = browser, server, args, auto_answer
        self.name = "lab2p-auto" if auto_answer else "lab2p"
        self.lab = Lab(browser, server.base, server.token, server.root, signaling_url)
        tag = secrets.token_hex(3)
        self.alice, self.bob = f"alice-m{tag}", f"bob-m{tag}"
        self.pages: dict[str, Notebook] = {}

    async def setup(self) -> None:
        answer = "bob.auto_answer = True" if self.auto_answer else "bob.on_incoming(lambda caller: bob.accept())"
        for var, user, extra in (("alice", self.alice, "import time"), ("bob", self.bob, answer)):
            path = f"{var}-{secrets.token_hex(3)}.ipynb"
            write_notebook(
                self.server.root / path,
                [
                    "import nbcall\nSERVER = " + json.dumps(self.lab.signaling_url),
                    f"{var} = nbcall.CallWidget({user!r}, server=SERVER)\n{var}",
                    extra,
                ],
            )
            context = await self.browser.new_context(viewport={"width": 1200, "height": 1000})
            await context.add_init_script(PROBE_JS)
            self.pages[var] = await self.lab.open(path, users=[user], context=context)
        await self.pages["alice"].wait_py(f"{self.bob!r} in alice.peers", "True", timeout=20)

    async def one_call(self) -> dict[str, Any]:
        a, b = self.pages["alice"], self.pages["bob"]
        args = self.args
        for nb, prefix, user in ((a, "alice", self.alice), (b, "bob", self.bob)):
            await nb.page.evaluate(ARM_SIDE_JS, [prefix, user, args.poll_ms, args.timeout * 1000])
        load = Load()
        t0 = await call_from_kernel(a, self.bob)
        ra = await a.page.evaluate(SIDE_RESULT_JS)
        rb = await b.page.evaluate(SIDE_RESULT_JS)
        busy = load.done()
        out = two_page_result(ra, rb, t0, busy)
        await a.py("alice.hangup()")
        await a.wait_py("alice.state", "ended", timeout=20)
        await b.wait_py("bob.state", "ended", timeout=20)
        for nb, user in ((a, self.alice), (b, self.bob)):
            await wait_for(nb.page, "(u) => !window.__nbcall.phones[u].pc", user)
        return out

    async def teardown(self) -> None:
        for var, nb in self.pages.items():
            with contextlib.suppress(Exception):
                await nb.py(f"{var}.close()")
                await nb.page.evaluate("() => window.__panel.sessionContext.shutdown()")
        await self.lab.close_all()


async def run_all_opens(browser: Browser, server: JupyterLab, signaling_url: str, opens: int) -> list[dict[str, Any]]:
    """Open a fresh notebook (fresh kernel) ``opens`` times; Run All to both widgets rendered / registered."""
    lab = Lab(browser, server.base, server.token, server.root, signaling_url)
    out = []
    for i in range(opens):
        tag = secrets.token_hex(3)
        users = [f"ra-a{tag}", f"ra-b{tag}"]
        path = f"runall-{tag}.ipynb"
        write_notebook(
            server.root / path,
            ["import nbcall\nSERVER = " + json.dumps(signaling_url)]
            + [f"w{j} = nbcall.CallWidget({u!r}, server=SERVER)\nw{j}" for j, u in enumerate(users)],
        )
        t = time.monotonic()
        nb = await lab.open(path, users=users, run_all=False)
        ready_s = time.monotonic() - t
        load = Load()
        res = await nb.page.evaluate(RUN_ALL_JS, [users, 30_000])
        res.update(load.done())
        res["page_to_kernel_ready_s"] = round(ready_s, 2)
        res = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in res.items()}
        log(f"run all #{i + 1}: {res}")
        out.append(res)
        with contextlib.suppress(Exception):
            await nb.py("w0.close(); w1.close()")
            await nb.page.evaluate("() => window.__panel.sessionContext.shutdown()")
        await nb.close()
    return out
