// A stand-in for js/room/sfu.js's SfuSession (Janus): the room's tests start it, then play
// Janus's side: a publisher's feed arriving (publish), going (unpublish), the session's
// state.  RoomClient takes it through `phone.room.loadSfu = async () => FakeSfuSession`.

import { FakeMediaStream, FakeTrack } from "./media.js";

/** @typedef {import("../../room/sfu.js").SfuOptions} SfuSessionOptions */

export class FakeSfuSession {
  /** @type {FakeSfuSession[]} every session made since the last reset() */
  static instances = [];
  /** @type {Error | null} the next start() fails with it */
  static failNext = null;

  static reset() {
    FakeSfuSession.instances = [];
    FakeSfuSession.failNext = null;
  }

  /** @param {SfuSessionOptions} opts */
  constructor(opts) {
    this.opts = opts;
    this.started = false;
    this.closed = false;
    /** @type {[string, number, number][]} */
    this.tiles = [];
    /** @type {[string, MediaStreamTrack | null][]} */
    this.replaced = [];
    /** @type {unknown} what stats() answers (sfu.js's shape, with a quality per feed) */
    this.numbers = { feeds: {}, uplinkKbps: 0 };
    FakeSfuSession.instances.push(this);
  }

  async start() {
    const fail = FakeSfuSession.failNext;
    FakeSfuSession.failNext = null;
    if (fail) throw fail;
    this.started = true;
  }

  /** @param {string} publisherId @param {number} width @param {number} height */
  setTileSize(publisherId, width, height) {
    this.tiles.push([publisherId, width, height]);
  }

  /** @param {string} kind @param {MediaStreamTrack | null} track */
  async replaceTrack(kind, track) {
    this.replaced.push([kind, track]);
  }

  async stats() {
    return this.numbers;
  }

  close() {
    this.closed = true;
  }

  // -- what Janus does --

  /** A publisher's feed arrives. @param {string | number} publisherId */
  publish(publisherId) {
    const stream = /** @type {MediaStream} */ (/** @type {unknown} */ (new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")])));
    this.opts.onStream?.(String(publisherId), stream);
    return stream;
  }

  /** @param {string | number} publisherId */
  unpublish(publisherId) {
    this.opts.onStreamGone?.(String(publisherId));
  }

  /** @param {"new" | "connecting" | "connected" | "failed" | "closed"} state @param {string} [words] */
  state(state, words) {
    this.opts.onState?.(state, words);
  }
}
