"""The benchmark's page (a seed-style client: register, plain offer, answer, candidates) and helpers.

``?ws=..&me=..&peer=..&send=WxH`` registers ``me``; with ``send`` it draws frames of known
colours at 30 fps on a canvas, each stamped with ``Date.now()`` in blocks (the layout of
nbcall.peer._patterns), and offers them to ``peer``.  Every video it receives is read back
frame by frame (``requestVideoFrameCallback``): ``window.samples`` collects
``[now_ms, latency_ms]`` (now minus the stamp in the frame) and ``window.size`` the size.
"""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nbcall.peer._patterns import LEFT, READ_BITS_JS, RIGHT

from ._proc_cpu import CLK_TCK, descendants, read_all_cpu, read_cpu

PAGE = f"""<!doctype html><meta charset="utf-8"><body><script>
const q = new URLSearchParams(location.search);
const ME = q.get('me'), PEER = q.get('peer'), SEND = q.get('send');
const readBits = {READ_BITS_JS};
window.samples = []; window.size = null; window.sent = 0;
const ws = new WebSocket(q.get('ws'));
const pc = new RTCPeerConnection();
window.pc = pc;
const tell = (m) => ws.send(JSON.stringify({{...m, from: ME, to: PEER}}));
pc.onicecandidate = (e) => {{ if (e.candidate) tell({{type: 'candidate', candidate: e.candidate}}); }};
ws.onmessage = async (msg) => {{
  const m = JSON.parse(msg.data);
  if (m.type === 'offer') {{
    await pc.setRemoteDescription(m.sdp);
    await pc.setLocalDescription(await pc.createAnswer());
    tell({{type: 'answer', sdp: pc.localDescription}});
  }} else if (m.type === 'answer') await pc.setRemoteDescription(m.sdp);
  else if (m.type === 'candidate' && m.candidate) await pc.addIceCandidate(m.candidate);
}};
ws.onopen = () => ws.send(JSON.stringify({{type: 'register', id: ME, username: ME}}));
pc.ontrack = (e) => {{
  if (e.track.kind !== 'video') return;
  const v = document.createElement('video'); v.muted = true; v.autoplay = true; v.playsInline = true;
  v.srcObject = new MediaStream([e.track]); document.body.append(v);
  const c = document.createElement('canvas'); const ctx = c.getContext('2d', {{willReadFrequently: true}});
  const each = () => {{
    if (v.videoWidth) {{
      if (c.width !== v.videoWidth) {{ c.width = v.videoWidth; c.height = v.videoHeight; }}
      ctx.drawImage(v, 0, 0);
      const stamp = readBits(ctx, c.width, 1) * 65536 + readBits(ctx, c.width, 2);
      const now = Date.now();
      let lat = (now % 4294967296) - stamp; if (lat < 0) lat += 4294967296;
      window.samples.push([now, lat]); window.size = [c.width, c.height];
    }}
    v.requestVideoFrameCallback(each);
  }};
  v.requestVideoFrameCallback(each);
}};
window.start = async () => {{
  const [w, h] = SEND.split('x').map(Number);
  const c = document.createElement('canvas'); c.width = w; c.height = h;
  const ctx = c.getContext('2d');
  const size = Math.max(4, Math.floor(w / 20));
  const rows = (values) => values.forEach((value, row) => {{
    for (let bit = 0; bit < 16; bit++) {{
      ctx.fillStyle = (value >> (15 - bit)) & 1 ? '#fff' : '#000';
      ctx.fillRect(bit * size, row * size, size, size);
    }}
  }});
  const draw = () => {{
    ctx.fillStyle = 'rgb({LEFT[0]},{LEFT[1]},{LEFT[2]})'; ctx.fillRect(0, 0, w / 2, h);
    ctx.fillStyle = 'rgb({RIGHT[0]},{RIGHT[1]},{RIGHT[2]})'; ctx.fillRect(w / 2, 0, w / 2, h);
    const stamp = Date.now() % 4294967296;
    rows([window.sent & 0xffff, Math.floor(stamp / 65536), stamp % 65536]);
    window.sent += 1;
  }};
  draw(); setInterval(draw, 1000 / 30);
  const stream = c.captureStream(30);
  const track = stream.getVideoTracks()[0];
  track.contentHint = 'detail';  // keep the size (the benchmark compares sizes), not the frame rate
  pc.addTrack(track, stream);
  pc.addTransceiver('audio', {{direction: 'recvonly'}});
  await pc.setLocalDescription(await pc.createOffer());
  tell({{type: 'offer', sdp: pc.localDescription}});
}};
</script>"""


def serve_page() -> tuple[ThreadingHTTPServer, str]:
    """The page on 127.0.0.1 (a secure context), in a daemon thread; returns (server, URL)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def _cpu_ticks(pid: int) -> int:
    try:
        return read_cpu(pid).ticks
    except (OSError, IndexError, ValueError):
        return 0


def chromium_pids() -> list[int]:
    """Chromium's processes under this one (under Playwright's driver under us)."""
    pids = []
    for pid in descendants(read_all_cpu(), os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"chromium" in f.read().split(b"\0")[0]:
                    pids.append(pid)
        except OSError:
            continue
    return pids


class Cpu:
    """CPU seconds used by processes between :meth:`start` and :meth:`stop`, as a % of one core."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def start(self) -> None:
        import time

        self._t0 = time.monotonic()
        self._c0 = sum(_cpu_ticks(p) for p in self.pids)

    def stop(self) -> float:
        import time

        used = (sum(_cpu_ticks(p) for p in self.pids) - self._c0) / CLK_TCK
        return round(100 * used / (time.monotonic() - self._t0), 1)
