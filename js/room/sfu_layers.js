// Which simulcast layer each remote member is received in: the one that fits its tile
// (asked for with a VideoRoom `configure` on the subscription), and what Janus says it
// sends.  Janus moves a subscriber to another layer on that layer's next keyframe, and asks
// the publisher for one (a PLI) only when the layer is asked for: if that keyframe is lost,
// or comes before the layer flows (Chrome brings layers up as its bandwidth estimate
// grows), the subscriber stays on the lower layer for good.  So a layer not reached is
// asked for again, a few times.

import { layerFor, DEFAULT_LAYER } from "./sfu_feeds.js";

export const LAYER_NUDGE_MS = 1500;
export const LAYER_NUDGES = 12; // per layer asked for (18 s): a publisher that cannot send it is not pestered for ever

/**
 * @typedef {object} LayersOptions
 * @property {import("./sfu_waits.js").Waits} waits  its timers
 * @property {import("./sfu_feeds.js").Feeds} feeds  who publishes, and on which m-line
 * @property {(mid: string, layer: number) => void} configure  send the configure (the subscription is up)
 * @property {() => boolean} ready  whether the subscription can take a configure now
 */

export class Layers {
  /** @param {LayersOptions} opts */
  constructor(opts) {
    this.opts = opts;
    /** @type {Map<string, number>} substream asked for, per publisher */
    this.asked = new Map();
    /** @type {Map<string, {mid: string, layer: number}>} what the last configure said, per publisher */
    this.sent = new Map();
    /** @type {Map<string, number>} substream Janus says it sends, per publisher */
    this.received = new Map();
    /** @type {Map<string, {layer: number, count: number, timer: ReturnType<typeof setTimeout> | null}>} */
    this.nudges = new Map();
  }

  /** A tile of this size shows `feed`: ask for the layer that fits. @param {string} feed @param {number} width @param {number} height */
  fit(feed, width, height) {
    // Bounded: ids the room has not seen are kept too (a tile may come before its feed), but not without end.
    if (!this.asked.has(feed) && this.asked.size >= 2 * this.opts.feeds.limit) return;
    this.asked.set(feed, layerFor(width, height));
    this.apply(feed);
  }

  /** The layer asked for (Janus's default, the top one, until a tile size is set). @param {string} feed */
  target(feed) {
    return this.asked.get(feed) ?? DEFAULT_LAYER;
  }

  /** Janus now sends this layer of `feed`. @param {string} feed @param {number} layer */
  arrived(feed, layer) {
    this.received.set(feed, layer);
    this.watch(feed);
  }

  /** The subscription's layout changed: layers asked for go to the (maybe new) m-lines. */
  relayout() {
    for (const feed of this.asked.keys()) this.apply(feed);
    for (const feed of this.opts.feeds.publishers.keys()) this.watch(feed);
  }

  /** Tell Janus the layer asked for `feed` (once per change, or again when `force`d). @param {string} feed @param {boolean} [force] */
  apply(feed, force = false) {
    const layer = this.target(feed);
    const mid = this.opts.feeds.videoMid(feed);
    if (!mid || !this.opts.ready()) return;
    const last = this.sent.get(feed);
    if (!force && (last ? last.mid === mid && last.layer === layer : !this.asked.has(feed))) return;
    this.sent.set(feed, { mid, layer });
    this.opts.configure(mid, layer);
    this.watch(feed);
  }

  /** Not (yet) on the layer asked for: ask again in a while, a few times. @param {string} feed */
  watch(feed) {
    const layer = this.target(feed);
    if (!this.opts.feeds.simulcast(feed) || this.received.get(feed) === layer) return this._stop(feed);
    let nudge = this.nudges.get(feed);
    if (!nudge || nudge.layer !== layer) {
      this._stop(feed);
      this.nudges.set(feed, (nudge = { layer, count: 0, timer: null }));
    }
    if (nudge.timer !== null || nudge.count >= LAYER_NUDGES) return;
    const current = nudge;
    current.timer = this.opts.waits.later(() => {
      current.timer = null;
      if (this.nudges.get(feed) !== current || this.received.get(feed) === current.layer) return;
      current.count++;
      this.apply(feed, true);
    }, LAYER_NUDGE_MS);
  }

  /** @param {string} feed */
  _stop(feed) {
    const nudge = this.nudges.get(feed);
    if (nudge) this.opts.waits.clear(nudge.timer);
    this.nudges.delete(feed);
  }

  /** The member left. @param {string} feed */
  forget(feed) {
    this._stop(feed);
    for (const map of [this.asked, this.sent, this.received]) map.delete(feed);
  }

  clear() {
    for (const feed of [...this.nudges.keys()]) this._stop(feed);
    for (const map of [this.asked, this.sent, this.received]) map.clear();
  }
}
