// What the SFU session receives per member (from the subscription's getStats, by m-line)
// and what it sends, with bit rates and packet loss from the counts of the previous reading,
// and each member's quality judged as a mesh link's is (call/stats.js): its packet loss on
// the way from Janus to us, and the subscriber connection's round trip (one connection
// carries every member, so they share it).

import { quality as judge, selectedPair, lossPct } from "../call/stats.js";

/**
 * @typedef {object} FeedStats
 * @property {number} framesDecoded
 * @property {number} width
 * @property {number} height
 * @property {number} kbps
 * @property {number | null} layer
 * @property {number} packetsReceived  since the subscription started (audio and video)
 * @property {number} packetsLost
 * @property {number} packet_loss_pct  of the packets since the previous reading
 * @property {number | null} rtt_ms  the subscriber connection's round trip
 * @property {"good" | "fair" | "poor" | "unknown"} quality
 */

const UPLINK = "\nuplink"; // a key no publisher id can be
// A reading moments after the previous one (a test polling stats()) would give noisy rates:
// the older base is kept until this much time has passed (as call/stats.js does).
const MIN_BASE_MS = 500;

/** Counts of the previous reading, per key: only keys still read are kept. */
export class Rates {
  constructor() {
    /** @type {Map<string, {bytes: number, at: number}>} */
    this.last = new Map();
    /** @type {Map<string, {lost: number, received: number, at: number}>} */
    this.packets = new Map();
  }

  /**
   * kbps since the previous reading at least MIN_BASE_MS old (0 on the first).
   * @param {Map<string, number>} totals  bytes per key now
   * @param {number} now  ms
   * @returns {Map<string, number>}
   */
  update(totals, now) {
    const out = new Map();
    for (const [key, bytes] of totals) {
      const last = this.last.get(key);
      out.set(key, last && now > last.at ? Math.max(0, Math.round(((bytes - last.bytes) * 8) / (now - last.at))) : 0);
      if (!last || now - last.at >= MIN_BASE_MS) this.last.set(key, { bytes, at: now });
    }
    for (const key of [...this.last.keys()]) if (!totals.has(key)) this.last.delete(key);
    return out;
  }

  /**
   * Packets lost, in percent of those sent since that reading too (0 on the first, or
   * with nothing sent meanwhile).  `lost` may go down (duplicates and late packets make it
   * so): never below 0.
   * @param {Map<string, {lost: number, received: number}>} totals  per key now
   * @param {number} now  ms
   * @returns {Map<string, number>}
   */
  loss(totals, now) {
    const out = new Map();
    for (const [key, { lost, received }] of totals) {
      const last = this.packets.get(key);
      let pct = 0;
      if (last) {
        const got = Math.max(0, received - last.received);
        const missing = Math.max(0, lost - last.lost);
        pct = lossPct(got, missing);
      }
      if (!last || now - last.at >= MIN_BASE_MS) this.packets.set(key, { lost, received, at: now });
      out.set(key, pct);
    }
    for (const key of [...this.packets.keys()]) if (!totals.has(key)) this.packets.delete(key);
    return out;
  }

  clear() {
    this.last.clear();
    this.packets.clear();
  }
}

/**
 * The round trip of a connection's selected candidate pair, in ms (null while unknown).
 * @param {RTCStatsReport} report
 * @returns {number | null}
 */
export function roundTrip(report) {
  const pair = selectedPair(report);
  return pair && typeof pair.currentRoundTripTime === "number" ? Math.round(pair.currentRoundTripTime * 1000) : null;
}

/**
 * @param {{sub: RTCPeerConnection | null, pub: RTCPeerConnection | null, feedOf: (mid: string) => string | null,
 *   layerOf: (feed: string) => number | null, rates: Rates, now?: number}} from
 * @returns {Promise<{feeds: Record<string, FeedStats>, uplinkKbps: number, rtt_ms: number | null}>}
 */
export async function readStats({ sub, pub, feedOf, layerOf, rates, now = Date.now() }) {
  /** @type {Record<string, FeedStats>} */
  const feeds = {};
  /** @type {Map<string, number>} */
  const bytes = new Map();
  /** @type {Map<string, {lost: number, received: number}>} */
  const packets = new Map();
  let rtt = null;
  if (sub) {
    const report = await sub.getStats();
    rtt = roundTrip(report);
    report.forEach((r) => {
      const feed = r.type === "inbound-rtp" && r.mid !== undefined ? feedOf(String(r.mid)) : null;
      if (!feed) return;
      const f = (feeds[feed] ||= { framesDecoded: 0, width: 0, height: 0, kbps: 0, layer: layerOf(feed), packetsReceived: 0, packetsLost: 0, packet_loss_pct: 0, rtt_ms: null, quality: "unknown" });
      if (r.kind === "video") {
        f.framesDecoded += r.framesDecoded || 0;
        f.width = r.frameWidth || f.width;
        f.height = r.frameHeight || f.height;
      }
      f.packetsReceived += r.packetsReceived || 0;
      f.packetsLost += r.packetsLost || 0;
      bytes.set(feed, (bytes.get(feed) || 0) + (r.bytesReceived || 0));
    });
  }
  for (const [feed, f] of Object.entries(feeds)) packets.set(feed, { lost: f.packetsLost, received: f.packetsReceived });
  let uplinkRtt = null;
  if (pub) {
    let sent = 0;
    const report = await pub.getStats();
    report.forEach((r) => {
      if (r.type === "outbound-rtp") sent += r.bytesSent || 0;
    });
    bytes.set(UPLINK, sent);
    uplinkRtt = roundTrip(report);
  }
  const kbps = rates.update(bytes, now);
  const loss = rates.loss(packets, now);
  // Janus is the same hop both ways: before the subscription has a pair, the publisher's will do.
  const rtt_ms = rtt ?? uplinkRtt;
  for (const [feed, f] of Object.entries(feeds)) {
    f.kbps = kbps.get(feed) || 0;
    f.packet_loss_pct = loss.get(feed) || 0;
    f.rtt_ms = rtt_ms;
    f.quality = judge({ rtt_ms, inbound_kbps: f.kbps, packet_loss_pct: f.packet_loss_pct });
  }
  return { feeds, uplinkKbps: kbps.get(UPLINK) || 0, rtt_ms };
}
