// Who else is in the room, as the server says (room_joined, member_*), with what the page
// knows of each: its media, its link, whether it speaks.  Keys are the server's: the page
// holds no name rule.  Bounded by the room's max_members; a server asking for more is
// wrong and is not followed.

import { PARTICIPANT_STATES, TOPOLOGIES } from "../messages.js";
import { pick } from "../names.js";
import { MAX_MEMBERS, MAX_RINGING } from "./room_protocol.js";

/** @typedef {typeof PARTICIPANT_STATES[number]} ParticipantState */
/** @typedef {typeof TOPOLOGIES[number]} Topology */
/** @typedef {"good" | "fair" | "poor" | ""} Quality */

/** A participant's state, by name (PARTICIPANT_STATES in messages.js). */
export const ParticipantState = Object.freeze({
  RINGING: pick(PARTICIPANT_STATES, "ringing"),
  CONNECTING: pick(PARTICIPANT_STATES, "connecting"),
  CONNECTED: pick(PARTICIPANT_STATES, "connected"),
  RECONNECTING: pick(PARTICIPANT_STATES, "reconnecting"),
});

/** How the room carries media (TOPOLOGIES in messages.js; "p2p" is the 1:1 call's, never a room's). */
export const Topology = Object.freeze({
  NONE: pick(TOPOLOGIES, ""),
  MESH: pick(TOPOLOGIES, "mesh"),
  SFU: pick(TOPOLOGIES, "sfu"),
});

/** Where the page is with its room. */
export const RoomPhase = Object.freeze({ OUT: "out", JOINING: "joining", IN: "in" });
/** @typedef {typeof RoomPhase[keyof typeof RoomPhase]} RoomPhaseName */

/**
 * What `participants()` gives for each member (and each invitee still ringing).
 * @typedef {{name: string, key: string, state: ParticipantState, audio: boolean, video: boolean, speaking: boolean, quality: Quality}} Participant
 */

/**
 * @typedef {object} Member
 * @property {string} name
 * @property {string} key
 * @property {boolean} audio  its microphone is on (member_state)
 * @property {boolean} video  its camera is on
 * @property {boolean} offer  we offer to it (the impolite side of its mesh link)
 * @property {string | number} sfuId  its publisher id on the SFU, as the server gave it (Janus's are numbers; "" if none)
 * @property {RTCPeerConnectionState | ""} link  its mesh link's state ("" with no link)
 * @property {boolean} linkLost  its mesh link failed for good and was closed
 * @property {MediaStream | null} meshStream
 * @property {MediaStream | null} sfuStream
 * @property {boolean} speaking
 * @property {Quality} quality
 */

/** @param {unknown} value */
const str = (value) => (typeof value === "string" ? value : typeof value === "number" ? String(value) : "");

/**
 * A member as the server describes it: `{name, key, ...}` in room_joined.members, or
 * `{from, from_key, ...}` in member_joined.
 * @param {Record<string, unknown>} m
 * @returns {Member | null}
 */
export function memberFrom(m) {
  const name = str(m.name) || str(m.from);
  const key = str(m.key) || str(m.from_key) || name;
  if (!key) return null;
  return {
    name: name || key,
    key,
    audio: m.audio !== false,
    video: m.video !== false,
    offer: m.offer === true,
    sfuId: typeof m.sfu_id === "number" || typeof m.sfu_id === "string" ? m.sfu_id : "",
    link: "",
    linkLost: false,
    meshStream: null,
    sfuStream: null,
    speaking: false,
    quality: "",
  };
}

export class Members {
  constructor() {
    /** @type {Map<string, Member>} key -> member, in the order they came */
    this.map = new Map();
    /** @type {Map<string, {name: string, key: string, by: string}>} invited, not answered yet */
    this.ringing = new Map();
    /** @type {number} */
    this.max = MAX_MEMBERS;
  }

  /** The room's bound (room_joined.max_members; ours included). @param {unknown} max */
  setMax(max) {
    this.max = typeof max === "number" && max > 1 && Number.isFinite(max) ? Math.min(max, MAX_MEMBERS) : MAX_MEMBERS;
  }

  /**
   * Add (or refresh) a member; null past the bound or for ourselves.
   * @param {Member} member
   * @param {string} selfKey
   */
  add(member, selfKey) {
    if (member.key === selfKey) return null;
    this.ringing.delete(member.key);
    const known = this.map.get(member.key);
    if (known) {
      Object.assign(known, { name: member.name, audio: member.audio, video: member.video, sfuId: member.sfuId !== "" ? member.sfuId : known.sfuId });
      return known;
    }
    if (this.map.size >= this.max - 1) return null; // max counts us too
    this.map.set(member.key, member);
    return member;
  }

  /** @param {string} key */
  get(key) {
    return this.map.get(key) || null;
  }

  /** @param {string} key */
  remove(key) {
    const member = this.map.get(key) || null;
    this.map.delete(key);
    return member;
  }

  /** The member publishing as `id` on the SFU. @param {unknown} id */
  bySfuId(id) {
    const wanted = str(id);
    if (!wanted) return null;
    for (const member of this.map.values()) if (String(member.sfuId) === wanted) return member;
    return null;
  }

  /** @param {string} name @param {string} key @param {string} by */
  ring(name, key, by) {
    if (!key || this.map.has(key)) return;
    if (!this.ringing.has(key) && this.ringing.size >= MAX_RINGING) return;
    this.ringing.set(key, { name: name || key, key, by });
  }

  /** @param {string} key */
  stopRinging(key) {
    return this.ringing.delete(key);
  }

  clear() {
    this.map.clear();
    this.ringing.clear();
  }

  /** @returns {IterableIterator<Member>} */
  [Symbol.iterator]() {
    return this.map.values();
  }

  get size() {
    return this.map.size;
  }

  /**
   * Everyone the room shows: members in the order they came, then who is ringing.
   * @param {Topology} topology
   * @param {boolean} sfuTrouble  the SFU session is down or reconnecting
   * @returns {Participant[]}
   */
  participants(topology, sfuTrouble) {
    /** @type {Participant[]} */
    const out = [];
    for (const m of this.map.values()) {
      out.push({ name: m.name, key: m.key, state: memberState(m, topology, sfuTrouble), audio: m.audio, video: m.video, speaking: m.speaking, quality: m.quality });
    }
    for (const r of this.ringing.values()) {
      out.push({ name: r.name, key: r.key, state: ParticipantState.RINGING, audio: false, video: false, speaking: false, quality: "" });
    }
    return out;
  }
}

/**
 * A member's state from its mesh link and, in an SFU room, whether its stream arrived.
 * @param {Member} m @param {Topology} topology @param {boolean} sfuTrouble
 * @returns {ParticipantState}
 */
export function memberState(m, topology, sfuTrouble) {
  const { CONNECTING, CONNECTED, RECONNECTING } = ParticipantState;
  if (topology === Topology.SFU) {
    if (m.sfuStream) return sfuTrouble ? RECONNECTING : CONNECTED;
    if (m.link === "connected") return CONNECTED; // the mesh carries it until its SFU stream comes
    return sfuTrouble ? RECONNECTING : CONNECTING;
  }
  if (m.link === "connected") return CONNECTED;
  if (m.linkLost || m.link === "disconnected" || m.link === "failed") return RECONNECTING;
  return CONNECTING;
}
