// A room member on the SFU (a Janus VideoRoom, through janus-gateway): one publisher handle
// that joins with the id and token the signaling server gave and sends the camera in three
// simulcast layers, and one multistream subscriber handle that carries every other
// member's media, each member's video layer following the size of its tile.
//
// What Janus says is mapped to members in ./sfu_feeds.js; ./sfu_janus.js wraps janus.js.
// Every way this can go wrong (refused, unreachable, a request not answered, the
// connection or the media dropping) ends in onError + onState("failed", words): nothing
// waits forever.  close() leaves and releases everything, any number of times.

import { Feeds, simulcastEncodings, refusalWords, MAX_FEEDS, RID_ORDER } from "./sfu_feeds.js";
import { Layers } from "./sfu_layers.js";
import { janusLibrary, openSession, attach, send, makeOffer, takeAnswer, peerConnection } from "./sfu_janus.js";
import { Subscription } from "./sfu_subscription.js";
import { Waits } from "./sfu_waits.js";
import { Rates, readStats } from "./sfu_stats.js";

export { layerFor } from "./sfu_feeds.js";

export const START_TIMEOUT_MS = 20000; // connect, join and get the camera's media to Janus
const DESTROY_GRACE_MS = 2000; // Janus answers "destroy" at once; if not, drop the socket anyway

/** @typedef {import("./sfu_janus.js").PluginHandle} PluginHandle */
/** @typedef {import("./sfu_janus.js").JSEP} JSEP */
/** @typedef {"new" | "connecting" | "connected" | "failed" | "closed"} SfuState */
/** @typedef {"audio" | "video"} Kind */
/** @typedef {import("./sfu_stats.js").FeedStats} FeedStats */

/**
 * @typedef {object} SfuOptions
 * @property {string} url  Janus's ws(s):// or http(s):// URL
 * @property {string | number} room  the Janus room id (rooms have string ids: a number is sent as its string)
 * @property {string} token  this member's token (the room's `allowed` list)
 * @property {string} pin  the room's PIN
 * @property {string | number} id  the publisher id this member must join with
 * @property {string} [display]
 * @property {MediaStream | null} [localStream]  what to publish; null: receive only
 * @property {RTCIceServer[]} [iceServers]
 * @property {boolean} [simulcast]  VP8 simulcast in three layers (default true)
 * @property {(publisherId: string, stream: MediaStream) => void} [onStream]
 * @property {(publisherId: string) => void} [onStreamGone]
 * @property {(state: SfuState, words?: string) => void} [onState]
 * @property {(words: string) => void} [onError]
 * @property {number} [maxFeeds]  most other members kept (default 50, docs/rooms.md)
 * @property {import("./sfu_janus.js").JanusLibrary} [janus]  janus.js's Janus (the unit tests give a fake)
 */

const noop = () => {};
const CLOSED = "the SFU session was closed";

export class SfuSession {
  /** @param {SfuOptions} opts */
  constructor(opts) {
    this.opts = opts;
    this.simulcast = opts.simulcast !== false;
    this.onStream = opts.onStream || noop;
    this.onStreamGone = opts.onStreamGone || noop;
    this.onState = opts.onState || noop;
    this.onError = opts.onError || noop;
    /** @type {SfuState} */
    this.state = "new";
    this.words = "";
    this.over = false; // failed or closed: nothing reacts any more
    /** @type {Record<Kind, MediaStreamTrack | null>} what we send (or will, once published) */
    this.tracks = { audio: null, video: null };
    for (const t of opts.localStream ? opts.localStream.getTracks() : []) {
      if ((t.kind === "audio" || t.kind === "video") && !this.tracks[t.kind]) this.tracks[t.kind] = t;
    }
    this.feeds = new Feeds(String(opts.id), opts.maxFeeds || MAX_FEEDS);
    /** @type {import("./sfu_janus.js").JanusSession | null} */
    this.janus = null;
    /** @type {PluginHandle | null} */
    this.pub = null;
    this.privateId = undefined;
    this.published = false;
    this.waits = new Waits();
    this.layers = new Layers({
      waits: this.waits,
      feeds: this.feeds,
      ready: () => this.sub.ready,
      configure: (mid, layer) => {
        const handle = /** @type {PluginHandle} */ (this.sub.handle);
        send(handle, { request: "configure", streams: [{ mid, substream: layer }] }).catch((err) => this.sub.broken(err));
      },
    });
    this.sub = new Subscription({
      feeds: this.feeds,
      layers: this.layers,
      waits: this.waits,
      attach: () => attach(/** @type {import("./sfu_janus.js").JanusSession} */ (this.janus), this._callbacks("sub")),
      joinBody: () => ({ room: String(this.opts.room), pin: this.opts.pin, private_id: this.privateId }),
      onStream: (feed, stream) => this.onStream(feed, stream),
      onError: (words) => this.onError(words),
      fail: (words) => this._fail(words),
    });
    this.rates = new Rates();
    /** @type {(() => void) | null} */
    this.mediaUp = null;
    /** @type {import("./sfu_janus.js").JanusLibrary | null} */
    this.lib = null;
  }

  /**
   * Connect, join as publisher, publish, subscribe to everyone else.  Resolves once in the
   * room with our media flowing to Janus; rejects (after onError and onState("failed")) with
   * the words of what went wrong.
   */
  async start() {
    if (this.state !== "new") throw new Error(`start() on a session that is ${this.state}`);
    this._setState("connecting");
    const deadline = this.waits.later(() => this._fail(`the SFU did not let this member in within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    try {
      const lib = (this.lib = this.opts.janus || (await janusLibrary()));
      this._alive();
      const { session, created } = openSession(lib, {
        server: this.opts.url,
        iceServers: this.opts.iceServers || [],
        onLost: (why) => this._fail(`lost the connection to the SFU (${why})`),
      });
      this.janus = session;
      const reached = created.catch((err) => {
        throw new Error(`could not reach the SFU at ${this.opts.url}: ${err.message}`);
      });
      // Every step is bounded, and ends with the session: start() never waits on a Janus that is gone.
      await this.waits.bounded(reached, `answer at ${this.opts.url}`);
      // Closed while connecting: the session Janus just made is nobody's; end it too.
      if (this.over) session.destroy({ cleanupHandles: true, notifyDestroyed: false });
      this._alive();
      this.pub = await this.waits.bounded(attach(session, this._callbacks("pub")), "attach the VideoRoom plugin");
      this._alive();
      const { id, token, pin, room, display } = this.opts;
      const joined = this.waits.expect("pub", (m) => m.videoroom === "joined", "join the room", (m) => refusalWords(m.error_code, m.error));
      await this.waits.bounded(send(this.pub, { request: "join", ptype: "publisher", room: String(room), id: String(id), display: display || "", token, pin }), "take the join");
      const { msg } = await joined;
      this.privateId = msg.private_id;
      this._publishers(msg);
      if (this.tracks.audio || this.tracks.video) await this._publish({ ...this.tracks }, false);
      this._alive();
      this.waits.clear(deadline);
      this._setState("connected");
      // A track replaced while we were publishing goes out now.
      for (const kind of /** @type {Kind[]} */ (["audio", "video"])) {
        if (this._sentTrack(kind) !== this.tracks[kind]) await this.replaceTrack(kind, this.tracks[kind]);
      }
    } catch (err) {
      this.waits.clear(deadline);
      const words = this.over ? this.words || CLOSED : String(/** @type {Error} */ (err).message || err);
      this._fail(words);
      throw new Error(words);
    }
  }

  /**
   * The tile showing `publisherId` is this big (CSS pixels): ask Janus for the simulcast
   * layer that fits it (a configure on the subscription, only when the layer changes).
   * @param {string | number} publisherId @param {number} width @param {number} height
   */
  setTileSize(publisherId, width, height) {
    const feed = String(publisherId);
    if (!this.over) this.layers.fit(feed, width, height);
  }

  /**
   * The substream asked for `publisherId` (Janus's default, the top one, until a tile size
   * is set); null for a member not in the room.
   * @param {string | number} publisherId
   * @returns {number | null}
   */
  layer(publisherId) {
    const feed = String(publisherId);
    return this.layers.asked.has(feed) || this.feeds.publishers.has(feed) ? this.layers.target(feed) : null;
  }

  /** The substream Janus says it now sends for `publisherId` (null until it says). @param {string | number} publisherId */
  receivedLayer(publisherId) {
    return this.layers.received.get(String(publisherId)) ?? null;
  }

  /**
   * Send another track of this kind (camera switch), or none (null: muted, camera off):
   * the same sender when there is one (no renegotiation), else a new one negotiated with Janus.
   * @param {Kind} kind
   * @param {MediaStreamTrack | null} track
   */
  async replaceTrack(kind, track) {
    this.tracks[kind] = track;
    if (this.over || !this.pub || this.state !== "connected") return; // start() publishes what is there
    const transceiver = this._transceiver(kind);
    try {
      if (transceiver) {
        await transceiver.sender.replaceTrack(track);
        if (kind === "video" && track && this.simulcast) await this._fitLayers(transceiver.sender, track);
      } else if (track) {
        await this._publish({ audio: null, video: null, [kind]: track }, this.published);
      }
    } catch (err) {
      if (!this.over) this.onError(`could not send the new ${kind} to the SFU: ${/** @type {Error} */ (err).message || err}`);
    }
  }

  /**
   * What arrives per member (with its packet loss and quality), what we send, and the
   * subscriber connection's round trip.
   * @returns {Promise<{feeds: Record<string, FeedStats>, uplinkKbps: number, rtt_ms: number | null}>}
   */
  async stats() {
    if (this.over) return { feeds: {}, uplinkKbps: 0, rtt_ms: null };
    const layerOf = (/** @type {string} */ feed) => this.receivedLayer(feed);
    const feedOf = (/** @type {string} */ mid) => this.feeds.feedOf(mid);
    return readStats({ sub: peerConnection(this.sub.handle), pub: peerConnection(this.pub), feedOf, layerOf, rates: this.rates });
  }

  /**
   * The subscription's receivers by the publisher whose media they carry (by m-line): what
   * each member's audio level is read from (levels.js), with no AudioContext.  One pass over
   * the m-lines for every member (room_watch asks ~11 times a second).
   * @returns {Map<string, RTCRtpReceiver[]>}
   */
  receiversByFeed() {
    /** @type {Map<string, RTCRtpReceiver[]>} */
    const out = new Map();
    const pc = this.over ? null : peerConnection(this.sub.handle);
    for (const t of pc ? pc.getTransceivers() : []) {
      const feed = t.mid === null ? null : this.feeds.feedOf(t.mid);
      if (feed === null) continue;
      const list = out.get(feed);
      if (list) list.push(t.receiver);
      else out.set(feed, [t.receiver]);
    }
    return out;
  }

  /** The receivers that carry `publisherId`'s media. @param {string | number} publisherId @returns {RTCRtpReceiver[]} */
  receivers(publisherId) {
    return this.receiversByFeed().get(String(publisherId)) || [];
  }

  /** Leave the room, destroy the Janus session, close both connections; any number of times. */
  close() {
    if (this.state === "closed") return;
    this._teardown();
    this._setState("closed");
  }

  // ---- the publisher ----

  /**
   * Offer what we send and have Janus take it (publish, or configure when adding a kind).
   * @param {Record<Kind, MediaStreamTrack | null>} tracks @param {boolean} update
   */
  async _publish(tracks, update) {
    const pub = /** @type {PluginHandle} */ (this.pub);
    /** @type {import("./sfu_janus.js").TrackOption[]} */
    const list = [];
    // dontStop: the tracks are the page's camera and microphone, not janus.js's to stop.
    if (tracks.audio) list.push({ type: "audio", capture: tracks.audio, recv: false, dontStop: true });
    if (tracks.video) {
      const video = tracks.video;
      list.push({ type: "video", capture: video, recv: false, dontStop: true, simulcast: this.simulcast,
                  sendEncodings: this.simulcast ? simulcastEncodings(video.getSettings ? video.getSettings() : {}) : undefined }); // prettier-ignore
    }
    const up = update ? null : new Promise((resolve) => (this.mediaUp = () => resolve(undefined)));
    const jsep = await this.waits.bounded(makeOffer(pub, list), "get an offer made");
    // Smallest layer first (Chrome then caps every layer; sfu_feeds.js): Janus must be told.
    if (tracks.video && this.simulcast) jsep.rid_order = RID_ORDER;
    const done = this.waits.expect("pub", (m, j) => m.configured === "ok" && !!j, "publish", (m) => `the SFU refused this member's media: ${m.error} (code ${m.error_code})`);
    await this.waits.bounded(send(pub, { request: update ? "configure" : "publish" }, jsep), "take this member's media");
    const answer = await done;
    await this.waits.bounded(takeAnswer(pub, /** @type {JSEP} */ (answer.jsep)), "get its answer applied");
    if (tracks.video && !answer.msg.video_codec) this.onError("the SFU did not take this member's video (no codec in common)");
    this.published = true;
    if (up) await this.waits.bounded(up, "get this member's media to the SFU");
  }

  /** Our sending transceiver of this kind (its receiver's track tells the kind even with no track sent). @param {Kind} kind */
  _transceiver(kind) {
    const pc = peerConnection(this.pub);
    return (pc && pc.getTransceivers().find((t) => t.receiver.track && t.receiver.track.kind === kind)) || null;
  }

  /** @param {Kind} kind */
  _sentTrack(kind) {
    const transceiver = this._transceiver(kind);
    return transceiver ? transceiver.sender.track : null;
  }

  /** After a camera switch: simulcast layers sized for the new camera. @param {RTCRtpSender} sender @param {MediaStreamTrack} track */
  async _fitLayers(sender, track) {
    const params = sender.getParameters();
    const wanted = simulcastEncodings(track.getSettings ? track.getSettings() : {});
    if (!params.encodings || params.encodings.length !== wanted.length) return;
    params.encodings = params.encodings.map((e, i) => ({ ...e, ...wanted[i], active: e.active }));
    await sender.setParameters(params);
  }

  /** @param {Record<string, any>} msg @param {JSEP} [jsep] */
  _onPublisher(msg, jsep) {
    if (this.waits.answer("pub", msg, jsep)) {
      if (!msg.error_code && msg.videoroom === "event" && msg.publishers) this._publishers(msg); // a "configured" may list publishers too
      return;
    }
    if (msg.videoroom === "destroyed") this._fail("the SFU room was closed");
    else if (msg.leaving === "ok" && msg.reason === "kicked") this._fail("this member was removed from the SFU room");
    else if (msg.error_code) this.onError(`the SFU refused a request: ${msg.error} (code ${msg.error_code})`);
    else if (msg.videoroom === "event") this._publishers(msg);
  }

  /** Publishers came or went: streams gone, subscription brought up to date. @param {Record<string, any>} msg */
  _publishers(msg) {
    const { gone } = this.feeds.publisherEvent(msg);
    for (const id of gone) this._gone(id);
    this.sub.update();
  }

  /** @param {string} feed */
  _gone(feed) {
    this.layers.forget(feed);
    this.feeds.forget(feed); // its m-lines carry nothing now, whether or not Janus renegotiates them
    if (this.sub.forget(feed)) this.onStreamGone(feed);
  }

  // ---- plumbing ----

  /** janus.js callbacks for one handle. @param {"pub" | "sub"} which @returns {import("./sfu_janus.js").PluginCallbacks} */
  _callbacks(which) {
    const label = which === "pub" ? "sending" : "receiving";
    return {
      onmessage: (msg, jsep) => {
        if (this.over) return;
        if (which === "pub") this._onPublisher(msg, jsep);
        else this.sub.onMessage(msg, jsep);
      },
      // janus.js passes the reason of a hang-up too (its typings do not say so).
      webrtcState: /** @type {(up: boolean) => void} */ ((/** @type {boolean} */ up, /** @type {string} */ reason) => {
        if (this.over) return;
        if (up && which === "pub" && this.mediaUp) this.mediaUp();
        if (!up) this._fail(`the SFU hung up the ${label} connection${reason ? ` (${reason})` : ""}`);
      }),
      iceState: (state) => {
        if (!this.over && state === "failed") this._fail(`the ${label} media connection to the SFU failed (ICE)`);
      },
      onremotetrack: (track, mid, on, meta) => {
        if (which === "sub") this.sub.onRemoteTrack(track, mid, on, meta);
      },
    };
  }

  /** Throws once the session failed or was closed (a step of start() finishing too late). */
  _alive() {
    if (this.over) throw new Error(this.words || CLOSED);
  }

  /** @param {SfuState} state @param {string} [words] */
  _setState(state, words) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state, words);
  }

  /** Something went wrong for good: say it, and release everything. @param {string} words */
  _fail(words) {
    if (this.over) return;
    this.words = words;
    this._teardown();
    this.onError(words);
    this._setState("failed", words);
  }

  /** Release everything, once. */
  _teardown() {
    const wasOver = this.over;
    this.over = true;
    this.waits.end(new Error(this.words || CLOSED)); // start() and its waits end here
    this.mediaUp = null;
    this.sub.end();
    this.layers.clear();
    this.rates.clear();
    if (wasOver || !this.janus) return;
    const janus = this.janus;
    const sessionId = janus.getSessionId ? janus.getSessionId() : null;
    // No VideoRoom "leave" first: Janus 1.1 then tells the others' subscriptions nothing (their
    // m-lines stay until some later change); destroying the session leaves the room just as
    // fast, and renegotiates everyone's subscription without us.
    let done = false;
    const grace = setTimeout(() => {
      if (!done) janus.destroy({ unload: true, notifyDestroyed: false });
    }, DESTROY_GRACE_MS);
    const finish = () => {
      done = true;
      clearTimeout(grace);
    };
    janus.destroy({ cleanupHandles: true, notifyDestroyed: false, success: finish, error: finish });
    // janus.js keeps every session it ever made in Janus.sessions; this one is over.
    const registry = this.lib ? this.lib.sessions : undefined;
    if (registry && sessionId !== null) registry.delete(sessionId);
    this.pub = null;
  }
}
