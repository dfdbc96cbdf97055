"""The JavaScript the call set-up benchmark injects into and runs in its pages."""

# Injected into every measured page before its own scripts: phase marks, a getUserMedia
# timer, and the first-frame probe.  Times are performance.now() of the page; results carry
# performance.timeOrigin so that pages (and the kernel's time.time()) share one clock.
PROBE_JS = r"""
(() => {
  const probe = {
    marks: {},
    origin: performance.timeOrigin,
    mark(name) { if (!(name in this.marks)) this.marks[name] = performance.now(); },
    reset() { this.marks = {}; this.pending = null; this.long = []; },
    // The page's clock of an event (e.g. a click's timeStamp) as a mark.
    markAt(name, t) { if (!(name in this.marks)) this.marks[name] = t; },
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
          // getStats is not free (it walks every stat): ask only once the connection is up,
          // when a frame can be decoded, so the probe does not slow the set-up it measures.
          const pc = getPc();
          if (pc && out.stats === null && pc.connectionState === 'connected') {
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
      this.names[phone.user] = prefix;
      if (phone.__probed) return;
      phone.__probed = true;
      const placeCall = phone.placeCall.bind(phone);
      phone.placeCall = (to) => { this.mark(`${prefix}:placeCall`); return placeCall(to); };
      const accept = phone.accept.bind(phone);
      phone.accept = () => { this.mark(`${prefix}:accept()`); return accept(); };
      phone.subscribe(() => {
        this.mark(`${prefix}:${phone.state}`);
        if (phone.localStream) this.mark(`${prefix}:media`);
        if (phone.remoteStream) this.mark(`${prefix}:remote_stream`);
        if (phone.pc) this.hookPc(prefix, phone.pc);
      });
    },
  };
  // Signaling on the wire: the first time each side sends / receives each message type,
  // e.g. "alice:send:invite", "bob:recv:offer".  A socket is named by the username it
  // registered (probe.names maps it to "alice"/"bob"; a one-user page sets probe.role).
  probe.names = {};
  probe.role = '';
  probe.wire = function (ws, dir, data) {
    if (typeof data !== 'string' || !data.startsWith('{"type"')) return;
    let m;
    try { m = JSON.parse(data); } catch (e) { return; }
    if (!m || typeof m.type !== 'string') return;
    if (dir === 'send' && m.type === 'register' && typeof m.username === 'string') ws.__user = m.username;
    const who = (ws.__user && probe.names[ws.__user]) || probe.role || ws.__user || '?';
    probe.mark(`${who}:${dir}:${m.type}`);
  };
  const NativeWS = window.WebSocket;
  if (NativeWS) {
    const send = NativeWS.prototype.send;
    NativeWS.prototype.send = function (data) {
      probe.wire(this, 'send', data);
      return send.call(this, data);
    };
    // A listener added in the constructor runs before the page's own onmessage.
    window.WebSocket = class extends NativeWS {
      constructor(...args) {
        super(...args);
        this.addEventListener('message', (e) => probe.wire(this, 'recv', e.data));
      }
    };
  }
  // Main-thread tasks over 50 ms (start, duration): what a busy page makes everything wait for.
  probe.long = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) probe.long.push([Math.round(e.startTime), Math.round(e.duration)]);
    }).observe({ type: 'longtask' });
  } catch (e) { /* no long task timing */ }
  window.__probe = probe;
  const md = navigator.mediaDevices;
  if (md && md.getUserMedia) {
    const gum = md.getUserMedia.bind(md);
    let n = 0;
    md.getUserMedia = async (c) => {
      const i = ++n;
      probe.mark('gum_start');
      probe.mark(`gum${i}_start`);
      const s = await gum(c);
      probe.mark('gum_end');
      probe.mark(`gum${i}_end`);
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
  p.names[alice] = 'alice';
  p.names[bob] = 'bob';
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
  return { frames, marks: p.marks, long: p.long, origin: performance.timeOrigin };
}
"""

# One side's first frame and phase marks, in a page armed with ARM_SIDE_JS (or by hand).
SIDE_RESULT_JS = (
    "async () => ({ frames: await __probe.pending, marks: __probe.marks, long: __probe.long,"
    " origin: performance.timeOrigin })"
)

# Both phones back to idle (or ended) with no peer connection: the next call may start.
IDLE_BOTH = """([a, b]) => ['ended', 'idle'].includes(window.__nbcall.phones[a]?.state)
  && ['ended', 'idle'].includes(window.__nbcall.phones[b]?.state)
  && !window.__nbcall.phones[a].pc && !window.__nbcall.phones[b].pc"""

# The plain harness: bob answers as soon as his phone rings, with the message CallWidget.accept() sends.
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
  p.names[user] = prefix;
  p.trackPhone(prefix, phones[user]);
  p.pending = p.firstFrame(user, () => phones[user] && phones[user].remoteStream,
                           () => phones[user] && phones[user].pc, pollMs, timeoutMs);
}"""


def place_call_js(arm: str, arm_args: str) -> str:
    """The plain harness: arm the probe (``arm`` called with ``arm_args``, JS over a, b, pollMs and
    timeoutMs), then send alice's model the message CallWidget.call() sends; returns t0 (epoch ms)."""
    return """([a, b, pollMs, timeoutMs]) => {
      (__ARM__)(__ARGS__);
      const t0 = window.__probe.epoch();
      window.__probe.mark('t0');
      harness.models.alice.custom({ kind: 'call', to: b });
      return t0;
    }""".replace("__ARM__", arm).replace("__ARGS__", arm_args)


# JupyterLab: Run All, then the times until both widgets are rendered and both phones registered.
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
