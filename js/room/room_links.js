// How a room carries its media, wired to its members: the mesh links (mesh.js) or the SFU
// bridge (switchover.js), and the room's camera reaching whichever is there when it opens.
// Each callback finds the member by key and changes only what the room shows of it, so a
// link that closes or fails never touches another member.

import { MeshLinks } from "./mesh.js";
import { SfuBridge, isSfuConfig } from "./switchover.js";
import { RoomPhase } from "./members.js";
import { ErrorCode } from "../protocol.js";
import { PageError } from "../messages.js";

/** @typedef {import("./room_client.js").RoomClient} RoomClient */
/** @typedef {import("./members.js").Member} Member */

/** @param {RoomClient} room @param {string} key @param {(member: Member) => void} fn */
function update(room, key, fn) {
  const member = room.members.get(key);
  if (!member) return;
  fn(member);
  room.emitChange();
}

/**
 * The room's mesh: one link per member (made by the caller as members come).
 * @param {RoomClient} room
 */
export function openMesh(room) {
  const media = room.phone.media;
  const mesh = new MeshLinks({
    send: (to, msg) => {
      if (room.mesh === mesh) room.send(msg.type, { ...msg, to: to.name, room: room.room });
    },
    ice: () => ({ iceServers: media.iceServers, iceTransportPolicy: media.iceTransportPolicy }),
    onStream: (key, stream) => update(room, key, (m) => (m.meshStream = stream)),
    onState: (key, state) => update(room, key, (m) => (m.link = state)),
    onLost: (key, words) => {
      const member = room.members.get(key);
      // The member stays listed (reconnecting) until the server says it left.
      update(room, key, (m) => Object.assign(m, { link: "", linkLost: true, meshStream: null }));
      if (member) room.emitError(PageError.LINK_FAILED, `lost the connection to ${member.name}: ${words}`);
    },
    onError: (key, err) => console.warn("nbcall room link", key, err),
  });
  if (room.camera.settled) mesh.attach(room.camera.stream);
  room.mesh = mesh;
  return mesh;
}

/** Close one member's mesh link (its SFU stream came, or the handover is over). @param {RoomClient} room @param {string} key */
export function dropMeshLink(room, key) {
  if (!room.mesh || !room.mesh.remove(key)) return;
  update(room, key, (m) => Object.assign(m, { link: "", meshStream: null }));
}

/**
 * The room is on the SFU (joined so, or moved): start its session beside the mesh, which
 * it replaces member by member.
 * @param {RoomClient} room
 * @param {unknown} config  room_joined.sfu / room_topology.sfu
 */
export function openSfu(room, config) {
  if (room.sfu) return;
  if (!isSfuConfig(config)) {
    room.emitError(ErrorCode.SFU_UNAVAILABLE, "the room moved to the SFU but the server sent no SFU address: leave and join again");
    return;
  }
  const bridge = new SfuBridge({
    load: room.loadSfu,
    config,
    display: room.phone.user,
    localStream: () => room.camera.stream,
    iceServers: room.phone.media.iceServers,
    members: room.members,
    closeMeshLink: (key) => dropMeshLink(room, key),
    closeMesh: () => {
      if (room.sfu !== bridge) return;
      for (const member of room.members) dropMeshLink(room, member.key);
      if (room.mesh) room.mesh.close();
      room.mesh = null;
      room.emitChange();
    },
    onChange: () => room.emitChange(),
    onError: (words) => room.emitError(PageError.LINK_FAILED, words),
  });
  room.sfu = bridge;
  // Publish once, camera included: a session that starts receive-only and gets its tracks
  // later negotiates each kind with Janus on its own, and Chrome refuses the second offer
  // (its m-lines come in another order).  The camera settles either way (opened or not).
  const start = () => {
    if (room.sfu === bridge) bridge.start();
  };
  if (room.camera.settled) start();
  else room.camera.open().then(start, start);
}

/**
 * The room's camera opened (or could not): the links or the SFU session send it.
 * @param {RoomClient} room
 * @param {import("../media/media.js").OpenedMedia | null} media  null: the room was left meanwhile
 */
export function cameraOpened(room, media) {
  if (!media || room.phase === RoomPhase.OUT) return;
  if (media.error && !room.camera.told) room.emitError(PageError.MEDIA_FAILED, media.error);
  room.camera.told = true; // a room joined again after a reconnect does not say it twice
  if (room.mesh && !room.mesh.attached) room.mesh.attach(media.stream);
  // A session made before the camera opened publishes nothing yet (made after, it took the stream).
  if (room.sfu && room.sfu.session && media.stream) {
    for (const track of media.stream.getTracks()) room.sfu.replaceTrack(track.kind === "audio" ? "audio" : "video", track).catch(() => {});
  }
  room.emitChange();
}
