// In-call features of one widget model: live mute/camera toggles told to the peer, chat
// over the call's data channel (chat.js), snapshots and recordings sent to Python, the
// call's duration, and (devices.js) device switching and screen sharing.
//
// One InCall per model (like the Phone).  It follows the call through the phone's events
// (callstart, connected, callend), handles the kernel's chat / snapshot / recording_*
// commands through the dispatcher, and mirrors its lasting state into traits.  Views render
// it with ui/features_view.js and hear of changes through its "change" event.

import { TO_PAGE_KIND, TO_KERNEL_KIND, SNAPSHOT_SOURCES, RECORDING_SOURCES, DATA_CHANNEL_KIND, PageError } from "../messages.js";
import { fail } from "../failure.js";
import { State, pick } from "../names.js";
import { Emitter } from "../emitter.js";
import { listen } from "../listen.js";
import { grabFrame } from "../media/snapshot.js";
import { Recording } from "../media/recorder.js";
import { recordRoom, GRID } from "./room_recording.js";
import { Devices } from "./devices.js";
import { Chat } from "./chat.js";

/** @typedef {import("../types.js").AnyModel} AnyModel */
/** @typedef {import("../dispatch.js").Dispatcher} Dispatcher */
/** @typedef {import("../call/phone.js").Phone} Phone */
/** @typedef {import("../call/peer_call.js").PeerCall} PeerCall */
/** @typedef {import("./chat.js").ChatLine} ChatMessage */
/** @typedef {import("../failure.js").Outcome} Outcome */

export { MAX_CHAT_CHARS } from "../messages.js";
const TICK_MS = 1000; // the duration shown and synced
const REMOTE_MEDIA_MS = 100; // the peer's media state is shown at most this often
const REMOTE = pick(SNAPSHOT_SOURCES, "remote");
const LOCAL = pick(SNAPSHOT_SOURCES, "local");
const BOTH = pick(RECORDING_SOURCES, "both");

// What travels on the data channel between the two pages: DATA_CHANNEL in messages.js.
export const Channel = DATA_CHANNEL_KIND;

/** @param {unknown} err */
const words = (err) => (err instanceof Error ? err.message : String(err));

/**
 * Whether the other side sends video on this connection: false once it answered without
 * sending any (a seed page answers receive-only until its own user presses its call button).
 * True while unknown (no connection, nothing negotiated yet).
 * @param {{getTransceivers?: () => any[]} | null} pc
 */
export function remoteSendsVideo(pc) {
  if (!pc || typeof pc.getTransceivers !== "function") return true;
  const video = pc.getTransceivers().filter((t) => t && t.receiver && t.receiver.track && t.receiver.track.kind === "video");
  const negotiated = video.filter((t) => typeof t.currentDirection === "string");
  if (!negotiated.length) return true;
  return negotiated.some((t) => t.currentDirection === "sendrecv" || t.currentDirection === "recvonly");
}

export class InCall {
  /**
   * @param {AnyModel} model
   * @param {Phone} phone
   * @param {Dispatcher} dispatcher
   * @param {{save: (urgent?: boolean) => void}} [sync]  when saved changes reach the kernel (model_sync.js)
   */
  constructor(model, phone, dispatcher, sync = { save: () => model.save_changes() }) {
    this.model = model;
    this.sync = sync;
    this.phone = phone;
    this.dispatcher = dispatcher;
    /** @type {RTCDataChannel | null} */
    this.channel = null;
    /** @type {() => void} removes this call's channel listeners */
    this.offChannel = () => {};
    this.chat = new Chat({
      user: () => phone.user,
      peer: () => phone.peer,
      tellKernel: (kind, fields) => dispatcher.send(kind, fields),
    });
    this.remote = { audio: true, video: true, screen: false }; // what the peer says it sends
    /** @type {Recording | null} */
    this.recording = null;
    this.connectedAt = 0;
    this.endedAt = 0;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} the peer's media state, shown soon */
    this.remoteTimer = undefined;
    this.remoteShownAt = -Infinity;
    /** @type {Emitter<{change: []}>} */
    this.events = new Emitter();
    this.devices = new Devices(model, phone, {
      changed: () => this._changed(),
      failed: (err) => phone.setError(`${err instanceof Error ? err.name : "Error"}: ${words(err)}`),
      sharing: () => {
        this._sendMediaState();
        this._changed();
      },
    });
    phone.media.setDevices({ camera: model.get("camera"), microphone: model.get("microphone") });

    const onToggle = () => {
      this.devices.ensureTracks();
      this._sendMediaState();
      this._changed();
    };
    const offs = [
      phone.on("callstart", (call) => this._callStart(call)),
      phone.on("connected", () => this._connected()),
      phone.on("callend", () => this._callEnd()),
      phone.on("change", () => this._sync()),
      phone.room.events.on("chat", ({ from, text }) => this.chat.receiveFromRoom(from, text)),
      dispatcher.handle({
        [TO_PAGE_KIND.CHAT]: (msg) => this._fail("chat", this.sendChat(msg.text)),
        [TO_PAGE_KIND.SNAPSHOT]: (msg) => this.snapshot(msg.which, msg.id),
        [TO_PAGE_KIND.RECORDING_START]: (msg) => this._fail("start_recording", this.startRecording(msg.which)),
        [TO_PAGE_KIND.RECORDING_STOP]: () => this._fail("stop_recording", this.stopRecording()),
        // A queued share_screen()/stop_sharing(): what setting the trait does, once connected.
        [TO_PAGE_KIND.SCREEN]: (msg) => {
          model.set("screen_share", !!msg.on);
          model.save_changes();
          this.devices.shareWanted();
        },
      }),
      listen(model, [
        ["change:audio", onToggle],
        ["change:video", onToggle],
        ["change:camera", () => this.devices.chosen("video")],
        ["change:microphone", () => this.devices.chosen("audio")],
        ["change:screen_share", () => this.devices.shareWanted()],
      ]),
    ];
    this.unlisten = () => offs.forEach((off) => off());
    this.devices.refresh();
  }

  destroy() {
    this.unlisten();
    this.devices.destroy();
    clearInterval(this.timer);
    clearTimeout(this.remoteTimer);
    this.offChannel();
    this.chat.destroy();
    if (this.recording) this.recording.stop();
    this.events.clear();
  }

  /** False while the other side sends no video on the connection (e.g. a seed page answered receive-only). */
  get remoteSendsVideo() {
    return this.phone.state !== State.CONNECTED || remoteSendsVideo(this.phone.pc);
  }

  /** The chat history, newest last (bounded: chat.js). */
  get messages() {
    return this.chat.lines;
  }

  /** @param {() => void} fn */
  subscribe(fn) {
    return this.events.on("change", fn);
  }

  _changed() {
    this._sync();
    this.events.emit("change");
  }

  get duration() {
    if (!this.connectedAt) return 0;
    return ((this.endedAt || Date.now()) - this.connectedAt) / 1000;
  }

  /** Mirror lasting state into traitlets (only what changed; chat lines travel one by one: chat.js). */
  _sync() {
    const next = {
      remote_audio: this.remote.audio,
      remote_video: this.remote.video && this.remoteSendsVideo,
      cameras: this.devices.lists.cameras,
      microphones: this.devices.lists.microphones,
      connected_at: this.connectedAt / 1000,
      duration: Math.round(this.duration * 10) / 10,
    };
    let dirty = false;
    for (const [name, value] of Object.entries(next)) {
      if (JSON.stringify(this.model.get(name)) !== JSON.stringify(value)) {
        this.model.set(name, value);
        dirty = true;
      }
    }
    if (dirty) this.sync.save();
  }

  /**
   * An action that could not be done: say why in the widget and to the kernel.
   * @param {string} action
   * @param {Outcome} outcome  "" when it worked
   * @returns {string} the words, "" when it worked
   */
  _fail(action, outcome) {
    if (!outcome) return "";
    const { code, message } = outcome;
    this.phone.setError(`${action}: ${message}`);
    this.dispatcher.send(TO_KERNEL_KIND.ACTION_FAILED, { action, code, message });
    return message;
  }

  // -- call life (phone events) ------------------------------------------------------------

  /** @param {PeerCall} call */
  _callStart(call) {
    this.remote = { audio: true, video: true, screen: false };
    this.connectedAt = 0;
    this.endedAt = 0;
    this.offChannel();
    this.channel = call.channel;
    this.chat.callStart();
    const channel = this.channel;
    if (channel) {
      // Listeners, not on* properties: other modules listen to this channel too (heartbeat).
      const onOpen = () => {
        this._sendMediaState();
        this._changed();
      };
      /** @param {MessageEvent} event */
      const onMessage = (event) => this._onChannel(event.data);
      const onClose = () => this._changed();
      channel.addEventListener("open", onOpen);
      channel.addEventListener("message", onMessage);
      channel.addEventListener("close", onClose);
      this.offChannel = () => {
        channel.removeEventListener("open", onOpen);
        channel.removeEventListener("message", onMessage);
        channel.removeEventListener("close", onClose);
        this.offChannel = () => {};
      };
    }
    this._changed();
  }

  _connected() {
    this.connectedAt = this.phone.connectedAt || Date.now();
    clearInterval(this.timer);
    this.timer = setInterval(() => this._changed(), TICK_MS); // the duration ticks
    this.devices.refresh(); // labels appear once the camera permission is granted
    this._changed();
  }

  _callEnd() {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.connectedAt) this.endedAt = Date.now();
    if (this.recording) this.recording.stop();
    this.devices.callEnded();
    this.offChannel();
    this.channel = null;
    this.chat.callEnd();
    this._changed();
  }

  // -- data channel: chat and media state ----------------------------------------------------

  get channelOpen() {
    return !!this.channel && this.channel.readyState === "open";
  }

  _sendMediaState() {
    if (!this.channel || !this.channelOpen) return;
    const screen = !!this.devices.screenTrack;
    const out = { kind: Channel.MEDIA, audio: !!this.model.get("audio"), video: !!this.model.get("video") || screen, screen };
    this.channel.send(JSON.stringify(out));
  }

  /**
   * Send a chat line to the peer (rate limited); returns "" or why not.
   * @param {string} text
   * @returns {Outcome}
   */
  sendChat(text) {
    const room = this.phone.room;
    if (room.name) return this.chat.sendToRoom((line) => room.sendChat(line), text);
    return this.chat.send(this.channel, text);
  }

  /**
   * One message from the peer: chat (chat.js checks, limits and keeps it), its media
   * state; a heartbeat or a kind this page does not know is left to others.
   * @param {unknown} data
   */
  _onChannel(data) {
    const msg = this.chat.receive(data);
    if (!msg || msg.kind !== DATA_CHANNEL_KIND.MEDIA) return;
    const next = { audio: !!msg.audio, video: !!msg.video, screen: !!msg.screen };
    const { audio, video, screen } = this.remote;
    if (next.audio === audio && next.video === video && next.screen === screen) return;
    this.remote = next;
    this._remoteChanged();
  }

  /** Show the peer's media state, at most every REMOTE_MEDIA_MS (a peer toggling in a loop cannot busy this page). */
  _remoteChanged() {
    if (this.remoteTimer !== undefined) return; // shown when it fires
    const wait = this.remoteShownAt + REMOTE_MEDIA_MS - performance.now();
    const show = () => {
      this.remoteTimer = undefined;
      this.remoteShownAt = performance.now();
      this._changed();
    };
    if (wait <= 0) show();
    else this.remoteTimer = setTimeout(show, wait);
  }

  // -- snapshots and recordings -------------------------------------------------------------

  /**
   * Grab a frame of the remote or local video and send it to the kernel.
   * @param {string} which  remote | local
   * @param {string | null} [id]  the kernel's request id (none for the widget's button)
   */
  async snapshot(which, id = null) {
    const reply = { id, which };
    try {
      const frame = await grabFrame(this._source(which));
      const size = { width: frame.width, height: frame.height };
      this.dispatcher.send(TO_KERNEL_KIND.SNAPSHOT_TAKEN, { ...reply, ok: true, ...size }, [frame.png, frame.rgba]);
    } catch (err) {
      this.dispatcher.send(TO_KERNEL_KIND.SNAPSHOT_TAKEN, { ...reply, ok: false, error: words(err) });
    }
  }

  /**
   * The stream a snapshot grabs: remote, local, or in a room a member by name.
   * @param {string} which
   * @returns {MediaStream | null}
   */
  _source(which) {
    const room = this.phone.room;
    if (which === LOCAL) return room.name ? room.localStream : this.phone.localStream;
    if (which === REMOTE && !room.name) return this.phone.remoteStream;
    // In a room, "remote" is the first member in it (a name picks one).
    const member = room.name
      ? room.participants().find((p) => (which === REMOTE ? p.state !== "ringing" : p.name === which))
      : undefined;
    if (!member) {
      const members = room.name ? " or a member of the room" : "";
      throw new Error(`which must be ${SNAPSHOT_SOURCES.join(" or ")}${members}, not ${which}`);
    }
    return room.stream(member.key) || null;
  }

  /** Returns "" or why not (the recording starts asynchronously). @param {string} which @returns {Outcome} */
  startRecording(which) {
    if (this.recording) return fail(PageError.ALREADY_RECORDING, "already recording");
    const room = this.phone.room.name; // in a room: the grid, a member or ours (room_recording.js)
    if (!room && this.phone.state !== State.CONNECTED) return fail(PageError.NOT_CONNECTED, "recording needs a connected call or a room");
    const recording = new Recording({
      send: (kind, fields, buffers) => this.dispatcher.send(kind, fields, buffers),
      onEnd: () => {
        if (this.recording === recording) this.recording = null;
        this._changed();
      },
    });
    this.recording = recording;
    this._changed();
    const streams = { remote: this.phone.remoteStream, local: this.phone.localStream };
    const started = room ? recordRoom(recording, this.phone, which) : recording.start(which, streams);
    started.catch((err) => {
      if (this.recording === recording) this.recording = null;
      this._fail("start_recording", fail(PageError.MEDIA_FAILED, words(err)));
      this.dispatcher.send(TO_KERNEL_KIND.RECORDING_FAILED, { id: recording.id, message: words(err) });
      this._changed();
    });
    return "";
  }

  /** Returns "" or why not. @returns {Outcome} */
  stopRecording() {
    if (!this.recording) return fail(PageError.NOT_RECORDING, "not recording");
    this.recording.stop();
    return "";
  }

  /** The widget's Record button: records both sides (in a room: the grid), or stops. */
  toggleRecording() {
    if (this.recording) this.stopRecording();
    else {
      const error = this.startRecording(this.phone.room.name ? GRID : BOTH);
      if (error) this.phone.setError(`record: ${error.message}`);
    }
  }
}
