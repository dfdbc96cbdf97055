// One RTCPeerConnection for one call: perfect negotiation (the callee is polite),
// trickle ICE both ways, candidates queued until the remote description is set,
// signaling applied strictly in order, ICE restart when the connection fails.

import { MessageType, Reason } from "../protocol.js";
import { statsCollector, emptyStats } from "./stats.js";
import { IceWatch } from "./ice.js";
import { DATA_CHANNEL_ID, DATA_CHANNEL_LABEL } from "../messages.js";
import { toDescription, inDescription } from "./sdp.js";
import { reserveSender, sendLate } from "./local_media.js";

export { inDescription };

// The in-call data channel (chat, camera/mic state): negotiated with a fixed id, created
// with the connection on both sides, so it is in the first offer and needs no extra round.

const RESTART_AFTER_DISCONNECT_MS = 3000; // a blip shorter than this heals by itself
const GIVE_UP_AFTER_FAILURE_MS = 10000; // an ICE restart that has not helped by then won't

/** @typedef {{type: string, sdp?: unknown, candidate?: unknown}} Signal  offer/answer/candidate */

/**
 * @typedef {object} PeerCallOptions
 * @property {boolean} polite  the callee is polite: it yields on offer collisions
 * @property {RTCIceServer[]} [iceServers]
 * @property {RTCIceTransportPolicy} [iceTransportPolicy]
 * @property {(msg: Signal) => void} send  sends offer/answer/candidate to the peer
 * @property {(stream: MediaStream) => void} onRemoteStream
 * @property {(state: RTCPeerConnectionState) => void} onConnectionState
 * @property {(reason: string, words?: string) => void} onFailed  the connection cannot recover (and why)
 * @property {(err: unknown) => void} onError
 * @property {boolean} [dataChannel]  open the in-call data channel (not with seed clients: they have none)
 * @property {RTCBundlePolicy} [bundlePolicy]  "max-bundle" gathers for one transport only (room
 *   links: a newcomer offers to every member at once, and per-kind candidates would flood the server)
 * @property {boolean} [held]  prepare ahead of the answer: the offer and candidates are made
 *   at once but kept back (and the connect clock not started) until `release()`
 */

/** @typedef {{audio: boolean, video: boolean}} Kinds  which kinds a side sends */
/** @typedef {"audio" | "video"} Kind */
/** @type {readonly Kind[]} */
const KINDS = ["audio", "video"];

export class PeerCall {
  /** @param {PeerCallOptions} opts */
  constructor({ polite, iceServers, iceTransportPolicy, bundlePolicy, send, onRemoteStream, onConnectionState, onFailed, onError, dataChannel, held = false }) {
    this.polite = polite;
    this.transmit = send;
    /** @type {Signal[] | null} what was prepared while held */
    this.heldBack = held ? [] : null;
    this.onRemoteStream = onRemoteStream;
    this.onConnectionState = onConnectionState;
    this.onFailed = onFailed;
    this.onError = onError;
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [], iceTransportPolicy: iceTransportPolicy || "all", bundlePolicy: bundlePolicy || "balanced" });
    // Says why, and ends the attempt, when no connection can come of this configuration.
    this.ice = new IceWatch(this.pc, {
      policy: iceTransportPolicy,
      iceServers,
      onHopeless: (words) => {
        if (!this.closed) this.onFailed(Reason.FAILED, words);
      },
      held,
    });
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.negotiate = false; // the answerer only negotiates once the first offer is in
    /** @type {MediaStream | null} */
    this.localStream = null;
    this.tracksAdded = false;
    /** @type {Kinds | null} the kinds whose devices are still opening (attachMedia() brings them) */
    this.opening = null;
    /** @type {Map<Kind, RTCRtpTransceiver>} transceivers negotiated to send before their track exists */
    this.reserved = new Map();
    /** @type {MediaStream | null} the stream id (msid) the reserved senders announce */
    this.sendStream = null;
    /** @type {RTCIceCandidateInit[]} */
    this.pendingCandidates = [];
    /** @type {Promise<void>} */
    this.chain = Promise.resolve();
    this.closed = false;
    /** @type {MediaStream | null} */
    this.remoteStream = null;
    /** @type {Set<ReturnType<typeof setTimeout>>} */
    this.timers = new Set();
    this.connectedAt = 0;
    this.collectStats = statsCollector(this.pc);
    this.channel = dataChannel
      ? this.pc.createDataChannel(DATA_CHANNEL_LABEL, { negotiated: true, id: DATA_CHANNEL_ID, ordered: true })
      : null;

    const pc = this.pc;
    pc.onnegotiationneeded = () => this._negotiate();
    pc.onicecandidate = ({ candidate }) => {
      // Only real candidates: the seed's page would choke on a null end-of-candidates.
      if (candidate && !this.closed) this.send({ type: MessageType.CANDIDATE, candidate: candidate.toJSON() });
    };
    pc.ontrack = (event) => {
      const stream = event.streams && event.streams[0];
      if (stream) {
        this.remoteStream = stream;
      } else {
        if (!this.remoteStream) this.remoteStream = new MediaStream();
        this.remoteStream.addTrack(event.track);
      }
      this.onRemoteStream(this.remoteStream);
    };
    pc.onconnectionstatechange = () => this._connectionStateChanged();
  }

  /** Offer, candidates and anything else to the peer, in order (kept back while held). @param {Signal} msg */
  send(msg) {
    if (this.heldBack) this.heldBack.push(msg);
    else this.transmit(msg);
  }

  /**
   * The callee answered: send what was prepared, in order, and start the connect clock.
   * The offer goes as the connection describes it now, with the candidates gathered while
   * the callee rang in it: one message instead of the offer and a dozen candidates, each of
   * which would cross the signaling server and cost the callee an addIceCandidate.  Those
   * candidates are not sent again; later ones trickle as usual.
   */
  release() {
    const held = this.heldBack;
    if (!held || this.closed) return;
    this.heldBack = null;
    const local = this.pc.localDescription;
    let sdp = "";
    const last = held.map((m) => m.type).lastIndexOf(MessageType.OFFER);
    if (last >= 0 && local && local.type === "offer" && this.pc.signalingState === "have-local-offer") {
      held[last] = { type: MessageType.OFFER, sdp: local.toJSON() };
      sdp = local.sdp;
    }
    for (const msg of held) {
      if (sdp && msg.type === MessageType.CANDIDATE && inDescription(sdp, msg.candidate)) continue;
      this.transmit(msg);
    }
    this.ice.arm();
  }

  /**
   * The caller: add what we send (or receive-only transceivers) and let negotiation offer.
   * With `opening`, the camera/microphone of those kinds are still opening: the offer does
   * not wait for them (it announces them, and attachMedia() puts their tracks in).
   * @param {MediaStream | null} stream
   * @param {Kinds | null} [opening]
   */
  startAsOfferer(stream, opening = null) {
    this.localStream = stream;
    this.opening = opening;
    this.negotiate = true;
    this._addLocal(true);
  }

  /**
   * The callee: keep the stream until the offer arrives, then answer with it (with
   * `opening`: answer at once, announcing the kinds still opening; attachMedia() fills them).
   * @param {MediaStream | null} stream
   * @param {Kinds | null} [opening]
   */
  startAsAnswerer(stream, opening = null) {
    this.localStream = stream;
    this.opening = opening;
  }

  /**
   * The devices opened (stream) or could not (null): send their tracks on the transceivers
   * the negotiation already announced (replaceTrack: no new round), and stop announcing a
   * kind that did not open (one renegotiation).  Before the negotiation, the tracks are
   * simply added with it.
   * @param {MediaStream | null} stream
   */
  attachMedia(stream) {
    if (this.closed) return;
    this.localStream = stream;
    this.opening = null;
    if (!this.tracksAdded) return; // the answerer before the offer: _addLocal adds them
    const reserved = [...this.reserved];
    this.reserved.clear();
    const tracks = stream ? stream.getTracks() : [];
    for (const [kind, transceiver] of reserved) {
      const track = tracks.find((t) => t.kind === kind);
      if (track) {
        transceiver.sender.replaceTrack(track).catch((err) => {
          if (!this.closed) this.onError(err);
        });
      } else {
        transceiver.direction = transceiver.direction === "sendonly" ? "inactive" : "recvonly";
      }
    }
    for (const track of tracks) {
      // A kind the negotiation had no room for (a browser without setStreams): one more round.
      if (!reserved.some(([kind]) => kind === track.kind)) this._sendLate(track, stream);
    }
  }

  /** @param {boolean} offerer */
  _addLocal(offerer) {
    if (this.tracksAdded) return;
    this.tracksAdded = true;
    const stream = this.localStream;
    const kinds = new Set();
    if (stream) {
      for (const track of stream.getTracks()) {
        // addTrack reuses a transceiver the remote offer created, so no renegotiation.
        this.pc.addTrack(track, stream);
        kinds.add(track.kind);
      }
    }
    const opening = this.opening;
    for (const kind of KINDS) {
      if (kinds.has(kind)) continue;
      if (opening && opening[kind] && this._reserve(kind, offerer)) continue;
      // Without a camera we still want the other side's media: offer receive-only.
      if (offerer) this.pc.addTransceiver(kind, { direction: "recvonly" });
    }
  }

  /**
   * Negotiate sending `kind` before its track exists (its device is opening).
   * @param {Kind} kind
   * @param {boolean} offerer
   * @returns {boolean} reserved (false: the answerer cannot name the stream; attachMedia renegotiates)
   */
  _reserve(kind, offerer) {
    if (!this.sendStream) this.sendStream = new MediaStream();
    const transceiver = reserveSender(this.pc, kind, offerer, this.sendStream);
    if (transceiver) this.reserved.set(kind, transceiver);
    return !!transceiver;
  }

  /** Start sending `track` of a kind not negotiated yet (renegotiates). @param {MediaStreamTrack} track @param {MediaStream | null} stream */
  _sendLate(track, stream) {
    sendLate(this.pc, track, stream, (err) => {
      if (!this.closed) this.onError(err);
    });
  }

  async _negotiate() {
    if (!this.negotiate || this.closed) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      const local = this.pc.localDescription;
      if (local) this.send({ type: MessageType.OFFER, sdp: local.toJSON() });
    } catch (err) {
      if (!this.closed) this.onError(err);
    } finally {
      this.makingOffer = false;
    }
  }

  /**
   * Apply an offer/answer/candidate from the peer, strictly after the previous one.
   * @param {Signal} msg
   */
  handle(msg) {
    this.chain = this.chain
      .then(() => this._apply(msg))
      .catch((err) => {
        if (!this.closed) this.onError(err);
      });
    return this.chain;
  }

  /** @param {Signal} msg */
  async _apply(msg) {
    if (this.closed) return;
    const pc = this.pc;
    if (msg.type === MessageType.OFFER || msg.type === MessageType.ANSWER) {
      const description = toDescription(msg.type, msg.sdp);
      const isOffer = description.type === MessageType.OFFER;
      const collision = isOffer && (this.makingOffer || pc.signalingState !== "stable");
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      // An answer only makes sense while our offer is out; a stray one would throw.
      if (description.type === MessageType.ANSWER && pc.signalingState !== "have-local-offer") return;
      await pc.setRemoteDescription(description); // a polite collision rolls back implicitly
      if (isOffer) {
        this._addLocal(false);
        this.negotiate = true;
        await pc.setLocalDescription();
        const local = pc.localDescription;
        if (local) this.send({ type: MessageType.ANSWER, sdp: local.toJSON() });
      }
      const queued = this.pendingCandidates.splice(0);
      for (const candidate of queued) await this._addCandidate(candidate);
    } else if (msg.type === MessageType.CANDIDATE) {
      if (!msg.candidate) return;
      const candidate = /** @type {RTCIceCandidateInit} */ (msg.candidate);
      if (!pc.remoteDescription) {
        this.pendingCandidates.push(candidate);
        return;
      }
      await this._addCandidate(candidate);
    }
  }

  /** @param {RTCIceCandidateInit} candidate */
  async _addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      // Candidates of an offer we ignored in a collision are expected to fail.
      if (!this.ignoreOffer) throw err;
    }
  }

  /** @param {() => void} fn @param {number} ms */
  _later(fn, ms) {
    const id = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.add(id);
    return id;
  }

  _clearTimers() {
    for (const id of this.timers) clearTimeout(id);
    this.timers.clear();
  }

  _connectionStateChanged() {
    if (this.closed) return;
    const state = this.pc.connectionState;
    this.onConnectionState(state);
    if (state === "connected") {
      this.connectedAt = performance.now();
      this._clearTimers();
    } else if (state === "disconnected") {
      this._later(() => {
        if (this.pc.connectionState === "disconnected") this.restartIce();
      }, RESTART_AFTER_DISCONNECT_MS);
    } else if (state === "failed") {
      this.restartIce();
      this._later(() => {
        if (this.pc.connectionState !== "connected") this.onFailed(Reason.FAILED, this.ice.diagnose());
      }, GIVE_UP_AFTER_FAILURE_MS);
    }
  }

  /** Restart ICE: this side offers anew; perfect negotiation settles a collision with the peer's restart. */
  restartIce() {
    if (this.closed) return;
    this.pc.restartIce();
  }

  /**
   * Put `track` where `old` was: in its sender (replaceTrack, no renegotiation) and in the
   * local stream.  With no `old` (the call began without this kind), the receive-only
   * transceiver's sender starts sending, which needs one (perfect) renegotiation.
   * @param {MediaStreamTrack | null} old
   * @param {MediaStreamTrack} track
   * @returns {Promise<MediaStream>} the new local stream (a new object, so views re-attach)
   */
  async replaceTrack(old, track) {
    const pc = this.pc;
    const sender = old ? pc.getSenders().find((s) => s.track === old) : null;
    if (sender) {
      await sender.replaceTrack(track);
    } else {
      const tr = pc.getTransceivers().find((t) => t.receiver.track.kind === track.kind && !t.sender.track && t.currentDirection !== "stopped");
      if (tr) {
        await tr.sender.replaceTrack(track);
        if (tr.direction === "recvonly") tr.direction = "sendrecv";
        else if (tr.direction === "inactive") tr.direction = "sendonly";
      } else {
        pc.addTrack(track, this.localStream || new MediaStream());
      }
    }
    const others = this.localStream ? this.localStream.getTracks().filter((t) => t !== old) : [];
    this.localStream = new MediaStream([...others, track]);
    return this.localStream;
  }

  /** Numbers for Python, the quality dot and the tests (see stats.js). */
  async stats() {
    if (this.closed) return emptyStats();
    return this.collectStats();
  }

  /** @param {{keepTracks?: boolean}} [opts]  keepTracks: the local tracks go on (a call prepared anew) */
  close({ keepTracks = false } = {}) {
    if (this.closed) return;
    this.closed = true;
    this._clearTimers();
    this.ice.stop();
    if (this.channel) this.channel.close();
    const pc = this.pc;
    pc.onnegotiationneeded = pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = null;
    for (const sender of pc.getSenders()) {
      if (sender.track && !keepTracks) sender.track.stop();
    }
    pc.close();
  }
}
