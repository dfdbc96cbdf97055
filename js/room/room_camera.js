// The room's camera and microphone: opened once per room and shared by every mesh link (or
// the one SFU publisher).  When the phone's preview is open (CallMedia.setPreview) the room
// sends a clone of it, so nothing opens twice and turning the preview off cannot cut the
// room's tracks; otherwise it opens its own with the phone's send settings and chosen
// devices.  Either way the room owns what it sends and stops it when it leaves.
//
// A mesh sends one copy per member: the video is kept small (640x360, 24 fps) so four
// members do not saturate an uplink.

import { openMedia, openTrack, stopStream } from "../media/media.js";

/** @typedef {import("../call/call_media.js").CallMedia} CallMedia */
/** @typedef {import("../media/media.js").OpenedMedia} OpenedMedia */
/** @typedef {"audio" | "video"} Kind */

/** @type {MediaTrackConstraints} */
export const ROOM_VIDEO = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };

/**
 * The room's video size from the widget's `room_video` trait ({width, height, fps}; a
 * missing or bad value keeps the default's).
 * @param {unknown} value
 * @returns {MediaTrackConstraints}
 */
export function roomVideo(value) {
  const v = value && typeof value === "object" ? /** @type {Record<string, unknown>} */ (value) : {};
  /** @param {unknown} n @param {number} max */
  const ok = (n, max) => typeof n === "number" && Number.isInteger(n) && n > 0 && n <= max;
  return {
    width: { ideal: ok(v.width, 3840) ? /** @type {number} */ (v.width) : 640 },
    height: { ideal: ok(v.height, 2160) ? /** @type {number} */ (v.height) : 360 },
    frameRate: { ideal: ok(v.fps, 60) ? /** @type {number} */ (v.fps) : 24 },
  };
}

/**
 * Keep a video track small (a browser without applyConstraints sends what it opened).
 * @param {MediaStream | null} stream
 * @param {MediaTrackConstraints} video
 */
function shrink(stream, video) {
  for (const track of stream ? stream.getVideoTracks() : []) {
    if (typeof track.applyConstraints === "function") track.applyConstraints(video).catch(() => {});
  }
}

/** @param {MediaStream | null | undefined} stream */
const live = (stream) => !!stream && stream.getTracks().length > 0 && stream.getTracks().every((t) => t.readyState === "live");

export class RoomCamera {
  /** @param {CallMedia} media  the phone's: its send settings, devices and preview */
  constructor(media) {
    this.media = media;
    /** @type {MediaStream | null} */
    this.stream = null;
    /** @type {Promise<OpenedMedia | null> | null} */
    this.opening = null;
    this.epoch = 0; // bumps on close(): what opens after is stopped, not kept
    this.told = false; // why something could not open was said (once per opening)
    this.settled = false; // open() has finished: `stream` is what the room sends (null: nothing)
    /** @type {MediaTrackConstraints} the size and rate the room sends (the widget's room_video) */
    this.video = ROOM_VIDEO;
  }

  /** The widget's room_video changed: applies now and to what opens next. @param {unknown} value */
  setVideo(value) {
    this.video = roomVideo(value);
    shrink(this.stream, this.video);
  }

  /** The kinds the phone sends (its `audio` / `video`): what the room opens. */
  wanted() {
    return { audio: !!this.media.wish.audio, video: !!this.media.wish.video };
  }

  /**
   * Open (once): resolves with the stream and why something could not open, or null if the
   * room was left meanwhile.
   * @returns {Promise<OpenedMedia | null>}
   */
  open() {
    if (this.opening) return this.opening;
    const epoch = this.epoch;
    this.opening = this._open().then((opened) => {
      if (epoch !== this.epoch) {
        stopStream(opened.stream);
        return null;
      }
      this.stream = opened.stream;
      this.settled = true;
      this.setSend(this.wanted());
      shrink(this.stream, this.video);
      return opened;
    });
    return this.opening;
  }

  /**
   * Send `stream` (a 1:1 call's camera, handed over as the call became this room) instead of
   * opening one: the camera light does not blink.  The room owns it from now on.
   * @param {MediaStream} stream
   */
  adopt(stream) {
    this.close();
    this.opening = Promise.resolve({ stream, error: "" });
    this.stream = stream;
    this.settled = true;
    this.told = true; // what could not open was said in the call
    this.setSend(this.wanted());
    shrink(this.stream, this.video);
  }

  /** @returns {Promise<OpenedMedia>} */
  async _open() {
    const media = this.media;
    const wish = this.wanted();
    if (media.previewOn) {
      const previewed = media.previewed || (media.preview ? await media.preview.catch(() => null) : null);
      const stream = previewed && previewed.stream;
      const kinds = new Set(stream ? stream.getTracks().map((t) => t.kind) : []);
      const covers = (!wish.audio || kinds.has("audio")) && (!wish.video || kinds.has("video"));
      if (stream && live(stream) && covers && typeof stream.clone === "function") {
        return { stream: stream.clone(), error: "" };
      }
    }
    return openMedia({ ...wish, ...media.devices });
  }

  /**
   * Send (or mute) microphone and camera: the tracks' `enabled`, nothing renegotiates.
   * Returns the kinds asked for that have no track (the room opened without them).
   * @param {{audio: boolean, video: boolean}} send
   * @returns {Kind[]}
   */
  setSend({ audio, video }) {
    const stream = this.stream;
    if (!stream) return [];
    for (const track of stream.getAudioTracks()) track.enabled = !!audio;
    for (const track of stream.getVideoTracks()) track.enabled = !!video;
    /** @type {Kind[]} */
    const missing = [];
    if (audio && !stream.getAudioTracks().some((t) => t.readyState === "live")) missing.push("audio");
    if (video && !stream.getVideoTracks().some((t) => t.readyState === "live")) missing.push("video");
    return missing;
  }

  /** Open one more track of `kind` (with the phone's chosen device). @param {Kind} kind */
  async openKind(kind) {
    const devices = this.media.devices;
    const track = await openTrack(kind, kind === "video" ? devices.camera : devices.microphone);
    if (kind === "video") shrink(new MediaStream([track]), this.video);
    return track;
  }

  /**
   * Put `track` in the room's stream instead of the current track of its kind (stopped).
   * A new stream object, so views re-attach.
   * @param {MediaStreamTrack} track
   */
  swap(track) {
    const old = this.stream ? this.stream.getTracks().filter((t) => t.kind === track.kind) : [];
    const others = this.stream ? this.stream.getTracks().filter((t) => t.kind !== track.kind) : [];
    this.stream = new MediaStream([...others, track]);
    for (const t of old) t.stop();
    return this.stream;
  }

  /** Stop what the room opened (and what is still opening). */
  close() {
    this.epoch += 1;
    stopStream(this.stream);
    this.stream = null;
    this.opening = null;
    this.told = false;
    this.settled = false;
  }
}
