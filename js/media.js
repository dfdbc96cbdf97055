// Camera and microphone.  A missing device or a denied permission is not fatal: the
// caller gets a readable reason and the call goes on receive-only.

/** Turn a getUserMedia failure into a sentence a user can act on. */
export function describeMediaError(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return "camera/microphone permission denied — receiving only (allow the camera in the browser to send video)";
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
    return "no camera or microphone found — receiving only";
  }
  if (name === "NotReadableError" || name === "TrackStartError") {
    return "the camera is in use by another application — receiving only";
  }
  if (typeof navigator === "undefined" || !navigator.mediaDevices) {
    return "this page cannot use the camera (it needs https or localhost) — receiving only";
  }
  return `cannot open the camera (${name || "error"}: ${(err && err.message) || err}) — receiving only`;
}

/**
 * Open the devices the user wants to send.
 * @returns {Promise<{stream: MediaStream|null, error: string}>} never rejects
 */
export async function openMedia({ audio, video, camera, microphone }) {
  if (!audio && !video) return { stream: null, error: "" };
  if (typeof navigator === "undefined" || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return { stream: null, error: describeMediaError(null) };
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: audio ? deviceConstraint(microphone) : false,
      video: video ? deviceConstraint(camera) : false,
    });
    return { stream, error: "" };
  } catch (err) {
    // With both asked for, a missing microphone alone should not cost the video.
    if (audio && video && err && (err.name === "NotFoundError" || err.name === "NotReadableError")) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ video: deviceConstraint(camera) });
        return { stream, error: "no usable microphone — sending video only" };
      } catch {
        // fall through to the original reason
      }
    }
    return { stream: null, error: describeMediaError(err) };
  }
}

export function stopStream(stream) {
  if (!stream) return;
  for (const track of stream.getTracks()) track.stop();
}

/** A chosen device id, or any device when none was chosen. `ideal`, not `exact`: a camera
 * unplugged since it was chosen should fall back to another one rather than fail the call. */
export function deviceConstraint(deviceId) {
  return deviceId ? { deviceId: { ideal: deviceId } } : true;
}

/** Open one track of `kind` ("audio" | "video") from a given device (`exact`: the user just picked it). */
export async function openTrack(kind, deviceId) {
  const constraint = deviceId ? { deviceId: { exact: deviceId } } : true;
  const stream = await navigator.mediaDevices.getUserMedia({ [kind]: constraint });
  return stream.getTracks()[0];
}

/** Cameras and microphones as [{id, label}] (labels are empty until a permission was granted). */
export async function listDevices() {
  if (typeof navigator === "undefined" || !navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) {
    return { cameras: [], microphones: [] };
  }
  const devices = await navigator.mediaDevices.enumerateDevices();
  const pick = (kind) =>
    devices
      .filter((d) => d.kind === kind && d.deviceId && d.deviceId !== "default" && d.deviceId !== "communications")
      .map((d, i) => ({ id: d.deviceId, label: d.label || `${kind === "videoinput" ? "camera" : "microphone"} ${i + 1}` }));
  return { cameras: pick("videoinput"), microphones: pick("audioinput") };
}
