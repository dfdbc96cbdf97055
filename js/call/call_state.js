// The call states of one widget and the only moves between them.  The Phone changes state
// only through `transition`, which refuses a move the table does not list.  The table is
// nbcall._enums.CALL_TRANSITIONS (generated into messages.js, with the moves explained
// there); nbcall.Peer moves through the same table (nbcall/_call_state.py), and
// tests/call_transitions.json is one set of cases both are tested against.

import { CALL_STATES, CALL_TRANSITIONS, CAN_CALL_STATES, IN_CALL_STATES } from "../messages.js";
import { State } from "../names.js";

/** @typedef {import("../names.js").CallStateName} CallStateName */

const { REGISTERING, RINGING } = State;

/** @type {Readonly<Record<CallStateName, readonly CallStateName[]>>} */
export const TRANSITIONS = /** @type {Readonly<Record<CallStateName, readonly CallStateName[]>>} */ (
  /** @type {unknown} */ (CALL_TRANSITIONS)
);

const CAN_CALL = new Set(/** @type {readonly string[]} */ (CAN_CALL_STATES));
const IN_CALL = new Set(/** @type {readonly string[]} */ (IN_CALL_STATES));

/** A new call can be placed (or rung) in this state. @param {CallStateName} state */
export const canCall = (state) => CAN_CALL.has(state);

/** An outgoing or established call: calling, connecting, connected. @param {CallStateName} state */
export const inCall = (state) => IN_CALL.has(state);

/** In a call, or one ringing here: what a new invite would be busy with. @param {CallStateName} state */
export const busy = (state) => IN_CALL.has(state) || state === RINGING;

/** @param {CallStateName} from @param {CallStateName} to */
export function allowed(from, to) {
  return TRANSITIONS[from].includes(to);
}

export class IllegalTransition extends Error {
  /** @param {CallStateName} from @param {CallStateName} to @param {string} why */
  constructor(from, to, why) {
    super(`nbcall: no transition ${from} → ${to} (${why})`);
    this.name = "IllegalTransition";
    this.from = from;
    this.to = to;
  }
}

/** @param {string} state @returns {state is CallStateName} */
export function isCallState(state) {
  return /** @type {readonly string[]} */ (CALL_STATES).includes(state);
}

/** @typedef {{from: CallStateName, to: CallStateName, why: string, at: number}} Move */

/** The current state and the one place it changes. */
export class CallState {
  /** @param {CallStateName} [initial] */
  constructor(initial = REGISTERING) {
    /** @type {CallStateName} */
    this.state = initial;
    /** @type {Move[]} the last moves, for debugging (phone.machine.history) */
    this.history = [];
  }

  /**
   * Move to `to`, or throw IllegalTransition when the table does not allow it.
   * @param {CallStateName} to
   * @param {string} why  a few words for the history and the error
   * @returns {boolean} false for a listed move to the same state (nothing changed)
   */
  transition(to, why) {
    const from = this.state;
    if (!allowed(from, to)) throw new IllegalTransition(from, to, why);
    if (from === to) return false;
    this.state = to;
    this.history.push({ from, to, why, at: Date.now() });
    if (this.history.length > 50) this.history.shift();
    return true;
  }
}
