// The room messages of docs/rooms.md as the page needs them, named from js/protocol.js and
// js/wire.js (generated from nbcall/signaling: one definition of every type, code and bound).

import { MessageType, ErrorCode, RoomReason, Limit } from "../protocol.js";
import { ROOM_EVENTS as WIRE_ROOM_EVENTS, ROOM_REQUESTS as WIRE_ROOM_REQUESTS } from "../wire.js";

/** Room message types, both directions. */
export const RoomType = Object.freeze({
  ROOM_JOIN: MessageType.ROOM_JOIN,
  ROOM_LEAVE: MessageType.ROOM_LEAVE,
  ROOM_INVITE: MessageType.ROOM_INVITE, // client → server (with `to`) and server → invitee (with `from`)
  ROOM_DECLINE: MessageType.ROOM_DECLINE,
  ROOM_STATE: MessageType.ROOM_STATE,
  ROOM_CHAT: MessageType.ROOM_CHAT, // both directions
  ROOM_JOINED: MessageType.ROOM_JOINED,
  ROOM_LEFT: MessageType.ROOM_LEFT,
  MEMBER_JOINED: MessageType.MEMBER_JOINED,
  MEMBER_LEFT: MessageType.MEMBER_LEFT,
  MEMBER_RINGING: MessageType.MEMBER_RINGING,
  MEMBER_DECLINED: MessageType.MEMBER_DECLINED,
  MEMBER_STATE: MessageType.MEMBER_STATE,
  ROOM_TOPOLOGY: MessageType.ROOM_TOPOLOGY,
});

/** Error codes of refused room requests. */
export const RoomError = Object.freeze({
  INVALID_ROOM: ErrorCode.INVALID_ROOM,
  ROOM_FULL: ErrorCode.ROOM_FULL,
  NOT_INVITED: ErrorCode.NOT_INVITED,
  NOT_IN_ROOM: ErrorCode.NOT_IN_ROOM,
  BUSY: ErrorCode.BUSY,
  SFU_UNAVAILABLE: ErrorCode.SFU_UNAVAILABLE,
  ROOMS_UNAVAILABLE: ErrorCode.ROOMS_UNAVAILABLE,
});

/** `room_left.reason` / `member_left.reason` values. */
export const LeftReason = Object.freeze({ LEFT: RoomReason.LEFT, DISCONNECTED: RoomReason.DISCONNECTED, CLOSED: RoomReason.CLOSED });

/** The room's bounds (docs/rooms.md "Bounds"), for a server that does not say. */
export const MAX_MEMBERS = Limit.MAX_ROOM_MEMBERS;
export const MAX_RINGING = Limit.MAX_ROOM_RINGING;
export const MAX_CHAT_CHARS = Limit.MAX_ROOM_CHAT_CHARS;

/** What the page sends about a room: an `error` whose `request` is one of these is the room's. @type {ReadonlySet<string>} */
export const ROOM_REQUESTS = new Set(WIRE_ROOM_REQUESTS);

/** What only the room hears from the server. @type {ReadonlySet<string>} */
export const ROOM_EVENTS = new Set(WIRE_ROOM_EVENTS);

/** Signals of a mesh link when they carry `room`. @type {ReadonlySet<string>} */
export const SIGNALS = new Set([MessageType.OFFER, MessageType.ANSWER, MessageType.CANDIDATE]);
