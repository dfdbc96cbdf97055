// The parts of the SFU client that need no Janus and no browser: which simulcast layer a
// tile needs, the layers a camera is sent in, Janus's refusals in words, and the map from
// what Janus says (publishers coming and going, the subscription's m-lines) to members'
// feeds.  js/room/sfu.js drives them; js/test/sfu.test.js tests them alone.

/** A tile this wide or narrower gets layer 0 (a quarter of the camera), then layer 1 (half). */
export const LAYER_WIDTHS = [240, 480];
/** Janus sends a subscriber the top substream until it is asked for another. */
export const DEFAULT_LAYER = 2;
/** The most members a room has (docs/rooms.md: max_members); more feeds are not kept. */
export const MAX_FEEDS = 50;

/**
 * The simulcast substream that fits a tile: 0 (smallest) to 2 (the camera's own size).
 * The tile's larger side decides, so a tall narrow tile is not starved either (a 16:9
 * picture needs width ≈ height × 16/9 to fill it).
 * @param {number} width  CSS pixels
 * @param {number} height  CSS pixels
 * @returns {0 | 1 | 2}
 */
export function layerFor(width, height) {
  const w = Math.max(Number(width) || 0, ((Number(height) || 0) * 16) / 9);
  if (w <= LAYER_WIDTHS[0]) return 0;
  if (w <= LAYER_WIDTHS[1]) return 1;
  return 2;
}

/** Janus's `rid_order` for our offers: the encodings go smallest first (see below). */
export const RID_ORDER = "lmh";
/** Per layer, smallest first: rid, scale-down factor, bitrate cap (bps). */
const LAYERS = /** @type {const} */ ([
  { rid: "l", scale: 4, maxBitrate: 100_000 },
  { rid: "m", scale: 2, maxBitrate: 300_000 },
  { rid: "h", scale: 1, maxBitrate: 900_000 },
]);

/**
 * The three simulcast encodings for a camera of this size, smallest first (rids l, m, h):
 * caps 100, 300 and 900 kbps (janus.js's defaults; enough for 720p at the top).
 *
 * Smallest first, because Chrome (seen in Chromium 156) encodes layers listed largest
 * first (janus.js's own h, m, l order) with its SimulcastEncoderAdapter, one libvpx per
 * layer, and there the smallest layer ignores its cap: 600+ kbps at QP 2 against 100 kbps
 * (80x45 of a 320x180 camera; 160x90 of 640x360 alike).  Listed smallest first, Chrome uses
 * one libvpx encoder for all three and each layer keeps under its cap.  Janus takes the rids
 * highest first unless told otherwise, so the offer must carry `rid_order: RID_ORDER`.
 *
 * Each has `scaleResolutionDownBy` (every browser) and, when the size is known,
 * `scaleResolutionDownTo` too: Chrome drops simulcast layers its table thinks too small for
 * the input (a 320x180 camera is sent as one layer) unless the sizes are given explicitly,
 * and Chrome then uses them (seen in Chromium 156: 320x180, 160x90 and 80x45 all encoded).
 * Browsers without it ignore the member and scale by the factor.
 * @param {{width?: number, height?: number}} [size]  the track's settings
 * @returns {RTCRtpEncodingParameters[]}
 */
export function simulcastEncodings(size = {}) {
  const { width, height } = size;
  return LAYERS.map(({ rid, scale, maxBitrate }) => {
    /** @type {RTCRtpEncodingParameters & {scaleResolutionDownTo?: {maxWidth: number, maxHeight: number}}} */
    const encoding = { rid, active: true, maxBitrate, scaleResolutionDownBy: scale };
    if (width && height) {
      encoding.scaleResolutionDownTo = {
        maxWidth: Math.max(1, Math.round(width / scale)),
        maxHeight: Math.max(1, Math.round(height / scale)),
      };
    }
    return encoding;
  });
}

// VideoRoom's error codes (janus_videoroom.c) that mean "you may not", not "something broke".
const REFUSALS = new Map([
  [426, "the room does not exist (any more)"],
  [432, "the room has all the publishers it can take"],
  [433, "wrong or missing PIN or token"],
  [436, "this member's publisher id is already in the room"],
]);

/**
 * Words for a VideoRoom error, e.g. a wrong token or PIN on join.
 * @param {number | undefined} code
 * @param {string | undefined} reason  Janus's own text
 */
export function refusalWords(code, reason) {
  const known = code === undefined ? undefined : REFUSALS.get(code);
  const detail = known ? `${known} (${reason || "refused"}, code ${code})` : `${reason || "refused"} (code ${code})`;
  return `the SFU refused to let this member in: ${detail}`;
}

/**
 * @typedef {object} JanusStream  one stream of a publisher, as Janus lists it
 * @property {string} [mid]
 * @property {string} [type]  "audio" | "video" | "data"
 * @property {boolean} [disabled]
 * @property {boolean} [simulcast]
 */
/**
 * @typedef {object} JanusPublisher
 * @property {string} id
 * @property {string} [display]
 * @property {JanusStream[]} [streams]
 * @property {boolean} [dummy]
 */
/**
 * @typedef {object} SubStream  one m-line of the subscription (Janus's `streams` summary)
 * @property {string} mid
 * @property {string} [type]
 * @property {string | number} [feed_id]
 * @property {string} [feed_mid]  the publisher's own mid for this stream
 * @property {boolean} [active]
 */

/**
 * A member is one picture and one voice here (one MediaStream, one track of each kind):
 * its first live audio and video streams, whatever else it publishes (which also bounds
 * what one publisher can make us subscribe to).
 * @param {JanusStream[]} streams
 */
function firstOfEachKind(streams) {
  /** @type {Map<string, JanusStream>} */
  const kept = new Map();
  for (const s of streams) {
    if (s && !s.disabled && (s.type === "audio" || s.type === "video") && !kept.has(s.type)) kept.set(s.type, s);
  }
  return [...kept.values()];
}

/**
 * Who publishes in the room and which m-line of the one subscription carries whom.
 *
 * `publishers`: the other members whose media Janus has (from the publisher handle's
 * `joined` and `event` messages), at most `limit` of them.  `mids`: the subscription's
 * m-lines, replaced whole by each `attached`/`updated` summary (Janus recycles m-lines, so a
 * mid may carry another member later).
 */
export class Feeds {
  /** @param {string} self  our own publisher id (never a feed) @param {number} [limit] */
  constructor(self, limit = MAX_FEEDS) {
    this.self = String(self);
    this.limit = limit;
    /** @type {Map<string, {id: string, display: string, streams: JanusStream[]}>} */
    this.publishers = new Map();
    /** @type {Map<string, {feed: string, feedMid: string, type: string}>} mid → feed, active m-lines only */
    this.mids = new Map();
    this.dropped = 0; // publishers beyond the limit, not kept
  }

  /**
   * A message to the publisher handle: which feeds came (with media) and which went.
   * @param {Record<string, any>} msg
   * @returns {{added: string[], gone: string[]}}
   */
  publisherEvent(msg) {
    /** @type {string[]} */
    const added = [];
    /** @type {string[]} */
    const gone = [];
    const list = Array.isArray(msg.publishers) ? msg.publishers : [];
    for (const p of /** @type {JanusPublisher[]} */ (list)) {
      if (!p || p.dummy || p.id === undefined || p.id === null) continue;
      const id = String(p.id);
      if (id === this.self) continue;
      const streams = firstOfEachKind(Array.isArray(p.streams) ? p.streams : []);
      if (!streams.length) {
        if (this.publishers.delete(id)) gone.push(id); // published nothing (any more)
        continue;
      }
      const known = this.publishers.has(id);
      if (!known && this.publishers.size >= this.limit) {
        this.dropped++;
        continue;
      }
      this.publishers.set(id, { id, display: String(p.display ?? ""), streams });
      if (!known) added.push(id);
    }
    for (const key of ["unpublished", "leaving", "kicked"]) {
      const value = msg[key];
      // "ok": it is about us (our own unpublish); Janus names others by id.
      if (value === undefined || value === null || value === "ok") continue;
      const id = String(value);
      if (id !== this.self && this.publishers.delete(id)) gone.push(id);
    }
    return { added, gone };
  }

  /**
   * The subscription's layout after `attached`/`updated`: returns the mids whose feed changed
   * (recycled m-lines, or ones gone inactive), so their tracks can leave the old member.
   * @param {SubStream[]} streams
   * @returns {{mid: string, from: string | null, to: string | null}[]}
   */
  subscription(streams) {
    /** @type {Map<string, {feed: string, feedMid: string, type: string}>} */
    const next = new Map();
    for (const s of Array.isArray(streams) ? streams : []) {
      if (!s || s.mid === undefined || s.active === false || s.feed_id === undefined || s.type === "data") continue;
      next.set(String(s.mid), { feed: String(s.feed_id), feedMid: String(s.feed_mid ?? ""), type: String(s.type || "") });
    }
    const changes = [];
    for (const mid of new Set([...this.mids.keys(), ...next.keys()])) {
      const from = this.mids.get(mid)?.feed ?? null;
      const to = next.get(mid)?.feed ?? null;
      if (from !== to) changes.push({ mid, from, to });
    }
    this.mids = next;
    return changes;
  }

  /** A publisher left: no m-line carries it any more. @param {string} feed */
  forget(feed) {
    this.publishers.delete(feed);
    for (const [mid, m] of this.mids) if (m.feed === feed) this.mids.delete(mid);
  }

  /** @param {string} mid */
  feedOf(mid) {
    return this.mids.get(String(mid))?.feed ?? null;
  }

  /** Whether a publisher sends its video in simulcast layers (Janus says so). @param {string} feed */
  simulcast(feed) {
    const p = this.publishers.get(feed);
    return !!p && p.streams.some((s) => s.type === "video" && s.simulcast);
  }

  /** The subscription's video m-line for a feed, if it has one. @param {string} feed */
  videoMid(feed) {
    for (const [mid, m] of this.mids) if (m.feed === feed && m.type === "video") return mid;
    return null;
  }

  /**
   * The publishers' streams no m-line of the subscription carries yet (a new member, or a
   * member that started sending another kind): what to subscribe to.
   * @returns {{feed: string, mid: string}[]}
   */
  missing() {
    const have = new Set([...this.mids.values()].map((m) => `${m.feed}\n${m.feedMid}`));
    const out = [];
    for (const p of this.publishers.values()) {
      for (const s of p.streams) {
        if (s.type === "data" || s.mid === undefined) continue;
        if (!have.has(`${p.id}\n${s.mid}`)) out.push({ feed: p.id, mid: String(s.mid) });
      }
    }
    return out;
  }
}
