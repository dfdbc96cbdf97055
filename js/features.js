// In-call features of one widget model: live mute/camera toggles told to the peer, device
// selection and screen sharing (RTCRtpSender.replaceTrack, no new negotiation), chat over the
// call's data channel, snapshots and recordings sent to Python, call duration.
//
// One Features object per model (like the Phone); it hooks into the phone's call life
// (phone.hooks) and talks to Python with custom messages of its own kinds.  Views render
// its state with renderFeatures().

import { listDevices, openTrack } from "./media.js";
import { grabFrame } from "./snapshot.js";
import { Recording } from "./recorder.js";
import { QUALITY_WORDS } from "./stats.js";
import { listen } from "./listen.js";

const MAX_MESSAGES = 500; // the chat history kept in the `messages` trait
const MAX_CHAT_CHARS = 4000;

export class Features {
  constructor(model, phone) {
    this.model = model;
    this.phone = phone;
    this.channel = null;
    this.messages = [];
    this.remote = { audio: true, video: true, screen: false };
    this.screenTrack = null;
    this.recording = null;
    this.connectedAt = 0;
    this.endedAt = 0;
    this.timer = null;
    this.devices = { cameras: [], microphones: [] };
    this.listeners = new Set();
    this.switching = Promise.resolve(); // device and screen switches, one after another
    phone.features = this;
    phone.devices = { camera: model.get("camera"), microphone: model.get("microphone") };

    this.hook = {
      callStart: (call) => this._callStart(call),
      connected: () => this._connected(),
      callEnd: () => this._callEnd(),
    };
    phone.hooks.add(this.hook);

    this.onCustom = (msg) => this._onPython(msg);
    this.onToggle = () => {
      this._ensureTracks();
      this._sendMediaState();
      this._changed();
    };
    this.onDevice = (kind) => () => {
      phone.devices = { camera: this.model.get("camera"), microphone: this.model.get("microphone") };
      const id = kind === "video" ? phone.devices.camera : phone.devices.microphone;
      this._queue(() => this._switchDevice(kind, id));
    };
    this.onCamera = this.onDevice("video");
    this.onMicrophone = this.onDevice("audio");
    this.onScreen = () => {
      const want = !!this.model.get("screen_share");
      if (want !== !!this.screenTrack) this._queue(() => (want ? this._startShare() : this._stopShare()));
    };
    this.onDeviceChange = () => this.refreshDevices();
    this.unlisten = listen(model, [
      ["msg:custom", this.onCustom],
      ["change:audio", this.onToggle],
      ["change:video", this.onToggle],
      ["change:camera", this.onCamera],
      ["change:microphone", this.onMicrophone],
      ["change:screen_share", this.onScreen],
    ]);
    if (navigator.mediaDevices) navigator.mediaDevices.addEventListener("devicechange", this.onDeviceChange);
    this.unsubscribe = phone.subscribe(() => this._sync());
    this.refreshDevices();
  }

  destroy() {
    this.destroyed = true; // device lists still on their way must not write to a closed comm
    this.unlisten();
    if (navigator.mediaDevices) navigator.mediaDevices.removeEventListener("devicechange", this.onDeviceChange);
    this.unsubscribe();
    this.phone.hooks.delete(this.hook);
    clearInterval(this.timer);
    if (this.recording) this.recording.stop();
    if (this.screenTrack) this.screenTrack.stop();
    this.listeners.clear();
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  _changed() {
    this._sync();
    for (const fn of this.listeners) {
      try {
        fn(this);
      } catch (err) {
        console.error("nbcall features listener", err);
      }
    }
  }

  get duration() {
    if (!this.connectedAt) return 0;
    return ((this.endedAt || Date.now()) - this.connectedAt) / 1000;
  }

  /** Mirror lasting state into traitlets (only what changed). */
  _sync() {
    const next = {
      messages: this.messages,
      remote_audio: this.remote.audio,
      remote_video: this.remote.video,
      cameras: this.devices.cameras,
      microphones: this.devices.microphones,
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
    if (dirty) this.model.save_changes();
  }

  _set(name, value) {
    if (this.model.get(name) === value) return;
    this.model.set(name, value);
    this.model.save_changes();
  }

  _error(text) {
    this.phone.error = text;
    this.phone._changed();
  }

  _queue(fn) {
    this.switching = this.switching.then(fn).catch((err) => {
      console.warn("nbcall media switch", err);
      this._error(`${err.name || "Error"}: ${err.message || err}`);
    });
    return this.switching;
  }

  // -- call life (phone hooks) --------------------------------------------------------------

  _callStart(call) {
    this.remote = { audio: true, video: true, screen: false };
    this.connectedAt = 0;
    this.endedAt = 0;
    this.channel = call.channel;
    if (this.channel) {
      this.channel.onopen = () => {
        this._sendMediaState();
        this._changed();
      };
      this.channel.onmessage = (event) => this._onChannel(event.data);
      this.channel.onclose = () => this._changed();
    }
    this._changed();
  }

  _connected() {
    this.connectedAt = this.phone.connectedAt || Date.now();
    clearInterval(this.timer);
    this.timer = setInterval(() => this._changed(), 1000); // the duration ticks
    this.refreshDevices(); // labels appear once the camera permission is granted
    this._changed();
  }

  _callEnd() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.connectedAt) this.endedAt = Date.now();
    if (this.recording) this.recording.stop();
    if (this.screenTrack) {
      this.screenTrack.stop();
      this.screenTrack = null;
    }
    if (this.model.get("screen_share")) this._set("screen_share", false);
    this.channel = null;
    this._changed();
  }

  // -- messages from Python ----------------------------------------------------------------

  _onPython(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.kind === "chat") {
      const error = this.sendChat(String(msg.text));
      if (error) this._reply("chat", error);
    } else if (msg.kind === "snapshot") {
      this.snapshot(msg.which || "remote", msg.id);
    } else if (msg.kind === "record_start") {
      const error = this.startRecording(msg.which || "remote");
      if (error) this._reply("start_recording", error);
    } else if (msg.kind === "record_stop") {
      if (this.recording) this.recording.stop();
      else this._reply("stop_recording", "not recording");
    }
  }

  _reply(action, message) {
    this._error(`${action}: ${message}`);
    this.model.send({ kind: "error", action, message });
  }

  // -- data channel: chat and media state ----------------------------------------------------

  get channelOpen() {
    return !!this.channel && this.channel.readyState === "open";
  }

  _sendMediaState() {
    if (!this.channelOpen) return;
    const video = !!this.model.get("video") || !!this.screenTrack;
    const out = { kind: "media", audio: !!this.model.get("audio"), video, screen: !!this.screenTrack };
    this.channel.send(JSON.stringify(out));
  }

  /** Send a chat line to the peer; returns an error sentence or "". */
  sendChat(text) {
    if (!text) return "empty message";
    if (text.length > MAX_CHAT_CHARS) return `message longer than ${MAX_CHAT_CHARS} characters`;
    if (!this.channelOpen) return "chat needs a connected call";
    const time = Date.now() / 1000;
    this.channel.send(JSON.stringify({ kind: "chat", text, time }));
    this._addMessage({ from: this.phone.user, text, time });
    return "";
  }

  _addMessage(message) {
    this.messages = [...this.messages, message].slice(-MAX_MESSAGES);
    this._changed();
  }

  _onChannel(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return; // not ours
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.kind === "chat" && typeof msg.text === "string") {
      const time = typeof msg.time === "number" ? msg.time : Date.now() / 1000;
      this._addMessage({ from: this.phone.peer, text: msg.text.slice(0, MAX_CHAT_CHARS), time });
    } else if (msg.kind === "media") {
      this.remote = { audio: msg.audio !== false, video: msg.video !== false, screen: !!msg.screen };
      this._changed();
    }
  }

  // -- devices, live toggles, screen sharing ------------------------------------------------------

  async refreshDevices() {
    try {
      const devices = await listDevices();
      if (this.destroyed) return;
      this.devices = devices;
      this._changed();
    } catch (err) {
      console.warn("nbcall devices", err);
    }
  }

  _localTrack(kind) {
    const stream = this.phone.localStream;
    return stream ? stream.getTracks().find((t) => t.kind === kind && t.readyState === "live") || null : null;
  }

  /** Put `track` where `old` was: in the sender (replaceTrack, no renegotiation) and in the preview. */
  async _replace(old, track) {
    const pc = this.phone.pc;
    if (!pc) throw new Error("no call");
    let sender = old ? pc.getSenders().find((s) => s.track === old) : null;
    if (!sender) {
      // Nothing sent of this kind yet (the call began without it): use the receive-only
      // transceiver's sender and let it send; that needs one (perfect) renegotiation.
      const tr = pc.getTransceivers().find((t) => t.receiver.track.kind === track.kind && !t.sender.track && !t.stopped);
      if (tr) {
        await tr.sender.replaceTrack(track);
        if (tr.direction === "recvonly") tr.direction = "sendrecv";
        else if (tr.direction === "inactive") tr.direction = "sendonly";
      } else {
        pc.addTrack(track, this.phone.localStream || new MediaStream());
      }
    } else {
      await sender.replaceTrack(track);
    }
    const others = this.phone.localStream ? this.phone.localStream.getTracks().filter((t) => t !== old) : [];
    // A new stream object, so every view re-attaches its preview.
    this.phone.localStream = new MediaStream([...others, track]);
    if (this.phone.call) this.phone.call.localStream = this.phone.localStream;
    if (old) old.stop();
    this.phone._changed();
  }

  /** A toggle switched on for a kind the call started without: open that device now. */
  _ensureTracks() {
    if (!this.phone.call || this.phone.state !== "connected") return;
    for (const kind of ["audio", "video"]) {
      if (!this.model.get(kind) || this._localTrack(kind) || (kind === "video" && this.screenTrack)) continue;
      const id = kind === "video" ? this.model.get("camera") : this.model.get("microphone");
      this._queue(async () => {
        if (this._localTrack(kind) || !this.phone.call) return;
        const track = await openTrack(kind, id);
        await this._replace(null, track);
      });
    }
  }

  async _switchDevice(kind, id) {
    if (!this.phone.call) return; // used when the next call opens its media
    if (kind === "video" && this.screenTrack) return; // applies when sharing stops
    const old = this._localTrack(kind);
    if (!old) return;
    const track = await openTrack(kind, id);
    track.enabled = old.enabled;
    await this._replace(old, track);
    this.refreshDevices();
  }

  async _startShare() {
    if (this.screenTrack) return;
    if (!this.phone.call || this.phone.state !== "connected") {
      this._set("screen_share", false);
      throw new Error("screen sharing needs a connected call");
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      this._set("screen_share", false);
      throw err;
    }
    const track = stream.getVideoTracks()[0];
    track.addEventListener("ended", () => {
      // The browser's own "Stop sharing" button: go back to the camera.
      if (this.screenTrack === track) this._queue(() => this._stopShare());
    });
    await this._replace(this._localTrack("video"), track);
    this.screenTrack = track;
    this._set("screen_share", true);
    this._sendMediaState();
    this._changed();
  }

  async _stopShare() {
    const screen = this.screenTrack;
    if (!screen) return;
    this.screenTrack = null;
    this._set("screen_share", false);
    if (this.phone.call && this.model.get("video")) {
      const camera = await openTrack("video", this.model.get("camera"));
      await this._replace(screen, camera);
    } else {
      screen.stop();
    }
    this._sendMediaState();
    this._changed();
  }

  // -- snapshots and recordings -------------------------------------------------------------

  async snapshot(which, id) {
    const stream = which === "local" ? this.phone.localStream : this.phone.remoteStream;
    try {
      const frame = await grabFrame(stream);
      this.model.send(
        { kind: "snapshot", id: id || null, which, ok: true, width: frame.width, height: frame.height },
        undefined, // anywidget's send is (content, callbacks, buffers)
        [frame.png, frame.rgba],
      );
    } catch (err) {
      this.model.send({ kind: "snapshot", id: id || null, which, ok: false, error: String(err.message || err) });
    }
  }

  /** Returns an error sentence or "" (the recording starts asynchronously). */
  startRecording(which) {
    if (this.recording) return "already recording";
    if (this.phone.state !== "connected") return "recording needs a connected call";
    const recording = new Recording({
      send: (content, buffers) => {
        try {
          this.model.send(content, undefined, buffers);
        } catch (err) {
          // The widget closed while the recorder was finishing: nobody is left to receive it.
          console.warn("nbcall recording", err);
        }
      },
      onEnd: () => {
        if (this.recording === recording) this.recording = null;
        this._changed();
      },
    });
    this.recording = recording;
    this._changed();
    recording.start(which, this.phone).catch((err) => {
      if (this.recording === recording) this.recording = null;
      this._reply("start_recording", String(err.message || err));
      this.model.send({ kind: "recording_failed", id: recording.id, message: String(err.message || err) });
      this._changed();
    });
    return "";
  }
}

// -- the view ------------------------------------------------------------------------------------

function h(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function mmss(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

function clock(time) {
  return new Date(time * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function fillSelect(select, items, chosen, anyLabel) {
  const signature = JSON.stringify([items, chosen]);
  if (select.dataset.signature === signature) return;
  select.dataset.signature = signature;
  const any = h("option", "", anyLabel);
  any.value = "";
  select.replaceChildren(
    any,
    ...items.map((d) => {
      const option = h("option", "", d.label);
      option.value = d.id;
      return option;
    }),
  );
  select.value = items.some((d) => d.id === chosen) ? chosen : "";
}

/** Add the in-call features to one view; returns its cleanup. */
export function renderFeatures({ model, phone, header, stage, controls, root }) {
  const features = phone.features;
  if (!features) return () => {};
  const button = (label, cls, onClick) => {
    const b = h("button", `nbcall-button ${cls}`, label);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  };
  const save = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };

  const duration = h("span", "nbcall-duration");
  const quality = h("span", "nbcall-quality");
  const dot = h("span", "nbcall-quality-dot");
  const qualityText = h("span", "nbcall-quality-text");
  quality.append(dot, qualityText);
  header.append(duration, quality);

  const cameraOff = h("div", "nbcall-remote-off", "camera off");
  const remoteMuted = h("div", "nbcall-remote-muted", "muted");
  stage.append(cameraOff, remoteMuted);

  const camera = h("select", "nbcall-camera");
  camera.title = "camera";
  camera.addEventListener("change", () => save("camera", camera.value));
  const microphone = h("select", "nbcall-microphone");
  microphone.title = "microphone";
  microphone.addEventListener("change", () => save("microphone", microphone.value));
  const share = button("Share screen", "nbcall-share", () => save("screen_share", !model.get("screen_share")));
  const snap = button("Snapshot", "nbcall-snapshot", () => features.snapshot("remote", null));
  const record = button("Record", "nbcall-record", () => {
    if (features.recording) features.recording.stop();
    else {
      const error = features.startRecording("both");
      if (error) features._error(`record: ${error}`);
    }
  });
  controls.append(camera, microphone, share, snap, record);

  const chat = h("div", "nbcall-chat");
  const log = h("div", "nbcall-chat-log");
  log.setAttribute("aria-live", "polite");
  const form = h("form", "nbcall-chat-form");
  const input = h("input", "nbcall-chat-input");
  input.type = "text";
  input.placeholder = "Message";
  input.maxLength = MAX_CHAT_CHARS;
  const sendBtn = h("button", "nbcall-button nbcall-chat-send", "Send");
  sendBtn.type = "submit";
  form.append(input, sendBtn);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const error = features.sendChat(input.value);
    if (error) features._error(`chat: ${error}`);
    else input.value = "";
  });
  chat.append(log, form);
  root.append(chat);

  let shownMessages = null;
  const update = () => {
    const connected = phone.state === "connected";
    const inCall = connected || phone.state === "connecting";
    duration.hidden = !features.connectedAt;
    duration.textContent = mmss(features.duration);
    const s = phone.stats || {};
    quality.hidden = !connected;
    const q = s.quality || "unknown";
    quality.className = `nbcall-quality nbcall-quality-${q}`;
    const rtt = s.rtt_ms != null ? ` · ${s.rtt_ms} ms` : "";
    qualityText.textContent = `${QUALITY_WORDS[q] || q}${rtt}`;
    quality.title =
      `${s.inbound_kbps || 0} kbps in, ${s.outbound_kbps || 0} kbps out, ${s.fps || 0} fps ` +
      `${s.width || 0}x${s.height || 0}, loss ${s.packet_loss_pct || 0}%, ${s.candidate_type || "?"}`;
    cameraOff.hidden = !(connected && !features.remote.video);
    remoteMuted.hidden = !(connected && !features.remote.audio);
    fillSelect(camera, features.devices.cameras, model.get("camera"), "default camera");
    fillSelect(microphone, features.devices.microphones, model.get("microphone"), "default microphone");
    share.hidden = snap.hidden = record.hidden = !connected;
    share.textContent = features.screenTrack ? "Stop sharing" : "Share screen";
    record.textContent = features.recording ? "Stop recording" : "Record";
    record.classList.toggle("nbcall-recording", !!features.recording);
    chat.hidden = !(inCall || features.messages.length);
    input.disabled = sendBtn.disabled = !features.channelOpen;
    if (features.messages !== shownMessages) {
      shownMessages = features.messages;
      log.replaceChildren(
        ...features.messages.map((m) => {
          const line = h("div", `nbcall-chat-line${m.from === phone.user ? " nbcall-chat-mine" : ""}`);
          line.append(h("span", "nbcall-chat-time", clock(m.time)), h("b", "nbcall-chat-from", m.from));
          line.append(h("span", "nbcall-chat-text", m.text));
          return line;
        }),
      );
      log.scrollTop = log.scrollHeight;
    }
  };
  const offFeatures = features.subscribe(update);
  const offPhone = phone.subscribe(update);
  const onModel = () => update();
  const unlisten = listen(model, [
    ["change:camera", onModel],
    ["change:microphone", onModel],
    ["change:screen_share", onModel],
  ]);
  update();
  return () => {
    offFeatures();
    offPhone();
    unlisten();
    for (const el of [duration, quality, cameraOff, remoteMuted, camera, microphone, share, snap, record, chat]) {
      el.remove();
    }
  };
}
