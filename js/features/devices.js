// Devices in a call: the browser's camera and microphone lists, live device switches and
// screen sharing (RTCRtpSender.replaceTrack, no new negotiation), and a kind the call began
// without turned on later (one renegotiation).  Talks to the call through phone.media, or
// in a room to every link through phone.room (`_target`).

import { State } from "../names.js";
import { listDevices, openTrack } from "../media/media.js";

/** @typedef {import("../types.js").AnyModel} AnyModel */
/** @typedef {import("../call/phone.js").Phone} Phone */
/** @typedef {import("../media/media.js").DeviceLists} DeviceLists */

/**
 * @typedef {object} DeviceHooks
 * @property {() => void} changed  something shown changed
 * @property {(err: unknown) => void} failed  a switch went wrong
 * @property {() => void} sharing  screen sharing started or stopped (tell the peer)
 */

export class Devices {
  /**
   * @param {AnyModel} model  reads audio, video, camera, microphone; writes screen_share
   * @param {Phone} phone
   * @param {DeviceHooks} hooks
   */
  constructor(model, phone, hooks) {
    this.model = model;
    this.phone = phone;
    this.hooks = hooks;
    /** @type {DeviceLists} */
    this.lists = { cameras: [], microphones: [] };
    /** @type {MediaStreamTrack | null} */
    this.screenTrack = null;
    /** @type {Promise<void>} device and screen switches, one after another */
    this.switching = Promise.resolve();
    this.destroyed = false;
    this.onDeviceChange = () => this.refresh();
    if (typeof navigator !== "undefined" && navigator.mediaDevices) {
      navigator.mediaDevices.addEventListener("devicechange", this.onDeviceChange);
    }
  }

  destroy() {
    this.destroyed = true; // device lists still on their way must not write to a closed comm
    if (typeof navigator !== "undefined" && navigator.mediaDevices) {
      navigator.mediaDevices.removeEventListener("devicechange", this.onDeviceChange);
    }
    if (this.screenTrack) this.screenTrack.stop();
  }

  get connected() {
    return !!this.phone.room.name || (!!this.phone.call && this.phone.state === State.CONNECTED);
  }

  /**
   * Where the local tracks go: every link of the room while in one, else the call.
   * @returns {{live: boolean, localTrack: (kind: string) => MediaStreamTrack | null, replace: (old: MediaStreamTrack | null, track: MediaStreamTrack) => Promise<void>}}
   */
  _target() {
    const room = this.phone.room;
    if (room.name) {
      return {
        live: true,
        localTrack: (kind) => (room.localStream ? room.localStream.getTracks().find((t) => t.kind === kind) || null : null),
        replace: (_old, track) => room.replaceTrack(track),
      };
    }
    const media = this.phone.media;
    return {
      live: !!this.phone.call,
      localTrack: (kind) => media.localTrack(/** @type {"audio" | "video"} */ (kind)),
      replace: (old, track) => media.replaceLocalTrack(old, track),
    };
  }

  /** Run switches one after another; a failure is reported, the queue goes on. @param {() => Promise<void>} fn */
  queue(fn) {
    this.switching = this.switching.then(fn).catch((err) => {
      console.warn("nbcall media switch", err);
      this.hooks.failed(err);
    });
    return this.switching;
  }

  async refresh() {
    try {
      const lists = await listDevices();
      if (this.destroyed) return;
      this.lists = lists;
      this.hooks.changed();
    } catch (err) {
      console.warn("nbcall devices", err);
    }
  }

  /** The chosen devices changed (traits camera / microphone): use them now and for the next call. @param {"audio" | "video"} kind */
  chosen(kind) {
    const camera = this.model.get("camera");
    const microphone = this.model.get("microphone");
    this.phone.media.setDevices({ camera, microphone });
    this.queue(() => this._switch(kind, kind === "video" ? camera : microphone));
  }

  /** @param {"audio" | "video"} kind @param {string} id */
  async _switch(kind, id) {
    const target = this._target();
    if (!target.live) return; // used when the next call opens its media
    if (kind === "video" && this.screenTrack) return; // applies when sharing stops
    const old = target.localTrack(kind);
    if (!old) return;
    const track = await openTrack(kind, id);
    track.enabled = old.enabled;
    await target.replace(old, track);
    this.refresh();
  }

  /** A toggle switched on for a kind the call started without: open that device now. */
  ensureTracks() {
    if (!this.connected) return;
    for (const kind of /** @type {const} */ (["audio", "video"])) {
      const media = this.phone.media;
      if (!this.model.get(kind) || media.localTrack(kind) || (kind === "video" && this.screenTrack)) continue;
      const id = kind === "video" ? this.model.get("camera") : this.model.get("microphone");
      this.queue(async () => {
        if (media.localTrack(kind) || !this.phone.call) return;
        const track = await openTrack(kind, id);
        await media.replaceLocalTrack(null, track);
      });
    }
  }

  /** The screen_share trait changed. */
  shareWanted() {
    const want = !!this.model.get("screen_share");
    if (want !== !!this.screenTrack) this.queue(() => (want ? this._startShare() : this._stopShare()));
  }

  /** @param {boolean} value */
  _setShare(value) {
    if (this.model.get("screen_share") === value) return;
    this.model.set("screen_share", value);
    this.model.save_changes();
  }

  async _startShare() {
    if (this.screenTrack) return;
    if (!this.connected) {
      this._setShare(false);
      throw new Error("screen sharing needs a connected call");
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      this._setShare(false);
      throw err;
    }
    const track = stream.getVideoTracks()[0];
    track.addEventListener("ended", () => {
      // The browser's own "Stop sharing" button: go back to the camera.
      if (this.screenTrack === track) this.queue(() => this._stopShare());
    });
    const target = this._target();
    await target.replace(target.localTrack("video"), track);
    this.screenTrack = track;
    this._setShare(true);
    this.hooks.sharing();
  }

  async _stopShare() {
    const screen = this.screenTrack;
    if (!screen) return;
    this.screenTrack = null;
    this._setShare(false);
    const target = this._target();
    if (target.live && this.model.get("video")) {
      const camera = await openTrack("video", this.model.get("camera"));
      await target.replace(screen, camera);
    } else {
      screen.stop();
    }
    this.hooks.sharing();
  }

  /** The call ended: sharing stops with it. */
  callEnded() {
    if (this.screenTrack) {
      this.screenTrack.stop();
      this.screenTrack = null;
    }
    this._setShare(false);
  }
}
