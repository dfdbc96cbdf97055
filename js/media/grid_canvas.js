// A room's members as one video, for a recording: a canvas (1280x720 for the grid) into
// which every member's video is drawn each frame, in tiles laid out like the widget's grid
// (ui/grid.js's gridColumns), and every member's audio mixed with WebAudio into one track.
// canvas.captureStream() and the mix's MediaStreamAudioDestinationNode give a stream whose
// two tracks never change, which is what MediaRecorder needs (it stops when its stream gains
// or loses a track), while the tiles under it come and go: a member who joins appears, one
// who leaves disappears, a stream that changes (the move from the mesh to the SFU) is
// followed, and the recording goes on.
//
// Everything is bounded: the canvas (MAX_WIDTH x MAX_HEIGHT), the frame rate (MAX_FPS), the
// tiles drawn (MAX_TILES, the room's own bound).  Drawing runs on setInterval, not
// requestAnimationFrame, which stops in a hidden tab and would freeze the recording.

import { gridColumns } from "../ui/grid.js";

export const GRID_WIDTH = 1280;
export const GRID_HEIGHT = 720;
export const MAX_WIDTH = 1920;
export const MAX_HEIGHT = 1080;
export const MIN_SIDE = 16;
export const FPS = 20;
export const MAX_FPS = 30;
export const MAX_TILES = 50;
export const SYNC_MS = 250; // who is drawn is looked at this often, besides when the room says it changed
export const FIT_WAIT_MS = 3000; // a one-member recording waits this long for a frame to take its shape from
export const FIT_FALLBACK = { width: 640, height: 360 }; // ... and records at this size if none came
// A one-member recording is at least this long on its longer side: its first frame may be
// small (a connection ramping up, a low simulcast layer) and the canvas keeps its size.
export const FIT_MIN_SIDE = 640;
const GAP = 4;
const BACKGROUND = "#111";
const TILE = "#2a2a2e";
const SPEAKING = "#34c759";
const LABEL_HEIGHT = 24;
const PIP_MARGIN = 8;

/**
 * What one tile shows.  `stream` is read each time the sources are looked at: a new one
 * (the member's media moved) is followed.
 * @typedef {{key: string, name: string, stream: MediaStream | null, video?: boolean, speaking?: boolean}} TileSource
 */
/** @typedef {{x: number, y: number, width: number, height: number}} Rect */

/** @param {number} n @param {number} lo @param {number} hi */
const clamp = (n, lo, hi) => Math.min(hi, Math.max(lo, n));

/**
 * A canvas size: `width` x `height` scaled down (never up) to fit MAX_WIDTH x MAX_HEIGHT,
 * keeping the aspect, in even pixels (video encoders want them); odd or silly input is made sane.
 * @param {number} width @param {number} height
 * @returns {{width: number, height: number}}
 */
export function boundedSize(width, height) {
  const w = Number.isFinite(width) && width > 0 ? width : GRID_WIDTH;
  const h = Number.isFinite(height) && height > 0 ? height : GRID_HEIGHT;
  const scale = Math.min(1, MAX_WIDTH / w, MAX_HEIGHT / h);
  const even = (/** @type {number} */ n, /** @type {number} */ max) => clamp(2 * Math.round((n * scale) / 2), MIN_SIDE, max);
  return { width: even(w, MAX_WIDTH), height: even(h, MAX_HEIGHT) };
}

/**
 * A one-member recording's canvas for a first frame of `width` x `height`: its shape, at
 * least FIT_MIN_SIDE on its longer side, within MAX_WIDTH x MAX_HEIGHT.
 * @param {number} width @param {number} height
 */
export function fitSize(width, height) {
  const scale = Math.max(1, FIT_MIN_SIDE / Math.max(width, height));
  return boundedSize(width * scale, height * scale);
}

/**
 * Tiles for `count` members on a `width` x `height` canvas: as many columns as the widget's
 * grid has (1, 2, 2x2, 3x2, 3x3 ...), rows filled left to right, `gap` pixels between them.
 * At most MAX_TILES.
 * @param {number} count @param {number} width @param {number} height @param {number} [gap]
 * @returns {Rect[]}
 */
export function gridLayout(count, width, height, gap = GAP) {
  const n = clamp(Math.floor(count) || 0, 0, MAX_TILES);
  if (!n) return [];
  const columns = gridColumns(n);
  const rows = Math.ceil(n / columns);
  const w = (width - gap * (columns + 1)) / columns;
  const h = (height - gap * (rows + 1)) / rows;
  return Array.from({ length: n }, (_, i) => ({
    x: Math.round(gap + (i % columns) * (w + gap)),
    y: Math.round(gap + Math.floor(i / columns) * (h + gap)),
    width: Math.max(1, Math.round(w)),
    height: Math.max(1, Math.round(h)),
  }));
}

/**
 * Picture in picture on a `width` x `height` canvas: the first tile fills it, the second
 * goes in its lower right corner, a quarter of its width wide (with the second picture's
 * shape, `inset` = its width / height; 4:3 until it has one), `gap` from the edges.
 * @param {number} count @param {number} width @param {number} height @param {number} inset @param {number} [gap]
 * @returns {Rect[]}
 */
export function pipLayout(count, width, height, inset, gap = PIP_MARGIN) {
  const full = { x: 0, y: 0, width, height };
  if (count < 2) return count === 1 ? [full] : [];
  const w = Math.round(width / 4);
  const h = Math.max(1, Math.round(w / (inset > 0 ? inset : 4 / 3)));
  return [full, { x: width - w - gap, y: height - h - gap, width: w, height: h }];
}

/**
 * Where a `width` x `height` picture goes in `rect`: as large as fits, centred, aspect kept.
 * @param {number} width @param {number} height @param {Rect} rect
 * @returns {Rect}
 */
export function fitRect(width, height, rect) {
  if (!(width > 0 && height > 0)) return { ...rect };
  const scale = Math.min(rect.width / width, rect.height / height);
  const w = Math.round(width * scale);
  const h = Math.round(height * scale);
  return { x: rect.x + Math.round((rect.width - w) / 2), y: rect.y + Math.round((rect.height - h) / 2), width: w, height: h };
}

/** @param {MediaStream | null} stream */
const liveAudio = (stream) => (stream ? stream.getAudioTracks().find((t) => t.readyState === "live") || null : null);

/**
 * @typedef {object} Tile
 * @property {TileSource} source
 * @property {HTMLVideoElement} video  off-page, muted: it decodes the frames we draw
 * @property {MediaStream | null} stream  what `video` plays
 * @property {MediaStreamTrack | null} audioTrack  what `audioNode` mixes
 * @property {MediaStreamAudioSourceNode | null} audioNode
 */

/**
 * @typedef {object} GridOptions
 * @property {() => TileSource[]} sources  who to draw now, in order (ours first in the grid)
 * @property {number} [width]  the canvas (default 1280x720; bounded)
 * @property {number} [height]
 * @property {boolean} [fit]  size the canvas to the first source's first frame (a one-member recording)
 * @property {boolean} [labels]  names on the tiles and the active speaker outlined (the grid)
 * @property {boolean} [pip]  picture in picture (pipLayout: a 1:1 call's "both"): the first
 *   source fills the canvas, the second is drawn small in its corner; the rest are not drawn
 * @property {number} [fps]
 */

export class GridCanvas {
  /** @param {GridOptions} opts */
  constructor(opts) {
    this.sources = opts.sources;
    this.size = boundedSize(opts.width || GRID_WIDTH, opts.height || GRID_HEIGHT);
    this.fit = !!opts.fit;
    this.labels = !!opts.labels;
    this.pip = !!opts.pip;
    this.fps = clamp(Math.round(opts.fps || FPS), 1, MAX_FPS);
    /** @type {Map<string, Tile>} key -> tile, in drawing order */
    this.tiles = new Map();
    /** @type {HTMLCanvasElement | null} */
    this.canvas = null;
    /** @type {CanvasRenderingContext2D | null} */
    this.ctx = null;
    /** @type {AudioContext | null} */
    this.audio = null;
    /** @type {MediaStreamAudioDestinationNode | null} */
    this.mix = null;
    /** @type {MediaStream | null} */
    this.stream = null;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = undefined;
    this.syncedAt = -Infinity;
    this.stopped = false;
    this.frames = 0; // drawn so far (what the tests look at)
  }

  /**
   * Start drawing and mixing; resolves with the stream to record (a video track, and an
   * audio track when the browser has WebAudio).  Throws with words if it cannot.
   * @returns {Promise<MediaStream>}
   */
  async start() {
    if (this.stopped) throw new Error("the recording was stopped");
    const AudioCtx = globalThis.AudioContext;
    if (typeof AudioCtx === "function") {
      try {
        const audio = (this.audio = new AudioCtx());
        // Started from Python there is no click: a suspended context would record silence.
        audio.resume().catch(() => {});
        this.mix = audio.createMediaStreamDestination();
      } catch (err) {
        console.warn("nbcall recording: no WebAudio, the recording has no sound", err);
        if (this.audio) this.audio.close().catch(() => {});
        this.audio = this.mix = null;
      }
    }
    this.sync();
    if (this.fit) await this._fitFirst();
    if (this.stopped) throw new Error("the recording was stopped");
    const canvas = (this.canvas = document.createElement("canvas"));
    canvas.width = this.size.width;
    canvas.height = this.size.height;
    this.ctx = canvas.getContext("2d");
    if (!this.ctx) {
      this.stop();
      throw new Error("the browser gave no 2d canvas");
    }
    this.draw();
    const out = canvas.captureStream(this.fps);
    if (this.mix) for (const t of this.mix.stream.getAudioTracks()) out.addTrack(t);
    this.stream = out;
    this.timer = setInterval(() => this.draw(), 1000 / this.fps);
    return out;
  }

  /** The canvas takes the shape of the first source's picture (fitSize), once it has one. */
  async _fitFirst() {
    const deadline = performance.now() + FIT_WAIT_MS;
    this.size = boundedSize(FIT_FALLBACK.width, FIT_FALLBACK.height);
    while (!this.stopped) {
      const first = this.tiles.values().next().value;
      if (first && first.video.videoWidth > 0 && first.video.videoHeight > 0) {
        this.size = fitSize(first.video.videoWidth, first.video.videoHeight);
        return;
      }
      if (performance.now() >= deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
      this.sync();
    }
  }

  /** Bring the tiles in line with the sources now: new members get a tile, gone ones lose theirs. */
  sync() {
    if (this.stopped) return;
    this.syncedAt = performance.now();
    const wanted = this.sources().slice(0, MAX_TILES);
    const keys = new Set(wanted.map((s) => s.key));
    for (const [key, tile] of this.tiles) if (!keys.has(key)) this._drop(key, tile);
    /** @type {Map<string, Tile>} */
    const next = new Map();
    for (const source of wanted) {
      if (next.has(source.key)) continue;
      const tile = this.tiles.get(source.key) || this._tile(source);
      tile.source = source;
      this._follow(tile);
      next.set(source.key, tile);
    }
    this.tiles = next;
  }

  /** @param {TileSource} source @returns {Tile} */
  _tile(source) {
    const video = document.createElement("video");
    video.muted = true; // the mix carries the sound; the page plays it in the grid already
    video.playsInline = true;
    video.autoplay = true;
    return { source, video, stream: null, audioTrack: null, audioNode: null };
  }

  /** Play the source's current stream, mix its current audio track. @param {Tile} tile */
  _follow(tile) {
    const stream = tile.source.stream || null;
    if (tile.stream !== stream) {
      tile.stream = stream;
      // The whole stream, audio too: Chromium feeds a remote track to WebAudio only while
      // some media element plays it (muted is enough), and the SFU swaps tracks inside it.
      tile.video.srcObject = stream;
      if (stream) tile.video.play().catch(() => {});
    }
    const track = liveAudio(stream);
    if (track === tile.audioTrack || !this.audio || !this.mix) return;
    if (tile.audioNode) tile.audioNode.disconnect();
    tile.audioTrack = track;
    tile.audioNode = null;
    if (!track) return;
    try {
      tile.audioNode = this.audio.createMediaStreamSource(new MediaStream([track]));
      tile.audioNode.connect(this.mix);
    } catch (err) {
      console.warn("nbcall recording: cannot mix the audio of", tile.source.name, err);
    }
  }

  /** @param {string} key @param {Tile} tile */
  _drop(key, tile) {
    if (tile.audioNode) tile.audioNode.disconnect();
    tile.audioNode = null;
    tile.video.pause();
    tile.video.srcObject = null;
    this.tiles.delete(key);
  }

  /** One frame: every tile's current picture (or its name, with no picture), into the canvas. */
  draw() {
    const ctx = this.ctx;
    if (!ctx || this.stopped) return;
    if (performance.now() - this.syncedAt >= SYNC_MS) this.sync();
    const { width, height } = this.size;
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, width, height);
    const tiles = [...this.tiles.values()];
    let rects;
    if (this.pip) {
      const inset = tiles[1] ? tiles[1].video.videoWidth / Math.max(1, tiles[1].video.videoHeight) : 0;
      rects = pipLayout(tiles.length, width, height, inset);
    } else {
      rects = tiles.length === 1 && !this.labels ? [{ x: 0, y: 0, width, height }] : gridLayout(tiles.length, width, height);
    }
    tiles.forEach((tile, i) => rects[i] && this._drawTile(ctx, tile, rects[i]));
    this.frames += 1;
  }

  /** @param {CanvasRenderingContext2D} ctx @param {Tile} tile @param {Rect} rect */
  _drawTile(ctx, tile, rect) {
    const { video, source } = tile;
    const picture = source.video !== false && !!tile.stream && video.videoWidth > 0 && video.readyState >= 2;
    if (this.labels) {
      ctx.fillStyle = TILE;
      ctx.fillRect(rect.x, rect.y, rect.width, rect.height);
    }
    if (picture) {
      const to = fitRect(video.videoWidth, video.videoHeight, rect);
      ctx.drawImage(video, to.x, to.y, to.width, to.height);
    }
    if (!this.labels) return;
    ctx.font = "16px sans-serif";
    ctx.textBaseline = "middle";
    if (!picture) {
      ctx.fillStyle = "#ccc";
      ctx.textAlign = "center";
      ctx.fillText(source.video === false ? `${source.name} (camera off)` : source.name, rect.x + rect.width / 2, rect.y + rect.height / 2, rect.width - 16);
    }
    ctx.textAlign = "left";
    const label = Math.min(rect.width - 8, ctx.measureText(source.name).width + 16);
    ctx.fillStyle = "rgba(0, 0, 0, 0.55)";
    ctx.fillRect(rect.x + 4, rect.y + rect.height - LABEL_HEIGHT - 4, label, LABEL_HEIGHT);
    ctx.fillStyle = "#fff";
    ctx.fillText(source.name, rect.x + 12, rect.y + rect.height - 4 - LABEL_HEIGHT / 2, label - 16);
    if (source.speaking) {
      ctx.strokeStyle = SPEAKING;
      ctx.lineWidth = 4;
      ctx.strokeRect(rect.x + 2, rect.y + 2, rect.width - 4, rect.height - 4);
    }
  }

  /** Stop drawing and mixing and release every tile, the canvas's track and the mix; any number of times. */
  stop() {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const [key, tile] of [...this.tiles]) this._drop(key, tile);
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    if (this.audio) this.audio.close().catch(() => {});
    this.audio = null;
    this.mix = null;
    this.ctx = null;
  }
}
