// Actions the kernel asked for before this page could carry them out (nbcall/_actions.py).
//
// Run All runs every cell before the kernel reads one message from the page, so
// `w.call("bob")` right after displaying `w` reaches a page that is still starting.  The
// kernel puts such actions in the `_queued` trait (state survives where a message sent
// before this model existed would be lost).  Here they are carried out in order, each once
// the phone is ready for it (QUEUE_WAITS: the callee online, a ringing call, a call, a
// connected call), through the dispatcher like any command.  An entry whose moment has not
// come after QUEUED_ACTION_WAIT_S fails, and so do the entries after a failed one (they
// were meant to follow it).  Every entry ends with a QUEUED_DONE report to the kernel; a
// failure also sends ACTION_FAILED and shows in the widget.
//
// The kernel is the only writer of `_queued`; what is in it is still checked like any
// message (the command against TO_PAGE, by the dispatcher).

import { QUEUE_WAITS, QUEUED_ACTION_WAIT_S, MAX_QUEUED_ACTIONS, TO_KERNEL_KIND, TO_PAGE_KIND, PageError } from "./messages.js";
import { pick, State } from "./names.js";
import { canCall, inCall } from "./call/call_state.js";
import { Emitter } from "./emitter.js";
import { listen } from "./listen.js";

/** @typedef {import("./types.js").AnyModel} AnyModel */
/** @typedef {import("./call/phone.js").Phone} Phone */
/** @typedef {import("./dispatch.js").Dispatcher} Dispatcher */
/** @typedef {{id: number, wait: string, action: string, command: Record<string, unknown>, key?: string}} Entry */

const CHECK_EVERY_MS = 250; // a wait that no phone change ends (a timeout) is looked at this often
const WAIT_MS = QUEUED_ACTION_WAIT_S * 1000;

export const Wait = Object.freeze({
  ONLINE: pick(QUEUE_WAITS, "online"),
  RINGING: pick(QUEUE_WAITS, "ringing"),
  IN_CALL: pick(QUEUE_WAITS, "in_call"),
  CONNECTED: pick(QUEUE_WAITS, "connected"),
  FREE: pick(QUEUE_WAITS, "free"),
  IN_ROOM: pick(QUEUE_WAITS, "in_room"),
  MEMBER: pick(QUEUE_WAITS, "member"),
});

/** @param {Phone} phone */
const registered = (phone) => phone.state !== State.REGISTERING && phone.state !== State.ERROR;

/** @typedef {{channelOpen: boolean, subscribe: (fn: () => void) => () => void}} ChannelState  the in-call features */

/** @type {Record<string, (phone: Phone, entry: Entry, features: ChannelState | null) => boolean>} when each wait is over */
const READY = {
  [Wait.ONLINE]: (phone, entry) =>
    registered(phone) && (!canCall(phone.state) || !!phone.peers.keyOf(String(entry.key || entry.command.to))),
  [Wait.RINGING]: (phone) => phone.state === State.RINGING || !!phone.room.invitation,
  [Wait.IN_CALL]: (phone) => phone.state === State.RINGING || inCall(phone.state),
  // Chat also needs the data channel, which opens a moment after the connection.
  [Wait.CONNECTED]: (phone, entry, features) =>
    phone.state === State.CONNECTED && (entry.command.kind !== TO_PAGE_KIND.CHAT || !features || features.channelOpen),
  [Wait.FREE]: (phone) => registered(phone) && canCall(phone.state) && !phone.room.name && !phone.room.invitation,
  [Wait.IN_ROOM]: (phone) => !!phone.room.name,
  // The entry's key is the member's (the server's name key, as Python computes it).
  [Wait.MEMBER]: (phone, entry) => phone.room.participants().some((p) => p.key === entry.key && p.state === "connected"),
};

/**
 * What an entry is waiting for, in words ("bob to come online").
 * @param {Phone} phone
 * @param {Entry} entry
 */
export function waitingFor(phone, entry) {
  if (entry.wait === Wait.ONLINE) {
    return registered(phone) ? `${entry.command.to} to come online` : "the signaling server";
  }
  if (entry.wait === Wait.RINGING) return "a call to ring";
  if (entry.wait === Wait.FREE) return registered(phone) ? "the current call to end" : "the signaling server";
  if (entry.wait === Wait.IN_ROOM) return "the room";
  if (entry.wait === Wait.MEMBER) return `${entry.command.which} to be in the room`;
  if (entry.wait === Wait.IN_CALL) return "a call";
  return "a connected call";
}

/**
 * A well-formed entry of `_queued`, or null.
 * @param {unknown} value
 * @returns {Entry | null}
 */
function asEntry(value) {
  if (!value || typeof value !== "object") return null;
  const e = /** @type {Record<string, any>} */ (value);
  const ok =
    Number.isInteger(e.id) &&
    typeof e.action === "string" &&
    Object.prototype.hasOwnProperty.call(READY, e.wait) &&
    e.command !== null &&
    typeof e.command === "object" &&
    (e.key === undefined || typeof e.key === "string");
  return ok ? /** @type {Entry} */ (e) : null;
}

export class QueuedActions {
  /**
   * @param {{model: AnyModel, phone: Phone, dispatcher: Dispatcher, features?: ChannelState, now?: () => number,
   *   beforeDone?: () => void}} args  beforeDone: send the state changes held back (model_sync.js), so
   *   that the kernel has the state an entry produced before it hears the entry is done
   */
  constructor({ model, phone, dispatcher, features, now = () => Date.now(), beforeDone = () => {} }) {
    this.model = model;
    this.beforeDone = beforeDone;
    this.phone = phone;
    this.dispatcher = dispatcher;
    this.now = now;
    this.features = features || null;
    /** @type {Set<number>} ids finished here (the kernel drops them after QUEUED_DONE) */
    this.finished = new Set();
    /** @type {{id: number, since: number} | null} the entry at the head, and since when it waits */
    this.head = null;
    /** @type {string} the action that failed: the entries after it fail too */
    this.failedAction = "";
    /** @type {Entry | null} the entry the last pump stopped at, waiting (what the widget shows) */
    this.waiting = null;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = undefined;
    this.pumping = false;
    /** @type {Emitter<{change: []}>} */
    this.events = new Emitter();
    const pump = () => this.pump();
    const offs = [listen(model, [["change:_queued", pump]]), phone.subscribe(pump)];
    if (features) offs.push(features.subscribe(pump));
    this.unlisten = () => offs.forEach((off) => off());
    pump();
  }

  /** The entries still to do here, in order (at most MAX_QUEUED_ACTIONS are looked at). */
  pending() {
    const raw = this.model.get("_queued");
    const list = Array.isArray(raw) ? raw.slice(0, MAX_QUEUED_ACTIONS) : [];
    /** @type {Entry[]} */
    const out = [];
    for (const value of list) {
      const entry = asEntry(value);
      if (!entry) {
        this.dispatcher.report("a queued action is malformed", value);
        const id = value && typeof value === "object" ? /** @type {any} */ (value).id : undefined;
        if (Number.isInteger(id) && !this.finished.has(id)) this._finish(id);
        continue;
      }
      if (!this.finished.has(entry.id)) out.push(entry);
    }
    // Forget ids the kernel has dropped: `finished` stays as small as the queue.
    const listed = new Set(list.map((value) => (value && typeof value === "object" ? value.id : undefined)));
    for (const id of this.finished) if (!listed.has(id)) this.finished.delete(id);
    return out;
  }

  /** What the widget shows: "Will call bob — waiting for bob to come online", or "". */
  describe() {
    const entry = this.waiting;
    if (!entry) return "";
    return `Will ${entry.action} — waiting for ${waitingFor(this.phone, entry)}`;
  }

  /** @param {() => void} fn */
  subscribe(fn) {
    return this.events.on("change", fn);
  }

  /** Carry out every entry whose moment has come, in order; stop at the first that must wait. */
  pump() {
    if (this.pumping) return; // a command changes the phone, whose change calls pump again
    this.pumping = true;
    this.waiting = null;
    try {
      for (;;) {
        const [entry] = this.pending();
        if (!entry) {
          this.failedAction = "";
          this.head = null;
          this._tick(false);
          break;
        }
        if (!this.head || this.head.id !== entry.id) this.head = { id: entry.id, since: this.now() };
        if (this.failedAction) {
          this._fail(entry, PageError.EARLIER_FAILED, `not done: "${this.failedAction}" before it failed`);
        } else if (READY[entry.wait](this.phone, entry, this.features)) {
          this._run(entry);
        } else if (this.now() - this.head.since >= WAIT_MS) {
          const detail = this.phone.error ? ` (${this.phone.error})` : "";
          this._fail(entry, PageError.TIMED_OUT, `gave up after waiting ${QUEUED_ACTION_WAIT_S} s for ${waitingFor(this.phone, entry)}${detail}`);
        } else {
          this.waiting = entry;
          this._tick(true);
          break;
        }
      }
    } finally {
      this.pumping = false;
    }
    this.events.emit("change");
  }

  /** @param {Entry} entry */
  _run(entry) {
    const command = { ...entry.command };
    if (entry.wait === Wait.ONLINE && command.kind === TO_PAGE_KIND.CALL) {
      // Python sent the callee's key (its name rule); call the name this page lists for it.
      const key = this.phone.peers.keyOf(String(entry.key || command.to));
      if (key) command.to = this.phone.peers.get(key) || command.to;
    }
    // The handler reports its own failure (action_failed); a failed one stops the rest.
    const error = this.dispatcher.receive(command);
    if (error) this.failedAction = entry.action;
    this._finish(entry.id);
  }

  /** @param {Entry} entry @param {string} code  a PageError @param {string} message */
  _fail(entry, code, message) {
    this.failedAction = this.failedAction || entry.action;
    this.phone.setError(`${entry.action}: ${message}`);
    this.dispatcher.send(TO_KERNEL_KIND.ACTION_FAILED, { action: entry.action, code, message });
    this._finish(entry.id);
  }

  /** @param {number} id */
  _finish(id) {
    this.finished.add(id);
    this.beforeDone();
    this.dispatcher.send(TO_KERNEL_KIND.QUEUED_DONE, { id });
  }

  /** Keep a timer only while an entry waits (a timeout is the one thing no event tells). @param {boolean} on */
  _tick(on) {
    if (on && this.timer === undefined) this.timer = setInterval(() => this.pump(), CHECK_EVERY_MS);
    if (!on && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  destroy() {
    this._tick(false);
    this.unlisten();
    this.events.clear();
  }
}
