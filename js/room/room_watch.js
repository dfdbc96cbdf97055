// The room's timers: who is speaking (about 11 times a second), each link's quality (once a
// second, from packet loss and round trip: stats.js), and an invitation that rang out.
// All stop when the room is left; views hear of them only when something shown changed.

import { receiverLevel, StreamMeter, Speaking } from "./levels.js";

/** @typedef {import("./room_client.js").RoomClient} RoomClient */
/** @typedef {import("./room_client.js").Invitation} Invitation */
/** @typedef {import("./members.js").Member} Member */
/** @typedef {import("./members.js").Quality} Quality */

// A receiver tells only its latest packet's level, so a short loud sound is seen only by a
// sample that falls inside it.  A 250 ms tick locked in phase with a sound repeating every
// 500 ms (Chromium's fake microphone) and never saw it; 90 ms walks across any such cycle.
export const LEVELS_MS = 90;
export const STATS_MS = 1000;
const DEFAULT_RING_TIMEOUT_MS = 30000; // the server's default; registered.ring_timeout says
const INVITE_GRACE_MS = 5000; // the server's timeout is authoritative: ours only tidies up after it

/** good/fair/poor, or "" while unknown. @param {unknown} value @returns {Quality} */
function known(value) {
  return value === "good" || value === "fair" || value === "poor" ? value : "";
}

/**
 * A member's quality as the SFU session's stats() judged it (sfu_stats.js, once per
 * publisher: its packet loss and the subscriber connection's round trip, by stats.js's
 * rule); "" while its feed has none.
 * @param {unknown} stats
 * @param {Member} member
 * @returns {Quality}
 */
export function sfuQuality(stats, member) {
  if (!stats || typeof stats !== "object") return "";
  const feeds = /** @type {{feeds?: unknown}} */ (stats).feeds;
  if (!feeds || typeof feeds !== "object") return "";
  const own = /** @type {Record<string, unknown>} */ (feeds)[String(member.sfuId)];
  return own && typeof own === "object" ? known(/** @type {{quality?: unknown}} */ (own).quality) : "";
}

export class RoomWatch {
  /** @param {RoomClient} room */
  constructor(room) {
    this.room = room;
    this.speaking = new Speaking();
    this.meter = new StreamMeter();
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.levelTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.statsTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.inviteTimer = undefined;
    this.ringTimeoutMs = DEFAULT_RING_TIMEOUT_MS;
    this.generation = 0; // bumps on stop(): numbers that come back later are dropped
    this.collecting = false;
  }

  start() {
    this.stop();
    this.levelTimer = setInterval(() => this._levels(), LEVELS_MS);
    this.statsTimer = setInterval(() => this._stats(), STATS_MS);
  }

  stop() {
    clearInterval(this.levelTimer);
    clearInterval(this.statsTimer);
    this.levelTimer = this.statsTimer = undefined;
    this.generation += 1;
    this.speaking.clear();
    this.meter.close();
  }

  /** The server's ring timeout (registered.ring_timeout, seconds). @param {unknown} seconds */
  setRingTimeout(seconds) {
    if (typeof seconds === "number" && seconds > 0 && Number.isFinite(seconds)) this.ringTimeoutMs = seconds * 1000;
  }

  /**
   * The invitee is not told when an invitation rings out (docs/rooms.md): `expired` runs a
   * little after the server has forgotten it (a later call, or null, cancels this one).
   * @param {Invitation | null} invitation
   * @param {() => void} [expired]
   */
  inviteExpires(invitation, expired) {
    clearTimeout(this.inviteTimer);
    this.inviteTimer = undefined;
    if (!invitation || !expired) return;
    this.inviteTimer = setTimeout(() => {
      this.inviteTimer = undefined;
      expired();
    }, this.ringTimeoutMs + INVITE_GRACE_MS);
  }

  /** A member left: forget its levels. @param {string} key */
  forget(key) {
    this.speaking.forget(key);
    this.meter.forget(key);
  }

  _levels() {
    const room = this.room;
    const now = performance.now();
    let changed = false;
    const session = /** @type {{receiversByFeed?: () => Map<string, RTCRtpReceiver[]>} | null} */ (room.sfu && room.sfu.session);
    const byFeed = session && typeof session.receiversByFeed === "function" ? session.receiversByFeed() : null;
    for (const m of room.members) {
      /** @type {number | null} */
      let level = null;
      if (m.sfuStream) {
        // The subscription's receivers tell the level with no AudioContext (which headless
        // Chromium may keep suspended, reading silence); a session that cannot name them is metered.
        if (byFeed) level = receiverLevel(byFeed.get(String(m.sfuId)) || []);
        else level = this.meter.level(m.key, m.sfuStream);
      } else if (room.mesh && room.mesh.has(m.key)) level = receiverLevel(room.mesh.receivers(m.key));
      const speaking = m.audio && this.speaking.update(m.key, level, now);
      if (speaking !== m.speaking) {
        m.speaking = speaking;
        changed = true;
      }
    }
    if (changed) room.emitChange();
  }

  async _stats() {
    // One collection at a time: a slow getStats() must not pile up, nor an older answer
    // overwrite a newer one.
    if (this.collecting) return;
    this.collecting = true;
    const room = this.room;
    const generation = this.generation;
    const members = [...room.members];
    const sfu = room.sfu;
    try {
      const [links, sfuStats] = await Promise.all([
        Promise.all(members.map((m) => (room.mesh && !m.sfuStream ? room.mesh.stats(m.key) : null))),
        sfu ? sfu.stats() : null,
      ]);
      if (generation !== this.generation) return;
      let changed = false;
      members.forEach((m, i) => {
        const link = links[i];
        const q = m.sfuStream ? sfuQuality(sfuStats, m) : link ? known(link.quality) : "";
        if (q !== m.quality) {
          m.quality = q;
          changed = true;
        }
      });
      if (changed) room.emitChange();
    } catch {
      // a link closing meanwhile has no numbers: the next second will
    } finally {
      this.collecting = false;
    }
  }

  close() {
    this.stop();
    this.inviteExpires(null);
  }
}
