// Named members of the generated lists (messages.js), checked when the module loads: a
// value renamed in nbcall/_enums.py fails here at import, in the unit tests, not in a call.

import { CALL_STATES } from "./messages.js";

/**
 * `value`, which must be one of `list`.
 * @template {string} T
 * @template {T} V
 * @param {readonly T[]} list
 * @param {V} value
 * @returns {V}
 */
export function pick(list, value) {
  if (!list.includes(value)) throw new Error(`nbcall: '${value}' is not one of ${list.join(", ")}`);
  return value;
}

/** @typedef {typeof CALL_STATES[number]} CallStateName */

/** Every call state by its upper-case name: State.IDLE === "idle". */
export const State = /** @type {{readonly [K in CallStateName as Uppercase<K>]: K}} */ (
  Object.freeze(Object.fromEntries(CALL_STATES.map((s) => [s.toUpperCase(), s])))
);
