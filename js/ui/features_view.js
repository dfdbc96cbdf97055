// The in-call features in one view: duration and quality in the header, "camera off" /
// "muted" over the video, device pickers, share / snapshot / record buttons, and the chat.

import { SNAPSHOT_SOURCES } from "../messages.js";
import { State, pick } from "../names.js";
import { listen } from "../listen.js";
import { QUALITY_WORDS } from "../call/stats.js";
import { MAX_CHAT_CHARS } from "../features/in_call.js";
import { h, button } from "./dom.js";

/** @typedef {import("../types.js").AnyModel} AnyModel */
/** @typedef {import("../registry.js").ModelContext} ModelContext */
/** @typedef {import("../media/media.js").Device} Device */

const REMOTE = pick(SNAPSHOT_SOURCES, "remote");

/** @param {number} seconds */
function mmss(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** @param {number} time  epoch seconds */
function clock(time) {
  return new Date(time * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/**
 * @param {HTMLSelectElement} select
 * @param {Device[]} items
 * @param {string} chosen
 * @param {string} anyLabel
 */
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

/**
 * Add the in-call features to one view; returns its cleanup.
 * @param {{model: AnyModel, context: ModelContext, header: HTMLElement, stage: HTMLElement, controls: HTMLElement, root: HTMLElement}} parts
 * @returns {() => void}
 */
export function renderFeatures({ model, context, header, stage, controls, root }) {
  const { phone, features } = context;
  /** @param {string} name @param {unknown} value */
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
  const snap = button("Snapshot", "nbcall-snapshot", () => features.snapshot(REMOTE, null));
  const record = button("Record", "nbcall-record", () => features.toggleRecording());
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
    if (error) phone.setError(`chat: ${error}`);
    else input.value = "";
  });
  chat.append(log, form);
  root.append(chat);

  /** @type {unknown} */
  let shownMessages = null;
  const update = () => {
    const connected = phone.state === State.CONNECTED;
    const inCall = connected || phone.state === State.CONNECTING;
    duration.hidden = !features.connectedAt;
    duration.textContent = mmss(features.duration);
    const s = /** @type {Record<string, any>} */ (phone.stats || {});
    quality.hidden = !connected;
    const q = /** @type {keyof typeof QUALITY_WORDS} */ (s.quality || "unknown");
    quality.className = `nbcall-quality nbcall-quality-${q}`;
    const rtt = s.rtt_ms != null ? ` · ${s.rtt_ms} ms` : "";
    qualityText.textContent = `${QUALITY_WORDS[q] || q}${rtt}`;
    quality.title =
      `${s.inbound_kbps || 0} kbps in, ${s.outbound_kbps || 0} kbps out, ${s.fps || 0} fps ` +
      `${s.width || 0}x${s.height || 0}, loss ${s.packet_loss_pct || 0}%, ${s.candidate_type || "?"}`;
    cameraOff.hidden = !(connected && !features.remote.video);
    remoteMuted.hidden = !(connected && !features.remote.audio);
    fillSelect(camera, features.devices.lists.cameras, model.get("camera"), "default camera");
    fillSelect(microphone, features.devices.lists.microphones, model.get("microphone"), "default microphone");
    share.hidden = snap.hidden = record.hidden = !connected;
    share.textContent = features.devices.screenTrack ? "Stop sharing" : "Share screen";
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
  const unlisten = listen(model, [
    ["change:camera", update],
    ["change:microphone", update],
    ["change:screen_share", update],
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
