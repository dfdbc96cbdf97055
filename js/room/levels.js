// Who is speaking.  A member's level comes from the RTCRtpReceiver that carries its audio:
// getSynchronizationSources().audioLevel is the level the sender put in each RTP packet
// (RFC 6464, on by default in browsers; Janus forwards the extension to subscribers): no
// AudioContext, so no autoplay policy in the way, and it works in headless Chromium whether
// or not the audio is played.  On a mesh the receivers are the link's; on the SFU the
// subscription's m-lines that carry that member (SfuSession.receivers).  Only a session
// that cannot name its receivers is measured with a WebAudio AnalyserNode (StreamMeter).
//
// Levels are linear, 0..1 (1 = full scale): speech is ~0.05-0.5, a quiet room < 0.01.

export const SPEAKING_LEVEL = 0.02;
export const SPEAKING_HOLD_MS = 800; // pauses between words do not flicker the outline
const STALE_SOURCE_MS = 2000;

/**
 * The loudest recent audio level of a link's receivers, or null when they tell none.
 * @param {readonly RTCRtpReceiver[]} receivers
 * @returns {number | null}
 */
export function receiverLevel(receivers) {
  let level = null;
  const now = performance.timeOrigin + performance.now();
  for (const receiver of receivers) {
    if (!receiver || !receiver.track || receiver.track.kind !== "audio") continue;
    if (typeof receiver.getSynchronizationSources !== "function") continue;
    for (const source of receiver.getSynchronizationSources()) {
      if (typeof source.audioLevel !== "number") continue;
      // Browsers keep a source up to 10 s after its last packet: an old level is silence.
      const stale = source.timestamp > 1e12 && now - source.timestamp > STALE_SOURCE_MS;
      const value = stale ? 0 : source.audioLevel;
      level = level == null ? value : Math.max(level, value);
    }
  }
  return level;
}

/** Levels of MediaStreams through one AudioContext (made on first use). */
export class StreamMeter {
  constructor() {
    /** @type {AudioContext | null} */
    this.context = null;
    /** @type {Map<string, {stream: MediaStream, source: MediaStreamAudioSourceNode, analyser: AnalyserNode, data: Float32Array<ArrayBuffer>}>} */
    this.meters = new Map();
  }

  /**
   * The level of `stream`'s audio now, or null where WebAudio is missing or it has none.
   * @param {string} key
   * @param {MediaStream} stream
   * @returns {number | null}
   */
  level(key, stream) {
    let meter = this.meters.get(key);
    if (meter && meter.stream !== stream) {
      this.forget(key);
      meter = undefined;
    }
    if (!meter) {
      if (!stream.getAudioTracks().length || typeof AudioContext === "undefined") return null;
      try {
        if (!this.context) this.context = new AudioContext();
        if (this.context.state === "suspended") this.context.resume().catch(() => {});
        const source = this.context.createMediaStreamSource(stream);
        const analyser = this.context.createAnalyser();
        analyser.fftSize = 512;
        source.connect(analyser); // not to the destination: the tile's <video> plays it
        meter = { stream, source, analyser, data: new Float32Array(analyser.fftSize) };
        this.meters.set(key, meter);
      } catch {
        return null;
      }
    }
    meter.analyser.getFloatTimeDomainData(meter.data);
    let sum = 0;
    for (const x of meter.data) sum += x * x;
    return Math.sqrt(sum / meter.data.length);
  }

  /** @param {string} key */
  forget(key) {
    const meter = this.meters.get(key);
    if (!meter) return;
    this.meters.delete(key);
    meter.source.disconnect();
  }

  close() {
    for (const key of [...this.meters.keys()]) this.forget(key);
    if (this.context) this.context.close().catch(() => {});
    this.context = null;
  }
}

/** Speaking or not per member, with a hold so a pause between words is not silence. */
export class Speaking {
  constructor({ threshold = SPEAKING_LEVEL, holdMs = SPEAKING_HOLD_MS } = {}) {
    this.threshold = threshold;
    this.holdMs = holdMs;
    /** @type {Map<string, {loudAt: number, level: number}>} */
    this.seen = new Map();
  }

  /**
   * A new level for `key` (null: unknown, counts as silence); true if it now speaks.
   * @param {string} key
   * @param {number | null} level
   * @param {number} now  performance.now()
   */
  update(key, level, now) {
    let entry = this.seen.get(key);
    if (!entry) this.seen.set(key, (entry = { loudAt: -Infinity, level: 0 }));
    entry.level = level || 0;
    if (entry.level >= this.threshold) entry.loudAt = now;
    return now - entry.loudAt < this.holdMs;
  }

  /** The loudest of those speaking now ("" when nobody is). @param {number} now */
  active(now) {
    let best = "";
    let loudest = -1;
    for (const [key, { loudAt, level }] of this.seen) {
      if (now - loudAt < this.holdMs && level > loudest) [best, loudest] = [key, level];
    }
    return best;
  }

  /** @param {string} key */
  forget(key) {
    this.seen.delete(key);
  }

  clear() {
    this.seen.clear();
  }
}
