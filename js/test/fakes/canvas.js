// What a recording's compositor (media/grid_canvas.js) uses of the browser: a document that
// makes <canvas> and <video>, a 2d context that remembers what was drawn, and WebAudio's
// AudioContext with its source and destination nodes.  installCanvasGlobals() puts them on
// globalThis for one test (with installGlobals' MediaStream).

import { FakeMediaStream, FakeTrack } from "./media.js";

/** A 2d context: every call is kept in `calls` as [name, ...args]. */
export class FakeContext2D {
  constructor() {
    /** @type {any[][]} */
    this.calls = [];
    this.fillStyle = "";
    this.strokeStyle = "";
    this.lineWidth = 1;
    this.font = "";
    this.textAlign = "";
    this.textBaseline = "";
  }

  /** Images drawn since the last call, as [video, x, y, w, h]; clears the log. */
  takeImages() {
    const images = this.calls.filter((c) => c[0] === "drawImage").map((c) => c.slice(1));
    this.calls = [];
    return images;
  }

  /** @param {...any} args */
  fillRect(...args) {
    this.calls.push(["fillRect", ...args]);
  }

  /** @param {...any} args */
  strokeRect(...args) {
    this.calls.push(["strokeRect", ...args]);
  }

  /** @param {...any} args */
  fillText(...args) {
    this.calls.push(["fillText", ...args]);
  }

  /** @param {...any} args */
  drawImage(...args) {
    this.calls.push(["drawImage", ...args]);
  }

  /** @param {string} text */
  measureText(text) {
    return { width: 8 * text.length };
  }
}

export class FakeCanvas {
  constructor() {
    this.width = 300;
    this.height = 150;
    this.ctx = new FakeContext2D();
    /** @type {FakeMediaStream | null} */
    this.captured = null;
    this.fps = 0;
  }

  /** @param {string} kind */
  getContext(kind) {
    return kind === "2d" ? this.ctx : null;
  }

  /** @param {number} fps */
  captureStream(fps) {
    this.fps = fps;
    this.captured = new FakeMediaStream([new FakeTrack("video", "canvas")]);
    return this.captured;
  }
}

export class FakeVideo {
  constructor() {
    this.muted = false;
    this.playsInline = false;
    this.autoplay = false;
    /** @type {FakeMediaStream | null} */
    this.srcObject = null;
    this.videoWidth = 0;
    this.videoHeight = 0;
    this.readyState = 0;
    this.playing = false;
  }

  async play() {
    this.playing = true;
  }

  pause() {
    this.playing = false;
  }

  /** A frame of this size has arrived. @param {number} width @param {number} height */
  frame(width, height) {
    this.videoWidth = width;
    this.videoHeight = height;
    this.readyState = 4;
  }
}

export class FakeAudioNode {
  /** @param {FakeMediaStream | null} stream */
  constructor(stream = null) {
    this.stream = stream;
    /** @type {FakeAudioNode | null} */
    this.to = null;
  }

  /** @param {FakeAudioNode} node */
  connect(node) {
    this.to = node;
  }

  disconnect() {
    this.to = null;
  }
}

export class FakeAudioContext {
  /** @type {FakeAudioContext[]} */
  static instances = [];

  constructor() {
    this.state = "suspended";
    /** @type {FakeAudioNode[]} */
    this.sources = [];
    /** @type {(FakeAudioNode & {stream: FakeMediaStream}) | null} */
    this.destination = null;
    FakeAudioContext.instances.push(this);
  }

  async resume() {
    this.state = "running";
  }

  async close() {
    this.state = "closed";
  }

  createMediaStreamDestination() {
    const node = /** @type {FakeAudioNode & {stream: FakeMediaStream}} */ (new FakeAudioNode(new FakeMediaStream([new FakeTrack("audio", "mix")])));
    this.destination = node;
    return node;
  }

  /** @param {FakeMediaStream} stream */
  createMediaStreamSource(stream) {
    const node = new FakeAudioNode(stream);
    this.sources.push(node);
    return node;
  }

  /** The tracks mixed into the destination now. */
  get mixed() {
    return this.sources.filter((n) => n.to && n.to === this.destination).map((n) => /** @type {FakeMediaStream} */ (n.stream).getTracks()[0]);
  }
}

/**
 * document.createElement for canvas and video, and AudioContext, on globalThis; returns
 * what was made and a restore function.
 */
export function installCanvasGlobals() {
  const g = /** @type {any} */ (globalThis);
  const saved = { document: Object.getOwnPropertyDescriptor(g, "document"), AudioContext: Object.getOwnPropertyDescriptor(g, "AudioContext") };
  /** @type {{canvases: FakeCanvas[], videos: FakeVideo[]}} */
  const made = { canvases: [], videos: [] };
  const document = {
    /** @param {string} tag */
    createElement(tag) {
      if (tag === "canvas") {
        const canvas = new FakeCanvas();
        made.canvases.push(canvas);
        return canvas;
      }
      if (tag === "video") {
        const video = new FakeVideo();
        made.videos.push(video);
        return video;
      }
      throw new Error(`the fake document makes no <${tag}>`);
    },
  };
  FakeAudioContext.instances = [];
  Object.defineProperty(g, "document", { value: document, configurable: true, writable: true });
  Object.defineProperty(g, "AudioContext", { value: FakeAudioContext, configurable: true, writable: true });
  return {
    made,
    restore() {
      for (const [name, d] of Object.entries(saved)) {
        if (d) Object.defineProperty(g, name, d);
        else delete g[name];
      }
    },
  };
}
