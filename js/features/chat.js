// Chat over the call's data channel, made so that it cannot be used as a weapon.
//
// What the peer sends is hostile until checked: every channel message is read against
// DATA_CHANNEL (messages.js) and what does not fit is dropped and counted, never trusted
// (a line's sender is the call's peer, whatever the message says).  Chat lines from a peer
// pass a token bucket (CHAT_RATE a second, bursts of CHAT_BURST): the rest is dropped and
// counted, and the user sees one notice per call ("N messages from bob were dropped
// (flood)"); this side's own lines pass a bucket of the same size, so it cannot flood the
// peer either.  The history is bounded by count and bytes (MAX_CHAT_LINES, MAX_CHAT_BYTES,
// oldest first), and it reaches the kernel one line at a time (chat_sent / chat_received),
// never as a whole.  Views append the lines they are told of ("line" events).

import {
  DATA_CHANNEL,
  DATA_CHANNEL_KIND,
  TO_KERNEL_KIND,
  MAX_CHAT_CHARS,
  MAX_CHAT_LINES,
  MAX_CHAT_BYTES,
  CHAT_RATE,
  CHAT_BURST,
  MAX_CHANNEL_CHARS,
  PageError,
} from "../messages.js";
import { problem } from "../dispatch.js";
import { ErrorCode } from "../protocol.js";
import { fail } from "../failure.js";
import { Emitter } from "../emitter.js";

/** @typedef {{from: string, text: string, time: number}} ChatLine */
/** @typedef {import("../failure.js").Outcome} Outcome */
/** A data channel message that passed the table's check. @typedef {Record<string, any> & {kind: string}} ChannelMessage */
/** @typedef {(kind: typeof TO_KERNEL_KIND.CHAT_SENT | typeof TO_KERNEL_KIND.CHAT_RECEIVED | typeof TO_KERNEL_KIND.CHAT_DROPPED, fields: Record<string, unknown>) => void} TellKernel */

export { MAX_CHANNEL_CHARS }; // the longest channel message worth parsing (nbcall/_messages.py)
const REPORT_MS = 1000; // dropped counts reach the kernel at most this often
const NOTICE_MS = 250; // the notice's count is redrawn at most this often
const MAX_PEERS = 16; // receive buckets kept (one per peer)
// A sender's time outside this range (epoch seconds) is replaced by the local clock.
const MIN_TIME = 0;
const MAX_TIME = 1e11;

/** @param {object} obj @param {string} key */
const has = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

/** Bytes of `text` in UTF-8 (a lone surrogate counts 3, as Python's "surrogatepass"). @param {string} text */
export function utf8Length(text) {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i += 1;
    } else n += 3;
  }
  return n;
}

/** What a line costs in the history's byte bound: its sender and text in UTF-8. @param {ChatLine} line */
export const lineBytes = (line) => utf8Length(line.from) + utf8Length(line.text);

/** The chat lines of one widget, newest last, at most `maxLines` and `maxBytes` (oldest go first). */
export class ChatHistory {
  constructor(maxLines = MAX_CHAT_LINES, maxBytes = MAX_CHAT_BYTES) {
    this.maxLines = maxLines;
    this.maxBytes = maxBytes;
    /** @type {ChatLine[]} */
    this.lines = [];
    /** @type {number[]} lineBytes of each line */
    this.costs = [];
    this.bytes = 0;
  }

  /**
   * Append a line; returns how many of the oldest lines went to stay within the bounds.
   * @param {ChatLine} line
   */
  push(line) {
    const cost = lineBytes(line);
    this.lines.push(line);
    this.costs.push(cost);
    this.bytes += cost;
    let dropped = 0;
    while (this.lines.length > this.maxLines || (this.bytes > this.maxBytes && this.lines.length > 1)) {
      this.lines.shift();
      this.bytes -= /** @type {number} */ (this.costs.shift());
      dropped += 1;
    }
    return dropped;
  }
}

/** A token bucket: `rate` a second sustained, `burst` at once. */
export class TokenBucket {
  /**
   * @param {number} [rate]
   * @param {number} [burst]
   * @param {() => number} [now]  milliseconds
   */
  constructor(rate = CHAT_RATE, burst = CHAT_BURST, now = () => performance.now()) {
    this.rate = rate;
    this.burst = burst;
    this.now = now;
    this.tokens = burst;
    this.last = now();
  }

  /** Take one token; false when there is none (over the limit). */
  take() {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * Read one data channel message: `{msg}` when it is a valid DATA_CHANNEL message (a chat
 * line's text non-empty and at most MAX_CHAT_CHARS), `{problem}` when it is malformed,
 * `{}` for a kind this page does not know (a newer peer's: ignored, not an error).
 * @param {unknown} data
 * @returns {{msg?: ChannelMessage, problem?: string}}
 */
export function readChannelMessage(data) {
  if (typeof data !== "string") return { problem: "not text" };
  if (data.length > MAX_CHANNEL_CHARS) return { problem: `longer than ${MAX_CHANNEL_CHARS} characters` };
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return { problem: "not JSON" };
  }
  if (!msg || typeof msg !== "object" || Array.isArray(msg) || typeof msg.kind !== "string") {
    return { problem: "not a message with a kind" };
  }
  if (!has(DATA_CHANNEL, msg.kind)) return {};
  const why = problem(DATA_CHANNEL, msg);
  if (why) return { problem: why };
  if (msg.kind === DATA_CHANNEL_KIND.CHAT && (!msg.text || msg.text.length > MAX_CHAT_CHARS)) {
    return { problem: `a chat line has 1 to ${MAX_CHAT_CHARS} characters` };
  }
  return { msg };
}

/**
 * The sender's time if it is a plausible epoch time in seconds, else the local clock.
 * @param {unknown} time
 */
export function lineTime(time) {
  return typeof time === "number" && Number.isFinite(time) && time >= MIN_TIME && time <= MAX_TIME ? time : Date.now() / 1000;
}

/**
 * Run `fn` at most every `ms`: at once the first time, then once more at the end of the
 * interval if it was asked for meanwhile.
 * @param {() => void} fn
 * @param {number} ms
 */
function throttle(fn, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let pending = false;
  const fire = () => {
    timer = undefined;
    if (!pending) return;
    pending = false;
    fn();
    timer = setTimeout(fire, ms);
  };
  return {
    call() {
      pending = true;
      if (timer === undefined) fire();
    },
    /** Run now if something is pending. */
    flush() {
      clearTimeout(timer);
      timer = undefined;
      if (pending) {
        pending = false;
        fn();
      }
    },
    cancel() {
      clearTimeout(timer);
      timer = undefined;
      pending = false;
    },
  };
}

/** @param {number} n @param {string} one @param {string} many */
const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** The chat of one widget model (one InCall). */
export class Chat {
  /**
   * @param {{user: () => string, peer: () => string, tellKernel: TellKernel}} deps
   *   user/peer: this side's and the call's other side's names (a line's sender is never
   *   taken from the channel); tellKernel: a page → kernel message
   */
  constructor({ user, peer, tellKernel }) {
    this.user = user;
    this.peer = peer;
    this.tellKernel = tellKernel;
    this.history = new ChatHistory();
    this.sendBucket = new TokenBucket();
    /** @type {Map<string, TokenBucket>} one per peer, kept across its calls */
    this.receiveBuckets = new Map();
    /** Dropped in the current (or last) call: over the rate limit, malformed. */
    this.dropped = { flood: 0, malformed: 0 };
    /** Dropped since the page loaded. */
    this.droppedTotal = { flood: 0, malformed: 0 };
    /** Lines accepted from peers since the page loaded (the history keeps only the newest). */
    this.receivedTotal = 0;
    this.unreported = { flood: 0, malformed: 0 };
    /** @type {string[]} the last few malformed messages' problems, for debugging */
    this.problems = [];
    /** The one notice of the current call about dropped messages, "" when none. */
    this.notice = "";
    /** @type {Emitter<{line: [ChatLine, number], notice: [string]}>} line: the line and how many oldest lines went */
    this.events = new Emitter();
    this.report = throttle(() => this._report(), REPORT_MS);
    this.redrawNotice = throttle(() => this.events.emit("notice", this.notice), NOTICE_MS);
  }

  /** The history's lines, newest last (do not change them). */
  get lines() {
    return this.history.lines;
  }

  /** A call began: its own drop counts and notice. */
  callStart() {
    this.report.flush();
    this.redrawNotice.cancel();
    this.dropped = { flood: 0, malformed: 0 };
    if (this.notice) {
      this.notice = "";
      this.events.emit("notice", "");
    }
  }

  /** The call ended: what was dropped reaches the kernel now. */
  callEnd() {
    this.report.flush();
    this.redrawNotice.flush();
  }

  destroy() {
    this.report.cancel();
    this.redrawNotice.cancel();
    this.events.clear();
  }

  /**
   * Send a line to the peer; returns "" or why not.
   * @param {RTCDataChannel | null} channel
   * @param {unknown} text
   * @returns {Outcome}
   */
  send(channel, text) {
    return this._sendWith(text, () => {
      if (!channel || channel.readyState !== "open") return fail(PageError.NOT_CONNECTED, "chat needs a connected call");
      return "";
    }, (time) => channel?.send(JSON.stringify({ kind: DATA_CHANNEL_KIND.CHAT, text, time })));
  }

  /**
   * Send a line to the whole room, through the signaling server; returns "" or why not.
   * @param {(text: string) => Outcome} sendLine  the room's sender ("" when sent)
   * @param {unknown} text
   * @returns {Outcome}
   */
  sendToRoom(sendLine, text) {
    /** @type {Outcome} */
    let sent = "";
    return this._sendWith(text, () => "", () => {
      sent = sendLine(/** @type {string} */ (text));
    }) || sent;
  }

  /**
   * @param {unknown} text
   * @param {() => Outcome} ready  why it cannot be sent now, or ""
   * @param {(time: number) => void} transmit
   * @returns {Outcome}
   */
  _sendWith(text, ready, transmit) {
    if (typeof text !== "string" || !text) return fail(PageError.INVALID_ARGUMENT, "empty message");
    if (text.length > MAX_CHAT_CHARS) return fail(ErrorCode.TOO_LARGE, `message longer than ${MAX_CHAT_CHARS} characters`);
    const why = ready();
    if (why) return why;
    if (!this.sendBucket.take()) {
      return fail(ErrorCode.RATE_LIMITED, `too many messages: at most ${CHAT_RATE} a second (bursts of ${CHAT_BURST}); wait a moment`);
    }
    const time = Date.now() / 1000;
    transmit(time);
    this._add({ from: this.user(), text, time });
    this.tellKernel(TO_KERNEL_KIND.CHAT_SENT, { text, time });
    return "";
  }

  /**
   * A room member's line, as the server passed it on (the server stamps who sent it and
   * bounds its rate; checked again here, as from a peer: size, and a rate per member).
   * @param {string} from
   * @param {unknown} text
   */
  receiveFromRoom(from, text) {
    if (typeof text !== "string" || !text || text.length > MAX_CHAT_CHARS || !from) {
      this._drop("malformed");
      return;
    }
    if (!this._bucket(from).take()) {
      this._drop("flood");
      return;
    }
    const line = { from, text, time: Date.now() / 1000 };
    this.receivedTotal += 1;
    this._add(line);
    this.tellKernel(TO_KERNEL_KIND.CHAT_RECEIVED, { ...line });
  }

  /**
   * One data channel message from the peer.  A chat line is checked, rate limited and
   * added; the other valid messages (media, heartbeat) are returned for the caller;
   * malformed ones are counted.
   * @param {unknown} data
   * @returns {ChannelMessage | null}
   */
  receive(data) {
    const { msg, problem: why } = readChannelMessage(data);
    if (why) {
      this._drop("malformed");
      this.problems.push(why);
      if (this.problems.length > 20) this.problems.shift();
      return null;
    }
    if (!msg) return null; // a kind this page does not know
    if (msg.kind !== DATA_CHANNEL_KIND.CHAT) return msg;
    if (!this._bucket(this.peer()).take()) {
      this._drop("flood");
      return null;
    }
    const line = { from: this.peer(), text: /** @type {string} */ (msg.text), time: lineTime(msg.time) };
    this.receivedTotal += 1;
    this._add(line);
    this.tellKernel(TO_KERNEL_KIND.CHAT_RECEIVED, { ...line });
    return null;
  }

  /** @param {string} peer */
  _bucket(peer) {
    let bucket = this.receiveBuckets.get(peer);
    if (!bucket) {
      if (this.receiveBuckets.size >= MAX_PEERS) this.receiveBuckets.delete(/** @type {string} */ (this.receiveBuckets.keys().next().value));
      bucket = new TokenBucket();
      this.receiveBuckets.set(peer, bucket);
    }
    return bucket;
  }

  /** @param {ChatLine} line */
  _add(line) {
    const dropped = this.history.push(line);
    this.events.emit("line", line, dropped);
  }

  /** @param {"flood" | "malformed"} why */
  _drop(why) {
    this.dropped[why] += 1;
    this.droppedTotal[why] += 1;
    this.unreported[why] += 1;
    const { flood, malformed } = this.dropped;
    const from = this.peer() || "the other side";
    const parts = [];
    if (flood) parts.push(`${count(flood, "message", "messages")} from ${from} ${flood === 1 ? "was" : "were"} dropped (flood)`);
    if (malformed) parts.push(`${count(malformed, "malformed message", "malformed messages")} from ${from} ignored`);
    this.notice = parts.join("; ");
    this.redrawNotice.call();
    this.report.call();
  }

  _report() {
    const { flood, malformed } = this.unreported;
    if (!flood && !malformed) return;
    this.unreported = { flood: 0, malformed: 0 };
    this.tellKernel(TO_KERNEL_KIND.CHAT_DROPPED, { from: this.peer(), flood, malformed });
  }
}
