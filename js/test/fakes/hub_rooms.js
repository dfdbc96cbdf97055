// The FakeHub's rooms, as the server does them per docs/rooms.md: join (open, invite-only,
// password), members with who offers to whom (the newcomer offers to everyone already
// in), leave, invite / decline, state, chat, offer/answer/candidate forwarded with `room`
// only between two members of one room, member_left when a socket dies, the move to
// the SFU (past the mesh limit when `sfu` is configured, or at once with moveToSfu()), and
// a connected 1:1 call that becomes a room (`room_invite` without `room`: _fromCall).
// Checked against the real server by ../contract.test.js, like hub.js.

import { Limit } from "../../protocol.js";

/** @typedef {import("./hub.js").FakeHub} FakeHub */
/** @typedef {import("./hub.js").Client} Client */
/** @typedef {{name: string, key: string, audio: boolean, video: boolean, sfuId: string}} RoomMember */
/**
 * @typedef {object} FakeRoom
 * @property {string} name
 * @property {string} key
 * @property {"open" | "invite"} access
 * @property {string | null} password
 * @property {Map<string, RoomMember>} members
 * @property {Map<string, {name: string, key: string, by: string}>} ringing
 * @property {"mesh" | "sfu"} topology
 */

export class FakeRooms {
  /** @param {FakeHub} hub @param {(name: string) => string} nameKey */
  constructor(hub, nameKey) {
    this.hub = hub;
    this.nameKey = nameKey;
    /** @type {Map<string, FakeRoom>} room key -> room */
    this.rooms = new Map();
    /** @type {Map<string, string>} user key -> the key of its room */
    this.inRoom = new Map();
    /** @type {Map<string, string>} user key -> the key of the room ringing it (one at a time) */
    this.rung = new Map();
    this.meshLimit = 4;
    this.maxMembers = 50;
    /** @type {{url: string} | null} an SFU the rooms may move to (none: the fifth is refused) */
    this.sfu = null;
    this.nextSfuId = 101;
    this.nextCallRoom = 1; // rooms made of calls: call-00000001 ...
    /** @type {any[]} every room request, in order (what the pages sent) */
    this.log = [];
  }

  clear() {
    this.rooms.clear();
    this.inRoom.clear();
    this.rung.clear();
  }

  /** As the server: in a room or rung to join one is busy for anyone's call. @param {string} key */
  engaged(key) {
    return this.inRoom.has(key) || this.rung.has(key);
  }

  /**
   * `key` starts a call or joins another room: the invitation ringing it ends (busy).
   * @param {string} key @param {string} [but] the room it joins
   */
  endRinging(key, but) {
    const roomKey = this.rung.get(key);
    const room = roomKey && roomKey !== but ? this.rooms.get(roomKey) : undefined;
    if (room) this._declined(room, key, "busy");
  }

  /**
   * The invitation of `key` to `room` ends: the members and the invitee are told why.
   * @param {FakeRoom} room @param {string} key @param {"rejected" | "busy" | "left"} reason
   */
  _declined(room, key, reason) {
    const invitation = room.ringing.get(key);
    if (!invitation) return;
    room.ringing.delete(key);
    if (this.rung.get(key) === room.key) this.rung.delete(key);
    const declined = { type: "member_declined", room: room.name, from: invitation.name, from_key: key, reason };
    for (const k of room.members.keys()) this.hub.tell(k, declined);
    this.hub.tell(key, declined);
  }

  /**
   * As the server's parse_request: what is wrong with a room request's fields, if anything.
   * @param {any} msg @returns {[string, string] | null} code and message
   */
  _invalid(msg) {
    const type = msg.type;
    if (!(type === "room_invite" && msg.room == null)) {
      const name = typeof msg.room === "string" ? msg.room.normalize("NFKC").trim() : "";
      if (!name || name.length > Limit.MAX_NAME_LENGTH) return ["invalid_room", "'room' is not a valid room name"];
    }
    if (type === "room_join" && msg.access !== undefined && msg.access !== "open" && msg.access !== "invite") return ["bad_message", "'access' must be \"open\" or \"invite\""];
    if (type === "room_invite" && (typeof msg.to !== "string" || !msg.to.trim())) return ["bad_message", "'to' is not a valid user name"];
    if (type === "room_state" && (typeof msg.audio !== "boolean" || typeof msg.video !== "boolean")) return ["bad_message", "'audio' and 'video' must be true or false"];
    if (type === "room_chat") {
      if (typeof msg.text !== "string" || !msg.text) return ["bad_message", "'text' must be a non-empty string"];
      if (msg.text.length > Limit.MAX_ROOM_CHAT_CHARS) return ["too_large", `room chat is limited to ${Limit.MAX_ROOM_CHAT_CHARS} characters`];
    }
    return null;
  }

  /** @param {string} key */
  roomOf(key) {
    const roomKey = this.inRoom.get(key);
    return roomKey ? this.rooms.get(roomKey) || null : null;
  }

  /** @param {Client} me @param {string} request @param {string} code @param {string} message */
  _refuse(me, request, code, message) {
    this.hub._deliver(me.ws, { type: "error", code, message, request });
  }

  /**
   * A room request, or a signal carrying `room`; false for anything else.
   * @param {Client} me
   * @param {any} msg
   */
  receive(me, msg) {
    const type = msg.type;
    const signal = ["offer", "answer", "candidate"].includes(type);
    if (signal && msg.room == null) {
      if (!this.inRoom.has(me.key)) return false; // a 1:1 call's
      // As the server: a member has no 1:1 call (a call that became a room is gone).
      this._refuse(me, type, type === "offer" ? "busy" : "no_call", `you have no call with '${msg.to}'`);
      return true;
    }
    if (!signal && !type.startsWith("room_")) return false;
    this.log.push({ from: me.key, ...msg });
    const invalid = signal ? null : this._invalid(msg);
    if (invalid) {
      this._refuse(me, type, ...invalid);
      return true;
    }
    if (signal) this._forward(me, msg);
    else if (type === "room_join") this._join(me, msg);
    else if (type === "room_decline") this._decline(me, msg);
    else if (type === "room_invite" && msg.room == null) this._fromCall(me, msg);
    else {
      const room = this.roomOf(me.key);
      if (!room || room.key !== this.nameKey(String(msg.room || ""))) this._refuse(me, type, "not_in_room", "you are not in that room");
      else if (type === "room_leave") this._remove(room, me.key, "left");
      else if (type === "room_invite") this._invite(room, me, msg);
      else if (type === "room_state") {
        const member = /** @type {RoomMember} */ (room.members.get(me.key));
        Object.assign(member, { audio: !!msg.audio, video: !!msg.video });
        this._others(room, me.key, { type: "member_state", room: room.name, from: me.name, from_key: me.key, audio: member.audio, video: member.video });
      } else if (type === "room_chat") {
        this._others(room, me.key, { type: "room_chat", room: room.name, from: me.name, from_key: me.key, text: msg.text });
      }
    }
    return true;
  }

  /** @param {FakeRoom} room @param {string} except @param {object} msg */
  _others(room, except, msg) {
    for (const key of room.members.keys()) if (key !== except) this.hub.tell(key, msg);
  }

  /** @param {RoomMember} member */
  _sfuFor(member) {
    return { url: this.sfu ? this.sfu.url : "ws://janus", room: "janus-room-4242", token: `token-${member.key}`, pin: "pin", id: member.sfuId };
  }

  /** @param {Client} me @param {any} msg */
  _join(me, msg) {
    const name = String(msg.room).normalize("NFKC").trim();
    if (this.hub.calls.has(me.key) || this.inRoom.has(me.key)) return this._refuse(me, "room_join", "busy", "you are in a call or another room");
    const key = this.nameKey(name);
    let room = this.rooms.get(key);
    if (room) {
      const invited = room.ringing.has(me.key);
      const password = typeof msg.password === "string" && msg.password ? msg.password : null;
      if (!invited && (room.access === "invite" || room.password) && (!room.password || password !== room.password)) {
        return this._refuse(me, "room_join", "not_invited", `the room ${room.name} is invite-only or needs its password`);
      }
      if (room.members.size >= this.maxMembers) return this._refuse(me, "room_join", "room_full", `the room ${room.name} is full`);
      if (room.topology === "mesh" && room.members.size >= this.meshLimit) {
        if (!this.sfu) return this._refuse(me, "room_join", "room_full", `the room ${room.name} is full: configure an SFU for more`);
        this.moveToSfu(room.key);
      }
    } else {
      room = {
        name,
        key,
        access: msg.access === "invite" ? "invite" : "open",
        password: typeof msg.password === "string" && msg.password ? msg.password : null,
        members: new Map(),
        ringing: new Map(),
        topology: "mesh",
      };
      this.rooms.set(key, room);
    }
    this.endRinging(me.key, room.key);
    room.ringing.delete(me.key);
    if (this.rung.get(me.key) === room.key) this.rung.delete(me.key);
    /** @type {RoomMember} */
    const member = { name: me.name, key: me.key, audio: true, video: true, sfuId: `pub-${this.nextSfuId++}` };
    const others = [...room.members.values()];
    room.members.set(me.key, member);
    this.inRoom.set(me.key, room.key);
    this.hub._deliver(me.ws, {
      type: "room_joined",
      room: room.name,
      room_key: room.key,
      topology: room.topology,
      // As the server: publisher ids only on the SFU (a mesh has none), and on the SFU nobody offers.
      members: others.map((m) => ({ name: m.name, key: m.key, audio: m.audio, video: m.video, offer: room.topology !== "sfu", sfu_id: this._sfuId(room, m) })),
      ringing: [...room.ringing.values()].map((r) => ({ name: r.name, key: r.key })),
      mesh_limit: this.meshLimit,
      max_members: this.maxMembers,
      sfu: room.topology === "sfu" ? this._sfuFor(member) : null,
    });
    const joined = { type: "member_joined", room: room.name, from: me.name, from_key: me.key, audio: true, video: true, offer: false, sfu_id: this._sfuId(room, member) };
    this._others(room, me.key, joined);
  }

  /** @param {FakeRoom} room @param {string} key @param {"left" | "disconnected" | "closed"} reason */
  _remove(room, key, reason) {
    const member = room.members.get(key);
    if (!member) return;
    room.members.delete(key);
    this.inRoom.delete(key);
    if (reason === "left") this.hub.tell(key, { type: "room_left", room: room.name, reason });
    this._others(room, key, { type: "member_left", room: room.name, from: member.name, from_key: key, reason });
    if (room.members.size) return;
    this.rooms.delete(room.key);
    for (const invited of [...room.ringing.keys()]) this._declined(room, invited, "left"); // as the server: nobody is left to join
  }

  /** @param {FakeRoom} room @param {Client} me @param {any} msg */
  _invite(room, me, msg) {
    const key = this.nameKey(String(msg.to || ""));
    const target = this.hub.users.get(key);
    if (!target) return this._refuse(me, "room_invite", "unknown_peer", `'${msg.to}' is not online`);
    if (key === me.key) return this._refuse(me, "room_invite", "self_call", "you cannot invite yourself");
    const elsewhere = this.inRoom.get(key) || this.rung.get(key);
    if (this.hub.calls.has(key) || (elsewhere && elsewhere !== room.key)) return this._refuse(me, "room_invite", "busy", `${target.name} is in a call or a room`);
    if (this.inRoom.has(key)) return this._refuse(me, "room_invite", "busy", `${target.name} is in this room already`);
    room.ringing.set(key, { name: target.name, key, by: me.name }); // invited again: it rings anew
    this.rung.set(key, room.key);
    this.hub.tell(key, { type: "room_invite", room: room.name, from: me.name, from_key: me.key, members: room.members.size });
    for (const k of room.members.keys()) this.hub.tell(k, { type: "member_ringing", room: room.name, from: target.name, from_key: key, by: me.name });
  }

  /**
   * As the server (room_from_call.py): the sender's answered call moves into a new
   * invite-only room, both sides told room_joined with from_call (the caller offers), no
   * hangup; then the invitee rings.
   * @param {Client} me @param {any} msg
   */
  _fromCall(me, msg) {
    const call = this.hub.calls.get(me.key);
    const refuse = (/** @type {string} */ code, /** @type {string} */ message) => this._refuse(me, "room_invite", code, message);
    if (!call || call.state !== "active") return refuse("no_call", "you are in no answered call");
    const peerKey = call.caller === me.key ? call.callee : call.caller;
    const peer = this.hub.users.get(peerKey);
    if (!peer || !peer.nbcall || !me.nbcall) return refuse("seed_call", "a seed client's call cannot become a room");
    const to = this.nameKey(String(msg.to || ""));
    if (to === peerKey) return refuse("busy", `'${peer.name}' is in this call already`);
    const target = this.hub.users.get(to);
    if (!target) return refuse("unknown_peer", `'${msg.to}' is not online`);
    if (to === me.key) return refuse("self_call", "you cannot invite yourself");
    if (this.hub.calls.has(to) || this.engaged(to)) return refuse("busy", `${target.name} is in a call or a room`);
    const name = `call-${(this.nextCallRoom++).toString(16).padStart(8, "0")}`;
    /** @type {FakeRoom} */
    const room = { name, key: name, access: "invite", password: null, members: new Map(), ringing: new Map(), topology: "mesh" };
    this.rooms.set(room.key, room);
    this.hub.calls.delete(call.caller);
    this.hub.calls.delete(call.callee);
    for (const key of [call.callee, call.caller]) {
      const client = /** @type {Client} */ (this.hub.users.get(key));
      room.members.set(key, { name: client.name, key, audio: true, video: true, sfuId: `pub-${this.nextSfuId++}` });
      this.inRoom.set(key, room.key);
    }
    for (const [key, partner] of [[call.callee, call.caller], [call.caller, call.callee]]) {
      const other = /** @type {RoomMember} */ (room.members.get(partner));
      this.hub.tell(key, {
        type: "room_joined", room: name, room_key: name, topology: "mesh",
        members: [{ name: other.name, key: partner, audio: true, video: true, offer: key === call.caller, sfu_id: null }],
        ringing: [], mesh_limit: this.meshLimit, max_members: this.maxMembers, sfu: null,
        from_call: { peer: other.name, peer_key: partner, call_id: call.id },
      }); // prettier-ignore
    }
    this._invite(room, me, msg);
  }

  /** @param {Client} me @param {any} msg */
  _decline(me, msg) {
    const room = this.rooms.get(this.nameKey(String(msg.room || "")));
    if (!room || !room.ringing.has(me.key)) return this._refuse(me, "room_decline", "not_invited", "no invitation to that room");
    this._declined(room, me.key, "rejected");
  }

  /** @param {Client} me @param {any} msg */
  _forward(me, msg) {
    const room = this.roomOf(me.key);
    const to = this.nameKey(String(msg.to || ""));
    if (!room || room.key !== this.nameKey(String(msg.room)) || !room.members.has(to)) {
      return this._refuse(me, msg.type, "no_call", "not in a room with them");
    }
    const field = msg.type === "candidate" ? "candidate" : "sdp";
    this.hub.tell(to, { type: msg.type, from: me.name, from_key: me.key, [field]: msg[field], room: room.name });
  }

  /** A member's publisher id as the server tells it: null while the room is a mesh. @param {FakeRoom} room @param {RoomMember} member */
  _sfuId(room, member) {
    return room.topology === "sfu" ? member.sfuId : null;
  }

  /** The room moves to the SFU: every member is told its own SFU config. @param {string} roomKey */
  moveToSfu(roomKey) {
    const room = this.rooms.get(roomKey);
    if (!room || room.topology === "sfu") return;
    room.topology = "sfu";
    for (const member of room.members.values()) {
      // As the server: the others' publisher ids come with the move (the mesh had none).
      const others = [...room.members.values()].filter((m) => m.key !== member.key);
      const listed = others.map((m) => ({ name: m.name, key: m.key, audio: m.audio, video: m.video, offer: false, sfu_id: m.sfuId }));
      this.hub.tell(member.key, { type: "room_topology", room: room.name, topology: "sfu", sfu: this._sfuFor(member), members: listed });
    }
  }

  /**
   * A user's socket closed or died: out of its room, the others told at once.
   * @param {string} key @param {"disconnected" | "closed"} [reason]
   */
  drop(key, reason = "disconnected") {
    const room = this.roomOf(key);
    if (room) this._remove(room, key, reason);
    const rung = this.rooms.get(this.rung.get(key) || "");
    if (rung) this._declined(rung, key, "left");
  }
}
