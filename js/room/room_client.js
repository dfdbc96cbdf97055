// The one room of a Phone (`phone.room`): what the page does in a group call.  The server
// decides who is in the room, who offers to whom and when it moves to the SFU
// (docs/rooms.md); this carries it out: a mesh of PeerCalls (mesh.js) or an SFU session
// (switchover.js), wired to the members in room_links.js; the room's camera
// (room_camera.js); who speaks and how well links do (room_watch.js, levels.js).
//
// What the server says about the room is read here, before the 1:1 call's handling
// (Phone `_onServerMessage`): the room's own messages, offer/answer/candidate that carry
// `room` (mesh links), and errors in reply to room requests.  Everything is checked against
// what the page knows: a message about another room, or a signal from someone who is not a
// member, is the room's and is dropped.  The actions and what the server says change the
// same room, so they are one class.  Its helpers (room_links.js, room_watch.js,
// from_call.js) use only its public members; `send`, `emitChange` and `emitError` are
// there for them.
//
// Actions return "" when started, else words a user can act on.  Events (`events`):
// "change" (anything shown), "joined" / "left" (a member's name), "chat" ({from, fromKey,
// text}; our own lines are not echoed), "invited" ({room, from, fromKey}), "error" (words:
// what the server refused, a link lost), "topology" ("" | "mesh" | "sfu").
//
// A user is in one call or room at a time: a room is refused during a 1:1 call, and
// Phone.placeCall refuses a call in a room (`busyWords`).  Inviting someone during a
// connected 1:1 call turns the call into a room (from_call.js).

import { Emitter } from "../emitter.js";
import { State } from "../names.js";
import { inCall } from "../call/call_state.js";
import { MessageType, ErrorCode } from "../protocol.js";
import { Members, Topology, RoomPhase, memberFrom } from "./members.js";
import { RoomCamera } from "./room_camera.js";
import { RoomWatch } from "./room_watch.js";
import { loadSfuSession } from "./switchover.js";
import { openMesh, openSfu, cameraOpened } from "./room_links.js";
import { RoomType, RoomError, LeftReason, ROOM_EVENTS, ROOM_REQUESTS, SIGNALS, MAX_MEMBERS, MAX_CHAT_CHARS } from "./room_protocol.js";
import { inviteFromCall, takeOverCall, resumeCallSending } from "./from_call.js";
import { PageError } from "../messages.js";
import { fail, serverCode } from "../failure.js";

export { RoomPhase, Topology };

/** @typedef {import("../call/phone.js").Phone} Phone */
/** @typedef {import("../types.js").ServerMessage} ServerMessage */
/** @typedef {import("./members.js").Member} Member */
/** @typedef {import("./members.js").Participant} Participant */
/** @typedef {{room: string, from: string, fromKey: string}} Invitation */
/** @typedef {import("../failure.js").Outcome} Outcome */
/** @typedef {{from: string, fromKey: string, text: string}} ChatLine */

/**
 * @typedef {object} RoomEvents
 * @property {[RoomClient]} change
 * @property {[string]} joined  a member's name
 * @property {[string]} left  a member's name
 * @property {[ChatLine]} chat
 * @property {[Invitation]} invited
 * @property {[import("../failure.js").Failure]} error  what went wrong (a code and words)
 * @property {[import("./members.js").Topology]} topology
 */

const MAX_OUTSTANDING_JOINS = 20;
const LATE_ERRORS_MS = 10000; // replies to a room's last signals, after leaving it

/** @param {unknown} value */
const str = (value) => (typeof value === "string" ? value : "");

export class RoomClient {
  /** @param {Phone} phone */
  constructor(phone) {
    this.phone = phone;
    /** @type {Emitter<RoomEvents>} */
    this.events = new Emitter();
    /** @type {import("./members.js").RoomPhaseName} */
    this.phase = RoomPhase.OUT;
    this.joining = ""; // the room asked for, until room_joined names it
    this.joinOptions = { inviteOnly: false, password: "" }; // kept to join again after a reconnect
    /** @type {{abandoned: boolean, sent: boolean}[]} room_join requests awaiting their reply, in order */
    this.joins = [];
    this.room = ""; // the room's name as the server gives it
    this.roomKey = "";
    /** @type {import("./members.js").Topology} */
    this._topology = Topology.NONE;
    this.members = new Members();
    this.camera = new RoomCamera(phone.media);
    /** @type {import("./mesh.js").MeshLinks | null} the links while a mesh (and during the move to the SFU) */
    this.mesh = null;
    /** @type {import("./switchover.js").SfuBridge | null} */
    this.sfu = null;
    /** @type {Invitation | null} */
    this._invitation = null;
    this.watch = new RoomWatch(this);
    /** How sfu.js is loaded (tests put a fake SfuSession here). */
    this.loadSfu = loadSfuSession;
    this.leftAt = -Infinity; // when we were last in a room (its links' late errors are still ours)
    this.closed = false;
  }

  // -- what views and the kernel read ----------------------------------------------------

  /** The room's name while in it, else "". */
  get name() {
    return this.phase === RoomPhase.IN ? this.room : "";
  }

  get topology() {
    return this._topology;
  }

  get invitation() {
    return this._invitation;
  }

  /** What the room sends (null until the camera opens, or with nothing to send). */
  get localStream() {
    return this.camera.stream;
  }

  /** Everyone else in the room, and who is invited and ringing. @returns {Participant[]} */
  participants() {
    return this.members.participants(this._topology, !!this.sfu && this.sfu.trouble);
  }

  /** Each member's media (SFU stream once it came, else the mesh link's). */
  streams() {
    /** @type {Map<string, MediaStream>} */
    const out = new Map();
    for (const member of this.members) {
      const stream = member.sfuStream || member.meshStream;
      if (stream) out.set(member.key, stream);
    }
    return out;
  }

  /** @param {string} key */
  stream(key) {
    const member = this.members.get(key);
    return (member && (member.sfuStream || member.meshStream)) || null;
  }

  /** Why a 1:1 call cannot start now ("" when it can). */
  busyWords() {
    if (this.phase === RoomPhase.IN) return `you are in the room ${this.room}: leave it first`;
    if (this.phase === RoomPhase.JOINING) return `you are joining the room ${this.joining}: leave it first`;
    return "";
  }

  // -- actions ----------------------------------------------------------------------------

  /**
   * Join (or create) a room.  `inviteOnly` and `password` apply when this join creates it;
   * `password` also opens a room that has one.
   * @param {string} room
   * @param {{inviteOnly?: boolean, password?: string}} [opts]
   * @returns {Outcome}
   */
  join(room, { inviteOnly = false, password = "" } = {}) {
    if (this.closed) return fail(PageError.CLOSED, "this widget is closed");
    if (typeof room !== "string" || !room.trim()) return fail(ErrorCode.INVALID_ROOM, "which room? give it a name");
    if (this.phase === RoomPhase.IN) {
      return fail(
        PageError.IN_ROOM,
        room === this.room ? `you are already in the room ${this.room}` : `you are in the room ${this.room}: leave it first`,
      );
    }
    if (this.phase === RoomPhase.JOINING) {
      return fail(PageError.IN_ROOM, `already joining the room ${this.joining}: wait for the answer, or leave`);
    }
    const p = this.phone;
    if (p.state === State.RINGING) return fail(PageError.IN_CALL, `${p.incoming || p.peer} is calling you: answer or reject the call first`);
    if (inCall(p.state)) return fail(PageError.IN_CALL, `you are in a call with ${p.peer}: hang up first`);
    if (p.state === State.REGISTERING || p.state === State.ERROR) {
      return fail(ErrorCode.NOT_REGISTERED, "not connected to the signaling server yet: try again once online");
    }
    this.joinOptions = { inviteOnly: !!inviteOnly, password: typeof password === "string" ? password : "" };
    this._requestJoin(room.trim());
    this.emitChange();
    return "";
  }

  /** @param {string} room */
  _requestJoin(room) {
    this.phase = RoomPhase.JOINING;
    this.joining = room;
    /** @type {Record<string, unknown>} */
    const msg = { room, access: this.joinOptions.inviteOnly ? "invite" : "open" };
    if (this.joinOptions.password) msg.password = this.joinOptions.password;
    if (this.joins.length >= MAX_OUTSTANDING_JOINS) this.joins.shift();
    const entry = { abandoned: false, sent: false };
    this.joins.push(entry);
    entry.sent = this.send(RoomType.ROOM_JOIN, msg);
  }

  /** @returns {Outcome} */
  leave() {
    if (this.phase === RoomPhase.OUT) return fail(ErrorCode.NOT_IN_ROOM, "not in a room");
    const room = this.phase === RoomPhase.IN ? this.room : this.joining;
    // A join still unanswered: its reply (room_joined or an error) no longer applies.
    if (this.phase === RoomPhase.JOINING && this.joins.length) this.joins[this.joins.length - 1].abandoned = true;
    this.send(RoomType.ROOM_LEAVE, { room });
    this._reset(false);
    this.emitChange();
    return "";
  }

  /**
   * Invite a user who is online into this room (or into the 1:1 call, which becomes one).
   * @param {string} name
   * @returns {Outcome}
   */
  invite(name) {
    if (this.phase === RoomPhase.OUT && inCall(this.phone.state)) return inviteFromCall(this, name);
    if (this.phase !== RoomPhase.IN) {
      return fail(ErrorCode.NOT_IN_ROOM, this.phase === RoomPhase.JOINING ? `still joining the room ${this.joining}: invite once in` : "not in a room");
    }
    if (typeof name !== "string" || !name.trim()) return fail(ErrorCode.INVALID_NAME, "whom to invite?");
    if (name === this.phone.user) return fail(ErrorCode.SELF_CALL, "you are already in the room");
    const key = this.phone.peers.keyOf(name);
    if (!key) return fail(ErrorCode.UNKNOWN_PEER, `${name} is not online`);
    if (this.members.get(key)) return fail(PageError.ALREADY_MEMBER, `${name} is already in the room`);
    if (this.members.ringing.has(key)) return fail(PageError.ALREADY_MEMBER, `${name} is already invited`);
    this.send(RoomType.ROOM_INVITE, { room: this.room, to: this.phone.peers.get(key) || name });
    return "";
  }

  /** @returns {Outcome} */
  acceptInvite() {
    const invitation = this._invitation;
    if (!invitation) return fail(ErrorCode.NOT_INVITED, "no room invitation to accept");
    const why = this.join(invitation.room);
    if (!why) this._setInvitation(null);
    return why;
  }

  /** @returns {Outcome} */
  declineInvite() {
    const invitation = this._invitation;
    if (!invitation) return fail(ErrorCode.NOT_INVITED, "no room invitation to decline");
    this.send(RoomType.ROOM_DECLINE, { room: invitation.room });
    this._setInvitation(null);
    this.emitChange();
    return "";
  }

  /** A line to everyone in the room (through the server). @param {string} text @returns {Outcome} */
  sendChat(text) {
    if (this.phase !== RoomPhase.IN) return fail(ErrorCode.NOT_IN_ROOM, "not in a room");
    if (typeof text !== "string" || !text) return fail(PageError.INVALID_ARGUMENT, "empty message");
    if (text.length > MAX_CHAT_CHARS) return fail(ErrorCode.TOO_LARGE, `message longer than ${MAX_CHAT_CHARS} characters`);
    this.send(RoomType.ROOM_CHAT, { room: this.room, text });
    return "";
  }

  /**
   * Send (or mute) microphone and camera: the tracks' `enabled` (no renegotiation), and
   * the others are told (room_state).  A kind the room opened without opens now.
   * @param {{audio: boolean, video: boolean}} send
   */
  setSend({ audio, video }) {
    if (this.phase !== RoomPhase.IN) return "not in a room";
    const missing = this.camera.stream ? this.camera.setSend({ audio, video }) : [];
    for (const kind of missing) {
      this.camera
        .openKind(kind)
        .then((track) => (this.phase === RoomPhase.IN ? this.replaceTrack(track) : track.stop()))
        .catch((err) =>
          this.emitError(
            PageError.MEDIA_FAILED,
            `cannot open the ${kind === "video" ? "camera" : "microphone"}: ${err instanceof Error ? err.message : String(err)}`,
          ),
        );
    }
    this.send(RoomType.ROOM_STATE, { room: this.room, audio: !!audio, video: !!video });
    return "";
  }

  /**
   * Send `track` instead of the current one of its kind, on every link or the SFU
   * (a device switched); the old track stops.
   * @param {MediaStreamTrack} track
   */
  async replaceTrack(track) {
    const kind = track.kind === "audio" ? "audio" : "video";
    if (this.mesh) await this.mesh.replaceTrack(track);
    if (this.sfu) await this.sfu.replaceTrack(kind, track);
    this.camera.swap(track);
    this.emitChange();
  }

  /** A member's tile size: on the SFU, the simulcast layer it gets. @param {string} key @param {number} width @param {number} height */
  setTileSize(key, width, height) {
    const member = this.members.get(key);
    if (member && this.sfu) this.sfu.setTileSize(member, width, height);
  }

  /** Route a server message here first: true if it was the room's. @param {ServerMessage} msg */
  onServerMessage(msg) {
    if (this.closed) return false;
    return this._onMessage(msg);
  }

  /** The signaling registered again after a drop: the server has forgotten our membership. */
  onRegistered() {
    if (this.closed) return;
    // Replies to what the old socket sent will not come; what waited in the outbox was sent just now.
    this.joins = this.joins.filter((entry) => !entry.sent);
    if (this.phase === RoomPhase.IN) {
      const room = this.room;
      this._reset(true); // the camera stays open for the room we join again
      this._requestJoin(room);
      this.emitChange();
    } else if (this.phase === RoomPhase.JOINING && !this.joins.some((entry) => !entry.abandoned)) {
      this._requestJoin(this.joining);
    }
  }

  /** Leave and close everything (idempotent). */
  close() {
    if (this.closed) return;
    if (this.phase !== RoomPhase.OUT) this.leave();
    this.closed = true;
    this._setInvitation(null);
    this._reset(false);
    this.events.clear();
  }

  // -- for the room's helpers (room_links.js, room_watch.js, from_call.js) --------------

  /**
   * Send a message about the room to the server (a request, a mesh link's signal).
   * @param {string} type
   * @param {Record<string, unknown>} fields
   * @returns {boolean} sent now (false: it waits for the socket to register again)
   */
  send(type, fields) {
    return this.phone.signaling.send({ type, ...fields });
  }

  /** Tell the listeners that something shown changed (the "change" event). */
  emitChange() {
    this.events.emit("change", this);
  }

  /**
   * Tell the listeners of a problem (the "error" event: for the widget and the kernel, an
   * action_failed "room"), in words a user can act on.
   * @param {string} code  the server's ErrorCode, or a PageError
   * @param {string} words
   */
  emitError(code, words) {
    this.events.emit("error", fail(code, words));
  }

  // -- what the server says ---------------------------------------------------------------

  /**
   * Each branch reads the message as the wire declares it (js/wire.js), still defensively.
   * @param {ServerMessage} msg @returns {boolean} the message was the room's
   */
  _onMessage(msg) {
    const type = msg.type;
    if (type === MessageType.REGISTERED) {
      this.watch.setRingTimeout(/** @type {import("../wire.js").ServerRegistered} */ (msg).ring_timeout);
      return false;
    }
    if (SIGNALS.has(type)) {
      const signal = /** @type {import("../wire.js").ServerOffer | import("../wire.js").ServerAnswer | import("../wire.js").ServerCandidate} */ (msg);
      if (signal.room === undefined || signal.room === null) return false; // a 1:1 call's
      this._signal(signal);
      return true;
    }
    if (type === MessageType.ERROR) return this._serverError(/** @type {import("../wire.js").ServerError} */ (msg));
    if (!ROOM_EVENTS.has(type)) return false;
    if (type === RoomType.ROOM_JOINED) this._joined(/** @type {import("../wire.js").ServerRoomJoined} */ (msg));
    else if (type === RoomType.ROOM_INVITE) this._invited(/** @type {import("../wire.js").ServerRoomInvite} */ (msg));
    else if (this._ours(msg)) this._inRoom(msg);
    return true;
  }

  /** The message is about the room we are in. @param {ServerMessage} msg */
  _ours(msg) {
    return !!this.name && (msg.room === this.room || (!!this.roomKey && msg.room === this.roomKey));
  }

  /** @param {import("../wire.js").ServerRoomJoined} msg */
  _joined(msg) {
    const members = Array.isArray(msg.members) ? msg.members : [];
    /** @type {Member[]} */
    const list = [];
    for (const m of members) {
      const member = m && typeof m === "object" ? memberFrom(m) : null;
      if (member) list.push(member);
    }
    if (msg.from_call && typeof msg.from_call === "object") {
      // Our 1:1 call became this room (from_call.js): no join of ours answered here.
      const adopted = takeOverCall(this, msg);
      if (adopted === false) return;
      this._enter(msg, list, adopted);
      resumeCallSending(this);
    } else {
      const entry = this.joins.shift();
      if (entry && entry.abandoned) return; // left before the answer came
      // Not joining (or this answers a join the page never made): nothing to carry out.
      if (this.phase === RoomPhase.OUT || (!entry && !this._ours(msg))) return;
      this._enter(msg, list);
    }
    for (const r of Array.isArray(msg.ringing) ? msg.ringing : []) {
      if (r && typeof r === "object") this.members.ring(str(r.name), str(r.key) || str(r.name), "");
    }
    this.emitChange();
  }

  /** @param {import("../wire.js").ServerRoomInvite} msg */
  _invited(msg) {
    // The server invites only users in no call or room; one that arrives anyway is moot.
    if (this.phase !== RoomPhase.OUT || this.busyWords()) return;
    const invitation = { room: str(msg.room), from: str(msg.from), fromKey: str(msg.from_key) };
    if (!invitation.room) return;
    this._setInvitation(invitation);
    this.events.emit("invited", invitation);
    this.emitChange();
  }

  /** Messages about the room we are in. @param {ServerMessage} msg */
  _inRoom(msg) {
    const key = str(msg.from_key) || str(msg.from);
    switch (msg.type) {
      case RoomType.MEMBER_JOINED: {
        const fresh = memberFrom(msg);
        const member = fresh && this.members.add(fresh, this.phone.key);
        if (!member) return;
        if (this.mesh && this.topology === Topology.MESH) this.mesh.add(member);
        if (this.sfu) this.sfu.adopt(member);
        this.events.emit("joined", member.name);
        break;
      }
      case RoomType.MEMBER_LEFT: {
        const member = this.members.remove(key);
        this.members.stopRinging(key);
        if (!member) return;
        if (this.mesh) this.mesh.remove(key);
        if (this.sfu) this.sfu.forget(key);
        this.watch.forget(key);
        this.events.emit("left", member.name);
        break;
      }
      case RoomType.MEMBER_RINGING:
        this.members.ring(str(msg.from), key, str(msg.by));
        break;
      case RoomType.MEMBER_DECLINED:
        if (!this.members.stopRinging(key)) return;
        break;
      case RoomType.MEMBER_STATE: {
        const member = this.members.get(key);
        if (!member) return;
        member.audio = msg.audio !== false;
        member.video = msg.video !== false;
        if (!member.audio) member.speaking = false;
        break;
      }
      case RoomType.ROOM_CHAT:
        if (typeof msg.text !== "string" || !msg.text) return;
        this.events.emit("chat", { from: str(msg.from), fromKey: key, text: msg.text });
        return; // nothing shown changed
      case RoomType.ROOM_TOPOLOGY:
        if (msg.topology !== Topology.SFU) return;
        this._sfuIds(msg.members);
        this._setTopology(Topology.SFU);
        openSfu(this, msg.sfu);
        break;
      case RoomType.ROOM_LEFT: {
        // "left" answers our own room_leave: the page left at once, nothing to undo.
        if (msg.reason === LeftReason.LEFT) return;
        const name = this.room;
        this._reset(false);
        this.emitError(
          PageError.ROOM_CLOSED,
          msg.reason === LeftReason.CLOSED ? `the room ${name} was closed` : `you were disconnected from the room ${name}`,
        );
        break;
      }
      default:
        return;
    }
    this.emitChange();
  }

  /**
   * The members' publisher ids on the SFU (room_topology.members): how their feeds are told
   * apart.  The server tells an id only once it is in use in Janus (so nobody can take it
   * first), in a room_topology sent again as ids come.  Only for members we know.
   * @param {unknown} list
   */
  _sfuIds(list) {
    for (const raw of Array.isArray(list) ? list.slice(0, MAX_MEMBERS) : []) {
      const m = raw && typeof raw === "object" ? memberFrom(/** @type {Record<string, unknown>} */ (raw)) : null;
      const known = m && this.members.get(m.key);
      if (!known || m.sfuId === "" || known.sfuId === m.sfuId) continue;
      known.sfuId = m.sfuId;
      if (this.sfu) this.sfu.adopt(known);
    }
  }

  /**
   * A mesh link's signal: only from a member we have a link to, about this room.
   * @param {import("../wire.js").ServerOffer | import("../wire.js").ServerAnswer | import("../wire.js").ServerCandidate} msg
   */
  _signal(msg) {
    if (!this._ours(msg) || !this.mesh) return;
    const key = str(msg.from_key);
    if (!key || !this.members.get(key)) return;
    this.mesh.handle(key, /** @type {import("../call/peer_call.js").Signal} */ (msg));
  }

  /** @param {import("../wire.js").ServerError} msg @returns {boolean} */
  _serverError(msg) {
    const request = str(msg.request);
    if (SIGNALS.has(request)) {
      // In a room (or just out of one) there is no 1:1 call: a signal refused is a link's, to
      // a member that just left (its member_left follows).
      const recent = this.phase === RoomPhase.IN || performance.now() - this.leftAt < LATE_ERRORS_MS;
      return recent && !this.phone.call;
    }
    if (!ROOM_REQUESTS.has(request)) return false;
    const words = str(msg.message) || str(msg.code) || "the server refused";
    if (request === RoomType.ROOM_JOIN) {
      const entry = this.joins.shift();
      if (entry && entry.abandoned) return true;
      if (this.phase !== RoomPhase.JOINING) return true;
      this._reset(false);
      this.emitChange();
    } else if (msg.code === RoomError.NOT_IN_ROOM && (request === RoomType.ROOM_LEAVE || request === RoomType.ROOM_STATE)) {
      return true; // left already (the server removed us first, or a state queued over a reconnect)
    } else if (msg.code === ErrorCode.RATE_LIMITED && request === RoomType.ROOM_STATE) {
      return true; // the next toggle tells it again
    }
    this.emitError(serverCode(msg.code), words);
    return true;
  }

  // -- inside ----------------------------------------------------------------------------

  /** @param {Invitation | null} invitation */
  _setInvitation(invitation) {
    this._invitation = invitation;
    this.watch.inviteExpires(invitation, () => {
      // Rung out: forget it a little after the server has, unless another came meanwhile.
      if (this._invitation !== invitation) return;
      this._setInvitation(null);
      this.emitChange();
    });
  }

  /** @param {import("./members.js").Topology} topology */
  _setTopology(topology) {
    if (topology === this._topology) return;
    this._topology = topology;
    this.events.emit("topology", topology);
  }

  /**
   * In the room (room_joined): its members, the camera, the links or the SFU.  `adopted`: the
   * 1:1 call that became this room, whose connection and camera the room takes over.
   * @param {ServerMessage} msg
   * @param {Member[]} members
   * @param {import("./from_call.js").Adopted | null} [adopted]
   */
  _enter(msg, members, adopted = null) {
    if (this.phase === RoomPhase.IN) this._reset(true);
    this._setInvitation(null); // in a room now: an invitation elsewhere is moot
    this.phase = RoomPhase.IN;
    this.joining = "";
    this.room = String(msg.room || "");
    this.roomKey = String(msg.room_key || "");
    this.members.setMax(msg.max_members);
    for (const member of members) this.members.add(member, this.phone.key);
    const camera = this.camera;
    if (adopted && adopted.stream) camera.adopt(adopted.stream);
    const opened = camera.open();
    if (msg.topology === Topology.SFU) {
      this._setTopology(Topology.SFU);
      openSfu(this, msg.sfu);
    } else {
      this._setTopology(Topology.MESH);
      const mesh = openMesh(this);
      if (!camera.settled) {
        const wanted = camera.wanted();
        mesh.setOpening(wanted.audio || wanted.video ? wanted : null);
      }
      for (const member of this.members) {
        if (adopted && member.key === adopted.key && mesh.adopt(member, adopted.call)) adopted = null;
        else mesh.add(member);
      }
    }
    if (adopted) adopted.call.close({ keepTracks: true }); // no mesh link to become (an SFU room): it ends
    opened.then((media) => cameraOpened(this, media));
    const wish = this.phone.media.wish;
    this.send(RoomType.ROOM_STATE, { room: this.room, audio: !!wish.audio, video: !!wish.video });
    this.watch.start();
  }

  /** Out of the room: links, SFU, members, timers; the camera too unless `keepCamera`. @param {boolean} keepCamera */
  _reset(keepCamera) {
    if (this.phase === RoomPhase.IN) this.leftAt = performance.now();
    if (this.mesh) this.mesh.close();
    this.mesh = null;
    if (this.sfu) this.sfu.close();
    this.sfu = null;
    this.watch.stop();
    this.members.clear();
    if (!keepCamera) this.camera.close();
    this.phase = RoomPhase.OUT;
    this.joining = "";
    this.room = "";
    this.roomKey = "";
    this._setTopology(Topology.NONE);
  }
}
