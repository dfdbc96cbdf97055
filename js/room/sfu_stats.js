// What the SFU session receives per member (from the subscription's getStats, by m-line)
// and what it sends, with bit rates from the byte counts of the previous reading.

/** @typedef {{framesDecoded: number, width: number, height: number, kbps: number, layer: number | null}} FeedStats */

const UPLINK = "\nuplink"; // a key no publisher id can be

/** Byte counts of the previous reading, per key: only keys still read are kept. */
export class Rates {
  constructor() {
    /** @type {Map<string, {bytes: number, at: number}>} */
    this.last = new Map();
  }

  /**
   * kbps since the previous reading (0 on the first).
   * @param {Map<string, number>} totals  bytes per key now
   * @param {number} now  ms
   * @returns {Map<string, number>}
   */
  update(totals, now) {
    const out = new Map();
    for (const [key, bytes] of totals) {
      const last = this.last.get(key);
      out.set(key, last && now > last.at ? Math.max(0, Math.round(((bytes - last.bytes) * 8) / (now - last.at))) : 0);
      this.last.set(key, { bytes, at: now });
    }
    for (const key of [...this.last.keys()]) if (!totals.has(key)) this.last.delete(key);
    return out;
  }
}

/**
 * @param {{sub: RTCPeerConnection | null, pub: RTCPeerConnection | null, feedOf: (mid: string) => string | null,
 *   layerOf: (feed: string) => number | null, rates: Rates}} from
 * @returns {Promise<{feeds: Record<string, FeedStats>, uplinkKbps: number}>}
 */
export async function readStats({ sub, pub, feedOf, layerOf, rates }) {
  /** @type {Record<string, FeedStats>} */
  const feeds = {};
  /** @type {Map<string, number>} */
  const bytes = new Map();
  if (sub) {
    (await sub.getStats()).forEach((r) => {
      const feed = r.type === "inbound-rtp" && r.mid !== undefined ? feedOf(String(r.mid)) : null;
      if (!feed) return;
      const f = (feeds[feed] ||= { framesDecoded: 0, width: 0, height: 0, kbps: 0, layer: layerOf(feed) });
      if (r.kind === "video") {
        f.framesDecoded += r.framesDecoded || 0;
        f.width = r.frameWidth || f.width;
        f.height = r.frameHeight || f.height;
      }
      bytes.set(feed, (bytes.get(feed) || 0) + (r.bytesReceived || 0));
    });
  }
  if (pub) {
    let sent = 0;
    (await pub.getStats()).forEach((r) => {
      if (r.type === "outbound-rtp") sent += r.bytesSent || 0;
    });
    bytes.set(UPLINK, sent);
  }
  const kbps = rates.update(bytes, Date.now());
  for (const [feed, f] of Object.entries(feeds)) f.kbps = kbps.get(feed) || 0;
  return { feeds, uplinkKbps: kbps.get(UPLINK) || 0 };
}
