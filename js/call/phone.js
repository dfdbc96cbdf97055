// The call of one widget model: registration, presence, ringing, the peer connection and
// its media.  One Phone per model (created in `initialize`); views only display it, so
// several views of one widget show the same call.
//
// State changes only through `_transition` (call_state.js has the table).  Listeners are
// told through events: "change" (anything shown changed), "state" (to, from, why),
// "callstart" (the PeerCall), "connected", "callend".  In-call features act through
// methods (phone.setError; phone.media: setDevices, replaceLocalTrack...), never by
// writing fields.
//
// One class for one job: the actions (placeCall, accept, reject, hangup), what the
// signaling server says (its socket's status and every message, read after the room has
// taken its own: RoomClient.onServerMessage) and the peer connection's life all change the
// same call, so they live together; signaling.js carries the messages, call_media.js
// the connection and camera.
//
// Outages (docs/protocol.md "Calls and outages"): the peer's liveness is a heartbeat
// (heartbeat.js; what its statuses mean is liveness.js).  Our own socket dropping does not
// end a connected call: signaling re-registers with the credential and announces the call
// (`register.call`, `_announcement`); `registered.server_id` tells the same server (no
// `call` in it: its grace ended the call) from a restarted one (it knows nothing yet: the
// call is kept until the peer announces it too, the heartbeat watching the media
// meanwhile).  A connected call that becomes a room is handed over to it (handOver;
// docs/rooms.md "From a call").

import { MessageType, ErrorCode, Reason } from "../protocol.js";
import { END_REASONS, PageError } from "../messages.js";
import { fail } from "../failure.js";
import { State } from "../names.js";
import { Emitter } from "../emitter.js";
import { Signaling } from "../signaling/signaling.js";
import { CallState, canCall, inCall, busy } from "./call_state.js";
import { CallMedia } from "./call_media.js";
import { PeerStatus, DEFAULT_LOST_AFTER_S, validLostAfter } from "./liveness.js";
import { Heartbeat } from "./heartbeat.js";
import { Peers } from "./peers.js";
import { registerPhone, unregisterPhone } from "../registry.js";
import { randomId } from "../ids.js";
import { RoomClient } from "../room/room_client.js";

/** @typedef {import("./call_state.js").CallStateName} CallStateName */
/** @typedef {import("../types.js").PhoneEvents} PhoneEvents */
/** @typedef {import("../types.js").PhoneOptions} PhoneOptions */
/** @typedef {import("../failure.js").Outcome} Outcome */
/** @typedef {import("../types.js").ServerMessage} ServerMessage */
/** @typedef {import("../wire.js").ServerOffer | import("../wire.js").ServerAnswer | import("../wire.js").ServerCandidate} Signal  what the other side negotiates with */
/** @typedef {import("../signaling/signaling.js").SignalingStatus} SignalingStatus */

const { REGISTERING, IDLE, CALLING, RINGING, CONNECTING, CONNECTED, ENDED, ERROR } = State;
const NAME_GRACE_MS = 5000;
const NAME_RETRY_MS = 200;
/** @type {Set<string>} */
const SIGNALS = new Set([MessageType.OFFER, MessageType.ANSWER, MessageType.CANDIDATE]);
/** @type {Set<string>} */
const ENDINGS = new Set([MessageType.REJECT, MessageType.BUSY, MessageType.CANCEL, MessageType.HANGUP]);
// Nothing shown changes with these: no "change" event after them.
/** @type {Set<string>} */
const QUIET = new Set([MessageType.ANSWER, MessageType.CANDIDATE, MessageType.RINGING, MessageType.PONG, MessageType.REPLACED]);

/** @param {unknown} value */
const str = (value) => (typeof value === "string" ? value : "");

export { PeerStatus, DEFAULT_LOST_AFTER_S };

export class Phone {
  /** @param {PhoneOptions} opts */
  constructor({ user, server, credential, iceServers, iceTransportPolicy, audio, video, plan, replaces, lostAfter }) {
    this.user = user;
    this.key = ""; // our own key, from `registered`
    this.registryName = user;
    this.server = server;
    this.transport = ""; // which transport reaches the server: same-origin, direct or kernel
    this.media = new CallMedia({ audio, video, iceServers, iceTransportPolicy, onChange: () => this.emitChange() });
    this.machine = new CallState(REGISTERING);
    /** @type {Emitter<PhoneEvents>} */
    this.events = new Emitter();
    this.peer = ""; // the other side of the current or last call, as the server names it
    this.peerKey = ""; // its key: what messages from it carry as from_key
    this.incoming = "";
    this.peers = new Peers();
    this.error = "";
    this.endReason = "";
    /** @type {Record<string, unknown>} */
    this.stats = {};
    /** @type {string | null} */
    this.callId = null;
    this.seedCall = false; // the peer speaks the seed's protocol: plain offer, no invite
    this.setupStart = 0;
    this.everRegistered = false;
    // This widget replaced one of the same name (a cell run again): that one's registration
    // may still be leaving the server, so name_taken is retried for a few seconds.
    this.nameGraceUntil = replaces ? performance.now() + NAME_GRACE_MS : 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.nameRetry = undefined;
    this.connectedAt = 0; // Date.now() when the last call connected
    this.lostAfterMs = validLostAfter(lostAfter) * 1000;
    /** @type {Heartbeat | null} the peer's liveness while connected (_watchPeer) */
    this.heartbeat = null;
    this.peerSilent = false; // the heartbeat hears nothing from the peer
    this.peerAway = false; // the server says the peer's signaling dropped (peer_status)
    this.serverId = ""; // registered.server_id: which server instance we registered with last
    this.room = new RoomClient(this); // the group call (docs/rooms.md): hears the server first
    this.signaling = new Signaling({
      url: server,
      username: user,
      credential,
      onMessage: (msg) => this._onServerMessage(msg),
      onStatus: (status, detail) => this._onSignalingStatus(status, detail || ""),
      plan,
      announce: () => this._announcement(),
      urgent: () => busy(this.state),
    });
    registerPhone(user, this);
  }

  start() {
    this.signaling.start();
  }

  /** @returns {CallStateName} */
  get state() {
    return this.machine.state;
  }

  /** The call's peer connection side (null between calls). */
  get call() {
    return this.media.call;
  }

  get pc() {
    return this.media.call ? this.media.call.pc : null;
  }

  get localStream() {
    return this.media.localStream;
  }

  get remoteStream() {
    return this.media.remoteStream;
  }

  /**
   * How the other side of a connected call is doing: "" with no connected call,
   * "reconnecting" while nothing comes from it or its signaling is down, else "connected".
   * @returns {PeerStatus}
   */
  get peerStatus() {
    if (this.state !== CONNECTED) return PeerStatus.NONE;
    return this.peerSilent || this.peerAway ? PeerStatus.RECONNECTING : PeerStatus.CONNECTED;
  }

  /** Signals of this call that arrived before its PeerCall. */
  get pendingSignals() {
    return this.media.pending;
  }

  /**
   * @template {keyof PhoneEvents} K
   * @param {K} event
   * @param {(...args: PhoneEvents[K]) => void} fn
   */
  on(event, fn) {
    return this.events.on(event, fn);
  }

  /** Be told of every change (the "change" event). @param {(phone: Phone) => void} fn */
  subscribe(fn) {
    return this.events.on("change", fn);
  }

  /**
   * Tell the listeners that something shown changed (the "change" event).  The Phone says so
   * itself after what it does; this is for what changes beside it: the call handed over to
   * a room (from_call.js), a transceiver's direction.
   */
  emitChange() {
    this.events.emit("change", this);
  }

  /** The one way the state changes. @param {CallStateName} to @param {string} why */
  _transition(to, why) {
    const from = this.state;
    if (this.machine.transition(to, why)) this.events.emit("state", to, from, why);
  }

  /** @param {string} type @param {Record<string, unknown>} [fields] */
  _send(type, fields = {}) {
    this.signaling.send({ type, ...fields });
  }

  // -- actions (from Python or the buttons): each returns "" or why not (failure.js) ------

  /** Ring a user this page lists as online. @param {string} to @returns {Outcome} */
  placeCall(to) {
    if (!to) return fail(ErrorCode.INVALID_NAME, "whom to call?");
    if (to === this.user) return fail(ErrorCode.SELF_CALL, "you cannot call yourself");
    if (!canCall(this.state)) {
      const offline = this.state === REGISTERING || this.state === ERROR;
      return fail(offline ? ErrorCode.NOT_REGISTERED : PageError.IN_CALL, `cannot call while ${this.state}`);
    }
    const inRoom = this.room.busyWords();
    if (inRoom) return fail(PageError.IN_ROOM, inRoom);
    const peerKey = this.peers.keyOf(to);
    if (!peerKey) return fail(ErrorCode.UNKNOWN_PEER, `${to} is not online`);
    const peer = this.peers.get(peerKey) || to;
    const callId = randomId(6);
    // The invite leaves first (nothing shown waits on it); then, while the callee rings, the
    // camera opens and the offer and candidates are made beside it, held until the callee
    // accepts: the offer does not wait for the camera (call_media.js begin()).
    this._newCall(CALLING, "placed", { peer, peerKey, callId }, () => {
      this.setupStart = performance.now();
      this._send(MessageType.INVITE, { to: peer, call_id: callId });
    });
    this._startPeer(true);
    return "";
  }

  /** @returns {Outcome} */
  accept() {
    if (this.state !== RINGING) return fail(ErrorCode.NO_CALL, `nothing to accept (${this.state})`);
    this.setupStart = performance.now();
    if (!this.seedCall) this._send(MessageType.ACCEPT, { to: this.peer });
    this.incoming = "";
    this._transition(CONNECTING, "answered");
    this._startPeer(false);
    return "";
  }

  /** @returns {Outcome} */
  reject() {
    if (this.state !== RINGING) return fail(ErrorCode.NO_CALL, `nothing to reject (${this.state})`);
    // A seed caller cannot be told "rejected"; hang up so the server stops tracking it.
    if (this.seedCall) this._send(MessageType.HANGUP, { to: this.peer, reason: Reason.REJECTED });
    else this._send(MessageType.REJECT, { to: this.peer });
    this._endCall(Reason.REJECTED, false);
    this.emitChange();
    return "";
  }

  /** @returns {Outcome} */
  hangup() {
    if (this.state === RINGING) return this.reject();
    if (!inCall(this.state)) return fail(ErrorCode.NO_CALL, `no call to hang up (${this.state})`);
    const cancel = this.state === CALLING;
    this._send(cancel ? MessageType.CANCEL : MessageType.HANGUP, { to: this.peer });
    this._endCall(cancel ? Reason.CANCELLED : Reason.HANGUP, false);
    this.emitChange();
    return "";
  }

  // -- for the model and the in-call features ------------------------------------------

  /**
   * Keep the camera open between calls (the widget's `preview`; off by default): a call then
   * starts with it open, and the view can show it.  Turned off, the camera closes (a call in
   * progress keeps it until it ends).
   * @param {boolean} on
   */
  setPreview(on) {
    this.media.setPreview(!!on);
    this.emitChange();
  }

  /** Seconds of silence after which a call is lost (the widget's lost_after). @param {unknown} seconds */
  setLostAfter(seconds) {
    this.lostAfterMs = validLostAfter(seconds) * 1000;
    if (this.heartbeat) this.heartbeat.setLostAfter(this.lostAfterMs);
  }

  /** What `register` announces: the call we are in, for a server that restarted meanwhile. */
  _announcement() {
    if (!(this.state === CONNECTED || this.state === CONNECTING) || !this.peer || !this.callId || this.seedCall) return null;
    return { peer: this.peer, call_id: this.callId };
  }

  /** Show a problem in words (in the widget and the `error` trait). @param {string} text */
  setError(text) {
    this.error = text;
    this.emitChange();
  }

  // -- what the signaling server says ----------------------------------------------------

  /** @param {SignalingStatus} status @param {string} detail */
  _onSignalingStatus(status, detail) {
    if (status === "transport") {
      this.transport = detail;
    } else if (status === "registered") {
      this.everRegistered = true;
      this.room.onRegistered(); // a room the old socket was in is joined again
      return;
    } else if (status === "retrying") {
      if (this.everRegistered && this.signaling.attempt <= 1) {
        // A dropped socket that worked before: reconnect quietly once before calling it an error.
        if (!busy(this.state)) this._transition(REGISTERING, "socket dropped");
      } else {
        this.error = `signaling server ${this.server} unreachable: ${detail}`;
        if (!busy(this.state)) this._transition(ERROR, "server unreachable");
      }
    } else if (status === "replaced") {
      this._endCall(Reason.REPLACED, false);
      this._transition(ERROR, "name taken over");
      this.error = detail;
    } else {
      return;
    }
    this.emitChange();
  }

  /** The message comes from the other side of this call (the server's key says who). @param {ServerMessage} msg */
  _fromPeer(msg) {
    if (typeof msg.from_key === "string") return !!this.peerKey && msg.from_key === this.peerKey;
    return !!this.peer && msg.from === this.peer; // a server that sends no keys
  }

  /**
   * One message from the server.  Each branch reads it as the wire declares it (js/wire.js,
   * generated from nbcall/signaling/wire.py), still defensively: a server is not trusted to
   * send only what it declares.
   * @param {ServerMessage} raw
   */
  _onServerMessage(raw) {
    if (this.room.onServerMessage(raw)) return; // the room's (js/room/): never the 1:1 call's
    const type = raw.type;
    if (type === MessageType.REGISTERED) this._registered(/** @type {import("../wire.js").ServerRegistered} */ (raw));
    else if (type === MessageType.PRESENCE) {
      const msg = /** @type {import("../wire.js").ServerPresence} */ (raw);
      if (msg.truncated) this._send(MessageType.LIST);
      this.peers.leave(msg.left, msg.left_keys);
      this.peers.join(msg.joined, msg.joined_keys, this.key);
    } else if (type === MessageType.USERS) {
      const msg = /** @type {import("../wire.js").ServerUsers} */ (raw);
      this.peers.replace(msg.users, msg.keys, this.key);
    } else if (type === MessageType.INVITE) {
      const msg = /** @type {import("../wire.js").ServerInvite} */ (raw);
      if (canCall(this.state) && this.room.busyWords()) {
        this._send(MessageType.REJECT, { to: str(msg.from) }); // in a room: not ringing here
      } else if (canCall(this.state)) {
        const peer = str(msg.from);
        this._newCall(RINGING, "invited", { peer, peerKey: str(msg.from_key), incoming: peer, callId: str(msg.call_id) || null });
      } // else busy: the server tells the caller
    } else if (type === MessageType.ACCEPT) {
      const msg = /** @type {import("../wire.js").ServerAccept} */ (raw);
      if (this.state !== CALLING || !this._fromPeer(msg)) return;
      this.seedCall = !!msg.seed;
      this._transition(CONNECTING, "accepted");
      // The offer prepared since the call was placed leaves now, with its candidates: one
      // message after the accept.  A seed callee (the server accepts for it) has no data
      // channel: that offer is made anew.
      if (this.call && this.seedCall && this.call.channel) this._remakePeer();
      else if (this.call) this.call.release();
      else if (!this.media.starting) this._startPeer(true);
    } else if (type === MessageType.BUSY) {
      if (!this._fromPeer(raw) || !busy(this.state)) return;
      this._endCall(Reason.BUSY, false);
    } else if (ENDINGS.has(type)) {
      const msg = /** @type {import("../wire.js").ServerReject | import("../wire.js").ServerCancel | import("../wire.js").ServerHangup} */ (raw);
      if (!this._fromPeer(msg) || !busy(this.state)) return;
      this._endCall(str(msg.reason) || type, false);
    } else if (SIGNALS.has(type)) this._signal(/** @type {Signal} */ (raw));
    else if (type === MessageType.PEER_STATUS) {
      const msg = /** @type {import("../wire.js").ServerPeerStatus} */ (raw);
      if (!this._fromPeer(msg) || !busy(this.state)) return;
      if (msg.call_id && this.callId && msg.call_id !== this.callId) return;
      this.peerAway = msg.status === PeerStatus.RECONNECTING;
    } else if (type === MessageType.ERROR) this._serverError(/** @type {import("../wire.js").ServerError} */ (raw));
    if (!QUIET.has(type)) this.emitChange();
  }

  /** @param {import("../wire.js").ServerRegistered} msg */
  _registered(msg) {
    this.key = str(msg.key) || this.key;
    this.user = str(msg.username) || this.user;
    this.peers.replace(msg.users, msg.keys, this.key);
    if (typeof msg.online === "number" && Array.isArray(msg.users) && msg.online > msg.users.length) {
      this._send(MessageType.LIST);
    }
    const call = msg.call && typeof msg.call === "object" ? msg.call : null;
    const ours = call && (!call.peer_key || call.peer_key === this.peerKey);
    const serverId = str(msg.server_id);
    // A server that says who it is, and is not the one we registered with before: it restarted.
    const restarted = !!serverId && !!this.serverId && serverId !== this.serverId;
    if (serverId) this.serverId = serverId;
    if (busy(this.state) && ours) {
      // The same server kept the call (what it told us meanwhile follows, in order); a
      // restarted one restored it, so the peer has announced it: its signaling is back.
      if (restarted) this.peerAway = false;
    } else if (busy(this.state) && restarted && (this.state === CONNECTED || this.state === CONNECTING)) {
      // A restarted server knows nothing: our register announced the call, the peer's will
      // too (then peer_status connected).  Media flows browser to browser meanwhile; the
      // heartbeat ends the call if it does not.
    } else if (busy(this.state)) {
      // Our socket dropped and the server ended the call meanwhile (its grace ran out), or a
      // call still ringing, which no server keeps across a drop.
      this._endCall(Reason.DISCONNECTED, false);
    } else if (this.state === REGISTERING || this.state === ERROR) {
      this._transition(IDLE, "registered");
    }
    this.error = "";
  }

  /** offer / answer / candidate from the server. @param {Signal} msg */
  _signal(msg) {
    const fromPeer = this._fromPeer(msg);
    if (this.call && fromPeer) {
      this.call.handle(msg);
    } else if (fromPeer && (this.state === CONNECTING || this.state === RINGING)) {
      // Signals of the call being set up (media still opening), or a repeated seed offer.
      if (msg.type === MessageType.OFFER && this.state === RINGING && this.seedCall) this.media.pending = [];
      this.media.pending.push(msg);
    } else if (msg.type === MessageType.OFFER && canCall(this.state)) {
      // A seed client calls with a plain offer and no invite: ring like any call.
      const peer = str(msg.from);
      this._newCall(RINGING, "seed offer", { peer, peerKey: str(msg.from_key), incoming: peer, seedCall: true });
      this.media.pending = [msg];
    }
  }

  /** @param {import("../wire.js").ServerError} msg */
  _serverError(msg) {
    const text = `${msg.code}: ${msg.message}`;
    if (msg.request === MessageType.REGISTER) {
      if (msg.code === ErrorCode.NAME_TAKEN && performance.now() < this.nameGraceUntil) {
        clearTimeout(this.nameRetry);
        this.nameRetry = setTimeout(() => this.signaling.register(), NAME_RETRY_MS);
        return;
      }
      if (busy(this.state)) this._endCall(Reason.DISCONNECTED, false);
      this._transition(ERROR, `register refused: ${msg.code}`);
      this.error = `cannot register as ${this.user}: ${text}`;
      this.signaling.close();
      return;
    }
    if (msg.code === ErrorCode.NO_CALL && (msg.request === MessageType.HANGUP || msg.request === MessageType.CANCEL)) {
      return; // a call the server had already forgotten (a restart, a lost peer): over here too
    }
    if (msg.request === MessageType.INVITE && this.state === CALLING) {
      const code = str(msg.code);
      const known = /** @type {readonly string[]} */ (END_REASONS).includes(code);
      this._endCall(code === ErrorCode.BUSY ? Reason.BUSY : known ? code : Reason.FAILED, false);
    } else if (SIGNALS.has(str(msg.request)) && msg.code === ErrorCode.UNKNOWN_PEER && this.call) {
      this._endCall(Reason.DISCONNECTED, false);
    }
    this.error = text;
  }

  // -- the peer connection ---------------------------------------------------------------

  /**
   * The one reset for a new call (placed here, an invite, a seed offer).
   * @param {CallStateName} to
   * @param {string} why
   * @param {{peer: string, peerKey: string, incoming?: string, callId?: string | null, seedCall?: boolean}} call
   * @param {() => void} [first]  done once the call is set, before anyone is told of the new state
   */
  _newCall(to, why, { peer, peerKey, incoming = "", callId = null, seedCall = false }, first) {
    this._resetCall();
    this.peer = peer;
    this.peerKey = peerKey;
    this.incoming = incoming;
    this.callId = callId;
    this.seedCall = seedCall;
    this.endReason = "";
    this.stats = {}; // a new call: the last call's numbers no longer apply
    this.error = "";
    if (first) first();
    this._transition(to, why);
  }

  /**
   * Make the call's peer connection and begin negotiating: the caller when it places the call
   * (held until accepted), the callee when it accepts.  The camera opens alongside: neither
   * the offer nor the answer waits for it (call_media.js begin()); its tracks join the
   * connection when it opens.
   * @param {boolean} offerer
   */
  _startPeer(offerer) {
    const started = this.media.start(offerer, () => this._callHooks());
    this.events.emit("callstart", started.call);
    this.media.begin(offerer, (error) => this.setError(error));
    this.emitChange();
  }

  /**
   * The callee turned out to be a seed client (`accept` with `seed`): the connection
   * prepared for an nbcall callee has a data channel the seed has not; make it anew.
   */
  _remakePeer() {
    const started = this.media.remake(() => this._callHooks(), (error) => this.setError(error));
    this.events.emit("callstart", started.call);
  }

  /**
   * What the PeerCall tells the Phone, and how it sends.
   * @returns {import("./call_media.js").CallHooks}
   */
  _callHooks() {
    const peer = this.peer;
    return {
      dataChannel: !this.seedCall,
      held: this.state === CALLING, // still ringing: prepare, send once accepted
      send: (m) => {
        /** @type {Record<string, unknown>} */
        const out = { ...m, to: peer };
        if (this.callId && !this.seedCall) out.call_id = this.callId;
        this.signaling.send(out);
      },
      onConnectionState: (state) => {
        if (state === "connected" && this.state === CONNECTING) {
          this._transition(CONNECTED, "media connected");
          this.stats = { ...this.stats, setup_ms: Math.round(performance.now() - this.setupStart) };
          this.connectedAt = Date.now();
          this._watchPeer();
          this.events.emit("connected");
          this.media.watchStats((numbers) => {
            this.stats = { ...this.stats, ...numbers };
            this.emitChange();
          });
        }
        this.emitChange();
      },
      onFailed: (reason, words) => {
        if (!busy(this.state)) return;
        if (words) this.error = `call failed: ${words}`;
        this._send(MessageType.HANGUP, { to: peer, reason });
        this._endCall(reason, false);
        this.emitChange();
      },
      onError: (err) => {
        console.warn("nbcall call", err);
        const e = err instanceof Error ? err : new Error(String(err));
        this.setError(`call: ${e.name || "Error"}: ${e.message}`);
      },
    };
  }

  /** Listen for the peer's life while connected (the data channel and RTP exist); _resetCall stops it. */
  _watchPeer() {
    const call = this.call;
    if (!call || this.heartbeat) return;
    this.heartbeat = new Heartbeat({
      channel: call.channel,
      pc: call.pc,
      lostAfterMs: this.lostAfterMs,
      onSilent: (silent) => {
        if (this.call !== call) return;
        this.peerSilent = silent;
        this.emitChange();
      },
      onLost: () => {
        if (this.call !== call || !busy(this.state)) return;
        this._endCall(Reason.LOST, true);
        this.emitChange();
      },
    });
  }

  _resetCall() {
    if (this.heartbeat) this.heartbeat.stop();
    this.heartbeat = null;
    this.peerSilent = false;
    this.peerAway = false;
    if (this.media.call) this.events.emit("callend");
    this.media.reset();
  }

  /**
   * End the call (if any) for `reason`; `notify` tells the peer first.
   * @param {string} reason
   * @param {boolean} notify
   */
  _endCall(reason, notify) {
    if (notify && this.peer && inCall(this.state)) {
      // The server accepts only its own reasons (protocol.REASONS); anything else is a plain hang-up.
      const told = reason === Reason.FAILED || reason === Reason.CLOSED || reason === Reason.LOST ? reason : Reason.HANGUP;
      this._send(MessageType.HANGUP, { to: this.peer, reason: told });
    }
    const wasBusy = busy(this.state);
    this._resetCall();
    this.incoming = "";
    this.endReason = reason;
    if (wasBusy) this._transition(ENDED, reason);
  }

  /**
   * The connected call became a room (docs/rooms.md "From a call"): its connection and our
   * camera go to the room (the server told nobody to hang up), the call ends here with
   * reason `moved`.  In-call features let go of it first ("callend": a screen share stops).
   * @returns {import("./call_media.js").HandedOver | null} null with no call to hand over
   */
  handOver() {
    if (!this.call || this.seedCall) return null;
    this.events.emit("callend");
    const handed = this.media.handOver();
    this._endCall(Reason.MOVED, false);
    return handed;
  }

  /** End any call, stop the camera, leave the server; `why` is shown in views that remain. */
  close(why = "") {
    this.room.close();
    if (busy(this.state)) this._endCall(Reason.CLOSED, true);
    else this._resetCall();
    clearTimeout(this.nameRetry);
    this.signaling.close();
    if (why) {
      this._transition(ERROR, "closed");
      this.error = why;
      this.emitChange();
    }
    this.events.clear();
    unregisterPhone(this.registryName, this);
  }
}
