// Tracks, streams, navigator.mediaDevices and MediaRecorder.

let trackIds = 0;

export class FakeTrack {
  /** @param {"audio" | "video"} kind @param {string} [label] */
  constructor(kind, label = "") {
    this.kind = kind;
    this.id = `track-${++trackIds}`;
    this.label = label;
    this.enabled = true;
    /** @type {object | undefined} what applyConstraints() asked for */
    this.constraints = undefined;
    /** @type {"live" | "ended"} */
    this.readyState = "live";
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
  }

  stop() {
    this.readyState = "ended";
  }

  /** A new track from the same source (the room sends a clone of the preview). */
  clone() {
    const copy = new FakeTrack(this.kind, this.label);
    copy.enabled = this.enabled;
    return copy;
  }

  /** @param {object} constraints */
  async applyConstraints(constraints) {
    this.constraints = constraints;
  }

  /** @param {string} type @param {Function} fn */
  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    /** @type {Set<Function>} */ (this.listeners.get(type)).add(fn);
  }

  /** @param {string} type @param {Function} fn */
  removeEventListener(type, fn) {
    const set = this.listeners.get(type);
    if (set) set.delete(fn);
  }

  /** @param {string} type */
  dispatch(type) {
    for (const fn of [...(this.listeners.get(type) || [])]) fn({ type });
  }
}

export class FakeMediaStream {
  /** @param {FakeTrack[]} [tracks] */
  constructor(tracks = []) {
    this.tracks = [...tracks];
  }

  getTracks() {
    return [...this.tracks];
  }

  getAudioTracks() {
    return this.tracks.filter((t) => t.kind === "audio");
  }

  getVideoTracks() {
    return this.tracks.filter((t) => t.kind === "video");
  }

  clone() {
    return new FakeMediaStream(this.tracks.map((t) => t.clone()));
  }

  /** @param {FakeTrack} track */
  addTrack(track) {
    this.tracks.push(track);
  }

  /** @param {FakeTrack} track */
  removeTrack(track) {
    this.tracks = this.tracks.filter((t) => t !== track);
  }
}

/** navigator.mediaDevices: every getUserMedia opens fresh fake tracks; `deny` makes it fail. */
export function fakeMediaDevices() {
  return {
    /** @type {any[]} */
    calls: [],
    /** @type {Error | null} */
    deny: null,
    /** @type {Promise<void> | null} while set, cameras take until it resolves */
    slow: null,
    /** @param {{audio?: any, video?: any}} constraints */
    async getUserMedia(constraints) {
      this.calls.push(constraints);
      if (this.slow) await this.slow;
      if (this.deny) throw this.deny;
      const tracks = [];
      if (constraints.audio) tracks.push(new FakeTrack("audio"));
      if (constraints.video) tracks.push(new FakeTrack("video"));
      return new FakeMediaStream(tracks);
    },
    async getDisplayMedia() {
      return new FakeMediaStream([new FakeTrack("video", "screen")]);
    },
    async enumerateDevices() {
      return [
        { kind: "videoinput", deviceId: "cam1", label: "Camera 1" },
        { kind: "audioinput", deviceId: "mic1", label: "" },
      ];
    },
    addEventListener() {},
    removeEventListener() {},
  };
}

export class FakeMediaRecorder {
  /** @type {FakeMediaRecorder[]} */
  static instances = [];

  /** @param {string} mime */
  static isTypeSupported(mime) {
    return mime.startsWith("video/webm");
  }

  /** @param {FakeMediaStream} stream @param {{mimeType?: string}} [options] */
  constructor(stream, options = {}) {
    this.stream = stream;
    this.mimeType = options.mimeType || "";
    /** @type {"inactive" | "recording"} */
    this.state = "inactive";
    this.timeslice = 0;
    /** @type {((event: {data: Blob}) => void) | null} */
    this.ondataavailable = null;
    /** @type {(() => void) | null} */
    this.onstop = null;
    /** @type {((event: any) => void) | null} */
    this.onerror = null;
    FakeMediaRecorder.instances.push(this);
  }

  /** @param {number} timeslice */
  start(timeslice) {
    this.state = "recording";
    this.timeslice = timeslice;
  }

  /** One chunk of the recording. @param {string} bytes */
  emit(bytes) {
    if (this.ondataavailable) this.ondataavailable({ data: new Blob([bytes]) });
  }

  /** Like a browser: the last chunk, then stop, after the current task. */
  stop() {
    if (this.state === "inactive") return;
    this.state = "inactive";
    queueMicrotask(() => {
      this.emit("last");
      if (this.onstop) this.onstop();
    });
  }
}

