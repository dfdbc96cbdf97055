// One frame of a video track, for Python: PNG bytes and raw RGBA pixels (so numpy needs no
// image library to decode it).

const FRAME_TIMEOUT_MS = 5000;

/**
 * A muted, off-page <video> playing `track`; resolves once it has a frame. Caller must release it.
 * @param {MediaStreamTrack} track
 * @param {number} [timeoutMs]
 * @returns {Promise<HTMLVideoElement>}
 */
export function playTrack(track, timeoutMs = FRAME_TIMEOUT_MS) {
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([track]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      release(video);
      reject(new Error("no video frame arrived in time"));
    }, timeoutMs);
    const ready = () => {
      if (video.videoWidth > 0 && video.readyState >= 2) {
        clearTimeout(timer);
        resolve(video);
      } else if ("requestVideoFrameCallback" in video) {
        video.requestVideoFrameCallback(ready);
      } else {
        setTimeout(ready, 50);
      }
    };
    video.addEventListener("loadeddata", ready, { once: true });
    video.play().catch(() => {}); // muted play needs no gesture; a failure shows up as the timeout
  });
}

/** @param {HTMLVideoElement} video */
export function release(video) {
  video.pause();
  video.srcObject = null;
}

/** @typedef {{width: number, height: number, png: ArrayBuffer, rgba: ArrayBuffer}} Frame */

/**
 * Grab the current frame of `stream`'s video track.
 * @param {MediaStream | null} stream
 * @returns {Promise<Frame>}
 */
export async function grabFrame(stream) {
  const track = stream && stream.getVideoTracks().find((t) => t.readyState === "live");
  if (!track) throw new Error("no live video track");
  const video = await playTrack(track);
  try {
    const width = video.videoWidth;
    const height = video.videoHeight;
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    if (!ctx) throw new Error("the browser gave no 2d canvas");
    ctx.drawImage(video, 0, 0, width, height);
    const rgba = /** @type {ArrayBuffer} */ (ctx.getImageData(0, 0, width, height).data.buffer);
    /** @type {Blob | null} */
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    if (!blob) throw new Error("the browser could not encode the PNG");
    const png = await blob.arrayBuffer();
    return { width, height, png, rgba };
  } finally {
    release(video);
  }
}
