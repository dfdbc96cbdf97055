// What the widget says: states, transports, end reasons.

import { Reason, ErrorCode } from "../protocol.js";
import { State } from "../names.js";
import { PeerStatus } from "../call/phone.js";

/** @typedef {import("../call/phone.js").Phone} Phone */
/** @typedef {import("../names.js").CallStateName} CallStateName */

/** @type {Record<string, string>} */
const REASON_WORDS = {
  [Reason.HANGUP]: "hung up",
  [Reason.REJECTED]: "declined",
  [Reason.BUSY]: "busy in another call",
  [Reason.CANCELLED]: "caller gave up",
  [Reason.TIMEOUT]: "no answer",
  [Reason.DISCONNECTED]: "the other side went away",
  [Reason.FAILED]: "connection failed",
  [Reason.LOST]: "lost: nothing came from the other side",
  [ErrorCode.UNKNOWN_PEER]: "not online",
  [Reason.CLOSED]: "the other side closed the widget",
};

/** The other side's status while connected (phone.peerStatus), in words. */
export const PEER_STATUS_WORDS = Object.freeze({
  [PeerStatus.NONE]: "",
  [PeerStatus.CONNECTED]: "",
  [PeerStatus.RECONNECTING]: "reconnecting…",
});

/** Why a call ended, in words. @param {string} reason */
export function reasonWords(reason) {
  return REASON_WORDS[reason] || reason;
}

/** @type {Record<CallStateName, (p: Phone) => string>} */
export const STATE_WORDS = {
  [State.IDLE]: (p) => `Ready — online as ${p.user}`,
  [State.REGISTERING]: () => "Connecting to the signaling server…",
  [State.CALLING]: (p) => `Calling ${p.peer}…`,
  [State.RINGING]: (p) => `${p.incoming || p.peer} is calling you`,
  [State.CONNECTING]: (p) => `Connecting to ${p.peer}…`,
  [State.CONNECTED]: (p) => `In a call with ${p.peer}${p.peerStatus === PeerStatus.RECONNECTING ? ` — ${PEER_STATUS_WORDS[PeerStatus.RECONNECTING]}` : ""}`,
  [State.ENDED]: (p) => `Call with ${p.peer} ended${p.endReason ? ` (${reasonWords(p.endReason)})` : ""}`,
  [State.ERROR]: () => "Not connected",
};

/** @type {Record<import("../signaling/transports.js").TransportName, string>} */
export const TRANSPORT_WORDS = {
  "same-origin": "Signaling through the Jupyter server's own endpoint",
  direct: "Signaling over a direct websocket to the server",
  kernel: "Signaling through the kernel: messages from this page reach it only between cells",
};

/** @param {string} transport */
export function transportWords(transport) {
  return /** @type {Record<string, string>} */ (TRANSPORT_WORDS)[transport] || "";
}
