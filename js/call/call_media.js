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
/** @typedef {{call: PeerCall, stream: MediaStream | null}} HandedOver  a call's connection and camera, given to a room */

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
    /** @type {Promise<OpenedMedia | null> | null} this call's camera and microphone, opening or open */
    this.early = null;
    /** @type {OpenedMedia | null} what `early` gave, once it has */
    this.opened = null;
    this.starting = false; // start() is under way for this call
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.statsTimer = undefined;
    this.previewOn = false; // keep the camera open between calls (the widget's `preview`, opt-in)
    /** @type {Promise<OpenedMedia> | null} the preview's camera and microphone, opening or open */
    this.preview = null;
    /** @type {OpenedMedia | null} what `preview` gave, once it has */
    this.previewed = null;
  }

  /**
   * Keep the camera open between calls (a live preview), or not.  A call then starts with
   * it already open: nothing to wait for.  Off by default: the camera light stays off
   * until a call.
   * @param {boolean} on
   */
  setPreview(on) {
    if (on === this.previewOn) return;
    this.previewOn = on;
    if (on) {
      this._openPreview();
      return;
    }
    const previewed = this.previewed;
    const opening = this.preview;
    this.preview = null;
    this.previewed = null;
    if (previewed && previewed.stream && this.localStream === previewed.stream && this.call) return; // the call's now: reset() stops it
    if (previewed) stopStream(previewed.stream);
    else if (opening) opening.then((media) => stopStream(media.stream));
    if (!this.call && previewed && this.localStream === previewed.stream) {
      this.localStream = null;
      this.onChange();
    }
  }

  _openPreview() {
    const opening = openMedia({ ...this.wish, ...this.devices });
    this.preview = opening;
    this.previewed = null;
    opening.then((media) => {
      if (this.preview !== opening) {
        stopStream(media.stream); // turned off (or reopened) meanwhile
        return;
      }
      this.previewed = media;
      if (!this.call && !this.early) {
        this.localStream = media.stream; // shown between calls
        this.onChange();
      }
    });
  }

  /** The preview's stream if it is open and alive. */
  _livePreview() {
    const previewed = this.previewed;
    const stream = previewed && previewed.stream;
    return stream && stream.getTracks().length && stream.getTracks().every((t) => t.readyState === "live") ? previewed : null;
  }

  /**
   * Open this call's camera and microphone (once per call): the caller's when it places the
   * call, the callee's when it accepts.  The negotiation does not wait for them (begin()).
   */
  openEarly() {
    if (this.early) return;
    const live = this.previewOn ? this._livePreview() : null;
    if (live) {
      // The preview is open: the call starts with it, nothing to wait for.
      this.opened = live;
      this.localStream = live.stream;
      this.early = Promise.resolve(live);
      return;
    }
    const epoch = this.epoch;
    this.early = openMedia({ ...this.wish, ...this.devices }).then((media) => {
      if (epoch !== this.epoch) {
        stopStream(media.stream); // cancelled, rejected or busy meanwhile
        return null;
      }
      this.localStream = media.stream; // from here the call owns it: reset() stops it
      this.opened = media;
      this.onChange();
      return media;
    });
  }

  /**
   * Make the call's PeerCall now, and open the media if not yet under way.  Never blocks the
   * state machine: signals that arrive before begin() queue up in `pending`.
   * @param {boolean} offerer
   * @param {() => CallHooks} hooks
   * @returns {{call: PeerCall}}
   */
  start(offerer, hooks) {
    this.starting = true;
    this.openEarly();
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
    return { call };
  }

  /**
   * Begin negotiating and apply the signals that waited.  A camera still opening does not
   * hold the offer or the answer back: they announce what it will send, and its tracks go
   * in when it opens (PeerCall.attachMedia); `onMediaError` hears why it could not.
   * @param {boolean} offerer
   * @param {(error: string) => void} [onMediaError]
   */
  begin(offerer, onMediaError = () => {}) {
    const call = this.call;
    if (!call) return;
    const opened = this.opened;
    const opening = opened ? null : { audio: !!this.wish.audio, video: !!this.wish.video };
    if (offerer) call.startAsOfferer(opened ? opened.stream : null, opening);
    else call.startAsAnswerer(opened ? opened.stream : null, opening);
    if (opened && opened.error) onMediaError(opened.error);
    if (!opened && this.early) {
      this.early.then((media) => {
        if (!media || this.call !== call) return; // the call ended (or was made anew) meanwhile
        call.attachMedia(media.stream);
        if (media.error) onMediaError(media.error);
      });
    }
    for (const msg of this.pending.splice(0)) call.handle(msg);
  }

  /**
   * Close the call's PeerCall, keeping its media, and make a new one (the caller's call was
   * prepared for an nbcall callee and the callee turned out to be a seed client).
   * @param {() => CallHooks} hooks
   * @param {(error: string) => void} [onMediaError]
   */
  remake(hooks, onMediaError) {
    if (this.call) this.call.close({ keepTracks: true });
    this.call = null;
    const started = this.start(true, hooks);
    this.begin(true, onMediaError);
    return started;
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

  /**
   * The call became a room: give its connection and camera away instead of closing them
   * (reset() then leaves them alone).  The preview's stream stays the preview's (turning the
   * preview off stops it): the room opens its own then (`stream` null), as does a camera
   * still opening (its tracks go to the call it was opened for, which is gone).
   * @returns {HandedOver | null}
   */
  handOver() {
    const call = this.call;
    if (!call) return null;
    const preview = this.previewed && this.previewed.stream;
    const stream = this.opened && this.localStream !== preview ? this.localStream : null;
    this.call = null;
    if (stream) this.localStream = null;
    return { call, stream };
  }

  /** Close the call's connection and media (the preview's camera stays open). */
  reset() {
    this.epoch += 1;
    clearInterval(this.statsTimer);
    this.statsTimer = undefined;
    const previewed = this.previewOn ? this.previewed : null;
    const keep = previewed && previewed.stream;
    if (this.call) this.call.close({ keepTracks: !!keep });
    this.call = null;
    if (this.localStream !== keep) stopStream(this.localStream);
    this.localStream = null;
    this.remoteStream = null;
    this.pending = [];
    this.early = null;
    this.opened = null;
    this.starting = false;
    if (this.previewOn) {
      const live = this._livePreview();
      if (live) this.localStream = live.stream;
      else if (this.previewed) this._openPreview(); // a track of it ended (a device switched mid-call)
    }
  }

  /** Send (or mute) microphone and camera. @param {{audio: boolean, video: boolean}} wish */
  setSend({ audio, video }) {
    this.wish = { audio, video };
    if (!this.localStream) return;
    for (const track of this.localStream.getAudioTracks()) track.enabled = !!audio;
    for (const track of this.localStream.getVideoTracks()) track.enabled = !!video;
  }

  /** Devices for the media opened next (and the preview, reopened with them). @param {{camera?: string, microphone?: string}} devices */
  setDevices({ camera, microphone }) {
    const changed = camera !== this.devices.camera || microphone !== this.devices.microphone;
    this.devices = { camera, microphone };
    if (changed && this.previewOn && !this.call && !this.early) {
      const old = this.previewed;
      this._openPreview();
      if (old) stopStream(old.stream);
    }
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
