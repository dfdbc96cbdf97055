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
/** @typedef {import("../features/chat.js").ChatLine} ChatLine */
/** @typedef {Pick<HTMLElement, "append" | "removeChild" | "firstChild" | "replaceChildren">} LogElement */

const REMOTE = pick(SNAPSHOT_SOURCES, "remote");
// A chat line shows at most this many characters until its "show all" is clicked: laying
// out long unbroken text costs the browser superlinear time (a 4000-character word took
// ~50 ms per line, a flood's burst of 20 a second of frozen page; 500 take ~2 ms).
export const SHOWN_CHARS = 500;

/** The start of `text` a chat line shows at first (all of it when short; never half an emoji). @param {string} text */
export function shownText(text) {
  if (text.length <= SHOWN_CHARS) return text;
  const end = (text.charCodeAt(SHOWN_CHARS - 1) & 0xfc00) === 0xd800 ? SHOWN_CHARS - 1 : SHOWN_CHARS;
  return text.slice(0, end);
}

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
 * The chat log's DOM kept in step with the history, never rebuilt: `fill` once when the
 * view is drawn, then `add` appends one line and removes from the top the lines the history
 * dropped (chat.js's "line" event).  Text goes in as text (textContent), never as markup.
 * @param {LogElement} log
 * @param {(line: ChatLine) => Node} makeLine
 */
export function chatLogWriter(log, makeLine) {
  return {
    /** @param {readonly ChatLine[]} lines */
    fill(lines) {
      log.replaceChildren(...lines.map(makeLine));
    },
    /** @param {ChatLine} line @param {number} dropped  oldest lines the history let go */
    add(line, dropped) {
      for (let i = 0; i < dropped && log.firstChild; i++) log.removeChild(log.firstChild);
      log.append(makeLine(line));
    },
  };
}

/** Run `fn` once before the next frame, however often asked (at once where there are no frames). */
function onceAFrame(/** @type {() => void} */ fn) {
  let asked = false;
  return () => {
    if (asked) return;
    if (typeof requestAnimationFrame !== "function") return fn();
    asked = true;
    requestAnimationFrame(() => {
      asked = false;
      fn();
    });
  };
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
  const notice = h("div", "nbcall-chat-notice"); // "N messages from bob were dropped (flood)"
  notice.setAttribute("role", "status");
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
    if (error) phone.setError(`chat: ${error.message}`);
    else input.value = "";
  });
  chat.append(log, notice, form);
  root.append(chat);

  /** @param {ChatLine} m */
  const makeLine = (m) => {
    const line = h("div", `nbcall-chat-line${m.from === phone.user ? " nbcall-chat-mine" : ""}`);
    line.append(h("span", "nbcall-chat-time", clock(m.time)), h("b", "nbcall-chat-from", m.from));
    const text = h("span", "nbcall-chat-text", shownText(m.text));
    line.append(text);
    const hidden = m.text.length - (text.textContent || "").length;
    if (hidden > 0) {
      const more = button(`… ${hidden} more characters`, "nbcall-chat-more", () => {
        text.textContent = m.text;
        more.remove();
      });
      line.append(more);
    }
    return line;
  };
  const writer = chatLogWriter(log, makeLine);
  // Follow the newest line unless the user scrolled up to read.
  let following = true;
  log.addEventListener("scroll", () => {
    following = log.scrollTop + log.clientHeight >= log.scrollHeight - 24;
  });
  const scrollDown = onceAFrame(() => {
    if (following) log.scrollTop = log.scrollHeight;
  });
  const showNotice = (/** @type {string} */ text) => {
    notice.textContent = text;
    notice.hidden = !text;
  };
  writer.fill(features.chat.lines);
  showNotice(features.chat.notice);
  scrollDown();
  const offChat = [
    features.chat.events.on("line", (line, dropped) => {
      writer.add(line, dropped);
      chat.hidden = false;
      scrollDown();
    }),
    features.chat.events.on("notice", showNotice),
  ];
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
    // A seed page answers receive-only until its user presses its own call button.
    const sendsNone = connected && !features.remoteSendsVideo;
    cameraOff.textContent = sendsNone ? "the other side sends no video" : "camera off";
    cameraOff.title = sendsNone ? "It answered without video (a seed page does until its user presses its call button)" : "";
    cameraOff.hidden = !(connected && (sendsNone || !features.remote.video));
    remoteMuted.hidden = !(connected && !features.remote.audio);
    fillSelect(camera, features.devices.lists.cameras, model.get("camera"), "default camera");
    fillSelect(microphone, features.devices.lists.microphones, model.get("microphone"), "default microphone");
    share.hidden = snap.hidden = record.hidden = !connected;
    share.textContent = features.devices.screenTrack ? "Stop sharing" : "Share screen";
    record.textContent = features.recording ? "Stop recording" : "Record";
    record.classList.toggle("nbcall-recording", !!features.recording);
    chat.hidden = !(inCall || features.chat.lines.length);
    input.disabled = sendBtn.disabled = !features.channelOpen;
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
    offChat.forEach((off) => off());
    unlisten();
    for (const el of [duration, quality, cameraOff, remoteMuted, camera, microphone, share, snap, record, chat]) {
      el.remove();
    }
  };
}
