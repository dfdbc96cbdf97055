"""Call set-up time in headless Chromium on loopback (issue #3).

From placing a call to the first remote video frame decoded, in four settings, in one run,
with one browser (Debian's /usr/bin/chromium, fake camera) and real signaling servers:

  plain   the built bundle (nbcall/static/widget.js) in a plain page (call_harness.html): two
          widgets (alice, bob) with a minimal anywidget model, a real nbcall server; the call
          is the custom message CallWidget.call() sends, bob accepts with the "accept" message
          as soon as his phone rings.  t0 = dispatching {"kind": "call"} in the page.
  lab     a real JupyterLab, one notebook with two CallWidgets, bob.on_incoming(accept);
          t0 = time.time() in the kernel right before alice.call(bob).
  seed    the seed's own client (tests/e2e/seed_page.html) through the seed's node server:
          t0 = openCamera() in the caller's page; the seed's callee answers without media,
          so only the callee receives video: its first frame ends the measurement.
  floor   two RTCPeerConnections in one page, getUserMedia + offer/answer by function call.

First frame: requestVideoFrameCallback on a probe <video> (muted, on screen) that plays the
remote stream (primary), and the first getStats() inbound-rtp video framesDecoded > 0,
polled every --poll-ms (secondary).  Both sides of nbcall calls are measured.  Also: Run All
to both widgets rendered and registered in JupyterLab (--opens notebooks), and the bundle size.

    .venv/bin/python benchmarks/call_setup.py --json benchmarks/results/call_setup.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from playwright.async_api import Browser, BrowserContext, Page, async_playwright  # noqa: E402
from wsbench import (  # noqa: E402
    HOST,
    ServerProcess,
    code_version,
    cpu_busy_share,
    cpu_busy_ticks,
    free_port,
    server_command,
)

from tests.e2e.lab import Lab, Notebook, write_notebook  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# shared/docs/testing.md: what makes real calls work in headless Chromium on loopback.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--allow-loopback-in-peer-connection",
]
BUNDLE = ROOT / "nbcall" / "static" / "widget.js"
CSS = ROOT / "nbcall" / "static" / "widget.css"
SEED_PAGE = ROOT / "tests" / "e2e" / "seed_page.html"
SETTINGS = ("plain", "plain2p", "lab", "lab-direct", "seed", "floor")

# Injected into every measured page before its own scripts: phase marks, a getUserMedia
# timer, and the first-frame probe.  Times are performance.now() of the page; results carry
# performance.timeOrigin so that pages (and the kernel's time.time()) share one clock.
PROBE_JS = r"""
(() => {
  const probe = {
    marks: {},
    origin: performance.timeOrigin,
    mark(name) { if (!(name in this.marks)) this.marks[name] = performance.now(); },
    reset() { this.marks = {}; this.pending = null; },
    epoch() { return performance.timeOrigin + performance.now(); },
    video: null,
    // Resolves with the first decoded frame of the stream getStream() returns (rVFC on a probe
    // <video>) and the first getStats() with inbound video framesDecoded > 0.
    firstFrame(name, getStream, getPc, pollMs, timeoutMs) {
      const out = { rvfc: null, stats: null, track: null, receive: null, presentation: null, timeout: false };
      const start = performance.now();
      let video = null;
      return new Promise((resolve) => {
        let done = false;
        const finish = () => {
          if (!done && out.rvfc !== null && out.stats !== null) { done = true; cleanup(); resolve(out); }
        };
        const cleanup = () => { if (video) { video.srcObject = null; video.remove(); } };
        const tick = async () => {
          if (done) return;
          if (performance.now() - start > timeoutMs) {
            done = true; out.timeout = true; cleanup(); resolve(out); return;
          }
          const stream = getStream();
          if (stream && stream.getVideoTracks().length && !video) {
            out.track = performance.now();
            video = document.createElement('video');
            video.muted = true; video.autoplay = true; video.playsInline = true;
            video.style.cssText = 'position:fixed;left:0;top:0;width:160px;height:120px;z-index:99999';
            document.body.appendChild(video);
            video.requestVideoFrameCallback((now, meta) => {
              out.rvfc = performance.now();
              out.rvfcNow = now;
              out.receive = meta.receiveTime ?? null;
              out.presentation = meta.presentationTime ?? null;
              out.width = meta.width; out.height = meta.height;
              finish();
            });
            video.srcObject = stream;
            video.play().catch(() => {});
          }
          const pc = getPc();
          if (pc && out.stats === null) {
            try {
              const report = await pc.getStats();
              report.forEach((s) => {
                if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0 && out.stats === null) {
                  out.stats = performance.now();
                }
              });
            } catch (e) { /* closing */ }
          }
          finish();
          if (!done) setTimeout(tick, pollMs);
        };
        tick();
      });
    },
    hookPc(prefix, pc) {
      if (!pc || pc.__probed) return;
      pc.__probed = true;
      this.mark(`${prefix}:pc`);
      pc.addEventListener('icecandidate', (e) => e.candidate && this.mark(`${prefix}:first_candidate`));
      pc.addEventListener('track', () => this.mark(`${prefix}:ontrack`));
      pc.addEventListener('iceconnectionstatechange', () => this.mark(`${prefix}:ice_${pc.iceConnectionState}`));
      pc.addEventListener('connectionstatechange', () => this.mark(`${prefix}:pc_${pc.connectionState}`));
    },
    // nbcall: mark every state of a phone, its camera and its peer connection.
    trackPhone(prefix, phone) {
      if (phone.__probed) return;
      phone.__probed = true;
      phone.subscribe(() => {
        this.mark(`${prefix}:${phone.state}`);
        if (phone.localStream) this.mark(`${prefix}:media`);
        if (phone.remoteStream) this.mark(`${prefix}:remote_stream`);
        if (phone.pc) this.hookPc(prefix, phone.pc);
      });
    },
  };
  window.__probe = probe;
  const md = navigator.mediaDevices;
  if (md && md.getUserMedia) {
    const gum = md.getUserMedia.bind(md);
    md.getUserMedia = async (c) => {
      probe.mark('gum_start');
      const s = await gum(c);
      probe.mark('gum_end');
      return s;
    };
  }
})();
"""

# Arm the probes of one nbcall call (both sides), in the page that shows both widgets.
ARM_NBCALL_JS = """
([alice, bob, pollMs, timeoutMs]) => {
  const phones = window.__nbcall.phones;
  const p = window.__probe;
  p.reset();
  p.trackPhone('alice', phones[alice]);
  p.trackPhone('bob', phones[bob]);
  const side = (u) => p.firstFrame(u, () => phones[u] && phones[u].remoteStream, () => phones[u] && phones[u].pc,
                                   pollMs, timeoutMs);
  p.pending = Promise.all([side(alice), side(bob)]).then(([a, b]) => ({ alice: a, bob: b }));
  return p.epoch();
}
"""

RESULT_JS = """
async () => {
  const p = window.__probe;
  const frames = await p.pending;
  return { frames, marks: p.marks, origin: performance.timeOrigin };
}
"""


# -- small helpers --------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Percentile with linear interpolation between order statistics (numpy's default)."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(pct(values, 50), 1),
        "p95": round(pct(values, 95), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "mean": round(statistics.fmean(values), 1),
    }


CLK_TCK = os.sysconf("SC_CLK_TCK")


def own_cpu_ticks() -> int:
    """utime+stime ticks of this process and all its descendants (Chromium, servers, Lab, kernels)."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
    me = os.getpid()
    total = 0
    for pid, t in ticks.items():
        p, hops = pid, 0
        while p > 1 and p != me and hops < 64:
            p, hops = parent.get(p, 0), hops + 1
        if p == me:
            total += t
    return total


class Load:
    """Busy CPUs over an interval: all processes, and those not of this benchmark (foreign)."""

    def __init__(self) -> None:
        self.own = own_cpu_ticks()
        self.t = time.monotonic()
        self.cpus = cpu_busy_ticks()

    def done(self) -> dict[str, float]:
        busy = sum(cpu_busy_share(self.cpus, cpu_busy_ticks()).values())
        own = (own_cpu_ticks() - self.own) / CLK_TCK / max(1e-3, time.monotonic() - self.t)
        return {"busy_cpus": round(busy, 2), "own_cpus": round(own, 2), "foreign_cpus": round(max(0.0, busy - own), 2)}


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def bundle_size() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in (BUNDLE, CSS):
        data = path.read_bytes()
        out[path.name] = {
            "bytes": len(data),
            "gzip6_bytes": len(gzip.compress(data, compresslevel=6, mtime=0)),
            "gzip9_bytes": len(gzip.compress(data, compresslevel=9, mtime=0)),
            "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(path.stat().st_mtime)),
        }
    return out


def log(*args: object) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def rel(marks: dict[str, float], t0: float) -> dict[str, float]:
    return {k: round(v - t0, 1) for k, v in sorted(marks.items(), key=lambda kv: kv[1])}


def frame_times(frames: dict[str, Any], origin: float, t0_epoch: float) -> dict[str, Any]:
    """ms from t0 (epoch ms) to the probe's events of one side (page times + its timeOrigin)."""
    out: dict[str, Any] = {"timeout": frames["timeout"]}
    for k in ("rvfc", "stats", "track", "receive", "presentation"):
        v = frames.get(k)
        out[k] = None if v is None else round(origin + v - t0_epoch, 1)
    out["size"] = f"{frames.get('width')}x{frames.get('height')}"
    return out


# -- static pages -----------------------------------------------------------------------


def serve_pages() -> tuple[ThreadingHTTPServer, str]:
    """A static server on 127.0.0.1 for the harness, the built bundle and the seed's page."""
    files = {
        "/call_harness.html": HERE / "call_harness.html",
        "/widget.js": BUNDLE,
        "/widget.css": CSS,
        "/seed_page.html": SEED_PAGE,
    }

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            path = files.get(self.path.split("?", 1)[0])
            if path is None:
                self.send_error(404)
                return
            data = path.read_bytes()
            kind = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}[path.suffix]
            self.send_response(200)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer((HOST, 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://{HOST}:{httpd.server_address[1]}"


# -- JupyterLab (as tests/e2e/conftest.py starts it) --------------------------------------


def sandbox_env(sandbox: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in (
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "XDG_DATA_HOME",
        "XDG_RUNTIME_DIR",
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
        "IPYTHONDIR",
    ):
        path = sandbox / var.lower()
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        env[var] = str(path)
    env["npm_config_logs_max"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    news = (
        Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    )
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return env


class LabServer:
    def __init__(self, sandbox: Path, env: dict[str, str]) -> None:
        self.root = sandbox / "notebooks"
        self.root.mkdir(exist_ok=True)
        port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://{HOST}:{port}"
        cmd = [
            str(Path(sys.executable).parent / "jupyter-lab"),
            "--no-browser",
            f"--ip={HOST}",
            f"--port={port}",
            "--allow-root",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.port_retries=0",
        ]
        self._log = (sandbox / "lab.log").open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.root)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            req = urllib.request.Request(f"{self.base}/api/shutdown?token={self.token}", method="POST")
            urllib.request.urlopen(req, timeout=5).close()
            self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# -- the settings ----------------------------------------------------------------------------


class Setting:
    name = ""

    async def setup(self) -> None: ...

    async def one_call(self) -> dict[str, Any]:
        raise NotImplementedError

    async def teardown(self) -> None: ...


async def wait_for(page: Page, predicate: str, arg: Any = None, timeout: float = 20.0) -> None:
    await page.wait_for_function(predicate, arg=arg, timeout=timeout * 1000, polling=20)


IDLE_BOTH = """([a, b]) => ['ended', 'idle'].includes(window.__nbcall.phones[a]?.state)
  && ['ended', 'idle'].includes(window.__nbcall.phones[b]?.state)
  && !window.__nbcall.phones[a].pc && !window.__nbcall.phones[b].pc"""


ACCEPT_JS = """(b) => { const phone = window.__nbcall.phones[b];
  phone.subscribe(() => { if (phone.state === 'ringing' && !phone.__accepting) {
    phone.__accepting = true;
    queueMicrotask(() => { window.__probe.mark('accept_sent'); harness.models.bob.custom({ kind: 'accept' }); });
  } else if (phone.state !== 'ringing') phone.__accepting = false; }); }"""

# Arm the probe of one side (the only widget of its page).
ARM_SIDE_JS = """([prefix, user, pollMs, timeoutMs]) => {
  const phones = window.__nbcall.phones;
  const p = window.__probe;
  p.reset();
  p.trackPhone(prefix, phones[user]);
  p.pending = p.firstFrame(user, () => phones[user] && phones[user].remoteStream,
                           () => phones[user] && phones[user].pc, pollMs, timeoutMs);
}"""


class PlainSetting(Setting):
    """The bundle in a plain page, two widgets, one real nbcall server."""

    name = "plain"

    def __init__(self, browser: Browser, pages: str, server_url: str, args: argparse.Namespace) -> None:
        self.browser, self.pages, self.server_url, self.args = browser, pages, server_url, args
        tag = secrets.token_hex(3)
        self.alice, self.bob = f"alice-p{tag}", f"bob-p{tag}"
        self.context: BrowserContext | None = None
        self.page: Page | None = None
        self.load: dict[str, Any] = {}

    async def setup(self) -> None:
        self.context = await self.browser.new_context(viewport={"width": 1000, "height": 1200})
        await self.context.add_init_script(PROBE_JS)
        self.page = page = await self.context.new_page()
        page.on("pageerror", lambda exc: log(f"[plain] page error: {exc}"))
        url = f"{self.pages}/call_harness.html?server={self.server_url}&alice={self.alice}&bob={self.bob}"
        t = time.monotonic()
        await page.goto(url)
        await wait_for(page, "() => window.harness || window.harnessError")
        err = await page.evaluate("() => window.harnessError")
        if err:
            raise RuntimeError(f"harness: {err}")
        await wait_for(
            page,
            "([a, b]) => { const p = window.__nbcall.phones; return p[a]?.state === 'idle' && p[b]?.state === 'idle'"
            " && p[a].peers.has(b) && p[b].peers.has(a); }",
            [self.alice, self.bob],
        )
        self.load = dict(await page.evaluate("() => ({ importMs: harness.importMs, startMs: harness.startMs })"))
        self.load["goto_to_idle_ms"] = round((time.monotonic() - t) * 1000, 1)
        self.load["transport"] = await page.evaluate("(a) => window.__nbcall.phones[a].transport", self.alice)
        # bob answers as soon as his phone rings, with the message CallWidget.accept() sends.
        await page.evaluate(ACCEPT_JS, self.bob)

    async def one_call(self) -> dict[str, Any]:
        page = self.page
        assert page is not None
        args = self.args
        load = Load()
        t0 = await page.evaluate(
            """([a, b, pollMs, timeoutMs]) => {
              (ARM)([a, b, pollMs, timeoutMs]);
              const t0 = window.__probe.epoch();
              window.__probe.mark('t0');
              harness.models.alice.custom({ kind: 'call', to: b });
              return t0;
            }""".replace("ARM", ARM_NBCALL_JS),
            [self.alice, self.bob, args.poll_ms, args.timeout * 1000],
        )
        res = await page.evaluate(RESULT_JS)
        busy = load.done()
        out = nbcall_result(res, t0, busy)
        await page.evaluate("() => harness.models.alice.custom({ kind: 'hangup' })")
        await wait_for(page, IDLE_BOTH, [self.alice, self.bob])
        return out

    async def teardown(self) -> None:
        if self.context:
            await self.context.close()


class TwoPageSetting(Setting):
    """The bundle in two plain pages (two browser contexts, one widget each), like the seed's two pages."""

    name = "plain2p"

    def __init__(self, browser: Browser, pages: str, server_url: str, args: argparse.Namespace) -> None:
        self.browser, self.pages, self.server_url, self.args = browser, pages, server_url, args
        tag = secrets.token_hex(3)
        self.alice, self.bob = f"alice-q{tag}", f"bob-q{tag}"
        self.contexts: list[BrowserContext] = []
        self.pa: Page | None = None
        self.pb: Page | None = None

    async def setup(self) -> None:
        pages = []
        for role, user in (("alice", self.alice), ("bob", self.bob)):
            ctx = await self.browser.new_context(viewport={"width": 1000, "height": 1000})
            await ctx.add_init_script(PROBE_JS)
            self.contexts.append(ctx)
            page = await ctx.new_page()
            await page.goto(f"{self.pages}/call_harness.html?server={self.server_url}&{role}={user}")
            pages.append(page)
        self.pa, self.pb = pages
        for page, me, other in ((self.pa, self.alice, self.bob), (self.pb, self.bob, self.alice)):
            await wait_for(
                page,
                "([a, b]) => { const p = window.__nbcall?.phones;"
                " return p?.[a]?.state === 'idle' && p[a].peers.has(b); }",
                [me, other],
            )
        await self.pb.evaluate(ACCEPT_JS, self.bob)

    async def one_call(self) -> dict[str, Any]:
        pa, pb = self.pa, self.pb
        assert pa is not None and pb is not None
        a = self.args
        await pb.evaluate(ARM_SIDE_JS, ["bob", self.bob, a.poll_ms, a.timeout * 1000])
        load = Load()
        t0 = await pa.evaluate(
            """([a, b, pollMs, timeoutMs]) => {
              (ARM)(['alice', a, pollMs, timeoutMs]);
              const t0 = window.__probe.epoch();
              window.__probe.mark('t0');
              harness.models.alice.custom({ kind: 'call', to: b });
              return t0;
            }""".replace("ARM", ARM_SIDE_JS),
            [self.alice, self.bob, a.poll_ms, a.timeout * 1000],
        )
        side = "async () => ({ frames: await __probe.pending, marks: __probe.marks, origin: performance.timeOrigin })"
        ra = await pa.evaluate(side)
        rb = await pb.evaluate(side)
        busy = load.done()
        marks = {}
        for r, who in ((ra, "alice"), (rb, "bob")):
            for k, v in r["marks"].items():
                marks[k if ":" in k else f"{who}:{k}"] = round(r["origin"] + v - t0, 1)
        out = {
            "caller": frame_times(ra["frames"], ra["origin"], t0),
            "callee": frame_times(rb["frames"], rb["origin"], t0),
            "marks": dict(sorted(marks.items(), key=lambda kv: kv[1])),
            **busy,
            "loadavg": loadavg(),
        }
        await pa.evaluate("() => harness.models.alice.custom({ kind: 'hangup' })")
        for page, user in ((pa, self.alice), (pb, self.bob)):
            await wait_for(
                page,
                "(u) => ['ended', 'idle'].includes(window.__nbcall.phones[u].state) && !window.__nbcall.phones[u].pc",
                user,
            )
        return out

    async def teardown(self) -> None:
        for ctx in self.contexts:
            await ctx.close()


def nbcall_result(res: dict[str, Any], t0_epoch: float, busy: dict[str, float]) -> dict[str, Any]:
    origin = res["origin"]
    t0_page = t0_epoch - origin
    return {
        "caller": frame_times(res["frames"]["alice"], origin, t0_epoch),
        "callee": frame_times(res["frames"]["bob"], origin, t0_epoch),
        "marks": rel(res["marks"], t0_page),
        **busy,
        "loadavg": loadavg(),
    }


class SeedSetting(Setting):
    """The seed's client page calling the seed's client page through the seed's node server."""

    name = "seed"

    def __init__(self, browser: Browser, pages: str, seed_url: str, args: argparse.Namespace) -> None:
        self.browser, self.pages, self.seed_url, self.args = browser, pages, seed_url, args
        self.contexts: list[BrowserContext] = []
        self.n = 0
        self.tag = secrets.token_hex(3)

    async def setup(self) -> None:
        for _ in range(2):
            ctx = await self.browser.new_context(viewport={"width": 800, "height": 600})
            await ctx.add_init_script(PROBE_JS)
            self.contexts.append(ctx)

    async def one_call(self) -> dict[str, Any]:
        # The seed's page has one RTCPeerConnection for its lifetime and no hang-up: two fresh
        # pages (fresh names) per call.
        self.n += 1
        a_name, b_name = f"seedA{self.tag}{self.n}", f"seedB{self.tag}{self.n}"
        callee = await self.contexts[1].new_page()
        caller = await self.contexts[0].new_page()
        try:
            await callee.goto(f"{self.pages}/seed_page.html?ws={self.seed_url}&me={b_name}&peer={a_name}")
            await caller.goto(f"{self.pages}/seed_page.html?ws={self.seed_url}&me={a_name}&peer={b_name}")
            for page in (callee, caller):
                await wait_for(page, "() => ws.readyState === 1")
            await asyncio.sleep(0.1)  # both registrations processed by the server
            await callee.evaluate(
                """([pollMs, timeoutMs]) => { const p = window.__probe; p.reset(); p.hookPc('callee', localPeer);
                   p.pending = p.firstFrame('callee', () => document.getElementById('localVideo').srcObject,
                                            () => localPeer, pollMs, timeoutMs); }""",
                [self.args.poll_ms, self.args.timeout * 1000],
            )
            load = Load()
            t0 = await caller.evaluate(
                """() => { const p = window.__probe; p.reset(); p.hookPc('caller', localPeer);
                   const t0 = p.epoch(); p.mark('t0'); openCamera(); return t0; }"""
            )
            res = await callee.evaluate(
                "async () => ({ frames: await __probe.pending, marks: __probe.marks, origin: performance.timeOrigin })"
            )
            busy = load.done()
            caller_marks = await caller.evaluate("() => ({ marks: __probe.marks, origin: performance.timeOrigin })")
            marks = {
                f"caller:{k}" if ":" not in k else k: caller_marks["origin"] + v - t0
                for k, v in caller_marks["marks"].items()
            }
            marks.update({k if ":" in k else f"callee:{k}": res["origin"] + v - t0 for k, v in res["marks"].items()})
            return {
                "callee": frame_times(res["frames"], res["origin"], t0),
                "marks": {k: round(v, 1) for k, v in sorted(marks.items(), key=lambda kv: kv[1])},
                **busy,
                "loadavg": loadavg(),
            }
        finally:
            await caller.close()
            await callee.close()

    async def teardown(self) -> None:
        for ctx in self.contexts:
            await ctx.close()


class FloorSetting(Setting):
    """Two RTCPeerConnections in one page: getUserMedia, offer/answer and candidates by function call."""

    name = "floor"

    def __init__(self, browser: Browser, pages: str, args: argparse.Namespace) -> None:
        self.browser, self.pages, self.args = browser, pages, args
        self.context: BrowserContext | None = None
        self.page: Page | None = None

    async def setup(self) -> None:
        self.context = await self.browser.new_context(viewport={"width": 800, "height": 600})
        await self.context.add_init_script(PROBE_JS)
        self.page = await self.context.new_page()
        await self.page.goto(f"{self.pages}/call_harness.html?mode=floor")
        await wait_for(self.page, "() => typeof window.floorCall === 'function'")

    async def one_call(self) -> dict[str, Any]:
        page = self.page
        assert page is not None
        load = Load()
        t0 = await page.evaluate(
            """([pollMs, timeoutMs]) => {
              const p = window.__probe; p.reset();
              p.pending = p.firstFrame('b', () => window.floor && window.floor.remote(),
                                       () => window.floor && window.floor.b, pollMs, timeoutMs);
              const t0 = p.epoch(); p.mark('t0');
              window.floorCall().then((m) => p.hookPc('callee', window.floor.b));
              return t0;
            }""",
            [self.args.poll_ms, self.args.timeout * 1000],
        )
        res = await page.evaluate(
            "async () => ({ frames: await __probe.pending, marks: { ...__probe.marks, ...Object.fromEntries("
            "Object.entries(floor.marks).map(([k, v]) => ['floor:' + k, v])) }, origin: performance.timeOrigin })"
        )
        busy = load.done()
        await page.evaluate("() => floorHangup()")
        return {
            "callee": frame_times(res["frames"], res["origin"], t0),
            "marks": rel(res["marks"], t0 - res["origin"]),
            **busy,
            "loadavg": loadavg(),
        }

    async def teardown(self) -> None:
        if self.context:
            await self.context.close()


class LabSetting(Setting):
    """A real JupyterLab: one notebook, two CallWidgets, calls placed from Python."""

    name = "lab"

    def __init__(
        self, browser: Browser, server: LabServer, signaling_url: str, args: argparse.Namespace, connect_via: str = ""
    ) -> None:
        self.browser, self.server, self.args = browser, server, args
        self.connect_via = connect_via
        if connect_via:
            self.name = f"lab-{connect_via}"
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
                "bob.on_incoming(lambda caller: bob.accept())",
            ],
        )
        context = await self.browser.new_context(viewport={"width": 1200, "height": 1400})
        await context.add_init_script(PROBE_JS)
        self.nb = nb = await self.lab.open(path, users=[self.alice, self.bob], context=context)
        await nb.wait_py(f"{self.bob!r} in alice.peers and {self.alice!r} in bob.peers", "True", timeout=20)
        self.transport = await nb.page.evaluate("(a) => window.__nbcall.phones[a].transport", self.alice)
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
        printed = await nb.py(f"_t0 = time.time()\nalice.call({self.bob!r})\nprint(repr(_t0))")
        try:
            t0 = float(printed.strip()) * 1000
        except ValueError:
            raise RuntimeError(f"alice.call: {printed}") from None
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


RUN_ALL_JS = """
async ([users, timeoutMs]) => {
  const app = window.jupyterapp;
  app.shell.activateById(window.__panel.id);
  const t0 = performance.now();
  app.commands.execute('notebook:run-all-cells');
  const out = { rendered: null, registered: null };
  while (performance.now() - t0 < timeoutMs) {
    const now = performance.now();
    if (out.rendered === null && users.every((u) => document.querySelector(`.nbcall-root[data-user="${u}"]`)))
      out.rendered = now - t0;
    if (out.registered === null && users.every((u) => window.__nbcall?.phones[u]?.state === 'idle'))
      out.registered = now - t0;
    if (out.rendered !== null && out.registered !== null) return out;
    await new Promise((r) => setTimeout(r, 5));
  }
  return out;
}
"""


async def run_all_opens(browser: Browser, server: LabServer, signaling_url: str, opens: int) -> list[dict[str, Any]]:
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


# -- main ----------------------------------------------------------------------------------------


def side_values(calls: list[dict[str, Any]], side: str, key: str) -> list[float]:
    return [c[side][key] for c in calls if side in c and c[side].get(key) is not None and not c[side]["timeout"]]


def mark_values(calls: list[dict[str, Any]], name: str) -> list[float]:
    return [c["marks"][name] for c in calls if name in c.get("marks", {})]


QUIET = 0.25  # a call is "quiet" when other processes kept less than this many CPUs busy during it


def summarise(result: dict[str, Any]) -> str:
    calls = result["calls"]
    lines = [
        "| setting | side | n | p50 ms | p95 ms | min ms | max ms | p50 getStats ms | busy CPUs | foreign CPUs "
        "| quiet n | quiet p50 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    p50s: dict[tuple[str, str], float] = {}
    for setting in SETTINGS:
        cs = calls.get(setting) or []
        if not cs:
            continue
        for side in ("caller", "callee"):
            v = side_values(cs, side, "rvfc")
            if not v:
                continue
            s = summary(v)
            st = summary(side_values(cs, side, "stats"))
            p50s[(setting, side)] = s["p50"]
            busy = statistics.median(c["busy_cpus"] for c in cs)
            foreign = [c["foreign_cpus"] for c in cs if "foreign_cpus" in c]
            foreign_s = f"{statistics.median(foreign):.2f}" if foreign else "-"
            quiet = [c for c in cs if c.get("foreign_cpus", 9) < QUIET]
            qv = side_values(quiet, side, "rvfc")
            quiet_s = f"{len(qv)} | {pct(qv, 50):.1f}" if qv else "0 | -"
            timeouts = sum(1 for c in cs if side in c and c[side]["timeout"])
            note = f" ({timeouts} timed out)" if timeouts else ""
            lines.append(
                f"| {setting} | {side} | {s['n']}{note} | {s['p50']} | {s['p95']} | {s['min']} | {s['max']} | "
                f"{st.get('p50', '-')} | {busy:.2f} | {foreign_s} | {quiet_s} |"
            )
    lines.append("")
    ratios = []
    for num, den in (
        (("lab", "caller"), ("plain", "caller")),
        (("lab-direct", "caller"), ("plain", "caller")),
        (("plain", "callee"), ("seed", "callee")),
        (("plain2p", "callee"), ("seed", "callee")),
        (("lab", "callee"), ("seed", "callee")),
        (("plain", "caller"), ("seed", "callee")),
        (("lab", "caller"), ("seed", "callee")),
        (("seed", "callee"), ("floor", "callee")),
        (("plain", "callee"), ("floor", "callee")),
    ):
        if num in p50s and den in p50s:
            ratios.append(f"{num[0]} {num[1]} / {den[0]} {den[1]}: {p50s[num] / p50s[den]:.2f}x")
    if ratios:
        lines.append("p50 ratios: " + "; ".join(ratios))
    return "\n".join(lines)


def phase_table(result: dict[str, Any]) -> str:
    names = [
        "kmsg:call",
        "alice:calling",
        "bob:ringing",
        "ksend:ringing",
        "kmsg:accept",
        "accept_sent",
        "bob:connecting",
        "alice:connecting",
        "gum_start",
        "gum_end",
        "alice:media",
        "alice:pc",
        "bob:media",
        "bob:pc",
        "alice:first_candidate",
        "alice:ice_connected",
        "alice:connected",
        "bob:connected",
        "alice:remote_stream",
        "bob:remote_stream",
        "caller:gum_end",
        "caller:pc_connected",
        "callee:ontrack",
        "callee:pc_connected",
        "floor:media",
        "floor:negotiated",
        "floor:connected",
    ]
    lines = ["| setting | phase (first time reached) | p50 ms from t0 |", "|---|---|---:|"]
    for setting in SETTINGS:
        cs = result["calls"].get(setting) or []
        for name in names:
            v = mark_values(cs, name)
            if v:
                lines.append(f"| {setting} | {name} | {pct(v, 50):.1f} |")
    return "\n".join(lines)


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
    chromium_version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    result["machine"]["chromium"] = chromium_version
    nb_port, seed_port = free_port(), free_port()
    nb_server = ServerProcess(
        "nbcall", [*server_command("nbcall", nb_port), "--log-level", "WARNING"], None, sandbox / "nbcall.log", nb_port
    )
    seed_server = ServerProcess("seed", server_command("seed", seed_port), None, sandbox / "seed.log", seed_port)
    httpd, pages = serve_pages()
    lab_server = LabServer(sandbox, env) if any(x.startswith("lab") for x in args.settings) or args.opens else None
    settings: list[Setting] = []
    try:
        nb_server.wait_ready()
        seed_server.wait_ready()
        if lab_server:
            lab_server.wait_ready()
        nb_url, seed_url = f"ws://{HOST}:{nb_port}", f"ws://{HOST}:{seed_port}"
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, env=env)
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


def brief(r: dict[str, Any]) -> str:
    parts = [f"{side} {r[side]['rvfc']} ms" for side in ("caller", "callee") if side in r]
    return ", ".join(parts) + f", busy {r['busy_cpus']} CPUs (foreign {r.get('foreign_cpus')})"


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
