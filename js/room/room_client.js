// The one room of a Phone (`phone.room`): what the page does in a group call.  The server
// decides who is in the room, who offers to whom and when it moves to the SFU
// (docs/rooms.md); this carries it out: a mesh of PeerCalls (mesh.js) or an SFU session
// (switchover.js), wired to the members in room_links.js; the room's camera
// (room_camera.js); who speaks and how well links do (room_watch.js, levels.js).  What the
// server says is read in room_inbox.js.
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
import { Members, Topology, RoomPhase } from "./members.js";
import { RoomCamera } from "./room_camera.js";
import { RoomInbox } from "./room_inbox.js";
import { RoomWatch } from "./room_watch.js";
import { loadSfuSession } from "./switchover.js";
import { openMesh, openSfu, cameraOpened } from "./room_links.js";
import { RoomType, MAX_CHAT_CHARS } from "./room_protocol.js";
import { inviteFromCall } from "./from_call.js";
import { ErrorCode } from "../protocol.js";
import { PageError } from "../messages.js";
import { fail } from "../failure.js";

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
    this.inbox = new RoomInbox(this);
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
    this._changed();
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
    entry.sent = this._send(RoomType.ROOM_JOIN, msg);
  }

  /** @returns {Outcome} */
  leave() {
    if (this.phase === RoomPhase.OUT) return fail(ErrorCode.NOT_IN_ROOM, "not in a room");
    const room = this.phase === RoomPhase.IN ? this.room : this.joining;
    // A join still unanswered: its reply (room_joined or an error) no longer applies.
    if (this.phase === RoomPhase.JOINING && this.joins.length) this.joins[this.joins.length - 1].abandoned = true;
    this._send(RoomType.ROOM_LEAVE, { room });
    this._reset(false);
    this._changed();
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
    this._send(RoomType.ROOM_INVITE, { room: this.room, to: this.phone.peers.get(key) || name });
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
    this._send(RoomType.ROOM_DECLINE, { room: invitation.room });
    this._setInvitation(null);
    this._changed();
    return "";
  }

  /** A line to everyone in the room (through the server). @param {string} text @returns {Outcome} */
  sendChat(text) {
    if (this.phase !== RoomPhase.IN) return fail(ErrorCode.NOT_IN_ROOM, "not in a room");
    if (typeof text !== "string" || !text) return fail(PageError.INVALID_ARGUMENT, "empty message");
    if (text.length > MAX_CHAT_CHARS) return fail(ErrorCode.TOO_LARGE, `message longer than ${MAX_CHAT_CHARS} characters`);
    this._send(RoomType.ROOM_CHAT, { room: this.room, text });
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
          this._error(
            PageError.MEDIA_FAILED,
            `cannot open the ${kind === "video" ? "camera" : "microphone"}: ${err instanceof Error ? err.message : String(err)}`,
          ),
        );
    }
    this._send(RoomType.ROOM_STATE, { room: this.room, audio: !!audio, video: !!video });
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
    this._changed();
  }

  /** A member's tile size: on the SFU, the simulcast layer it gets. @param {string} key @param {number} width @param {number} height */
  setTileSize(key, width, height) {
    const member = this.members.get(key);
    if (member && this.sfu) this.sfu.setTileSize(member, width, height);
  }

  /** Route a server message here first: true if it was the room's. @param {ServerMessage} msg */
  onServerMessage(msg) {
    if (this.closed) return false;
    return this.inbox.onMessage(msg);
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
      this._changed();
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

  // -- for room_inbox.js ----------------------------------------------------------------

  /** @param {string} type @param {Record<string, unknown>} fields */
  _send(type, fields) {
    return this.phone.signaling.send({ type, ...fields });
  }

  _changed() {
    this.events.emit("change", this);
  }

  /**
   * What went wrong in the room, for the widget and the kernel (an action_failed "room").
   * @param {string} code  the server's ErrorCode, or a PageError
   * @param {string} words
   */
  _error(code, words) {
    this.events.emit("error", fail(code, words));
  }

  /** @param {Invitation | null} invitation */
  _setInvitation(invitation) {
    this._invitation = invitation;
    this.watch.inviteExpires(invitation);
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
    this._send(RoomType.ROOM_STATE, { room: this.room, audio: !!wish.audio, video: !!wish.video });
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
