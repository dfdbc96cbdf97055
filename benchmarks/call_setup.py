"""Call set-up time in headless Chromium on loopback (issue #3).

From placing a call to the first remote video frame decoded, in several settings, in one run,
with one browser (Debian's /usr/bin/chromium, fake camera) and real signaling servers:

  plain   the built bundle (nbcall/static/widget.js) in a plain page (call_harness.html): two
          widgets (alice, bob) with a minimal anywidget model, a real nbcall server; the call
          is the custom message CallWidget.call() sends, bob accepts with the "accept" message
          as soon as his phone rings.  t0 = dispatching {"kind": "call"} in the page.
  lab     a real JupyterLab, one notebook with two CallWidgets, bob.on_incoming(accept);
          t0 = time.time() in the kernel right before alice.call(bob).
  lab-direct, lab-preview   the same with connect_via="direct", and with both cameras kept
          open between calls (the page's Phone.setPreview: the opt-in preview).
  seed    the seed's own client (tests/e2e/seed_page.html) through the seed's node server:
          t0 = its user's click on the caller page's call button; the seed's callee answers
          without media, so only the callee receives video: its first frame ends the measurement.
  floor   two RTCPeerConnections in one page, getUserMedia + offer/answer by function call.

First frame: requestVideoFrameCallback on a probe <video> (muted, on screen) that plays the
remote stream (primary), and the first getStats() inbound-rtp video framesDecoded > 0,
polled every --poll-ms (secondary).  Both sides of nbcall calls are measured.  Also: Run All
to both widgets rendered and registered in JupyterLab (--opens notebooks), and the bundle size.

    .venv/bin/python -m benchmarks.call_setup --json benchmarks/results/call_setup.json

The phase table (p50 ms after t0 of each phase: call() reaching the page, invite, accept, the
cameras, offer, answer, connected, first frame) comes from the probe's marks, which include every
signaling message's first send and arrival per side (the page's WebSocket, wrapped).

This module starts everything and runs the rounds; the parts are its sibling modules:
_setup_probes (the JavaScript injected into the pages), _setup_settings (plain, plain2p, seed,
floor), _setup_lab (lab, lab-direct, Run All), _setup_measure (CPU load, bundle size, times)
and _setup_report (the tables).  JupyterLab, Chromium and the sandbox are the test suite's
(nbcall._testing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

from nbcall._testing import chromium
from nbcall._testing.jupyter import JupyterLab
from nbcall._testing.processes import HOST, free_port
from nbcall._testing.sandbox import sandbox_env

from ._setup_lab import LabSetting, TwoNotebookLabSetting, run_all_opens
from ._setup_measure import BUNDLE, CSS, bundle_size, loadavg, log
from ._setup_report import SETTINGS, brief, cpu_table, phase_table, summarise, summary
from ._setup_settings import FloorSetting, PlainSetting, SeedSetting, Setting, TwoPageSetting
from ._static import serve_files
from .wsbench import ROOT, ServerProcess, code_version, server_command

HERE = Path(__file__).resolve().parent
SEED_PAGE = ROOT / "tests" / "e2e" / "seed_page.html"


# -- static pages -----------------------------------------------------------------------


def serve_pages() -> tuple[ThreadingHTTPServer, str]:
    """A static server on 127.0.0.1 for the harness, the built bundle and the seed's page."""
    files = {
        "/call_harness.html": HERE / "call_harness.html",
        "/widget.js": BUNDLE,
        "/widget.css": CSS,
        "/seed_page.html": SEED_PAGE,
        "/fake_model.js": ROOT / "js" / "test" / "fakes" / "model.js",
    }

    return serve_files(files)


# -- one run -------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "code": code_version(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_start": loadavg()},
        "args": vars(args),
        "bundle": bundle_size(),
        "calls": {s: [] for s in args.settings},
    }
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    sandbox = Path(args.workdir) if args.workdir else tmp / f"call-setup-{os.getpid()}"
    sandbox.mkdir(parents=True, exist_ok=True)
    env = sandbox_env(sandbox)
    chromium_version = subprocess.run([chromium.CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    result["machine"]["chromium"] = chromium_version
    nb_port, seed_port = free_port(), free_port()
    nb_server = ServerProcess(
        "nbcall", [*server_command("nbcall", nb_port), "--log-level", "WARNING"], None, sandbox / "nbcall.log", nb_port
    )
    seed_server = ServerProcess("seed", server_command("seed", seed_port), None, sandbox / "seed.log", seed_port)
    httpd, pages = serve_pages()
    wants_lab = any(x.startswith("lab") for x in args.settings) or args.opens
    lab_server = JupyterLab(sandbox / "notebooks", env, sandbox / "lab.log") if wants_lab else None
    settings: list[Setting] = []
    try:
        nb_server.wait_ready()
        seed_server.wait_ready()
        if lab_server:
            lab_server.wait_ready()
        nb_url, seed_url = f"ws://{HOST}:{nb_port}", f"ws://{HOST}:{seed_port}"
        async with async_playwright() as pw:
            browser = await chromium.launch(pw, env, cameras=1)  # Chromium's default single fake camera
            try:
                if args.opens and lab_server:
                    result["run_all"] = await run_all_opens(browser, lab_server, nb_url, args.opens)
                for name in args.settings:
                    if name == "plain":
                        settings.append(PlainSetting(browser, pages, nb_url, args))
                    elif name == "seed":
                        settings.append(SeedSetting(browser, pages, seed_url, args))
                    elif name == "floor":
                        settings.append(FloorSetting(browser, pages, args))
                    elif name == "plain2p":
                        settings.append(TwoPageSetting(browser, pages, nb_url, args))
                    elif name == "lab" and lab_server:
                        settings.append(LabSetting(browser, lab_server, nb_url, args))
                    elif name == "lab-direct" and lab_server:
                        settings.append(LabSetting(browser, lab_server, nb_url, args, connect_via="direct"))
                    elif name == "lab-preview" and lab_server:
                        settings.append(LabSetting(browser, lab_server, nb_url, args, preview=True))
                    elif name == "lab-auto" and lab_server:
                        settings.append(LabSetting(browser, lab_server, nb_url, args, auto_answer=True))
                    elif name in ("lab2p", "lab2p-auto") and lab_server:
                        auto = name == "lab2p-auto"
                        settings.append(TwoNotebookLabSetting(browser, lab_server, nb_url, args, auto_answer=auto))
                    elif name == "lab-auto-preview" and lab_server:
                        settings.append(LabSetting(browser, lab_server, nb_url, args, preview=True, auto_answer=True))
                for s in settings:
                    log(f"setting up {s.name}")
                    await s.setup()
                    for i in range(args.warmup):
                        r = await s.one_call()
                        log(f"{s.name} warm-up {i + 1}: {brief(r)}")
                for rnd in range(args.rounds):
                    for s in settings if rnd % 2 == 0 else list(reversed(settings)):
                        for i in range(args.calls):
                            r = await s.one_call()
                            r["round"] = rnd
                            result["calls"][s.name].append(r)
                            log(f"{s.name} r{rnd} #{i + 1}: {brief(r)}")
                            await asyncio.sleep(args.pause)
                for s in settings:
                    if isinstance(s, PlainSetting):
                        result["plain_page"] = s.load
                    if isinstance(s, LabSetting):
                        result.setdefault("lab_clock", {})[s.name] = s.clock
                        result.setdefault("lab_transport", {})[s.name] = s.transport
                        clock = [c["offset_ms"] for cs in result["lab_clock"].values() for c in cs]
                        result["lab_clock_summary"] = summary(clock)
            finally:
                for s in settings:
                    with contextlib.suppress(Exception):
                        await s.teardown()
                await browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
        nb_server.stop()
        seed_server.stop()
        if lab_server:
            lab_server.stop()
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["machine"]["loadavg_end"] = loadavg()
    return result


# -- main ----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated: " + ",".join(SETTINGS))
    ap.add_argument("--calls", type=int, default=12, help="measured calls per setting per round")
    ap.add_argument("--rounds", type=int, default=2, help="rounds over the settings (order alternates)")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured calls per setting before the rounds")
    ap.add_argument("--opens", type=int, default=5, help="notebooks opened for Run All → rendered (0: skip)")
    ap.add_argument("--poll-ms", type=float, default=10, help="getStats polling interval of the secondary probe")
    ap.add_argument("--timeout", type=float, default=15, help="seconds to wait for a first frame")
    ap.add_argument("--pause", type=float, default=0.3, help="seconds idle between calls")
    ap.add_argument("--workdir", default="", help="sandbox for Lab/Chromium files (default: a new /tmp folder)")
    ap.add_argument("--json", default="", help="write the raw results here")
    ap.add_argument(
        "--summarise", nargs="+", default=[], help="print the tables of saved JSON runs (several: pooled) and exit"
    )
    args = ap.parse_args()
    if args.summarise:
        runs = [json.loads(Path(p).read_text()) for p in args.summarise]
        result = runs[0]
        if len(runs) > 1:
            result = {
                "calls": {k: [c for r in runs for c in r["calls"].get(k, [])] for k in SETTINGS},
                "run_all": [x for r in runs for x in r.get("run_all", [])],
                "bundle": runs[-1]["bundle"],
            }
            print(f"pooled over {len(runs)} runs: {', '.join(args.summarise)}\n")
    else:
        args.settings = [s for s in args.settings.split(",") if s]
        result = asyncio.run(run(args))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=1))
            log(f"wrote {args.json}")
    print(summarise(result))
    print()
    print(phase_table(result))
    if cpu := cpu_table(result):
        print()
        print(cpu)
    if result.get("run_all"):
        ra = result["run_all"]
        print()
        print("Run All → rendered ms:", summary([r["rendered"] for r in ra if r["rendered"] is not None]))
        print("Run All → registered ms:", summary([r["registered"] for r in ra if r["registered"] is not None]))
    if result.get("lab_clock_summary"):
        print("Lab page clock minus kernel clock ms:", result["lab_clock_summary"])
    b = result["bundle"]
    print("bundle:", {k: (v["bytes"], v["gzip6_bytes"]) for k, v in b.items()})


if __name__ == "__main__":
    main()
