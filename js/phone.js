// The call state machine of one widget model: registration, presence, ringing, the
// peer connection and its media.  One Phone per model (created in `initialize`); views
// only display it, so several views of one widget show the same call.

import { Signaling } from "./signaling.js";
import { PeerCall } from "./call.js";
import { openMedia, stopStream } from "./media.js";

const IN_CALL = new Set(["calling", "connecting", "connected"]);
const STATS_INTERVAL_MS = 1000; // the quality dot and `stats` refresh once a second
const NAME_GRACE_MS = 5000;
const NAME_RETRY_MS = 200;

function key(name) {
  return String(name).normalize("NFKC").trim().toLowerCase();
}

function newCallId() {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Pages keep a registry of phones so tests and debugging can reach the peer connection. */
function registry() {
  const g = globalThis;
  if (!g.__nbcall) g.__nbcall = { phones: {} };
  return g.__nbcall;
}

export class Phone {
  constructor({ user, server, credential, iceServers, iceTransportPolicy, audio, video, plan, replaces }) {
    this.user = user;
    this.server = server;
    this.iceServers = iceServers || [];
    this.iceTransportPolicy = iceTransportPolicy || "all";
    this.transport = ""; // which transport reaches the server: same-origin, direct or relay
    this.send = { audio, video };
    this.state = "registering";
    this.peer = "";
    this.incoming = "";
    this.peers = new Map(); // key -> display name, excluding self
    this.error = "";
    this.endReason = "";
    this.stats = {};
    this.localStream = null;
    this.remoteStream = null;
    this.call = null; // PeerCall
    this.callId = null;
    this.seedCall = false; // the peer speaks the seed's protocol: plain offer, no invite
    this.pendingSignals = []; // offer/answer/candidate that arrive before the PeerCall exists
    this.earlyMedia = null; // the caller's camera, opening while the other side rings
    this.peerStarting = false; // _startPeer is under way for this call
    this.setupStart = 0;
    this.epoch = 0; // bumps on every call end, so late async work of an old call is dropped
    this.listeners = new Set();
    this.statsTimer = null;
    this.everRegistered = false;
    // This widget replaced one of the same name (a cell run again): that one's registration
    // may still be leaving the server, so name_taken is retried for a few seconds.
    this.nameGraceUntil = replaces ? performance.now() + NAME_GRACE_MS : 0;
    this.devices = {}; // { camera, microphone } device ids chosen in Python or the widget (features.js)
    this.connectedAt = 0; // Date.now() when the last call connected
    this.hooks = new Set(); // in-call features (features.js): { callStart(call), connected(), callEnd() }
    this.signaling = new Signaling({
      url: server,
      username: user,
      credential,
      onMessage: (msg) => this._onServer(msg),
      onStatus: (status, detail) => this._onSignalingStatus(status, detail),
      plan,
    });
    registry().phones[user] = this;
  }

  start() {
    this.signaling.start();
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  _changed() {
    for (const fn of this.listeners) {
      try {
        fn(this);
      } catch (err) {
        console.error("nbcall listener", err);
      }
    }
  }

  /** Run a feature hook; a failing feature must not break the call. */
  _hook(name, ...args) {
    for (const hook of this.hooks) {
      try {
        if (hook[name]) hook[name](...args);
      } catch (err) {
        console.error(`nbcall ${name} hook`, err);
      }
    }
  }

  get pc() {
    return this.call ? this.call.pc : null;
  }

  // -- signaling ----------------------------------------------------------------------

  _onSignalingStatus(status, detail) {
    if (status === "transport") {
      this.transport = detail;
      this._changed();
    } else if (status === "registered") {
      this.everRegistered = true;
    } else if (status === "retrying") {
      if (this.everRegistered && this.signaling.attempt <= 1) {
        // A dropped socket that worked before: reconnect quietly once before calling it an error.
        if (!IN_CALL.has(this.state) && this.state !== "ringing") this.state = "registering";
      } else {
        this.error = `signaling server ${this.server} unreachable: ${detail}`;
        if (!IN_CALL.has(this.state) && this.state !== "ringing") this.state = "error";
      }
      this._changed();
    } else if (status === "replaced") {
      this._endCall("replaced", false);
      this.state = "error";
      this.error = detail;
      this._changed();
    }
  }

  _setPeers(names) {
    this.peers.clear();
    for (const name of names) if (key(name) !== key(this.user)) this.peers.set(key(name), name);
  }

  _onServer(msg) {
    const from = msg.from;
    const fromPeer = from !== undefined && this.peer && key(from) === key(this.peer);
    switch (msg.type) {
      case "registered":
        this.user = msg.username || this.user;
        this._setPeers(msg.users || []);
        if (msg.online > (msg.users || []).length) this.signaling.send({ type: "list" });
        if ((IN_CALL.has(this.state) || this.state === "ringing") && !msg.call) {
          // Our socket dropped and the server ended the call meanwhile.
          this._endCall("disconnected", false);
        } else if (this.state === "registering" || this.state === "error") {
          this.state = "idle";
        }
        this.error = "";
        break;
      case "presence":
        if (msg.truncated) {
          this.signaling.send({ type: "list" });
          return;
        }
        for (const name of msg.joined || []) if (key(name) !== key(this.user)) this.peers.set(key(name), name);
        for (const name of msg.left || []) this.peers.delete(key(name));
        break;
      case "users":
        this._setPeers(msg.users || []);
        break;
      case "invite":
        if (IN_CALL.has(this.state) || this.state === "ringing") return; // the server sends busy
        this._resetCall();
        this.state = "ringing";
        this.peer = this.incoming = from;
        this.callId = msg.call_id || null;
        this.seedCall = false;
        this.endReason = "";
        this.stats = {}; // a new call: the last call's numbers no longer apply
        this.error = "";
        break;
      case "ringing":
        // The callee is an nbcall widget (a seed callee is accepted at once instead): make the
        // offer and gather candidates now, so answering costs one round trip, not camera + ICE.
        if (this.state === "calling" && fromPeer && !this.peerStarting) this._startPeer(true);
        return;
      case "accept":
        if (this.state !== "calling" || !fromPeer) return;
        this.seedCall = !!msg.seed;
        this.state = "connecting";
        if (this.call) this.call.release();
        else if (!this.peerStarting) this._startPeer(true);
        break;
      case "reject":
      case "busy":
      case "cancel":
      case "hangup":
        if (!fromPeer || !(IN_CALL.has(this.state) || this.state === "ringing")) return;
        this._endCall(msg.type === "busy" ? "busy" : msg.reason || msg.type, false);
        break;
      case "offer":
        if (this.call && fromPeer) {
          this.call.handle(msg);
        } else if (fromPeer && (this.state === "connecting" || this.state === "ringing")) {
          // Offer of the call being set up (media still opening), or a repeated seed offer.
          if (this.state === "ringing" && this.seedCall) this.pendingSignals = [];
          this.pendingSignals.push(msg);
        } else if (this.state === "idle" || this.state === "ended") {
          // A seed client calls with a plain offer and no invite: ring like any call.
          this._resetCall();
          this.state = "ringing";
          this.peer = this.incoming = from;
          this.seedCall = true;
          this.endReason = "";
          this.stats = {}; // a new call: the last call's numbers no longer apply
          this.error = "";
          this.pendingSignals = [msg];
        }
        return this._changed();
      case "answer":
      case "candidate":
        if (!fromPeer) return;
        if (this.call) this.call.handle(msg);
        else if (this.state === "connecting" || this.state === "ringing") this.pendingSignals.push(msg);
        return;
      case "error":
        this._onServerError(msg);
        break;
      case "replaced":
        return;
      default:
        return;
    }
    this._changed();
  }

  _onServerError(msg) {
    const text = `${msg.code}: ${msg.message}`;
    if (msg.request === "register" && msg.code === "name_taken" && performance.now() < this.nameGraceUntil) {
      clearTimeout(this.nameRetry);
      this.nameRetry = setTimeout(() => this.signaling.register(), NAME_RETRY_MS);
      return;
    }
    if (msg.request === "register") {
      this.state = "error";
      this.error = `cannot register as ${this.user}: ${text}`;
      this.signaling.close();
      return;
    }
    if (msg.request === "invite" && this.state === "calling") {
      this._endCall(msg.code === "busy" ? "busy" : msg.code, false);
    } else if (["offer", "answer", "candidate"].includes(msg.request) && msg.code === "unknown_peer" && this.call) {
      this._endCall("disconnected", false);
    }
    this.error = text;
  }

  // -- actions (from Python or the buttons) --------------------------------------------

  /** Returns an error sentence, or "" when the action started. */
  placeCall(to) {
    if (!to) return "whom to call?";
    if (key(to) === key(this.user)) return "you cannot call yourself";
    if (this.state !== "idle" && this.state !== "ended") return `cannot call while ${this.state}`;
    this._resetCall();
    this.peer = this.peers.get(key(to)) || to;
    this.incoming = "";
    this.endReason = "";
    this.stats = {}; // a new call: the last call's numbers no longer apply
    this.error = "";
    this.seedCall = false;
    this.callId = newCallId();
    this.state = "calling";
    this.setupStart = performance.now();
    this.signaling.send({ type: "invite", to: this.peer, call_id: this.callId });
    this._openEarlyMedia();
    this._changed();
    return "";
  }

  accept() {
    if (this.state !== "ringing") return `nothing to accept (${this.state})`;
    this.setupStart = performance.now();
    if (!this.seedCall) this.signaling.send({ type: "accept", to: this.peer });
    this.incoming = "";
    this.state = "connecting";
    this._startPeer(false);
    this._changed();
    return "";
  }

  reject() {
    if (this.state !== "ringing") return `nothing to reject (${this.state})`;
    // A seed caller cannot be told "rejected"; hang up so the server stops tracking it.
    if (this.seedCall) this.signaling.send({ type: "hangup", to: this.peer, reason: "rejected" });
    else this.signaling.send({ type: "reject", to: this.peer });
    this._endCall("rejected", false);
    this._changed();
    return "";
  }

  hangup() {
    if (this.state === "ringing") return this.reject();
    if (!IN_CALL.has(this.state)) return `no call to hang up (${this.state})`;
    const type = this.state === "calling" ? "cancel" : "hangup";
    this.signaling.send({ type, to: this.peer });
    this._endCall(type === "cancel" ? "cancelled" : "hangup", false);
    this._changed();
    return "";
  }

  setSend({ audio, video }) {
    this.send = { audio, video };
    if (!this.localStream) return;
    for (const track of this.localStream.getAudioTracks()) track.enabled = !!audio;
    for (const track of this.localStream.getVideoTracks()) track.enabled = !!video;
  }

  // -- the peer connection ---------------------------------------------------------------

  /** The caller opens its camera while it rings, so the camera is off the critical path. */
  _openEarlyMedia() {
    const epoch = this.epoch;
    this.earlyMedia = openMedia({ ...this.send, ...this.devices }).then((media) => {
      if (epoch !== this.epoch) {
        stopStream(media.stream); // cancelled, rejected or busy meanwhile
        return null;
      }
      this.localStream = media.stream; // from here the call owns it: _resetCall stops it
      this._changed();
      return media;
    });
  }

  async _startPeer(offerer) {
    const epoch = this.epoch;
    this.peerStarting = true;
    // Never block the state machine on the camera: signals that arrive meanwhile queue up.
    const early = offerer ? this.earlyMedia : null;
    const media = await (early || openMedia({ ...this.send, ...this.devices }));
    // A call ends only through _resetCall, which bumps the epoch: same epoch, same call.
    if (epoch !== this.epoch || !media) {
      if (!early && media) stopStream(media.stream);
      return;
    }
    const { stream, error } = media;
    if (error) this.error = error;
    this.localStream = stream;
    const peer = this.peer;
    const call = new PeerCall({
      polite: !offerer,
      iceServers: this.iceServers,
      iceTransportPolicy: this.iceTransportPolicy,
      dataChannel: !this.seedCall,
      held: this.state === "calling", // still ringing: prepare, send once accepted
      send: (m) => {
        const out = { ...m, to: peer };
        if (this.callId && !this.seedCall) out.call_id = this.callId;
        this.signaling.send(out);
      },
      onRemoteStream: (remote) => {
        this.remoteStream = remote;
        this._changed();
      },
      onConnectionState: (state) => {
        if (state === "connected" && this.state === "connecting") {
          this.state = "connected";
          this.stats = { ...this.stats, setup_ms: Math.round(performance.now() - this.setupStart) };
          this.connectedAt = Date.now();
          this._hook("connected");
          this._startStats();
        }
        this._changed();
      },
      onFailed: (reason, words) => {
        if (words) this.error = `call failed: ${words}`;
        this.signaling.send({ type: "hangup", to: peer, reason });
        this._endCall(reason, false);
        this._changed();
      },
      onError: (err) => {
        console.warn("nbcall call", err);
        this.error = `call: ${err.name || "Error"}: ${err.message || err}`;
        this._changed();
      },
    });
    this.call = call;
    this._hook("callStart", call);
    if (offerer) call.startAsOfferer(stream);
    else call.startAsAnswerer(stream);
    for (const msg of this.pendingSignals.splice(0)) call.handle(msg);
    this._changed();
  }

  _startStats() {
    clearInterval(this.statsTimer);
    const tick = async () => {
      if (!this.call) return;
      try {
        const s = await this.call.stats();
        this.stats = { ...this.stats, ...s };
        this._changed();
      } catch {
        // a closing connection has no stats
      }
    };
    tick();
    this.statsTimer = setInterval(tick, STATS_INTERVAL_MS);
  }

  _resetCall() {
    this.epoch += 1;
    if (this.call) this._hook("callEnd");
    clearInterval(this.statsTimer);
    this.statsTimer = null;
    if (this.call) this.call.close();
    this.call = null;
    stopStream(this.localStream);
    this.localStream = null;
    this.remoteStream = null;
    this.pendingSignals = [];
    this.earlyMedia = null;
    this.peerStarting = false;
  }

  _endCall(reason, notify) {
    if (notify && this.peer && IN_CALL.has(this.state)) {
      // The server accepts only its own reasons (protocol.REASONS); anything else is a plain hang-up.
      const told = reason === "failed" || reason === "closed" ? reason : "hangup";
      this.signaling.send({ type: "hangup", to: this.peer, reason: told });
    }
    this._resetCall();
    this.incoming = "";
    this.endReason = reason;
    this.state = "ended";
  }

  /** End any call, stop the camera, leave the server; `why` is shown in views that remain. */
  close(why = "") {
    if (IN_CALL.has(this.state)) this._endCall("closed", true);
    else this._resetCall();
    clearTimeout(this.nameRetry);
    this.signaling.close();
    if (why) {
      this.state = "error";
      this.error = why;
      this._changed();
    }
    this.listeners.clear();
    const reg = registry();
    if (reg.phones[this.user] === this) delete reg.phones[this.user];
  }
}
