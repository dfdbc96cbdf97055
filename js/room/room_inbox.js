// What the signaling server says about the room (docs/rooms.md), read before the 1:1
// call's inbox (server_inbox.js): the room's own messages, offer/answer/candidate that
// carry `room` (mesh links), and errors in reply to room requests.  Everything is checked
// against what the page knows: a message about another room, or a signal from someone
// who is not a member, is the room's and is dropped.

import { MessageType, ErrorCode } from "../protocol.js";
import { PageError } from "../messages.js";
import { serverCode } from "../failure.js";
import { memberFrom, Topology, RoomPhase } from "./members.js";
import { openSfu } from "./room_links.js";
import { enterFromCall } from "./from_call.js";
import { RoomType, RoomError, LeftReason, ROOM_EVENTS, ROOM_REQUESTS, SIGNALS, MAX_MEMBERS } from "./room_protocol.js";

/** @typedef {import("./room_client.js").RoomClient} RoomClient */
/** @typedef {import("../types.js").ServerMessage} ServerMessage */
/** @typedef {import("./members.js").Member} Member */

const LATE_ERRORS_MS = 10000; // replies to a room's last signals, after leaving it

/** @param {unknown} value */
const str = (value) => (typeof value === "string" ? value : "");

export class RoomInbox {
  /** @param {RoomClient} room */
  constructor(room) {
    this.room = room;
  }

  /** @param {ServerMessage} msg @returns {boolean} the message was the room's */
  onMessage(msg) {
    const type = msg.type;
    if (type === MessageType.REGISTERED) {
      this.room.watch.setRingTimeout(msg.ring_timeout);
      return false;
    }
    if (SIGNALS.has(type)) {
      if (msg.room === undefined || msg.room === null) return false; // a 1:1 call's
      this._signal(msg);
      return true;
    }
    if (type === MessageType.ERROR) return this._error(msg);
    if (!ROOM_EVENTS.has(type)) return false;
    if (type === RoomType.ROOM_JOINED) this._joined(msg);
    else if (type === RoomType.ROOM_INVITE) this._invited(msg);
    else if (this._ours(msg)) this._inRoom(msg);
    return true;
  }

  /** The message is about the room we are in. @param {ServerMessage} msg */
  _ours(msg) {
    const room = this.room;
    return !!room.name && (msg.room === room.room || (!!room.roomKey && msg.room === room.roomKey));
  }

  /** @param {ServerMessage} msg */
  _joined(msg) {
    const room = this.room;
    const members = Array.isArray(msg.members) ? msg.members : [];
    /** @type {Member[]} */
    const list = [];
    for (const m of members) {
      const member = m && typeof m === "object" ? memberFrom(m) : null;
      if (member) list.push(member);
    }
    if (msg.from_call && typeof msg.from_call === "object") {
      // Our 1:1 call became this room (from_call.js): no join of ours answered here.
      if (!enterFromCall(room, msg, list)) return;
    } else {
      const entry = room.joins.shift();
      if (entry && entry.abandoned) return; // left before the answer came
      // Not joining (or this answers a join the page never made): nothing to carry out.
      if (room.phase === RoomPhase.OUT || (!entry && !this._ours(msg))) return;
      room._enter(msg, list);
    }
    for (const r of Array.isArray(msg.ringing) ? msg.ringing : []) {
      if (r && typeof r === "object") room.members.ring(str(r.name), str(r.key) || str(r.name), "");
    }
    room._changed();
  }

  /** @param {ServerMessage} msg */
  _invited(msg) {
    const room = this.room;
    // The server invites only users in no call or room; one that arrives anyway is moot.
    if (room.phase !== RoomPhase.OUT || room.busyWords()) return;
    const invitation = { room: str(msg.room), from: str(msg.from), fromKey: str(msg.from_key) };
    if (!invitation.room) return;
    room._setInvitation(invitation);
    room.events.emit("invited", invitation);
    room._changed();
  }

  /** Messages about the room we are in. @param {ServerMessage} msg */
  _inRoom(msg) {
    const room = this.room;
    const key = str(msg.from_key) || str(msg.from);
    switch (msg.type) {
      case RoomType.MEMBER_JOINED: {
        const fresh = memberFrom(msg);
        const member = fresh && room.members.add(fresh, room.phone.key);
        if (!member) return;
        if (room.mesh && room.topology === Topology.MESH) room.mesh.add(member);
        if (room.sfu) room.sfu.adopt(member);
        room.events.emit("joined", member.name);
        break;
      }
      case RoomType.MEMBER_LEFT: {
        const member = room.members.remove(key);
        room.members.stopRinging(key);
        if (!member) return;
        if (room.mesh) room.mesh.remove(key);
        if (room.sfu) room.sfu.forget(key);
        room.watch.forget(key);
        room.events.emit("left", member.name);
        break;
      }
      case RoomType.MEMBER_RINGING:
        room.members.ring(str(msg.from), key, str(msg.by));
        break;
      case RoomType.MEMBER_DECLINED:
        if (!room.members.stopRinging(key)) return;
        break;
      case RoomType.MEMBER_STATE: {
        const member = room.members.get(key);
        if (!member) return;
        member.audio = msg.audio !== false;
        member.video = msg.video !== false;
        if (!member.audio) member.speaking = false;
        break;
      }
      case RoomType.ROOM_CHAT:
        if (typeof msg.text !== "string" || !msg.text) return;
        room.events.emit("chat", { from: str(msg.from), fromKey: key, text: msg.text });
        return; // nothing shown changed
      case RoomType.ROOM_TOPOLOGY:
        if (msg.topology !== Topology.SFU) return;
        this._sfuIds(msg.members);
        room._setTopology(Topology.SFU);
        openSfu(room, msg.sfu);
        break;
      case RoomType.ROOM_LEFT: {
        // "left" answers our own room_leave: the page left at once, nothing to undo.
        if (msg.reason === LeftReason.LEFT) return;
        const name = room.room;
        room._reset(false);
        room._error(
          PageError.ROOM_CLOSED,
          msg.reason === LeftReason.CLOSED ? `the room ${name} was closed` : `you were disconnected from the room ${name}`,
        );
        break;
      }
      default:
        return;
    }
    room._changed();
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
      const known = m && this.room.members.get(m.key);
      if (!known || m.sfuId === "" || known.sfuId === m.sfuId) continue;
      known.sfuId = m.sfuId;
      if (this.room.sfu) this.room.sfu.adopt(known);
    }
  }

  /** A mesh link's signal: only from a member we have a link to, about this room. @param {ServerMessage} msg */
  _signal(msg) {
    const room = this.room;
    if (!this._ours(msg) || !room.mesh) return;
    const key = str(msg.from_key);
    if (!key || !room.members.get(key)) return;
    room.mesh.handle(key, /** @type {import("../call/peer_call.js").Signal} */ (msg));
  }

  /** @param {ServerMessage} msg @returns {boolean} */
  _error(msg) {
    const room = this.room;
    const request = str(msg.request);
    if (SIGNALS.has(request)) {
      // In a room (or just out of one) there is no 1:1 call: a signal refused is a link's, to
      // a member that just left (its member_left follows).
      const recent = room.phase === RoomPhase.IN || performance.now() - room.leftAt < LATE_ERRORS_MS;
      return recent && !room.phone.call;
    }
    if (!ROOM_REQUESTS.has(request)) return false;
    const words = str(msg.message) || str(msg.code) || "the server refused";
    if (request === RoomType.ROOM_JOIN) {
      const entry = room.joins.shift();
      if (entry && entry.abandoned) return true;
      if (room.phase !== RoomPhase.JOINING) return true;
      room._reset(false);
      room._changed();
    } else if (msg.code === RoomError.NOT_IN_ROOM && (request === RoomType.ROOM_LEAVE || request === RoomType.ROOM_STATE)) {
      return true; // left already (the server removed us first, or a state queued over a reconnect)
    } else if (msg.code === ErrorCode.RATE_LIMITED && request === RoomType.ROOM_STATE) {
      return true; // the next toggle tells it again
    }
    room._error(serverCode(msg.code), words);
    return true;
  }
}
