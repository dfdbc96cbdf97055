// Timers and clocks under the test's control, and a way to let promises settle.

/** Let pending promise callbacks and microtasks run (a real macrotask turn, not faked). */
export async function flush(rounds = 5) {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** setTimeout/setInterval/performance.now/Date.now under the test's control. */
export class FakeClock {
  constructor(start = 1_000_000) {
    this.now = start;
    this.nextId = 1;
    /** @type {Map<number, {at: number, fn: Function, every: number}>} */
    this.timers = new Map();
    /** @type {Record<string, any>} */
    this.saved = {};
  }

  install() {
    const g = /** @type {any} */ (globalThis);
    for (const name of ["setTimeout", "clearTimeout", "setInterval", "clearInterval"]) this.saved[name] = g[name];
    this.saved.perfNow = performance.now;
    this.saved.dateNow = Date.now;
    g.setTimeout = (/** @type {Function} */ fn, ms = 0) => this._add(fn, ms, 0);
    g.setInterval = (/** @type {Function} */ fn, ms = 0) => this._add(fn, ms, Math.max(1, ms));
    g.clearTimeout = g.clearInterval = (/** @type {number} */ id) => this.timers.delete(id);
    performance.now = () => this.now;
    Date.now = () => this.now;
    return this;
  }

  uninstall() {
    const g = /** @type {any} */ (globalThis);
    for (const name of ["setTimeout", "clearTimeout", "setInterval", "clearInterval"]) g[name] = this.saved[name];
    performance.now = this.saved.perfNow;
    Date.now = this.saved.dateNow;
  }

  /** @param {Function} fn @param {number} ms @param {number} every */
  _add(fn, ms, every) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.now + Math.max(0, ms), fn, every });
    return id;
  }

  /** Advance time, running every timer that falls due, in order. @param {number} ms */
  tick(ms) {
    const end = this.now + ms;
    for (;;) {
      let id = 0;
      /** @type {{at: number, fn: Function, every: number} | null} */
      let timer = null;
      for (const [i, t] of this.timers) {
        if (t.at <= end && (!timer || t.at < timer.at)) [id, timer] = [i, t];
      }
      if (!timer) break;
      this.now = timer.at;
      if (timer.every) timer.at += timer.every;
      else this.timers.delete(id);
      timer.fn();
    }
    this.now = end;
  }

  /** Timers still waiting. */
  get pending() {
    return this.timers.size;
  }
}

