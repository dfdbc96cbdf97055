// The SFU session's timers and waits, in one place so that ending the session ends all of
// them: every timer is cleared, every wait rejected (nothing is left waiting on a Janus
// that will never answer).

export const REQUEST_TIMEOUT_MS = 10000; // one VideoRoom request answered

/** @typedef {import("./sfu_janus.js").JSEP} JSEP */
/** @typedef {{msg: Record<string, any>, jsep?: JSEP}} Answer */
/**
 * @typedef {object} Waiter  a VideoRoom answer being waited for on one handle
 * @property {string} on  which handle
 * @property {(msg: Record<string, any>, jsep?: JSEP) => boolean} match
 * @property {(answer: Answer) => void} resolve
 * @property {(err: Error) => void} reject
 * @property {(msg: Record<string, any>) => string} refused  Janus's error in words
 */

export class Waits {
  constructor() {
    /** @type {Set<ReturnType<typeof setTimeout>>} */
    this.timers = new Set();
    /** @type {Set<(err: Error) => void>} */
    this.aborts = new Set();
    /** @type {Waiter[]} */
    this.waiters = [];
    /** @type {Error | null} set once ended: nothing new starts */
    this.ended = null;
  }

  /** A timer `end()` clears (none once ended). @param {() => void} fn @param {number} ms */
  later(fn, ms) {
    if (this.ended) return null;
    const id = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.add(id);
    return id;
  }

  /** @param {ReturnType<typeof setTimeout> | null} id */
  clear(id) {
    if (id === null) return;
    clearTimeout(id);
    this.timers.delete(id);
  }

  /**
   * `promise`, but rejected after REQUEST_TIMEOUT_MS ("the SFU did not <what> within …")
   * or when the waits end.
   * @template T
   * @param {Promise<T>} promise @param {string} what
   * @returns {Promise<T>}
   */
  bounded(promise, what) {
    return new Promise((resolve, reject) => {
      if (this.ended) return reject(this.ended);
      /** @param {Error} err */
      const abort = (err) => {
        this.clear(timer);
        this.aborts.delete(abort);
        reject(err);
      };
      const timer = this.later(() => abort(new Error(`the SFU did not ${what} within ${REQUEST_TIMEOUT_MS / 1000} s`)), REQUEST_TIMEOUT_MS);
      this.aborts.add(abort);
      promise.then((value) => {
        this.clear(timer);
        this.aborts.delete(abort);
        resolve(value);
      }, abort);
    });
  }

  /**
   * Wait for Janus's answer on a handle: the first message that `match`es, or an error
   * (rejected with `refused`'s words), within the request timeout.
   * @param {string} on @param {Waiter["match"]} match @param {string} what @param {Waiter["refused"]} refused
   * @returns {Promise<Answer>}
   */
  expect(on, match, what, refused) {
    return this.bounded(new Promise((resolve, reject) => this.waiters.push({ on, match, resolve, reject, refused })), what);
  }

  /**
   * A message on handle `on`: the first waiter it answers takes it (an error answers the
   * oldest waiter of that handle).  True when taken.
   * @param {string} on @param {Record<string, any>} msg @param {JSEP} [jsep]
   */
  answer(on, msg, jsep) {
    const i = this.waiters.findIndex((w) => w.on === on && (msg.error_code ? true : w.match(msg, jsep)));
    if (i < 0) return false;
    const [w] = this.waiters.splice(i, 1);
    if (msg.error_code) w.reject(new Error(w.refused(msg)));
    else w.resolve({ msg, jsep });
    return true;
  }

  /** Clear every timer and reject every wait with `err`; later() and bounded() do nothing after. @param {Error} err */
  end(err) {
    this.ended = err;
    for (const id of this.timers) clearTimeout(id);
    this.timers.clear();
    this.waiters.length = 0;
    for (const abort of [...this.aborts]) abort(err);
  }
}
