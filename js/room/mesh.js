// The mesh: one PeerCall (js/call/peer_call.js: perfect negotiation, trickle ICE, ICE
// restart) per other member.  The server decides who offers in each pair (`offer`); that
// side negotiates first and is impolite, the other waits, polite.  Each link is its own:
// a member joining or leaving never renegotiates the others.  No data channel: room chat
// and media state go through the server, so every member hears them the same way.
//
// The local camera is one stream shared by every link (its tracks go on each connection);
// a link never stops them on close: the room does, once, when it leaves.
//
// A 1:1 call that became the room (docs/rooms.md "From a call") brings its connection: it
// is adopted as the link to the former peer (`adopt`), already connected, so the picture
// never stops; it negotiates on from where the call left it, with `room` on its signals.

import { PeerCall } from "../call/peer_call.js";
import { MessageType } from "../protocol.js";

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

/** @typedef {{call: PeerCall, member: Member, queued: number, adopted: boolean}} Link */

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
    for (const { call, adopted } of this.links.values()) {
      if (adopted) swapTracks(call, stream);
      else call.attachMedia(stream);
    }
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
    const { iceServers, iceTransportPolicy } = this.opts.ice();
    /** @type {Link} */
    const link = /** @type {any} */ ({ member, queued: 0, adopted: false });
    const bundlePolicy = "max-bundle"; // one transport's candidates per link, not one set per kind
    link.call = new PeerCall({ polite: !member.offer, iceServers, iceTransportPolicy, bundlePolicy, dataChannel: false, ...this._hooks(link) });
    this.links.set(member.key, link);
    if (member.offer) link.call.startAsOfferer(this.stream, this.opening);
    else link.call.startAsAnswerer(this.stream, this.opening);
    return link.call;
  }

  /**
   * Take a 1:1 call's connection as the link to `member`, its former peer: from now on it
   * signals through the room and reports to it.  Its data channel (the call's chat and
   * heartbeat, which a room does not use) closes.  A description of ours that the server
   * refused as the call moved (sent before we knew) goes again, through the room.
   * @param {Member} member
   * @param {PeerCall} call
   */
  adopt(member, call) {
    if (this.closed || this.links.has(member.key)) return null;
    /** @type {Link} */
    const link = { member, call, queued: 0, adopted: true };
    const hooks = this._hooks(link);
    call.polite = !member.offer;
    call.transmit = hooks.send;
    call.onRemoteStream = hooks.onRemoteStream;
    call.onConnectionState = hooks.onConnectionState;
    call.onFailed = hooks.onFailed;
    call.onError = hooks.onError;
    if (call.channel) call.channel.close();
    call.channel = null;
    this.links.set(member.key, link);
    if (call.remoteStream) this.opts.onStream(member.key, call.remoteStream);
    this.opts.onState(member.key, call.pc.connectionState);
    if (this.attached) swapTracks(call, this.stream);
    const local = call.pc.localDescription;
    if (call.pc.signalingState === "have-local-offer" && !call.makingOffer && local) call.send({ type: MessageType.OFFER, sdp: local.toJSON() });
    return call;
  }

  /**
   * A link's callbacks: each acts only while the link is still the member's.
   * @param {Link} link
   * @returns {Pick<import("../call/peer_call.js").PeerCallOptions, "send" | "onRemoteStream" | "onConnectionState" | "onFailed" | "onError">}
   */
  _hooks(link) {
    const key = link.member.key;
    const mine = () => this.links.get(key) === link;
    return {
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
    };
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
    for (const { call } of this.links.values()) jobs.push(sendTrack(call, track));
    await Promise.all(jobs);
  }

  /** Close every link (the tracks stay: they are the room's). */
  close() {
    this.closed = true;
    for (const key of [...this.links.keys()]) this.remove(key);
  }
}

/**
 * An adopted link already sends the call's tracks: the room's take their place, kind by
 * kind (replaceTrack: no renegotiation unless the call never sent that kind).  Transceivers
 * still waiting for a camera that was opening when the call moved get theirs the usual way.
 * @param {PeerCall} call
 * @param {MediaStream | null} stream
 */
function swapTracks(call, stream) {
  if (!stream || call.closed) return;
  if (call.reserved.size) {
    call.attachMedia(stream);
    return;
  }
  for (const track of stream.getTracks()) {
    sendTrack(call, track).catch((err) => {
      if (!call.closed) call.onError(err);
    });
  }
}

/**
 * `call` sends `track` in place of what it sends of that kind (replaceTrack: no
 * renegotiation unless it never sent that kind); nothing to do if it sends it already.
 * @param {PeerCall} call
 * @param {MediaStreamTrack} track
 */
async function sendTrack(call, track) {
  const sender = call.pc.getSenders().find((s) => s.track && s.track.kind === track.kind);
  if (sender && sender.track === track) return;
  await call.replaceTrack(sender ? sender.track : null, track);
}
