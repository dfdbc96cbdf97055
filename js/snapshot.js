// One frame of a video track, for Python: PNG bytes and raw RGBA pixels (so numpy needs no
// image library to decode it).

const FRAME_TIMEOUT_MS = 5000;

/** A muted, off-page <video> playing `track`; resolves once it has a frame. Caller must release it. */
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
      } else {
        video.requestVideoFrameCallback ? video.requestVideoFrameCallback(ready) : setTimeout(ready, 50);
      }
    };
    video.addEventListener("loadeddata", ready, { once: true });
    video.play().catch(() => {}); // muted play needs no gesture; a failure shows up as the timeout
  });
}

export function release(video) {
  video.pause();
  video.srcObject = null;
}

/**
 * Grab the current frame of `stream`'s video track.
 * @returns {Promise<{width: number, height: number, png: ArrayBuffer, rgba: ArrayBuffer}>}
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
    ctx.drawImage(video, 0, 0, width, height);
    const rgba = ctx.getImageData(0, 0, width, height).data.buffer;
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    if (!blob) throw new Error("the browser could not encode the PNG");
    const png = await blob.arrayBuffer();
    return { width, height, png, rgba };
  } finally {
    release(video);
  }
}
