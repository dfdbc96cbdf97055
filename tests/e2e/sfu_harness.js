// A page that is one room member on the SFU, driven by tests/e2e/test_sfu_page.py: the real
// SfuSession (js/room/sfu.js, bundled by the test with esbuild) with the fake camera, every
// remote member's stream in a <video>, and what the session reported kept for the test.

/* global window, document, navigator, CSS */

import { SfuSession } from "../../js/room/sfu.js";

const log = {
  /** @type {string[]} */ states: [],
  /** @type {string[]} */ errors: [],
  /** @type {string[]} */ gone: [],
  /** @type {Record<string, number>} onStream calls per publisher */ arrived: {},
};
/** @type {SfuSession | null} */
let session = null;
/** @type {MediaStream | null} */
let camera = null;

/** @param {string} id */
function videoOf(id) {
  return /** @type {HTMLVideoElement | null} */ (document.querySelector(`video[data-feed="${CSS.escape(id)}"]`));
}

/** @param {string} id @param {MediaStream} stream */
function show(id, stream) {
  log.arrived[id] = (log.arrived[id] || 0) + 1;
  let video = videoOf(id);
  if (!video) {
    video = document.createElement("video");
    video.dataset.feed = id;
    video.autoplay = video.muted = video.playsInline = true;
    document.body.append(video);
  }
  if (video.srcObject !== stream) video.srcObject = stream;
}

/** @param {string} id */
function hide(id) {
  log.gone.push(id);
  const video = videoOf(id);
  if (video) video.remove();
}

const harness = {
  log,
  /**
   * Open the fake camera (unless `camera` is false) and join.
   * @param {{url: string, room: string, token: string, pin: string, id: string, display?: string, camera?: boolean}} cfg
   */
  async join(cfg) {
    camera = cfg.camera === false ? null : await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { exact: 320 }, height: { exact: 180 }, frameRate: { ideal: 15, max: 15 } },
    });
    session = new SfuSession({
      ...cfg,
      display: cfg.display || cfg.id,
      localStream: camera,
      iceServers: [],
      onStream: show,
      onStreamGone: hide,
      onState: (state, words) => log.states.push(words ? `${state}: ${words}` : state),
      onError: (words) => log.errors.push(words),
    });
    try {
      await session.start();
      return { ok: true, state: session.state };
    } catch (err) {
      return { ok: false, state: session.state, words: /** @type {Error} */ (err).message };
    }
  },

  /** Per remote member: the session's numbers and the <video>'s size. */
  async stats() {
    if (!session) return null;
    const s = await session.stats();
    /** @type {Record<string, any>} */
    const feeds = {};
    for (const [id, f] of Object.entries(s.feeds)) {
      const video = videoOf(id);
      feeds[id] = { ...f, videoWidth: video ? video.videoWidth : -1, asked: session.layer(id), received: session.receivedLayer(id) };
    }
    // What the camera is sent as: one entry per simulcast layer (rid), as Chrome encodes it.
    /** @type {Record<string, any>} */
    const layers = {};
    const pc = session.pub && session.pub.webrtcStuff.pc;
    if (pc) {
      (await pc.getStats()).forEach((r) => {
        if (r.type === "outbound-rtp" && r.kind === "video") {
          layers[r.rid || "-"] = { width: r.frameWidth || 0, frames: r.framesEncoded || 0, keys: r.keyFramesEncoded || 0, pli: r.pliCount || 0, limit: r.qualityLimitationReason };
        }
      });
    }
    return { feeds, layers, uplinkKbps: s.uplinkKbps, state: session.state, timers: session.waits.timers.size };
  },

  /**
   * The picture a remote member's <video> shows, drawn small: mean colour, how much of it is
   * the fake camera's green background, and the spread of brightness.
   * @param {string} id
   */
  pixels(id) {
    const video = videoOf(id);
    if (!video || !video.videoWidth) return null;
    const canvas = document.createElement("canvas");
    canvas.width = 64;
    canvas.height = 36;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d", { willReadFrequently: true }));
    ctx.drawImage(video, 0, 0, 64, 36);
    const d = ctx.getImageData(0, 0, 64, 36).data;
    let r = 0, g = 0, b = 0, sq = 0, green = 0; // prettier-ignore
    const n = d.length / 4;
    for (let i = 0; i < d.length; i += 4) {
      r += d[i];
      g += d[i + 1];
      b += d[i + 2];
      const y = (d[i] + d[i + 1] + d[i + 2]) / 3;
      sq += y * y;
      if (d[i] < 60 && d[i + 1] > 100 && d[i + 1] < 170 && d[i + 2] < 60) green++;
    }
    const mean = (r + g + b) / 3 / n;
    return { r: r / n, g: g / n, b: b / n, green: green / n, std: Math.sqrt(Math.max(0, sq / n - mean * mean)), width: video.videoWidth };
  },

  /** The session's view of the room (for a failing test's message). */
  debug() {
    if (!session) return null;
    return { mids: Object.fromEntries(session.feeds.mids), publishers: [...session.feeds.publishers.keys()], sub: session.sub.state, streams: [...session.sub.streams.keys()] };
  },

  /** @param {string} id @param {number} width @param {number} height */
  setTileSize(id, width, height) {
    if (session) session.setTileSize(id, width, height);
    return session ? session.layer(id) : null;
  },

  close() {
    if (session) session.close();
    if (session) session.close(); // twice: close() is idempotent
    if (camera) for (const t of camera.getTracks()) t.stop();
    return { state: session ? session.state : "none", timers: session ? session.waits.timers.size : -1 };
  },
};

Object.assign(window, { harness });
