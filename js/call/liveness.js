// Is the other side of a Phone's connected call still there (docs/protocol.md "Calls and
// outages")?  The peer's liveness is a status beside the call's state, not a state:
// `phone.peerStatus` is "reconnecting" while the heartbeat (heartbeat.js) hears nothing or
// the server says the peer's signaling dropped (`peer_status`), and a call silent for
// `lost_after` seconds ends with reason `lost`.  The Phone runs the heartbeat and keeps
// the two flags (phone.js `_watchPeer`, `peerStatus`); here are the statuses and the
// `lost_after` rule.

import { PEER_STATUSES } from "../messages.js";
import { pick } from "../names.js";

/** @typedef {"" | "connected" | "reconnecting"} PeerStatus  (PEER_STATUSES in messages.js) */

export const DEFAULT_LOST_AFTER_S = 10;

/** The values of `peerStatus` (the peer_status trait), by name. */
export const PeerStatus = Object.freeze({
  NONE: pick(PEER_STATUSES, ""),
  CONNECTED: pick(PEER_STATUSES, "connected"),
  RECONNECTING: pick(PEER_STATUSES, "reconnecting"),
});

/** lost_after in seconds: a finite number > 0, else the default. @param {unknown} value */
export function validLostAfter(value) {
  return typeof value === "number" && value > 0 && Number.isFinite(value) ? value : DEFAULT_LOST_AFTER_S;
}
