// Live call quality from RTCPeerConnection.getStats(): the numbers Python sees in `stats`
// and the coloured dot in the widget.  Bitrates and loss are rates, so each collector keeps
// the previous sample and divides by the time between the two reports' own timestamps.

/**
 * What Python sees in `stats` (docs/widget.md); setup_ms is added by the phone.
 * @typedef {object} CallStats
 * @property {number} frames_decoded
 * @property {number} fps
 * @property {number} width
 * @property {number} height
 * @property {number | null} rtt_ms
 * @property {number} bytes_received
 * @property {number} bytes_sent
 * @property {number} inbound_kbps
 * @property {number} outbound_kbps
 * @property {number} packet_loss_pct
 * @property {number} out_fps
 * @property {number} out_width
 * @property {number} out_height
 * @property {string} candidate_type
 * @property {string} remote_candidate_type
 * @property {Quality} quality
 */

/** @typedef {"good" | "fair" | "poor" | "unknown"} Quality */

/** @returns {CallStats} */
export function emptyStats() {
  return {
    frames_decoded: 0,
    fps: 0,
    width: 0,
    height: 0,
    rtt_ms: null,
    bytes_received: 0,
    bytes_sent: 0,
    inbound_kbps: 0,
    outbound_kbps: 0,
    packet_loss_pct: 0,
    out_fps: 0,
    out_width: 0,
    out_height: 0,
    candidate_type: "",
    remote_candidate_type: "",
    quality: "unknown",
  };
}

/**
 * The connection's selected candidate pair: the transport's, else the first nominated one
 * that succeeded (null while there is none).
 * @param {RTCStatsReport} report
 * @returns {any}
 */
export function selectedPair(report) {
  /** @type {any} */
  let pair = null;
  report.forEach((/** @type {any} */ s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((/** @type {any} */ s) => {
      if (!pair && s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
    });
  }
  return pair;
}

/**
 * Packets lost in percent (one decimal) of those received plus lost (0 with none).
 * `lost` can go down (duplicates and late packets): it never counts below 0 in the share.
 * @param {number} received @param {number} lost
 */
export function lossPct(received, lost) {
  return received + lost > 0 ? Math.round((1000 * Math.max(0, lost)) / (received + lost)) / 10 : 0;
}

/**
 * Make a collector for one peer connection; call it about once a second.
 * @param {RTCPeerConnection} pc
 * @returns {() => Promise<CallStats>}
 */
export function statsCollector(pc) {
  /** @type {{t: number, bytesIn: number, bytesOut: number, packetsIn: number, lostIn: number} | null} */
  let prev = null;
  return async function collect() {
    const out = emptyStats();
    const report = await pc.getStats();
    let t = 0;
    let packetsIn = 0;
    let lostIn = 0;
    report.forEach((/** @type {any} */ s) => {
      t = Math.max(t, s.timestamp || 0);
      if (s.type === "inbound-rtp") {
        out.bytes_received += s.bytesReceived || 0;
        packetsIn += s.packetsReceived || 0;
        lostIn += Math.max(0, s.packetsLost || 0);
        if (s.kind === "video") {
          out.frames_decoded += s.framesDecoded || 0;
          out.fps = s.framesPerSecond || out.fps;
          out.width = s.frameWidth || out.width;
          out.height = s.frameHeight || out.height;
        }
      } else if (s.type === "outbound-rtp") {
        out.bytes_sent += s.bytesSent || 0;
        if (s.kind === "video") {
          out.out_fps = s.framesPerSecond || out.out_fps;
          out.out_width = s.frameWidth || out.out_width;
          out.out_height = s.frameHeight || out.out_height;
        }
      }
    });
    const pair = selectedPair(report);
    if (pair) {
      if (pair.currentRoundTripTime != null) out.rtt_ms = Math.round(pair.currentRoundTripTime * 1000);
      const local = report.get(pair.localCandidateId);
      const remote = report.get(pair.remoteCandidateId);
      out.candidate_type = (local && local.candidateType) || "";
      out.remote_candidate_type = (remote && remote.candidateType) || "";
    }
    if (prev && t > prev.t) {
      const seconds = (t - prev.t) / 1000;
      out.inbound_kbps = Math.round(((out.bytes_received - prev.bytesIn) * 8) / 1000 / seconds);
      out.outbound_kbps = Math.round(((out.bytes_sent - prev.bytesOut) * 8) / 1000 / seconds);
      const got = packetsIn - prev.packetsIn;
      const lost = lostIn - prev.lostIn;
      out.packet_loss_pct = lossPct(got, lost);
    }
    // A sample taken moments after the last one (a test polling) would give noisy rates:
    // keep the older base until at least half a second has passed.
    if (!prev || t - prev.t >= 500) prev = { t, bytesIn: out.bytes_received, bytesOut: out.bytes_sent, packetsIn, lostIn };
    out.quality = quality(out);
    return out;
  };
}

/**
 * good / fair / poor from loss and round trip; "unknown" until there is a rate to judge.
 * @param {{rtt_ms: number | null, inbound_kbps: number, packet_loss_pct: number}} s
 * @returns {Quality}
 */
export function quality(s) {
  if (s.rtt_ms == null && !s.inbound_kbps) return "unknown";
  const rtt = s.rtt_ms || 0;
  if (s.packet_loss_pct > 5 || rtt > 400) return "poor";
  if (s.packet_loss_pct > 1 || rtt > 150) return "fair";
  return "good";
}

/** @type {Record<Quality, string>} */
export const QUALITY_WORDS = { good: "good", fair: "fair", poor: "poor", unknown: "measuring…" };
