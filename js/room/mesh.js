// The mesh: one PeerCall (js/call/peer_call.js: perfect negotiation, trickle ICE, ICE
// restart) per other member.  The server decides who offers in each pair (`offer`); that
// side negotiates first and is impolite, the other waits, polite.  Each link is its own:
// a member joining or leaving never renegotiates the others.  No data channel: room chat
// and media state go through the server, so every member hears them the same way.
//
// The local camera is one stream shared by every link (its tracks go on each connection);
// a link never stops them on close: the room does, once, when it leaves.

import { PeerCall } from "../call/peer_call.js";

/** @typedef {import("../call/peer_call.js").Signal} Signal */
/** @typedef {import("../call/peer_call.js").Kinds} Kinds */
/** @typedef {import("../call/stats.js").CallStats} CallStats */
/** @typedef {import("./members.js").Member} Member */

// A member may not make us queue without end: signals waiting on a link's chain, and
// candidates waiting for their description, are bounded (a real link needs a few dozen).
export const MAX_QUEUED_SIGNALS = 100;
export const MAX_PENDING_CANDIDATES = 100;

/**
 * @typedef {object} MeshOptions
 * @property {(to: Member, msg: Signal) => void} send  to the member, through the server, with `room`
 * @property {() => {iceServers: RTCIceServer[], iceTransportPolicy: RTCIceTransportPolicy}} ice  the phone's ICE settings, read per link
 * @property {(key: string, stream: MediaStream) => void} onStream  a member's media arrived (or changed)
 * @property {(key: string, state: RTCPeerConnectionState) => void} onState
 * @property {(key: string, words: string) => void} onLost  a link failed for good and was closed
 * @property {(key: string, err: unknown) => void} onError
 */

/** @typedef {{call: PeerCall, member: Member, queued: number}} Link */

export class MeshLinks {
  /** @param {MeshOptions} opts */
  constructor(opts) {
    this.opts = opts;
    /** @type {Map<string, Link>} member key -> its link */
    this.links = new Map();
    /** @type {MediaStream | null} the room's camera and microphone, once open */
    this.stream = null;
    /** @type {Kinds | null} the kinds still opening: offers announce them, attach() fills them */
    this.opening = null;
    this.attached = false; // the camera has opened (or could not): attach() ran
    this.closed = false;
  }

  /** The camera is opening these kinds (links made meanwhile announce them). @param {Kinds | null} kinds */
  setOpening(kinds) {
    this.opening = kinds;
  }

  /**
   * The camera opened (stream) or could not (null): every link sends its tracks, on the
   * transceivers it already announced (no renegotiation where it can be helped).
   * @param {MediaStream | null} stream
   */
  attach(stream) {
    this.stream = stream;
    this.opening = null;
    this.attached = true;
    for (const { call } of this.links.values()) call.attachMedia(stream);
  }

  /** @param {string} key */
  has(key) {
    return this.links.has(key);
  }

  get size() {
    return this.links.size;
  }

  /**
   * The link to a member (made once: a member already linked keeps its link).
   * @param {Member} member
   */
  add(member) {
    if (this.closed) return null;
    const known = this.links.get(member.key);
    if (known) return known.call;
    const key = member.key;
    const { iceServers, iceTransportPolicy } = this.opts.ice();
    /** @type {Link} */
    const link = /** @type {any} */ ({ member, queued: 0 });
    const mine = () => this.links.get(key) === link;
    link.call = new PeerCall({
      polite: !member.offer,
      iceServers,
      iceTransportPolicy,
      dataChannel: false,
      send: (msg) => {
        if (mine()) this.opts.send(link.member, msg);
      },
      onRemoteStream: (stream) => {
        if (mine()) this.opts.onStream(key, stream);
      },
      onConnectionState: (state) => {
        if (mine()) this.opts.onState(key, state);
      },
      onFailed: (_reason, words) => {
        if (!mine()) return;
        this.remove(key);
        this.opts.onLost(key, words || "the connection failed and an ICE restart did not bring it back");
      },
      onError: (err) => {
        if (mine()) this.opts.onError(key, err);
      },
    });
    this.links.set(key, link);
    if (member.offer) link.call.startAsOfferer(this.stream, this.opening);
    else link.call.startAsAnswerer(this.stream, this.opening);
    return link.call;
  }

  /**
   * An offer/answer/candidate from a member: to its link, in order.  False when there is
   * no link to that member, or it has queued too much already.
   * @param {string} key
   * @param {Signal} msg
   */
  handle(key, msg) {
    const link = this.links.get(key);
    if (!link) return false;
    if (link.queued >= MAX_QUEUED_SIGNALS) return false;
    if (msg.type === "candidate" && link.call.pendingCandidates.length >= MAX_PENDING_CANDIDATES) return false;
    link.queued += 1;
    link.call.handle(msg).finally(() => {
      link.queued -= 1;
    });
    return true;
  }

  /** Close the link to one member (it left, or the SFU carries it now). @param {string} key */
  remove(key) {
    const link = this.links.get(key);
    if (!link) return false;
    this.links.delete(key);
    link.call.close({ keepTracks: true }); // the camera is the room's: other links still send it
    return true;
  }

  /** The link's numbers (quality, loss, RTT), or null with no link. @param {string} key @returns {Promise<CallStats | null>} */
  async stats(key) {
    const link = this.links.get(key);
    return link ? link.call.stats() : null;
  }

  /** The receivers of a member's link (its audio level). @param {string} key @returns {RTCRtpReceiver[]} */
  receivers(key) {
    const link = this.links.get(key);
    const pc = link && link.call.pc;
    return pc && typeof pc.getReceivers === "function" ? pc.getReceivers() : [];
  }

  /**
   * Send `track` instead of the current one of its kind on every link (a device switched):
   * replaceTrack, so no link renegotiates unless it never sent that kind.
   * @param {MediaStreamTrack} track
   */
  async replaceTrack(track) {
    const jobs = [];
    for (const { call } of this.links.values()) {
      const sender = call.pc.getSenders().find((s) => s.track && s.track.kind === track.kind);
      jobs.push(call.replaceTrack(sender ? sender.track : null, track));
    }
    await Promise.all(jobs);
  }

  /** Close every link (the tracks stay: they are the room's). */
  close() {
    this.closed = true;
    for (const key of [...this.links.keys()]) this.remove(key);
  }
}
