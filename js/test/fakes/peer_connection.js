// An RTCPeerConnection that negotiates with itself, and its data channel.

/** @typedef {import("./media.js").FakeTrack} FakeTrack */
/** @typedef {import("./media.js").FakeMediaStream} FakeMediaStream */

export class FakeDataChannel {
  /** @param {string} label @param {any} options */
  constructor(label, options) {
    this.label = label;
    this.options = options;
    /** @type {"connecting" | "open" | "closing" | "closed"} */
    this.readyState = "connecting";
    /** @type {string[]} */
    this.sent = [];
    /** @type {((event: any) => void) | null} */
    this.onopen = null;
    /** @type {((event: {data: any}) => void) | null} */
    this.onmessage = null;
    /** @type {((event: any) => void) | null} */
    this.onclose = null;
    /** @type {Map<string, Set<(event: any) => void>>} */
    this.listeners = new Map();
  }

  /** @param {string} type @param {(event: any) => void} fn */
  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    /** @type {Set<(event: any) => void>} */ (this.listeners.get(type)).add(fn);
  }

  /** @param {string} type @param {(event: any) => void} fn */
  removeEventListener(type, fn) {
    const set = this.listeners.get(type);
    if (set) set.delete(fn);
  }

  /** @param {string} data */
  send(data) {
    if (this.readyState !== "open") throw new Error("data channel not open");
    this.sent.push(data);
  }

  /** Parsed messages of one kind this side sent. @param {string} kind */
  sentOf(kind) {
    return this.sent.map((d) => JSON.parse(d)).filter((m) => m && m.kind === kind);
  }

  open() {
    this.readyState = "open";
    if (this.onopen) this.onopen({});
    for (const fn of [...(this.listeners.get("open") || [])]) fn({});
  }

  /** The peer's message. @param {object} msg */
  receive(msg) {
    this.receiveRaw(JSON.stringify(msg));
  }

  /** The peer's message as it came (anything a hostile peer may send). @param {unknown} data */
  receiveRaw(data) {
    const event = { data };
    if (this.onmessage) this.onmessage(event);
    for (const fn of [...(this.listeners.get("message") || [])]) fn(event);
  }

  close() {
    this.readyState = "closed";
  }
}

class FakeSender {
  /** @param {FakeTrack | null} track */
  constructor(track) {
    this.track = track;
  }

  /** @param {FakeTrack | null} track */
  async replaceTrack(track) {
    this.track = track;
  }

  /** The stream ids (msid) this sender announces. @param {...FakeMediaStream} streams */
  setStreams(...streams) {
    this.streams = streams;
  }
}

let descriptions = 0;

/** An RTCPeerConnection that negotiates with itself: descriptions are strings, nothing flows. */
export class FakePeerConnection {
  /** @type {FakePeerConnection[]} */
  static instances = [];

  /** @param {RTCConfiguration} [config] */
  constructor(config = {}) {
    this.config = config;
    /** @type {RTCSignalingState} */
    this.signalingState = "stable";
    /** @type {RTCPeerConnectionState} */
    this.connectionState = "new";
    /** @type {RTCIceGatheringState} */
    this.iceGatheringState = "new";
    /** @type {any} */
    this.localDescription = null;
    /** @type {any} */
    this.remoteDescription = null;
    /** @type {{sender: FakeSender, receiver: {track: {kind: string}}, direction: string, stopped: boolean}[]} */
    this.transceivers = [];
    /** @type {any[]} */
    this.candidates = [];
    /** @type {FakeDataChannel[]} */
    this.channels = [];
    this.closed = false;
    this.restarts = 0;
    /** @type {number | null} the peer's audio level as its RTP packets say (getReceivers) */
    this.audioLevel = null;
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    /** @type {(() => void) | null} */
    this.onnegotiationneeded = null;
    /** @type {((event: any) => void) | null} */
    this.onicecandidate = null;
    /** @type {((event: any) => void) | null} */
    this.ontrack = null;
    /** @type {(() => void) | null} */
    this.onconnectionstatechange = null;
    this.negotiationQueued = false;
    this.negotiationNeeded = false;
    FakePeerConnection.instances.push(this);
  }

  static last() {
    const pc = FakePeerConnection.instances[FakePeerConnection.instances.length - 1];
    if (!pc) throw new Error("no FakePeerConnection was made");
    return pc;
  }

  /** Like a browser: negotiationneeded fires (once, on a microtask) only in the stable state. */
  _needsNegotiation() {
    this.negotiationNeeded = true;
    if (this.negotiationQueued || this.signalingState !== "stable") return;
    this.negotiationQueued = true;
    queueMicrotask(() => {
      this.negotiationQueued = false;
      if (this.closed || !this.negotiationNeeded || this.signalingState !== "stable") return;
      this.negotiationNeeded = false;
      if (this.onnegotiationneeded) this.onnegotiationneeded();
    });
  }

  /** Back to stable: a negotiation asked for meanwhile fires now. */
  _stable() {
    this.signalingState = "stable";
    if (this.negotiationNeeded) this._needsNegotiation();
  }

  /** @param {string} label @param {any} options */
  createDataChannel(label, options) {
    const channel = new FakeDataChannel(label, options);
    this.channels.push(channel);
    return channel;
  }

  /** @param {FakeTrack} track @param {FakeMediaStream} _stream */
  addTrack(track, _stream) {
    // Answering an offer, a transceiver of the offer is reused: the answer carries the track.
    const offered = this.signalingState === "have-remote-offer"
      ? this.transceivers.find((t) => t.receiver.track.kind === track.kind && !t.sender.track)
      : undefined;
    if (offered) {
      offered.sender.track = track;
      return offered.sender;
    }
    const sender = new FakeSender(track);
    this.transceivers.push({ sender, receiver: { track: { kind: track.kind } }, direction: "sendrecv", stopped: false });
    this._needsNegotiation();
    return sender;
  }

  /** @param {string} kind @param {{direction?: string, streams?: FakeMediaStream[]}} [init] */
  addTransceiver(kind, init = {}) {
    const tr = { sender: new FakeSender(null), receiver: { track: { kind } }, direction: init.direction || "sendrecv", stopped: false };
    if (init.streams) tr.sender.setStreams(...init.streams);
    this.transceivers.push(tr);
    this._needsNegotiation();
    return tr;
  }

  getSenders() {
    return this.transceivers.map((t) => t.sender);
  }

  getTransceivers() {
    return [...this.transceivers];
  }

  /** Receivers; audio ones tell `audioLevel` (the sender's level) once a test sets it. */
  getReceivers() {
    return this.transceivers.map((t) =>
      Object.assign(t.receiver, {
        getSynchronizationSources: () =>
          t.receiver.track.kind === "audio" && this.audioLevel != null
            ? [{ source: 1, audioLevel: this.audioLevel, timestamp: performance.timeOrigin + performance.now() }]
            : [],
      }),
    );
  }

  /** @param {{type: string, sdp?: string}} [description] */
  async setLocalDescription(description) {
    if (this.closed) throw new Error("closed");
    let type = description && description.type;
    if (!type) type = this.signalingState === "have-remote-offer" ? "answer" : "offer";
    const sdp = `${type} ${++descriptions}${this.restarts ? ` restart ${this.restarts}` : ""}`;
    this.localDescription = { type, sdp, toJSON: () => ({ type, sdp }) };
    if (type === "offer") this.signalingState = "have-local-offer";
    else this._stable();
  }

  /** @param {{type: string, sdp: string}} description */
  async setRemoteDescription(description) {
    if (this.closed) throw new Error("closed");
    if (description.type === "answer" && this.signalingState !== "have-local-offer") {
      throw new Error(`answer in state ${this.signalingState}`);
    }
    this.remoteDescription = { ...description };
    if (description.type === "offer") {
      // An offer in have-local-offer is the implicit rollback of perfect negotiation.
      this.signalingState = "have-remote-offer";
      // The offer's media sections, for the answer's tracks.
      for (const kind of ["audio", "video"]) {
        if (!this.transceivers.some((t) => t.receiver.track.kind === kind)) {
          this.transceivers.push({ sender: new FakeSender(null), receiver: { track: { kind } }, direction: "recvonly", stopped: false });
        }
      }
    } else {
      this._stable();
    }
  }

  /** @param {any} candidate */
  async addIceCandidate(candidate) {
    if (!this.remoteDescription) throw new Error("no remote description");
    this.candidates.push(candidate);
  }

  restartIce() {
    this.restarts += 1;
    this._needsNegotiation();
  }

  async getStats() {
    return new Map();
  }

  close() {
    this.closed = true;
    this.connectionState = "closed";
    this.signalingState = "closed";
  }

  /** @param {string} type @param {Function} fn */
  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    /** @type {Set<Function>} */ (this.listeners.get(type)).add(fn);
  }

  /** @param {string} type @param {Function} fn */
  removeEventListener(type, fn) {
    const set = this.listeners.get(type);
    if (set) set.delete(fn);
  }

  /** @param {string} type @param {any} [event] */
  dispatch(type, event = {}) {
    const prop = /** @type {any} */ (this)[`on${type}`];
    if (typeof prop === "function") prop(event);
    for (const fn of [...(this.listeners.get(type) || [])]) fn(event);
  }

  // -- what the network does --

  /** @param {RTCPeerConnectionState} state */
  setConnectionState(state) {
    this.connectionState = state;
    this.dispatch("connectionstatechange");
  }

  /** A local candidate of one type ("host", "srflx", "relay"...). @param {string} type */
  gather(type) {
    const candidate = { type, candidate: `candidate:${type}`, toJSON: () => ({ candidate: `candidate:${type}`, sdpMid: "0" }) };
    this.dispatch("icecandidate", { candidate });
  }

  /** @param {number} errorCode @param {string} url */
  candidateError(errorCode, url) {
    this.dispatch("icecandidateerror", { errorCode, url, errorText: "" });
  }

  gatheringComplete() {
    this.iceGatheringState = "complete";
    this.dispatch("icegatheringstatechange");
    this.dispatch("icecandidate", { candidate: null });
  }

  /** The peer's media arrives. @param {FakeMediaStream} stream */
  remoteTrack(stream) {
    this.dispatch("track", { track: stream.getTracks()[0], streams: [stream] });
  }
}

