// How a call's own camera and microphone get onto its RTCPeerConnection when they open late:
// a send slot negotiated before the track exists, or a kind added after the negotiation.
// Pure functions of the connection (peer_call.js keeps the state).

/** @typedef {"audio" | "video"} Kind */

/**
 * A transceiver that will send `kind` once its device opens: negotiated now, under `stream`
 * (an id of ours), so the peer's track event has its stream.
 * @param {RTCPeerConnection} pc
 * @param {Kind} kind
 * @param {boolean} offerer
 * @param {MediaStream} stream
 * @returns {RTCRtpTransceiver | null} null: the answerer cannot name the stream (the caller renegotiates later)
 */
export function reserveSender(pc, kind, offerer, stream) {
  if (offerer) return pc.addTransceiver(kind, { direction: "sendrecv", streams: [stream] });
  // The offer's section of this kind (its transceiver was made by setRemoteDescription).
  const transceiver = pc
    .getTransceivers()
    .find((t) => t.receiver.track.kind === kind && !t.sender.track && t.currentDirection !== "stopped");
  if (!transceiver || typeof transceiver.sender.setStreams !== "function") return null;
  transceiver.direction = "sendrecv";
  transceiver.sender.setStreams(stream);
  return transceiver;
}

/**
 * Start sending `track` of a kind not negotiated to send yet (renegotiates).
 * @param {RTCPeerConnection} pc
 * @param {MediaStreamTrack} track
 * @param {MediaStream | null} stream
 * @param {(err: unknown) => void} onError  a replaceTrack that failed
 */
export function sendLate(pc, track, stream, onError) {
  const tr = pc.getTransceivers().find((t) => t.receiver.track.kind === track.kind && !t.sender.track && t.currentDirection !== "stopped");
  if (tr) {
    tr.sender.replaceTrack(track).catch(onError);
    if (tr.direction === "recvonly") tr.direction = "sendrecv";
    else if (tr.direction === "inactive") tr.direction = "sendonly";
  } else {
    pc.addTrack(track, stream || new MediaStream([track]));
  }
}
