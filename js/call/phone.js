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
// What the signaling server says is read in server_inbox.js, which acts through the
// Phone's methods; the actions (placeCall, accept, reject, hangup) and the peer
// connection's life are here.
//
// Outages (docs/protocol.md "Calls and outages"): the peer's liveness is liveness.js's;
// our own socket dropping does not end a connected call (server_inbox.js).  A connected
// call that becomes a room is handed over to it (handOver; docs/rooms.md "From a call").

import { MessageType, Reason, ErrorCode } from "../protocol.js";
import { PageError } from "../messages.js";
import { fail } from "../failure.js";
import { State } from "../names.js";
import { Emitter } from "../emitter.js";
import { Signaling } from "../signaling/signaling.js";
import { CallState, canCall, inCall, busy } from "./call_state.js";
import { CallMedia } from "./call_media.js";
import { PeerStatus, DEFAULT_LOST_AFTER_S, validLostAfter, watchPeer } from "./liveness.js";
import { Peers } from "./peers.js";
import { ServerInbox } from "./server_inbox.js";
import { registerPhone, unregisterPhone } from "../registry.js";
import { randomId } from "../ids.js";
import { RoomClient } from "../room/room_client.js";

/** @typedef {import("./call_state.js").CallStateName} CallStateName */
/** @typedef {import("../types.js").PhoneEvents} PhoneEvents */
/** @typedef {import("../types.js").PhoneOptions} PhoneOptions */
/** @typedef {import("../failure.js").Outcome} Outcome */

const { REGISTERING, CALLING, RINGING, CONNECTING, CONNECTED, ENDED, ERROR } = State;
const NAME_GRACE_MS = 5000;
export { PeerStatus, DEFAULT_LOST_AFTER_S };

export class Phone {
  /** @param {PhoneOptions} opts */
  constructor({ user, server, credential, iceServers, iceTransportPolicy, audio, video, plan, replaces, lostAfter }) {
    this.user = user;
    this.key = ""; // our own key, from `registered`
    this.registryName = user;
    this.server = server;
    this.transport = ""; // which transport reaches the server: same-origin, direct or kernel
    this.media = new CallMedia({ audio, video, iceServers, iceTransportPolicy, onChange: () => this._changed() });
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
    /** @type {import("./heartbeat.js").Heartbeat | null} the peer's liveness while connected (liveness.js) */
    this.heartbeat = null;
    this.peerSilent = false; // the heartbeat hears nothing from the peer
    this.peerAway = false; // the server says the peer's signaling dropped (peer_status)
    this.serverId = ""; // registered.server_id: which server instance we registered with last
    this.inbox = new ServerInbox(this); // reads what the server says (the signaling's callbacks)
    this.room = new RoomClient(this); // the group call (docs/rooms.md): hears the server first
    this.signaling = new Signaling({
      url: server,
      username: user,
      credential,
      onMessage: (msg) => this.inbox.onMessage(msg),
      onStatus: (status, detail) => this.inbox.onStatus(status, detail || ""),
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

  _changed() {
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
    this._changed();
    return "";
  }

  /** @returns {Outcome} */
  hangup() {
    if (this.state === RINGING) return this.reject();
    if (!inCall(this.state)) return fail(ErrorCode.NO_CALL, `no call to hang up (${this.state})`);
    const cancel = this.state === CALLING;
    this._send(cancel ? MessageType.CANCEL : MessageType.HANGUP, { to: this.peer });
    this._endCall(cancel ? Reason.CANCELLED : Reason.HANGUP, false);
    this._changed();
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
    this._changed();
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
    this._changed();
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
    this._changed();
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
          watchPeer(this);
          this.events.emit("connected");
          this.media.watchStats((numbers) => {
            this.stats = { ...this.stats, ...numbers };
            this._changed();
          });
        }
        this._changed();
      },
      onFailed: (reason, words) => {
        if (!busy(this.state)) return;
        if (words) this.error = `call failed: ${words}`;
        this._send(MessageType.HANGUP, { to: peer, reason });
        this._endCall(reason, false);
        this._changed();
      },
      onError: (err) => {
        console.warn("nbcall call", err);
        const e = err instanceof Error ? err : new Error(String(err));
        this.setError(`call: ${e.name || "Error"}: ${e.message}`);
      },
    };
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
      this._changed();
    }
    this.events.clear();
    unregisterPhone(this.registryName, this);
  }
}
