// Session descriptions as the signaling carries them: the seed's RTCSessionDescription
// JSON or a bare SDP string, and whether a description already carries a candidate (the
// candidates gathered while ringing are folded into the held offer).

/**
 * The seed sends RTCSessionDescription JSON; the protocol also allows a bare SDP string.
 * @param {string} type
 * @param {unknown} sdp
 * @returns {RTCSessionDescriptionInit}
 */
export function toDescription(type, sdp) {
  const as = (/** @type {string} */ t) => /** @type {RTCSdpType} */ (t);
  if (typeof sdp === "string") return { type: as(type), sdp };
  if (sdp && typeof sdp === "object" && "sdp" in sdp && typeof sdp.sdp === "string") {
    const own = "type" in sdp && typeof sdp.type === "string" ? sdp.type : type;
    return { type: as(own), sdp: sdp.sdp };
  }
  throw new Error(`bad ${type}: no sdp`);
}

/**
 * Whether an SDP already carries this candidate (as an `a=candidate:` line).
 * @param {string} sdp
 * @param {unknown} candidate  RTCIceCandidateInit
 */
export function inDescription(sdp, candidate) {
  const line = candidate && typeof candidate === "object" && "candidate" in candidate ? candidate.candidate : "";
  if (typeof line !== "string" || !line) return false;
  const text = line.startsWith("a=") ? line.slice(2) : line;
  return sdp.split(/\r?\n/).some((l) => l === `a=${text}`);
}
