// The room on the SFU: one SfuSession (js/room/sfu.js: Janus, a publisher with simulcast
// and one subscriber for every feed), its feeds mapped to members through the `sfu_id`
// the server gave each, and the move from the mesh.  On `room_topology` the session starts
// beside the mesh; each member's mesh link stays until that member's SFU stream arrives
// (or HANDOVER_MS pass), then closes: nobody drops, the picture switches.
//
// sfu.js is loaded when a room first needs it (import()): a room that stays a mesh never
// evaluates Janus's library, and unit tests put a fake in its place (`load`).

import { MAX_MEMBERS } from "./room_protocol.js";

/** @typedef {import("./members.js").Members} Members */
/** @typedef {import("./members.js").Member} Member */

export const HANDOVER_MS = 5000;
const MAX_ORPHANS = 50; // feeds of publishers the server has not named yet (member_joined is on its way)

/**
 * What the server says of the SFU (room_joined.sfu, room_topology.sfu); ids may come as
 * numbers (Janus's are), the session takes strings.
 * @typedef {{url: string, room: string | number, token: string, pin: string, id: string | number}} SfuConfig
 */

/**
 * The part of sfu.js's SfuSession the room uses (a fake one in the unit tests).
 * @typedef {object} SfuSessionLike
 * @property {() => Promise<unknown>} start
 * @property {(publisherId: string, width: number, height: number) => void} setTileSize
 * @property {(kind: "audio" | "video", track: MediaStreamTrack | null) => Promise<unknown>} replaceTrack
 * @property {() => Promise<unknown>} stats
 * @property {() => void} close
 */

/** @typedef {import("./sfu.js").SfuOptions} SfuSessionOptions */
/** @typedef {new (opts: SfuSessionOptions) => SfuSessionLike} SfuSessionClass */

/** @returns {Promise<SfuSessionClass>} */
export async function loadSfuSession() {
  const { SfuSession } = await import("./sfu.js");
  return SfuSession;
}

/** SfuSession states (sfu.js SfuState) that mean its media is interrupted. */
const TROUBLE = new Set(["failed", "closed"]);

/** @param {unknown} value @returns {value is SfuConfig} */
export function isSfuConfig(value) {
  return !!value && typeof value === "object" && typeof (/** @type {any} */ (value).url) === "string";
}

/**
 * @typedef {object} BridgeOptions
 * @property {() => Promise<SfuSessionClass>} load
 * @property {SfuConfig} config
 * @property {string} display  our name, as Janus shows it
 * @property {() => MediaStream | null} localStream  read when the session is made (the camera may open meanwhile)
 * @property {RTCIceServer[]} iceServers
 * @property {Members} members
 * @property {(key: string) => void} closeMeshLink  that member's SFU stream arrived: its mesh link may go
 * @property {() => void} closeMesh  the handover is over: every mesh link goes
 * @property {() => void} onChange
 * @property {(words: string) => void} onError
 */

export class SfuBridge {
  /** @param {BridgeOptions} opts */
  constructor(opts) {
    this.opts = opts;
    /** @type {SfuSessionLike | null} */
    this.session = null;
    this.state = "starting";
    this.trouble = false;
    this.closed = false;
    /** @type {Map<string, MediaStream>} streams of publishers no member is known for yet */
    this.orphans = new Map();
    /** @type {Map<string, [number, number]>} member key -> its tile's size, asked for before its id was known too */
    this.sizes = new Map();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.handover = undefined;
  }

  /** Start the session; the mesh links that remain close HANDOVER_MS after it started. */
  async start() {
    const o = this.opts;
    try {
      const SfuSession = await o.load();
      if (this.closed) return;
      const { url, room, token, pin, id } = o.config;
      this.session = new SfuSession({
        url,
        room: String(room),
        token,
        pin,
        id: String(id),
        display: o.display,
        localStream: o.localStream(),
        iceServers: o.iceServers,
        simulcast: true,
        onStream: (publisherId, stream) => this._stream(publisherId, stream),
        onStreamGone: (publisherId) => this._gone(publisherId),
        onState: (state) => {
          this.state = state;
          this.trouble = TROUBLE.has(state);
          o.onChange();
        },
        onError: (words) => o.onError(words),
      });
      await this.session.start();
      if (this.closed) return;
      // Members whose SFU stream has not come by then lose their mesh link anyway: the
      // server has moved the room, and their side closes its links too.
      this.handover = setTimeout(() => {
        this.handover = undefined;
        if (!this.closed) o.closeMesh();
      }, HANDOVER_MS);
    } catch (err) {
      if (this.closed) return;
      // The mesh links stay: the room keeps what it had rather than drop everyone.
      this.trouble = true;
      o.onError(`cannot reach the SFU: ${err instanceof Error ? err.message : String(err)}`);
      o.onChange();
    }
  }

  /** @param {string | number} publisherId @param {MediaStream} stream */
  _stream(publisherId, stream) {
    if (this.closed) return;
    const member = this.opts.members.bySfuId(publisherId);
    if (!member) {
      const id = String(publisherId);
      if (this.orphans.has(id) || this.orphans.size < MAX_ORPHANS) this.orphans.set(id, stream);
      return;
    }
    this._arrived(member, stream);
  }

  /** @param {Member} member @param {MediaStream} stream */
  _arrived(member, stream) {
    member.sfuStream = stream;
    this.opts.closeMeshLink(member.key);
    this.opts.onChange();
  }

  /**
   * A member joined, or the server told its publisher id (only once the id is in use in
   * Janus): its feed may already be here, and its tile's layer can be asked for.
   * @param {Member} member
   */
  adopt(member) {
    const size = this.sizes.get(member.key);
    if (size) this.setTileSize(member, size[0], size[1]);
    const id = String(member.sfuId);
    const stream = this.orphans.get(id);
    if (!stream) return;
    this.orphans.delete(id);
    this._arrived(member, stream);
  }

  /** A member left the room: its tile's size goes. @param {string} key */
  forget(key) {
    this.sizes.delete(key);
  }

  /** @param {string | number} publisherId */
  _gone(publisherId) {
    this.orphans.delete(String(publisherId));
    const member = this.opts.members.bySfuId(publisherId);
    if (!member || this.closed) return;
    member.sfuStream = null;
    this.opts.onChange();
  }

  /** A member's tile is this big: Janus sends it the simulcast layer that fits. @param {Member} member @param {number} width @param {number} height */
  setTileSize(member, width, height) {
    if (this.sizes.has(member.key) || this.sizes.size < MAX_MEMBERS) this.sizes.set(member.key, [width, height]);
    if (this.session && member.sfuId !== "") this.session.setTileSize(String(member.sfuId), width, height);
  }

  /** @param {"audio" | "video"} kind @param {MediaStreamTrack} track */
  async replaceTrack(kind, track) {
    if (this.session) await this.session.replaceTrack(kind, track);
  }

  async stats() {
    return this.session ? this.session.stats() : null;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.handover);
    this.handover = undefined;
    this.orphans.clear();
    if (this.session) this.session.close();
    this.session = null;
  }
}
