// Recording a call with MediaRecorder (WebM), sent to Python in chunks as it records:
// every TIMESLICE_MS the recorder hands over a Blob, which becomes one comm message with one
// binary buffer and a sequence number (from 0), so no message is ever the size of the whole
// file; recording_done then says how many chunks there were.  Nothing is sent after it.

import { TO_KERNEL_KIND, RECORDING_SOURCES } from "../messages.js";
import { pick } from "../names.js";
import { randomId } from "../ids.js";
import { GridCanvas } from "./grid_canvas.js";

/** @typedef {import("../dispatch.js").ToKernelKind} ToKernelKind */
/** @typedef {(kind: ToKernelKind, fields: Record<string, unknown>, buffers?: ArrayBuffer[]) => void} Send */

export const TIMESLICE_MS = 500;
const COMPOSITE_FPS = 20;
const REMOTE = pick(RECORDING_SOURCES, "remote");
const LOCAL = pick(RECORDING_SOURCES, "local");
const BOTH = pick(RECORDING_SOURCES, "both");

/** @param {boolean} hasAudio */
function pickMime(hasAudio) {
  const candidates = hasAudio
    ? ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp9,opus", "video/webm"]
    : ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm"];
  return candidates.find((m) => MediaRecorder.isTypeSupported(m)) || "";
}

/**
 * Remote video large, local video in its corner, both sides' audio mixed: the GridCanvas
 * (grid_canvas.js, bounded) in its picture-in-picture layout.  Looked at again as the canvas
 * syncs: a side with no video (yet: a camera being switched) is left out, so the other fills
 * the picture; with none, the recording is black until one comes, as before.
 * @param {MediaStream | null} remote
 * @param {MediaStream | null} local
 */
function composite(remote, local) {
  const sides = /** @type {const} */ ([["remote", remote], ["local", local]]);
  /** @returns {import("./grid_canvas.js").TileSource[]} */
  const sources = () => {
    const shown = sides.filter(([, s]) => s && s.getVideoTracks().length);
    const heard = sides.filter(([, s]) => s && !s.getVideoTracks().length && s.getAudioTracks().length);
    return [
      ...shown.map(([key, stream]) => ({ key, name: key, stream, video: true, speaking: false })),
      ...heard.map(([key, stream]) => ({ key, name: key, stream, video: false, speaking: false })),
    ];
  };
  const canvas = new GridCanvas({ sources, fit: true, pip: true, fps: COMPOSITE_FPS });
  return { start: () => canvas.start(), stop: () => canvas.stop() };
}

export class Recording {
  /**
   * @param {object} opts
   * @param {Send} opts.send  a message to the kernel (sendToKernel's arguments)
   * @param {() => void} opts.onEnd  the recorder stopped and recording_done is sent
   */
  constructor({ send, onEnd }) {
    this.send = send;
    this.onEnd = onEnd;
    this.id = randomId(4);
    this.seq = 0; // the next chunk's number
    this.done = false;
    this.mime = "";
    /** @type {Promise<void>} blob.arrayBuffer() is async: keep chunks in order */
    this.chain = Promise.resolve();
    /** @type {MediaRecorder | null} */
    this.recorder = null;
    this.cleanup = () => {};
    // stop() while start() still awaits the compositing (a queued stop right after a queued
    // start): honoured as soon as the recorder exists, or the recording would never end.
    this.stopWanted = false;
  }

  /**
   * Start recording `which` of the call's streams; throws with a readable message.
   * @param {string} which  remote | local | both
   * @param {{remote: MediaStream | null, local: MediaStream | null}} streams
   */
  async start(which, { remote, local }) {
    let stream;
    if (which === REMOTE) stream = remote;
    else if (which === LOCAL) stream = local;
    else if (which === BOTH) {
      await this.startComposed(BOTH, composite(remote, local));
      return;
    } else throw new Error(`which must be ${RECORDING_SOURCES.join(", ")}, not ${which}`);
    this._record(which, stream);
  }

  /**
   * Record what a composition draws (a room's grid or one member: grid_canvas.js), under the
   * name `which`; the composition is stopped with the recording, or at once if it cannot start.
   * @param {string} which
   * @param {{start: () => Promise<MediaStream>, stop: () => void}} composition
   */
  async startComposed(which, composition) {
    this.cleanup = () => composition.stop();
    /** @type {MediaStream} */
    let stream;
    try {
      stream = await composition.start();
    } catch (err) {
      this._release();
      throw err;
    }
    this._record(which, stream);
  }

  /** Release what was made for the recording (a composition), once. */
  _release() {
    const cleanup = this.cleanup;
    this.cleanup = () => {};
    cleanup();
  }

  /**
   * Record `stream` (sends recording_started, then its chunks).
   * @param {string} which
   * @param {MediaStream | null} stream
   */
  _record(which, stream) {
    if (!stream || !stream.getVideoTracks().length) {
      this._release();
      throw new Error(`no ${which} video to record`);
    }
    // A recorder on a stream that later gains or loses a track stops: record a fixed copy.
    const fixed = new MediaStream(stream.getTracks());
    const mimeType = pickMime(fixed.getAudioTracks().length > 0);
    this.mime = mimeType || "video/webm";
    const recorder = new MediaRecorder(fixed, mimeType ? { mimeType } : {});
    this.recorder = recorder;
    recorder.ondataavailable = (event) => {
      const blob = event.data;
      if (!blob || !blob.size || this.done) return;
      this.chain = this.chain.then(async () => {
        const buffer = await blob.arrayBuffer();
        if (this.done) return;
        this.send(TO_KERNEL_KIND.RECORDING_CHUNK, { id: this.id, seq: this.seq++ }, [buffer]);
      });
    };
    recorder.onstop = () => {
      this.chain = this.chain.then(() => {
        if (this.done) return;
        this.done = true;
        this._release();
        this.send(TO_KERNEL_KIND.RECORDING_DONE, { id: this.id, chunks: this.seq });
        this.onEnd();
      });
    };
    recorder.onerror = (event) => console.warn("nbcall recorder", event);
    recorder.start(TIMESLICE_MS);
    this.send(TO_KERNEL_KIND.RECORDING_STARTED, { id: this.id, which, mime: this.mime });
    if (this.stopWanted) recorder.stop();
  }

  stop() {
    this.stopWanted = true;
    if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
  }
}
