// The one multistream subscription of an SFU session: a VideoRoom subscriber handle that
// carries every other member's media, kept in step with who publishes (subscribe to what
// is missing, ask again what did not come), Janus's offers answered one at a time, and the
// remote tracks gathered into one MediaStream per member.

import { refusalWords } from "./sfu_feeds.js";
import { send, makeAnswer, peerConnection } from "./sfu_janus.js";
import { REQUEST_TIMEOUT_MS } from "./sfu_waits.js";

const RESUBSCRIBE_MS = 3000; // a stream asked for and not in Janus's layout by then is asked for again
const SUBSCRIBE_TRIES = 4; // ... this often; then that member's media is given up on, in words
const NO_SUCH_FEED = 428; // the member left between being listed and being asked for

/** @typedef {import("./sfu_janus.js").PluginHandle} PluginHandle */
/** @typedef {import("./sfu_janus.js").JSEP} JSEP */

/**
 * @typedef {object} SubscriptionOptions
 * @property {import("./sfu_feeds.js").Feeds} feeds
 * @property {import("./sfu_layers.js").Layers} layers
 * @property {import("./sfu_waits.js").Waits} waits
 * @property {() => Promise<PluginHandle>} attach  a new VideoRoom handle whose messages come to onMessage
 * @property {() => Record<string, unknown>} joinBody  room, PIN and private id of the join
 * @property {(feed: string, stream: MediaStream) => void} onStream
 * @property {(words: string) => void} onError  something went wrong with one member's media
 * @property {(words: string) => void} fail  the subscription cannot work at all
 */

export class Subscription {
  /** @param {SubscriptionOptions} opts */
  constructor(opts) {
    this.opts = opts;
    /** @type {PluginHandle | null} */
    this.handle = null;
    /** @type {"none" | "attaching" | "joining" | "joined"} */
    this.state = "none";
    /** @type {Map<string, MediaStream>} publisher id → its media here */
    this.streams = new Map();
    /** @type {Map<string, {feed: string, at: number, tries: number}>} "feed\nmid" asked for, not yet in the layout */
    this.requested = new Map();
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retry = null;
    /** @type {Promise<void>} */
    this.chain = Promise.resolve();
    this.over = false;
  }

  /** Ready for a configure. */
  get ready() {
    return !this.over && this.state === "joined" && !!this.handle;
  }

  /** Ask for what the publishers send and the subscription does not carry yet. */
  update() {
    if (this.over || this.state === "attaching" || this.state === "joining") return;
    const { feeds, waits } = this.opts;
    const now = Date.now();
    const wanted = feeds.missing().filter(({ feed, mid }) => {
      const r = this.requested.get(`${feed}\n${mid}`);
      return !r || (now - r.at >= RESUBSCRIBE_MS && r.tries < SUBSCRIBE_TRIES);
    });
    if (!wanted.length) return;
    for (const { feed, mid } of wanted) {
      const key = `${feed}\n${mid}`;
      const tries = (this.requested.get(key)?.tries || 0) + 1;
      this.requested.set(key, { feed, at: now, tries });
      if (tries === SUBSCRIBE_TRIES) waits.later(() => this._givenUp(feed, key), RESUBSCRIBE_MS);
    }
    const streams = wanted.map(({ feed, mid }) => ({ feed, mid }));
    if (this.state === "none") this._join(streams);
    else send(/** @type {PluginHandle} */ (this.handle), { request: "subscribe", streams }).catch((err) => this.broken(err));
    if (this.retry === null) {
      this.retry = waits.later(() => {
        this.retry = null;
        this.update();
      }, RESUBSCRIBE_MS);
    }
  }

  /** @param {string} feed @param {string} key */
  _givenUp(feed, key) {
    const { feeds } = this.opts;
    if (!this.over && this.requested.has(key) && feeds.publishers.has(feed)) {
      this.opts.onError(`the SFU did not send ${feeds.publishers.get(feed)?.display || feed}'s media`);
    }
  }

  /** The first subscription: attach the handle and join with these streams. @param {{feed: string, mid: string}[]} streams */
  async _join(streams) {
    const { waits } = this.opts;
    this.state = "attaching";
    try {
      if (!this.handle) this.handle = await waits.bounded(this.opts.attach(), "attach the subscription");
      if (this.over) return;
      this.state = "joining";
      await waits.bounded(send(this.handle, { ...this.opts.joinBody(), request: "join", ptype: "subscriber", streams }), "take the subscription");
      waits.later(() => {
        if (this.state === "joining") this.opts.fail(`the SFU did not answer the subscription within ${REQUEST_TIMEOUT_MS / 1000} s`);
      }, REQUEST_TIMEOUT_MS);
    } catch (err) {
      this.broken(err);
    }
  }

  /** A request could not even be sent: the subscription is broken. @param {unknown} err */
  broken(err) {
    if (!this.over) this.opts.fail(`the SFU subscription failed: ${/** @type {Error} */ (err).message || err}`);
  }

  /** A message to the subscriber handle. @param {Record<string, any>} msg @param {JSEP} [jsep] */
  onMessage(msg, jsep) {
    if (this.over) return;
    if (msg.error_code) return this._refused(msg);
    if (msg.videoroom === "attached") this.state = "joined";
    const layout = msg.videoroom === "attached" || msg.videoroom === "updated";
    if (layout && Array.isArray(msg.streams)) this._layout(msg.streams);
    if (msg.substream !== undefined && msg.mid !== undefined) {
      const feed = this.opts.feeds.feedOf(msg.mid);
      if (feed) this.opts.layers.arrived(feed, msg.substream);
    }
    if (jsep && jsep.type === "offer") this._answer(jsep);
    if (layout) this.update(); // what came meanwhile
  }

  /** @param {Record<string, any>} msg */
  _refused(msg) {
    const joining = this.state === "joining";
    if (msg.error_code !== NO_SUCH_FEED) {
      if (joining) return this.opts.fail(refusalWords(msg.error_code, msg.error));
      this.opts.onError(`the SFU refused a subscription change: ${msg.error} (code ${msg.error_code})`);
    }
    // Ask again, soon, for whoever still publishes (a member that left is no longer missing).
    if (joining) this.state = "none";
    for (const r of this.requested.values()) r.at = 0;
    this.opts.waits.later(() => this.update(), 200);
  }

  /** Janus's layout of the subscription: who each m-line carries now. @param {any[]} streams */
  _layout(streams) {
    const { feeds, layers } = this.opts;
    const pc = peerConnection(this.handle);
    /** @type {Set<string>} */
    const changed = new Set();
    /** @type {[string, MediaStreamTrack][]} */
    const recycled = [];
    for (const { mid, from, to } of feeds.subscription(streams)) {
      const stream = from && this.streams.get(from);
      const transceiver = pc && pc.getTransceivers().find((t) => t.mid === mid);
      const track = transceiver && transceiver.receiver.track;
      if (from && stream && track && stream.getTracks().includes(track)) {
        stream.removeTrack(track); // the m-line now carries someone else, or no one
        changed.add(from);
      }
      // An m-line Janus recycled for another member: the browser may see no new track on it
      // (it stayed recvonly, its track unmuted: no ontrack, no unmute), so the member's stream
      // takes the receiver's track here, whatever janus.js says later.
      if (to && track && track.readyState !== "ended") recycled.push([to, track]);
    }
    for (const feed of changed) {
      const stream = /** @type {MediaStream} */ (this.streams.get(feed));
      // Nothing left: the member is leaving, and the publisher handle says so (onStreamGone) next.
      if (stream.getTracks().length && !recycled.some(([to]) => to === feed)) this.opts.onStream(feed, stream);
    }
    for (const feed of new Set(recycled.map(([to]) => to))) {
      for (const [to, track] of recycled) if (to === feed) this._add(feed, track, false);
      this.opts.onStream(feed, /** @type {MediaStream} */ (this.streams.get(feed)));
    }
    for (const m of feeds.mids.values()) this.requested.delete(`${m.feed}\n${m.feedMid}`);
    layers.relayout();
  }

  /** Answer Janus's offer (receive only) and start, one offer at a time. @param {JSEP} jsep */
  _answer(jsep) {
    this.chain = this.chain.then(async () => {
      if (this.over || !this.handle) return;
      try {
        const answer = await this.opts.waits.bounded(makeAnswer(this.handle, jsep), "get its offer answered");
        if (!this.over) await send(this.handle, { request: "start" }, answer);
      } catch (err) {
        this.broken(err);
      }
    });
  }

  /** A remote track came, or ended. @param {MediaStreamTrack} track @param {string} mid @param {boolean} on @param {{reason?: string}} [meta] */
  onRemoteTrack(track, mid, on, meta) {
    const feed = this.opts.feeds.feedOf(mid);
    if (this.over || !feed) return;
    const stream = this.streams.get(feed);
    if (on) {
      this._add(feed, track, true);
    } else if (stream && meta && meta.reason === "ended" && stream.getTracks().includes(track)) {
      // "mute" (nothing arrived for a while: the camera is off) keeps the track: it comes back.
      stream.removeTrack(track);
      this.opts.onStream(feed, stream);
    }
  }

  /**
   * The member's stream carries this track (made if it has none yet); onStream when it changed
   * and `tell`.  One track of each kind per member: a newer one (it re-published) replaces it.
   * @param {string} feed @param {MediaStreamTrack} track @param {boolean} tell
   */
  _add(feed, track, tell) {
    let stream = this.streams.get(feed);
    if (!stream) this.streams.set(feed, (stream = new MediaStream()));
    if (stream.getTracks().includes(track)) return;
    for (const old of stream.getTracks()) if (old.kind === track.kind) stream.removeTrack(old);
    stream.addTrack(track);
    if (tell) this.opts.onStream(feed, stream);
  }

  /** A member left: returns whether it had a stream here. @param {string} feed */
  forget(feed) {
    for (const [key, r] of this.requested) if (r.feed === feed) this.requested.delete(key);
    return this.streams.delete(feed);
  }

  /** The session ended (its timers are the session's, cleared with it). */
  end() {
    this.over = true;
    this.streams.clear();
    this.requested.clear();
    this.retry = null;
    this.handle = null;
  }
}
