// A connected 1:1 call that becomes a room (docs/rooms.md "From a call").  Inviting a third
// person during the call sends `room_invite` without `room`; the server moves both sides of
// the call into a new invite-only room, tells each `room_joined` with `from_call`, and rings
// the invitee.  The page carries the call over: the Phone ends it without a hangup (reason
// `moved`) and hands its RTCPeerConnection and camera to the room.  The mesh adopts that
// connection as the link to the former peer, already connected and negotiated, so the
// picture never stops and nothing renegotiates; the room's camera is the call's stream, so
// its light does not blink.  Both pages do this on their own: the server's `offer` flags keep
// the call's roles (the caller offers), so perfect negotiation goes on as it was.

import { State } from "../names.js";
import { RoomPhase } from "./members.js";
import { RoomType } from "./room_protocol.js";
import { ErrorCode } from "../protocol.js";
import { PageError } from "../messages.js";
import { fail } from "../failure.js";

/** @typedef {import("./room_client.js").RoomClient} RoomClient */
/** @typedef {import("../types.js").ServerMessage} ServerMessage */
/** @typedef {import("./members.js").Member} Member */
/** @typedef {import("../failure.js").Outcome} Outcome */
/** @typedef {import("../call/call_media.js").HandedOver & {key: string}} Adopted  a call's connection, for the link to `key` */

/** @param {unknown} value */
const str = (value) => (typeof value === "string" ? value : "");

/**
 * Invite `name` while in a 1:1 call, which becomes a room ("" when asked).
 * @param {RoomClient} room
 * @param {string} name
 * @returns {Outcome}
 */
export function inviteFromCall(room, name) {
  const p = room.phone;
  if (p.state !== State.CONNECTED || !p.call) {
    return fail(PageError.NOT_CONNECTED, `the call with ${p.peer} is not connected yet: invite once it is`);
  }
  if (p.seedCall) {
    return fail(ErrorCode.SEED_CALL, `${p.peer} uses a seed client, which has no rooms: this call cannot take a third person`);
  }
  if (typeof name !== "string" || !name.trim()) return fail(ErrorCode.INVALID_NAME, "whom to invite?");
  if (name === p.user) return fail(ErrorCode.SELF_CALL, "you are already in the call");
  const key = p.peers.keyOf(name);
  if (!key) return fail(ErrorCode.UNKNOWN_PEER, `${name} is not online`);
  if (key === p.peerKey) return fail(PageError.ALREADY_MEMBER, `${name} is already in the call`);
  room.send(RoomType.ROOM_INVITE, { to: p.peers.get(key) || name }); // no `room`: this call becomes one
  return "";
}

/**
 * `room_joined` with `from_call`: the server moved our call into this room.  Ours to carry
 * over only while that call goes on here: then the Phone hands over its connection and
 * camera (its call ends, reason `moved`) for the room to enter with.  If we hung up as it
 * moved (the server had moved it first), we leave the room it put us in: the hang-up stands.
 * @param {RoomClient} room
 * @param {ServerMessage} msg
 * @returns {Adopted | null | false} false: not ours (left again)
 */
export function takeOverCall(room, msg) {
  const p = room.phone;
  const from = /** @type {Record<string, unknown>} */ (msg.from_call);
  const peerKey = str(from.peer_key);
  const callId = str(from.call_id);
  const ours = !!p.call && !p.seedCall && !!peerKey && peerKey === p.peerKey && (!p.callId || !callId || callId === p.callId);
  if (!ours || room.phase !== RoomPhase.OUT) {
    room.send(RoomType.ROOM_LEAVE, { room: str(msg.room) });
    return false;
  }
  const handed = p.handOver();
  return handed && { ...handed, key: peerKey };
}

/**
 * In the room the call became: a kind the call had stopped sending as it ended (a screen
 * share stops with the call) opens again, as the phone sends it, onto the adopted link and
 * the room's stream; and the phone's views see its call ended.
 * @param {RoomClient} room
 */
export function resumeCallSending(room) {
  const p = room.phone;
  const wish = { audio: !!p.media.wish.audio, video: !!p.media.wish.video };
  if (room.camera.settled && room.camera.setSend(wish).length) room.setSend(wish);
  p.emitChange();
}
