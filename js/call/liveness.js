// Is the other side of a Phone's connected call still there (docs/protocol.md "Calls and
// outages")?  The peer's liveness is a status beside the call's state, not a state:
// `phone.peerStatus` is "reconnecting" while the heartbeat (heartbeat.js) hears nothing or
// the server says the peer's signaling dropped (`peer_status`), and a call silent for
// `lost_after` seconds ends with reason `lost`.  Kept apart from phone.js, which only
// starts and stops the watch.

import { Reason } from "../protocol.js";
import { PEER_STATUSES } from "../messages.js";
import { pick } from "../names.js";
import { busy } from "./call_state.js";
import { Heartbeat } from "./heartbeat.js";

/** @typedef {import("./phone.js").Phone} Phone */
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

/**
 * Start listening for the peer's life (connected: the data channel and RTP exist); the
 * Phone stops it when the call ends (`phone.heartbeat.stop()`).
 * @param {Phone} phone
 */
export function watchPeer(phone) {
  const call = phone.call;
  if (!call || phone.heartbeat) return;
  phone.heartbeat = new Heartbeat({
    channel: call.channel,
    pc: call.pc,
    lostAfterMs: phone.lostAfterMs,
    onSilent: (silent) => {
      if (phone.call !== call) return;
      phone.peerSilent = silent;
      phone._changed();
    },
    onLost: () => {
      if (phone.call !== call || !busy(phone.state)) return;
      phone._endCall(Reason.LOST, true);
      phone._changed();
    },
  });
}
