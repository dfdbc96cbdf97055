// Camera and microphone.  A missing device or a denied permission is not fatal: the
// caller gets a readable reason and the call goes on receive-only.

/**
 * What to open: which kinds to send, and the chosen device ids ("" or absent: the default).
 * @typedef {{audio: boolean, video: boolean, camera?: string, microphone?: string}} MediaWish
 */

/** @typedef {{stream: MediaStream | null, error: string}} OpenedMedia */

/** @param {unknown} err */
function errorName(err) {
  return err && typeof err === "object" && "name" in err ? String(err.name) : "";
}

/** @returns {MediaDevices | null} */
function mediaDevices() {
  return typeof navigator !== "undefined" && navigator.mediaDevices ? navigator.mediaDevices : null;
}

/**
 * Turn a getUserMedia failure into a sentence a user can act on.
 * @param {unknown} err
 */
export function describeMediaError(err) {
  const name = errorName(err);
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return "camera/microphone permission denied — receiving only (allow the camera in the browser to send video)";
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
    return "no camera or microphone found — receiving only";
  }
  if (name === "NotReadableError" || name === "TrackStartError") {
    return "the camera is in use by another application — receiving only";
  }
  if (!mediaDevices()) {
    return "this page cannot use the camera (it needs https or localhost) — receiving only";
  }
  const message = err instanceof Error ? err.message : String(err);
  return `cannot open the camera (${name || "error"}: ${message}) — receiving only`;
}

/**
 * Open the devices the user wants to send.
 * @param {MediaWish} wish
 * @returns {Promise<OpenedMedia>} never rejects
 */
export async function openMedia({ audio, video, camera, microphone }) {
  if (!audio && !video) return { stream: null, error: "" };
  const devices = mediaDevices();
  if (!devices || !devices.getUserMedia) return { stream: null, error: describeMediaError(null) };
  try {
    const stream = await devices.getUserMedia({
      audio: audio ? deviceConstraint(microphone) : false,
      video: video ? deviceConstraint(camera) : false,
    });
    return { stream, error: "" };
  } catch (err) {
    // With both asked for, a missing microphone alone should not cost the video.
    const name = errorName(err);
    if (audio && video && (name === "NotFoundError" || name === "NotReadableError")) {
      try {
        const stream = await devices.getUserMedia({ video: deviceConstraint(camera) });
        return { stream, error: "no usable microphone — sending video only" };
      } catch {
        // fall through to the original reason
      }
    }
    return { stream: null, error: describeMediaError(err) };
  }
}

/** @param {MediaStream | null | undefined} stream */
export function stopStream(stream) {
  if (!stream) return;
  for (const track of stream.getTracks()) track.stop();
}

/**
 * A chosen device id, or any device when none was chosen. `ideal`, not `exact`: a camera
 * unplugged since it was chosen should fall back to another one rather than fail the call.
 * @param {string} [deviceId]
 * @returns {MediaTrackConstraints | true}
 */
export function deviceConstraint(deviceId) {
  return deviceId ? { deviceId: { ideal: deviceId } } : true;
}

/**
 * Open one track of `kind` from a given device (`exact`: the user just picked it).
 * @param {"audio" | "video"} kind
 * @param {string} [deviceId]
 * @returns {Promise<MediaStreamTrack>}
 */
export async function openTrack(kind, deviceId) {
  const devices = mediaDevices();
  if (!devices) throw new Error(describeMediaError(null));
  const constraint = deviceId ? { deviceId: { exact: deviceId } } : true;
  const stream = await devices.getUserMedia({ [kind]: constraint });
  return stream.getTracks()[0];
}

/** @typedef {{id: string, label: string}} Device */
/** @typedef {{cameras: Device[], microphones: Device[]}} DeviceLists */

/**
 * Cameras and microphones (labels are empty until a permission was granted).
 * @returns {Promise<DeviceLists>}
 */
export async function listDevices() {
  const devices = mediaDevices();
  if (!devices || !devices.enumerateDevices) return { cameras: [], microphones: [] };
  const all = await devices.enumerateDevices();
  /** @param {MediaDeviceKind} kind */
  const pick = (kind) =>
    all
      .filter((d) => d.kind === kind && d.deviceId && d.deviceId !== "default" && d.deviceId !== "communications")
      .map((d, i) => ({ id: d.deviceId, label: d.label || `${kind === "videoinput" ? "camera" : "microphone"} ${i + 1}` }));
  return { cameras: pick("videoinput"), microphones: pick("audioinput") };
}
