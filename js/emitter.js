// A tiny typed event emitter: `on` returns its own cleanup, and a failing listener is
// logged without stopping the others (one broken view must not break the call).

/**
 * @template {Record<string, unknown[]>} Events  event name -> the listener's arguments
 */
export class Emitter {
  constructor() {
    /** @type {Map<keyof Events, Set<(...args: any[]) => void>>} */
    this.listeners = new Map();
  }

  /**
   * @template {keyof Events} K
   * @param {K} event
   * @param {(...args: Events[K]) => void} fn
   * @returns {() => void} removes this listener
   */
  on(event, fn) {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => {
      const current = this.listeners.get(event);
      if (current) current.delete(fn);
    };
  }

  /**
   * @template {keyof Events} K
   * @param {K} event
   * @param {Events[K]} args
   */
  emit(event, ...args) {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        console.error(`nbcall ${String(event)} listener`, err);
      }
    }
  }

  /** Forget every listener. */
  clear() {
    this.listeners.clear();
  }
}
