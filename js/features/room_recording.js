// Recordings in a room (docs/widget.md "Recording"): `grid` records every member's tile and
// our own, laid out like the widget's grid, with everyone's audio mixed; a member's name
// records that member alone (`remote`: the first member, as for snapshots); `local` records
// what we send.  Each is a GridCanvas (media/grid_canvas.js) fed from the room as it is at
// every frame, so members who join or leave during a grid recording appear and disappear
// while it goes on, and a member's recording follows its stream across the move from the
// mesh to the SFU.  A recording ends by itself when what it records is gone: we left the
// room, or the member it records did (its file still arrives).

import { ROOM_RECORDING_SOURCES, RECORDING_SOURCES } from "../messages.js";
import { pick } from "../names.js";
import { GridCanvas } from "../media/grid_canvas.js";

/** @typedef {import("../call/phone.js").Phone} Phone */
/** @typedef {import("../media/recorder.js").Recording} Recording */
/** @typedef {import("../media/grid_canvas.js").TileSource} TileSource */

export const GRID = pick(ROOM_RECORDING_SOURCES, "grid");
const LOCAL = pick(ROOM_RECORDING_SOURCES, "local");
const REMOTE = pick(RECORDING_SOURCES, "remote");
const BOTH = pick(RECORDING_SOURCES, "both"); // the 1:1 call's "both sides": in a room, the grid

/**
 * What `which` records in the phone's room: the tiles to draw at each frame, how, and when
 * the recording is over.  Throws with words for a `which` that names nobody in the room.
 * @param {Phone} phone
 * @param {string} which  grid | local | remote | both | a member's name (as the server spells it)
 * @returns {{sources: () => TileSource[], grid: boolean, over: () => boolean}}
 */
export function roomSources(phone, which) {
  const room = phone.room;
  const inRoom = () => !!room.name;
  /** @returns {TileSource} */
  const ours = () => ({ key: phone.key || "\nme", name: phone.user, stream: room.localStream, video: !!phone.media.wish.video, speaking: false });
  /** @returns {TileSource[]} in the grid's order: ours, then the members in the order they came */
  const everyone = () => [ours(), ...[...room.members].map((m) => ({ key: m.key, name: m.name, stream: room.stream(m.key), video: m.video, speaking: m.speaking }))];
  if (which === GRID || which === BOTH) return { sources: everyone, grid: true, over: () => !inRoom() };
  if (which === LOCAL) return { sources: () => [ours()], grid: false, over: () => !inRoom() };
  const members = [...room.members];
  const member = which === REMOTE ? members[0] : members.find((m) => m.name === which);
  if (!member) {
    const names = members.map((m) => m.name).join(", ") || "nobody else";
    throw new Error(`which must be ${ROOM_RECORDING_SOURCES.join(", ")} or a member of the room (${names}), not ${which}`);
  }
  const key = member.key;
  /** @returns {TileSource[]} */
  const sources = () => {
    const m = room.members.get(key);
    return m ? [{ key, name: m.name, stream: room.stream(key), video: m.video, speaking: m.speaking }] : [];
  };
  return { sources, grid: false, over: () => !inRoom() || !room.members.get(key) };
}

/**
 * Start `recording` of `which` in the phone's room; rejects with words when it cannot.
 * @param {Recording} recording
 * @param {Phone} phone
 * @param {string} which
 */
export async function recordRoom(recording, phone, which) {
  const { sources, grid, over } = roomSources(phone, which);
  const canvas = new GridCanvas({ sources, labels: grid, fit: !grid });
  let off = () => {};
  const composition = {
    async start() {
      // Every change the room tells (a member came, went, its stream moved) is drawn at once.
      off = phone.room.events.on("change", () => (over() ? recording.stop() : canvas.sync()));
      return canvas.start();
    },
    stop() {
      off();
      canvas.stop();
    },
  };
  await recording.startComposed(grid ? GRID : which, composition);
}
