// Recording a call with MediaRecorder (WebM), sent to Python in chunks as it records:
// every TIMESLICE_MS the recorder hands over a Blob, which becomes one comm message with one
// binary buffer and a sequence number, so no message is ever the size of the whole file.

import { playTrack, release } from "./snapshot.js";

export const TIMESLICE_MS = 500;
const COMPOSITE_FPS = 20;

function pickMime(hasAudio) {
  const candidates = hasAudio
    ? ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp9,opus", "video/webm"]
    : ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm"];
  return candidates.find((m) => MediaRecorder.isTypeSupported(m)) || "";
}

/**
 * Remote video large, local video in a corner, both sides' audio mixed: one stream to record.
 * @returns {Promise<{stream: MediaStream, stop: () => void}>}
 */
async function composite(remote, local) {
  const videos = [];
  const stopAll = () => {
    clearInterval(timer);
    for (const v of videos) release(v);
    if (audioCtx) audioCtx.close();
  };
  let timer = null;
  let audioCtx = null;
  const remoteTrack = remote && remote.getVideoTracks()[0];
  const localTrack = local && local.getVideoTracks()[0];
  try {
    if (remoteTrack) videos.push(await playTrack(remoteTrack));
    if (localTrack) videos.push(await playTrack(localTrack));
  } catch (err) {
    stopAll();
    throw err;
  }
  const main = videos[0];
  const canvas = document.createElement("canvas");
  canvas.width = main ? main.videoWidth : 640;
  canvas.height = main ? main.videoHeight : 480;
  const ctx = canvas.getContext("2d");
  // setInterval, not requestAnimationFrame: rAF stops while the tab is hidden and the recording would freeze.
  timer = setInterval(() => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (videos[0]) ctx.drawImage(videos[0], 0, 0, canvas.width, canvas.height);
    if (videos[1]) {
      const w = Math.round(canvas.width / 4);
      const h = Math.round((w * videos[1].videoHeight) / Math.max(1, videos[1].videoWidth));
      ctx.drawImage(videos[1], canvas.width - w - 8, canvas.height - h - 8, w, h);
    }
  }, 1000 / COMPOSITE_FPS);
  const out = canvas.captureStream(COMPOSITE_FPS);
  const audioTracks = [remote, local].flatMap((s) => (s ? s.getAudioTracks() : []));
  if (audioTracks.length) {
    audioCtx = new AudioContext();
    // Started from Python there is no click: a suspended context would record silence.
    audioCtx.resume().catch(() => {});
    const dest = audioCtx.createMediaStreamDestination();
    for (const t of audioTracks) audioCtx.createMediaStreamSource(new MediaStream([t])).connect(dest);
    for (const t of dest.stream.getAudioTracks()) out.addTrack(t);
  }
  return { stream: out, stop: stopAll };
}

export class Recording {
  /**
   * @param {object} opts
   * @param {(content: object, buffers?: ArrayBuffer[]) => void} opts.send  a comm message to Python
   * @param {() => void} opts.onEnd  the recorder stopped and its last chunk is sent
   */
  constructor({ send, onEnd }) {
    this.send = send;
    this.onEnd = onEnd;
    this.id = Math.random().toString(36).slice(2, 10);
    this.seq = 0;
    this.chain = Promise.resolve(); // blob.arrayBuffer() is async: keep chunks in order
    this.recorder = null;
    this.cleanup = () => {};
  }

  /** Start recording `which` of the phone's streams; throws with a readable message. */
  async start(which, phone) {
    let stream;
    if (which === "remote") stream = phone.remoteStream;
    else if (which === "local") stream = phone.localStream;
    else if (which === "both") {
      const mixed = await composite(phone.remoteStream, phone.localStream);
      stream = mixed.stream;
      this.cleanup = mixed.stop;
    } else throw new Error(`which must be remote, local or both, not ${which}`);
    if (!stream || !stream.getVideoTracks().length) throw new Error(`no ${which} video to record`);
    // A recorder on a stream that later gains or loses a track stops: record a fixed copy.
    const fixed = new MediaStream(stream.getTracks());
    const mimeType = pickMime(fixed.getAudioTracks().length > 0);
    this.mime = mimeType || "video/webm";
    const recorder = new MediaRecorder(fixed, mimeType ? { mimeType } : {});
    this.recorder = recorder;
    recorder.ondataavailable = (event) => {
      const blob = event.data;
      if (!blob || !blob.size) return;
      this.chain = this.chain.then(async () => {
        const buffer = await blob.arrayBuffer();
        this.send({ kind: "recording_chunk", id: this.id, seq: this.seq++ }, [buffer]);
      });
    };
    recorder.onstop = () => {
      this.chain = this.chain.then(() => {
        this.cleanup();
        this.send({ kind: "recording_done", id: this.id, chunks: this.seq, mime: this.mime });
        this.onEnd();
      });
    };
    recorder.onerror = (event) => console.warn("nbcall recorder", event.error || event);
    recorder.start(TIMESLICE_MS);
    this.send({ kind: "recording_started", id: this.id, which, mime: this.mime });
  }

  stop() {
    if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
  }
}
