// The media side of a phone's current call: the camera and microphone, the
// RTCPeerConnection (PeerCall) and the signals that arrive before it exists.  The Phone
// decides *when* (its state machine); this owns *what* is open, and closes it all in reset().

import { openMedia, stopStream } from "../media/media.js";
import { PeerCall } from "./peer_call.js";

const STATS_INTERVAL_MS = 1000; // the quality dot and `stats` refresh once a second

/** @typedef {import("../media/media.js").OpenedMedia} OpenedMedia */
/** @typedef {import("./peer_call.js").PeerCallOptions} PeerCallOptions */
/** @typedef {import("./peer_call.js").Signal} Signal */
/** @typedef {Omit<PeerCallOptions, "polite" | "iceServers" | "iceTransportPolicy" | "onRemoteStream">} CallHooks */

/**
 * @typedef {object} CallMediaOptions
 * @property {boolean} audio  send the microphone
 * @property {boolean} video  send the camera
 * @property {RTCIceServer[]} [iceServers]
 * @property {RTCIceTransportPolicy} [iceTransportPolicy]
 * @property {() => void} onChange  a stream appeared or changed
 */

export class CallMedia {
  /** @param {CallMediaOptions} opts */
  constructor({ audio, video, iceServers, iceTransportPolicy, onChange }) {
    this.wish = { audio, video }; // what to send
    /** @type {{camera?: string, microphone?: string}} device ids chosen in Python or the widget */
    this.devices = {};
    this.iceServers = iceServers || [];
    /** @type {RTCIceTransportPolicy} */
    this.iceTransportPolicy = iceTransportPolicy || "all";
    this.onChange = onChange;
    this.epoch = 0; // bumps on every reset, so late async work of an old call is dropped
    /** @type {MediaStream | null} */
    this.localStream = null;
    /** @type {MediaStream | null} */
    this.remoteStream = null;
    /** @type {PeerCall | null} */
    this.call = null;
    /** @type {Signal[]} offer/answer/candidate that arrive before the PeerCall exists */
    this.pending = [];
    /** @type {Promise<OpenedMedia | null> | null} the caller's camera, opening while the other side rings */
    this.early = null;
    this.starting = false; // start() is under way for this call
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.statsTimer = undefined;
  }

  /** The caller opens its camera while it rings, so the camera is off the critical path. */
  openEarly() {
    const epoch = this.epoch;
    this.early = openMedia({ ...this.wish, ...this.devices }).then((media) => {
      if (epoch !== this.epoch) {
        stopStream(media.stream); // cancelled, rejected or busy meanwhile
        return null;
      }
      this.localStream = media.stream; // from here the call owns it: reset() stops it
      this.onChange();
      return media;
    });
  }

  /**
   * Open the media (the caller's early one) and make the call's PeerCall.  Never blocks the
   * state machine: signals that arrive meanwhile queue up in `pending`.
   * @param {boolean} offerer
   * @param {() => CallHooks} hooks  asked once the media is open (the call may have moved on meanwhile:
   *   accepted while the camera opened, so no longer held)
   * @returns {Promise<{call: PeerCall, error: string} | null>} null when the call ended meanwhile
   */
  async start(offerer, hooks) {
    const epoch = this.epoch;
    this.starting = true;
    const early = offerer ? this.early : null;
    const media = await (early || openMedia({ ...this.wish, ...this.devices }));
    // A call ends only through reset(), which bumps the epoch: same epoch, same call.
    if (epoch !== this.epoch || !media) {
      if (!early && media) stopStream(media.stream);
      return null;
    }
    this.localStream = media.stream;
    const call = new PeerCall({
      ...hooks(),
      polite: !offerer,
      iceServers: this.iceServers,
      iceTransportPolicy: this.iceTransportPolicy,
      onRemoteStream: (remote) => {
        this.remoteStream = remote;
        this.onChange();
      },
    });
    this.call = call;
    return { call, error: media.error };
  }

  /** Begin negotiating and apply the signals that waited. @param {boolean} offerer */
  begin(offerer) {
    const call = this.call;
    if (!call) return;
    if (offerer) call.startAsOfferer(this.localStream);
    else call.startAsAnswerer(this.localStream);
    for (const msg of this.pending.splice(0)) call.handle(msg);
  }

  /**
   * Collect the call's numbers now and every second until reset().
   * @param {(stats: import("./stats.js").CallStats) => void} onStats
   */
  watchStats(onStats) {
    clearInterval(this.statsTimer);
    const tick = async () => {
      const call = this.call;
      if (!call) return;
      try {
        const numbers = await call.stats();
        if (this.call === call) onStats(numbers);
      } catch {
        // a closing connection has no stats
      }
    };
    tick();
    this.statsTimer = setInterval(tick, STATS_INTERVAL_MS);
  }

  /** Close the call's connection and media. */
  reset() {
    this.epoch += 1;
    clearInterval(this.statsTimer);
    this.statsTimer = undefined;
    if (this.call) this.call.close();
    this.call = null;
    stopStream(this.localStream);
    this.localStream = null;
    this.remoteStream = null;
    this.pending = [];
    this.early = null;
    this.starting = false;
  }

  /** Send (or mute) microphone and camera. @param {{audio: boolean, video: boolean}} wish */
  setSend({ audio, video }) {
    this.wish = { audio, video };
    if (!this.localStream) return;
    for (const track of this.localStream.getAudioTracks()) track.enabled = !!audio;
    for (const track of this.localStream.getVideoTracks()) track.enabled = !!video;
  }

  /** Devices for the media opened next. @param {{camera?: string, microphone?: string}} devices */
  setDevices({ camera, microphone }) {
    this.devices = { camera, microphone };
  }

  /** From the next call on. @param {RTCIceServer[]} servers @param {RTCIceTransportPolicy} policy */
  setIceConfig(servers, policy) {
    this.iceServers = servers || [];
    this.iceTransportPolicy = policy || "all";
  }

  /** The live local track of one kind, or null. @param {"audio" | "video"} kind */
  localTrack(kind) {
    const stream = this.localStream;
    return (stream && stream.getTracks().find((t) => t.kind === kind && t.readyState === "live")) || null;
  }

  /**
   * Send `track` instead of `old` without renegotiating (with no `old`: start sending a kind
   * the call began without).  Stops `old`.
   * @param {MediaStreamTrack | null} old
   * @param {MediaStreamTrack} track
   */
  async replaceLocalTrack(old, track) {
    const call = this.call;
    if (!call) throw new Error("no call");
    const stream = await call.replaceTrack(old, track);
    if (this.call !== call) {
      track.stop(); // the call ended meanwhile
      return;
    }
    this.localStream = stream;
    if (old) old.stop();
    this.onChange();
  }
}
