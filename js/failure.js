// Why an action failed: a code a program can test and the words for a person
// (nbcall/_errors.py).  The code is the server's (ErrorCode, protocol.js) when the server
// refused, or when the page finds what the server would say (a user not online, yourself);
// else one of PageError (messages.js) for what only the page can tell.  An action returns
// "" when it started, else a Failure; action_failed carries both to the kernel, whose
// dispatcher (and sendToKernel here) accepts only a code of ERROR_CODES (messages.js).

import { PageError } from "./messages.js";
import { ErrorCode } from "./protocol.js";

/** @type {ReadonlySet<string>} */
const SERVER_CODES = new Set(Object.values(ErrorCode));

/** @typedef {{readonly code: string, readonly message: string}} Failure */
/** @typedef {"" | Failure} Outcome  what an action returns: "" when it started */

/**
 * @param {string} code  ErrorCode.* or PageError.*
 * @param {string} message  why, in words
 * @returns {Failure}
 */
export function fail(code, message) {
  return Object.freeze({ code, message });
}

/**
 * The code to report for a server's error reply: its own, if this page knows it (a newer
 * server may send codes this page does not).
 * @param {unknown} code
 * @returns {string}
 */
export function serverCode(code) {
  return typeof code === "string" && SERVER_CODES.has(code) ? code : PageError.SERVER_REFUSED;
}

/** An outcome's code, "" when the action started. @param {Outcome} outcome */
export const codeOf = (outcome) => (outcome ? outcome.code : "");
