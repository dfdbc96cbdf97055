// What the signaling server tells one Phone: the socket's status (signaling.js onStatus)
// and every message (onMessage).  The Phone keeps the state and the call; this reads each
// message, decides what it means for the call, and acts through the Phone (its
// `_transition`, `_newCall`, `_startPeer`, `_endCall`, `_send`), never a state of its own.
//
// Our own socket dropping does not end a connected call (docs/protocol.md "Calls and
// outages"): signaling re-registers with the credential and announces the call
// (`register.call`, Phone._announcement); `registered.server_id` tells the same server (no
// `call` in it: its grace ended the call) from a restarted one (it knows nothing yet: the
// call is kept until the peer announces it too, the heartbeat watching the media meanwhile).

import { MessageType, ErrorCode, Reason } from "../protocol.js";
import { END_REASONS, PEER_STATUSES } from "../messages.js";
import { State, pick } from "../names.js";
import { canCall, busy } from "./call_state.js";

/** @typedef {import("./phone.js").Phone} Phone */
/** @typedef {import("../types.js").ServerMessage} ServerMessage */
/** @typedef {import("../signaling/signaling.js").SignalingStatus} SignalingStatus */

const { REGISTERING, IDLE, CALLING, RINGING, CONNECTING, CONNECTED, ERROR } = State;
const NAME_RETRY_MS = 200;
const PEER_RECONNECTING = pick(PEER_STATUSES, "reconnecting"); // PeerStatus.RECONNECTING
/** @type {Set<string>} */
const SIGNALS = new Set([MessageType.OFFER, MessageType.ANSWER, MessageType.CANDIDATE]);
/** @type {Set<string>} */
const ENDINGS = new Set([MessageType.REJECT, MessageType.BUSY, MessageType.CANCEL, MessageType.HANGUP]);
// Nothing shown changes with these: no "change" event after them.
/** @type {Set<string>} */
const QUIET = new Set([MessageType.ANSWER, MessageType.CANDIDATE, MessageType.RINGING, MessageType.PONG, MessageType.REPLACED]);

/** @param {unknown} value */
const str = (value) => (typeof value === "string" ? value : "");

export class ServerInbox {
  /** @param {Phone} phone */
  constructor(phone) {
    this.phone = phone;
  }

  /** @param {SignalingStatus} status @param {string} detail */
  onStatus(status, detail) {
    const p = this.phone;
    if (status === "transport") {
      p.transport = detail;
    } else if (status === "registered") {
      p.everRegistered = true;
      p.room.onRegistered(); // a room the old socket was in is joined again
      return;
    } else if (status === "retrying") {
      if (p.everRegistered && p.signaling.attempt <= 1) {
        // A dropped socket that worked before: reconnect quietly once before calling it an error.
        if (!busy(p.state)) p._transition(REGISTERING, "socket dropped");
      } else {
        p.error = `signaling server ${p.server} unreachable: ${detail}`;
        if (!busy(p.state)) p._transition(ERROR, "server unreachable");
      }
    } else if (status === "replaced") {
      p._endCall(Reason.REPLACED, false);
      p._transition(ERROR, "name taken over");
      p.error = detail;
    } else {
      return;
    }
    p._changed();
  }

  /** The message comes from the other side of this call (the server's key says who). @param {ServerMessage} msg */
  fromPeer(msg) {
    const p = this.phone;
    if (typeof msg.from_key === "string") return !!p.peerKey && msg.from_key === p.peerKey;
    return !!p.peer && msg.from === p.peer; // a server that sends no keys
  }

  /** @param {ServerMessage} msg */
  onMessage(msg) {
    const p = this.phone;
    if (p.room.onServerMessage(msg)) return; // the room's (js/room/): never the 1:1 call's
    const type = msg.type;
    if (type === MessageType.REGISTERED) this._registered(msg);
    else if (type === MessageType.PRESENCE) {
      if (msg.truncated) p._send(MessageType.LIST);
      p.peers.leave(msg.left, msg.left_keys);
      p.peers.join(msg.joined, msg.joined_keys, p.key);
    } else if (type === MessageType.USERS) p.peers.replace(msg.users, msg.keys, p.key);
    else if (type === MessageType.INVITE) {
      if (canCall(p.state) && p.room.busyWords()) {
        p._send(MessageType.REJECT, { to: str(msg.from) }); // in a room: not ringing here
      } else if (canCall(p.state)) {
        const peer = str(msg.from);
        p._newCall(RINGING, "invited", { peer, peerKey: str(msg.from_key), incoming: peer, callId: str(msg.call_id) || null });
      } // else busy: the server tells the caller
    } else if (type === MessageType.ACCEPT) {
      if (p.state !== CALLING || !this.fromPeer(msg)) return;
      p.seedCall = !!msg.seed;
      p._transition(CONNECTING, "accepted");
      // The offer prepared since the call was placed leaves now, with its candidates: one
      // message after the accept.  A seed callee (the server accepts for it) has no data
      // channel: that offer is made anew.
      if (p.call && p.seedCall && p.call.channel) p._remakePeer();
      else if (p.call) p.call.release();
      else if (!p.media.starting) p._startPeer(true);
    } else if (ENDINGS.has(type)) {
      if (!this.fromPeer(msg) || !busy(p.state)) return;
      p._endCall(type === MessageType.BUSY ? Reason.BUSY : str(msg.reason) || type, false);
    } else if (SIGNALS.has(type)) this._signal(msg);
    else if (type === MessageType.PEER_STATUS) {
      if (!this.fromPeer(msg) || !busy(p.state)) return;
      if (msg.call_id && p.callId && msg.call_id !== p.callId) return;
      p.peerAway = msg.status === PEER_RECONNECTING;
    } else if (type === MessageType.ERROR) this._error(msg);
    if (!QUIET.has(type)) p._changed();
  }

  /** @param {ServerMessage} msg */
  _registered(msg) {
    const p = this.phone;
    p.key = str(msg.key) || p.key;
    p.user = str(msg.username) || p.user;
    p.peers.replace(msg.users, msg.keys, p.key);
    if (typeof msg.online === "number" && Array.isArray(msg.users) && msg.online > msg.users.length) {
      p._send(MessageType.LIST);
    }
    const call = msg.call && typeof msg.call === "object" ? msg.call : null;
    const ours = call && (!call.peer_key || call.peer_key === p.peerKey);
    const serverId = str(msg.server_id);
    // A server that says who it is, and is not the one we registered with before: it restarted.
    const restarted = !!serverId && !!p.serverId && serverId !== p.serverId;
    if (serverId) p.serverId = serverId;
    if (busy(p.state) && ours) {
      // The same server kept the call (what it told us meanwhile follows, in order); a
      // restarted one restored it, so the peer has announced it: its signaling is back.
      if (restarted) p.peerAway = false;
    } else if (busy(p.state) && restarted && (p.state === CONNECTED || p.state === CONNECTING)) {
      // A restarted server knows nothing: our register announced the call, the peer's will
      // too (then peer_status connected).  Media flows browser to browser meanwhile; the
      // heartbeat ends the call if it does not.
    } else if (busy(p.state)) {
      // Our socket dropped and the server ended the call meanwhile (its grace ran out), or a
      // call still ringing, which no server keeps across a drop.
      p._endCall(Reason.DISCONNECTED, false);
    } else if (p.state === REGISTERING || p.state === ERROR) {
      p._transition(IDLE, "registered");
    }
    p.error = "";
  }

  /** offer / answer / candidate from the server. @param {ServerMessage} msg */
  _signal(msg) {
    const p = this.phone;
    const fromPeer = this.fromPeer(msg);
    if (p.call && fromPeer) {
      p.call.handle(msg);
    } else if (fromPeer && (p.state === CONNECTING || p.state === RINGING)) {
      // Signals of the call being set up (media still opening), or a repeated seed offer.
      if (msg.type === MessageType.OFFER && p.state === RINGING && p.seedCall) p.media.pending = [];
      p.media.pending.push(msg);
    } else if (msg.type === MessageType.OFFER && canCall(p.state)) {
      // A seed client calls with a plain offer and no invite: ring like any call.
      const peer = str(msg.from);
      p._newCall(RINGING, "seed offer", { peer, peerKey: str(msg.from_key), incoming: peer, seedCall: true });
      p.media.pending = [msg];
    }
  }

  /** @param {ServerMessage} msg */
  _error(msg) {
    const p = this.phone;
    const text = `${msg.code}: ${msg.message}`;
    if (msg.request === MessageType.REGISTER) {
      if (msg.code === ErrorCode.NAME_TAKEN && performance.now() < p.nameGraceUntil) {
        clearTimeout(p.nameRetry);
        p.nameRetry = setTimeout(() => p.signaling.register(), NAME_RETRY_MS);
        return;
      }
      if (busy(p.state)) p._endCall(Reason.DISCONNECTED, false);
      p._transition(ERROR, `register refused: ${msg.code}`);
      p.error = `cannot register as ${p.user}: ${text}`;
      p.signaling.close();
      return;
    }
    if (msg.code === ErrorCode.NO_CALL && (msg.request === MessageType.HANGUP || msg.request === MessageType.CANCEL)) {
      return; // a call the server had already forgotten (a restart, a lost peer): over here too
    }
    if (msg.request === MessageType.INVITE && p.state === CALLING) {
      const code = str(msg.code);
      const known = /** @type {readonly string[]} */ (END_REASONS).includes(code);
      p._endCall(code === ErrorCode.BUSY ? Reason.BUSY : known ? code : Reason.FAILED, false);
    } else if (SIGNALS.has(msg.request) && msg.code === ErrorCode.UNKNOWN_PEER && p.call) {
      p._endCall(Reason.DISCONNECTED, false);
    }
    p.error = text;
  }
}
