// Is the other side of a connected call still there?  Within about a second and a half,
// whatever failed: its page, its network, its browser.
//
// While the call's data channel is open, each side sends {"kind":"heartbeat","seq":n}
// every HEARTBEAT_INTERVAL_MS.  Life is any valid message on the channel (a heartbeat,
// chat, media state), or inbound RTP progress (bytesReceived rising in getStats), which is
// how a seed call, which has no data channel, is watched; RTP is only asked for when the
// channel has been quiet, so a healthy call costs no getStats.  After SILENT_AFTER_MS
// without life the peer is "silent" (the widget says reconnecting…); when life returns it
// is not; after `lostAfterMs` the call is lost (the Phone ends it with reason `lost`).
//
// What arrives is the other page's word, so hostile until checked: every message is
// validated against DATA_CHANNEL (messages.js); anything else is ignored and counted
// (`ignored`), never thrown.  The channel is shared with the in-call features (chat,
// media state): each listens with addEventListener and ignores kinds that are not its own.

import { DATA_CHANNEL, DATA_CHANNEL_KIND, HEARTBEAT_INTERVAL_MS, SILENT_AFTER_MS } from "../messages.js";
import { problem } from "../dispatch.js";

export { HEARTBEAT_INTERVAL_MS, SILENT_AFTER_MS };
const CHECK_EVERY_MS = 250; // silence is judged this often (beats go out every other check)
const RTP_RECENT_MS = 2500; // bytes that rose since a look this recent are life (hidden tabs tick once a second)
const MAX_MESSAGE_CHARS = 64 * 1024; // a longer "message" is not parsed at all

/** @typedef {{send: (data: string) => void, readyState: string, addEventListener?: (type: string, fn: (event: any) => void) => void, removeEventListener?: (type: string, fn: (event: any) => void) => void}} ChannelLike */

/**
 * The bytes received by every inbound RTP stream of `pc` (audio and video together).
 * @param {{getStats: () => Promise<any>}} pc
 * @returns {Promise<number>}
 */
export async function inboundBytes(pc) {
  const report = await pc.getStats();
  let total = 0;
  report.forEach((/** @type {any} */ s) => {
    if (s && s.type === "inbound-rtp" && typeof s.bytesReceived === "number") total += s.bytesReceived;
  });
  return total;
}

/**
 * @typedef {object} HeartbeatOptions
 * @property {ChannelLike | null} channel  the call's data channel (null: a seed call)
 * @property {{getStats: () => Promise<any>}} pc  its RTCPeerConnection, for inbound RTP
 * @property {number} lostAfterMs  silence after which the call is lost
 * @property {(silent: boolean) => void} onSilent  the peer went silent, or came back
 * @property {() => void} onLost  silent for lostAfterMs: end the call
 */

export class Heartbeat {
  /** @param {HeartbeatOptions} opts */
  constructor({ channel, pc, lostAfterMs, onSilent, onLost }) {
    this.channel = channel;
    this.pc = pc;
    this.lostAfterMs = lostAfterMs;
    this.onSilent = onSilent;
    this.onLost = onLost;
    this.seq = 0;
    this.lastBeat = -Infinity;
    this.lastLife = performance.now();
    this.silent = false;
    this.lost = false;
    this.stopped = false;
    this.ignored = 0; // messages on the channel that were not valid (a bug, or a hostile peer)
    this.received = 0; // valid ones
    this.rtpBytes = -1; // inbound RTP bytes at the last look (-1: not looked yet)
    this.rtpAt = 0; // when that was
    /** @type {Promise<void> | null} a look at inbound RTP under way */
    this.probe = null;
    /** @param {{data: unknown}} event */
    this.onMessage = (event) => this._onMessage(event.data);
    if (channel && typeof channel.addEventListener === "function") channel.addEventListener("message", this.onMessage);
    this.timer = setInterval(() => this._tick(), CHECK_EVERY_MS);
    this._beat();
  }

  /** From now on (the widget's lost_after changed). @param {number} ms */
  setLostAfter(ms) {
    this.lostAfterMs = ms;
  }

  /** Silence so far, in ms. */
  get silence() {
    return performance.now() - this.lastLife;
  }

  _alive() {
    this.lastLife = performance.now();
    if (this.silent && !this.stopped) {
      this.silent = false;
      this.onSilent(false);
    }
  }

  /** @param {unknown} data */
  _onMessage(data) {
    if (this.stopped) return;
    let msg;
    try {
      if (typeof data !== "string" || data.length > MAX_MESSAGE_CHARS) throw new Error("not a JSON text message");
      msg = JSON.parse(data);
    } catch {
      this.ignored += 1;
      return;
    }
    if (problem(DATA_CHANNEL, msg)) {
      this.ignored += 1;
      return;
    }
    this.received += 1;
    this._alive();
  }

  _beat() {
    const channel = this.channel;
    if (!channel || channel.readyState !== "open") return;
    const now = performance.now();
    if (now - this.lastBeat < HEARTBEAT_INTERVAL_MS - CHECK_EVERY_MS / 2) return;
    this.lastBeat = now;
    try {
      channel.send(JSON.stringify({ kind: DATA_CHANNEL_KIND.HEARTBEAT, seq: this.seq++ }));
    } catch {
      // closing under us: the silence check decides
    }
  }

  _tick() {
    if (this.stopped) return;
    this._beat();
    // The channel has been quiet for a beat: does media still arrive?  (Judged once we
    // know: a page whose timers are throttled must not flap to reconnecting and back.)
    if (this.silence >= HEARTBEAT_INTERVAL_MS) this._probeRtp().then(() => this._judge());
    else this._judge();
  }

  /** Look at inbound RTP once (a look under way is shared, not repeated). @returns {Promise<void>} */
  _probeRtp() {
    if (!this.probe) this.probe = this._lookAtRtp().finally(() => (this.probe = null));
    return this.probe;
  }

  async _lookAtRtp() {
    try {
      const bytes = await inboundBytes(this.pc);
      if (this.stopped) return;
      const now = performance.now();
      // Progress since a recent look is life; since a look long ago it proves nothing about now.
      const recent = now - this.rtpAt <= RTP_RECENT_MS;
      if (recent && this.rtpBytes >= 0 && bytes > this.rtpBytes) this._alive();
      this.rtpBytes = bytes;
      this.rtpAt = now;
    } catch {
      // a closing connection has no stats: that is silence
    }
  }

  _judge() {
    if (this.stopped || this.lost) return;
    const silence = this.silence;
    if (silence >= this.lostAfterMs) {
      this.lost = true;
      this.onLost();
      return;
    }
    if (!this.silent && silence >= SILENT_AFTER_MS) {
      this.silent = true;
      this.onSilent(true);
    }
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    const channel = this.channel;
    if (channel && typeof channel.removeEventListener === "function") channel.removeEventListener("message", this.onMessage);
  }
}
