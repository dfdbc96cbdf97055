// One view of a widget: header, video stage, ringing bar, controls, who is online.  Views
// only display the model's phone (several views show one call) and call its actions.

import { TO_PAGE_KIND } from "../messages.js";
import { State } from "../names.js";
import { inCall, canCall } from "../call/call_state.js";
import { PeerStatus } from "../call/phone.js";
import { listen } from "../listen.js";
import { h, button, playVideo } from "./dom.js";
import { STATE_WORDS, PEER_STATUS_WORDS, transportWords } from "./words.js";
import { renderFeatures } from "./features_view.js";
import { renderGrid } from "./grid.js";

/** @typedef {import("../types.js").AnyModel} AnyModel */
/** @typedef {import("../registry.js").ModelContext} ModelContext */

/**
 * The root element carries the phone for tests and debugging: `root.nbcall.pc`.
 * @typedef {HTMLDivElement & {nbcall?: import("../call/phone.js").Phone}} RootElement
 */

/** @type {WeakMap<import("../call/phone.js").Phone, object>} the view that plays each call's sound */
const audibleViews = new WeakMap();

/**
 * Render one view into `el`; returns its cleanup (the call itself stays with the model).
 * @param {{model: AnyModel, el: HTMLElement, context: ModelContext | undefined}} args
 * @returns {() => void}
 */
export function renderView({ model, el, context }) {
  /** @type {RootElement} */
  const root = h("div", "nbcall-root");
  el.appendChild(root);
  if (!context) {
    root.appendChild(h("div", "nbcall-error", "nbcall: this widget's model did not initialize"));
    return () => root.remove();
  }
  const { phone, act, queue } = context;

  const header = h("div", "nbcall-header");
  const who = h("span", "nbcall-user", phone.user);
  const status = h("span", "nbcall-status");
  // Which way signaling travels: a widget signaling through the kernel waits for idle kernels, worth knowing.
  const via = h("span", "nbcall-transport");
  header.append(who, status, via);

  const error = h("div", "nbcall-error");
  error.setAttribute("role", "alert");
  // An action asked for before the page was ready (Run All): "Will call bob — waiting for …".
  const waiting = h("div", "nbcall-waiting");
  waiting.setAttribute("role", "status");

  const stage = h("div", "nbcall-stage");
  const remote = h("video", "nbcall-remote");
  remote.autoplay = true;
  remote.playsInline = true;
  const local = h("video", "nbcall-local");
  local.autoplay = true;
  local.playsInline = true;
  local.muted = true; // never play our own microphone back
  local.hidden = true;
  const peerLabel = h("div", "nbcall-peer-label");
  const unmute = button("Sound is muted: click to unmute", "nbcall-unmute", () => {
    remote.muted = false;
    unmute.hidden = true;
    playVideo(remote, null);
  });
  unmute.hidden = true;
  stage.append(remote, local, peerLabel, unmute);

  const ring = h("div", "nbcall-incoming");
  const ringText = h("span", "nbcall-incoming-text");
  // A room invitation rings in the same bar (a call that rings at the same time comes first).
  const roomInvited = () => !!phone.room.invitation && phone.state !== State.RINGING;
  const answerBtn = button("Answer", "nbcall-answer", () =>
    roomInvited() ? act(TO_PAGE_KIND.ACCEPT, phone.room.acceptInvite()) : act(TO_PAGE_KIND.ACCEPT, phone.accept()),
  );
  const rejectBtn = button("Reject", "nbcall-reject", () =>
    roomInvited() ? act(TO_PAGE_KIND.REJECT, phone.room.declineInvite()) : act(TO_PAGE_KIND.REJECT, phone.reject()),
  );
  ring.append(ringText, answerBtn, rejectBtn);

  const controls = h("div", "nbcall-controls");
  const hangupBtn = button("Hang up", "nbcall-hangup", () => act(TO_PAGE_KIND.HANGUP, phone.hangup()));
  /** @param {string} label @param {"audio" | "video"} trait */
  const toggle = (label, trait) => {
    const box = h("label", "nbcall-toggle");
    const input = h("input");
    input.type = "checkbox";
    box.append(input, document.createTextNode(` ${label}`));
    input.addEventListener("change", () => {
      model.set(trait, input.checked);
      model.save_changes();
    });
    return { box, input };
  };
  const mic = toggle("mic", "audio");
  const cam = toggle("camera", "video");
  controls.append(hangupBtn, mic.box, cam.box);

  const online = h("div", "nbcall-online");
  const onlineTitle = h("div", "nbcall-online-title");
  const list = h("ul", "nbcall-peers");
  // Join (or create) a room by name.
  const joinBox = h("form", "nbcall-join");
  const roomInput = h("input", "nbcall-room-input");
  roomInput.placeholder = "room name";
  roomInput.maxLength = 64;
  joinBox.append(roomInput, button("Join room", "nbcall-join-button", () => joinBox.requestSubmit()));
  joinBox.addEventListener("submit", (event) => {
    event.preventDefault();
    if (roomInput.value.trim()) act(TO_PAGE_KIND.JOIN, phone.room.join(roomInput.value.trim(), {}));
  });
  online.append(onlineTitle, list, joinBox);

  const view = {};
  const roomGrid = renderGrid({ context, audible: () => audibleViews.get(phone) === view });
  root.append(header, error, waiting, stage, roomGrid.el, ring, controls, online);
  const unrenderFeatures = renderFeatures({ model, context, header, stage, controls, root });
  root.dataset.user = phone.user;
  root.nbcall = phone; // for tests and debugging: el.querySelector('.nbcall-root').nbcall.pc

  // Only one view of a call plays the remote audio, or it would echo: the first one.
  if (!audibleViews.has(phone)) audibleViews.set(phone, view);

  /** @type {MediaStream | null} */
  let shownRemote = null;
  /** @type {MediaStream | null} */
  let shownLocal = null;
  let shownPeers = "";
  const update = () => {
    const state = phone.state;
    root.dataset.state = state;
    root.dataset.peerStatus = phone.peerStatus; // PeerStatus: none, connected or reconnecting
    status.textContent = STATE_WORDS[state](phone);
    status.className = `nbcall-status nbcall-state-${state}${phone.peerStatus ? ` nbcall-peer-${phone.peerStatus}` : ""}`;
    via.textContent = phone.transport ? `via ${phone.transport}` : "";
    via.title = transportWords(phone.transport);
    error.textContent = phone.error;
    error.hidden = !phone.error;
    waiting.textContent = queue.describe();
    waiting.hidden = !waiting.textContent;
    const invitation = roomInvited() ? phone.room.invitation : null;
    ring.hidden = state !== State.RINGING && !invitation;
    ringText.textContent = invitation
      ? `${invitation.from} invites you to room ${invitation.room}`
      : `Incoming call from ${phone.incoming || phone.peer}`;
    const inRoom = !!phone.room.name;
    root.dataset.room = phone.room.name;
    joinBox.hidden = inRoom || !canCall(state);
    hangupBtn.hidden = !inCall(state);
    hangupBtn.textContent = state === State.CALLING ? "Cancel" : "Hang up";
    mic.input.checked = !!model.get("audio");
    cam.input.checked = !!model.get("video");
    // Video only once there is something to show: ringing and calling are a line of text.
    // Or the camera's preview between calls (the `preview` trait): the local picture alone.
    stage.hidden = inRoom || !(state === State.CONNECTING || state === State.CONNECTED || (model.get("preview") && phone.localStream));
    const reconnecting = phone.peerStatus === PeerStatus.RECONNECTING;
    peerLabel.textContent = reconnecting ? `${phone.peer} — ${PEER_STATUS_WORDS[PeerStatus.RECONNECTING]}` : phone.peer;
    if (phone.remoteStream !== shownRemote) {
      shownRemote = phone.remoteStream;
      remote.srcObject = shownRemote;
      remote.muted = audibleViews.get(phone) !== view;
      if (shownRemote) playVideo(remote, unmute);
      else unmute.hidden = true;
    }
    if (phone.localStream !== shownLocal) {
      shownLocal = phone.localStream;
      local.srcObject = shownLocal;
      local.hidden = !shownLocal;
      if (shownLocal) playVideo(local, null);
    }
    const names = phone.peers.names();
    const signature = `${names.join("\n")}|${state}|${inRoom}`;
    if (signature !== shownPeers) {
      shownPeers = signature;
      onlineTitle.textContent = names.length ? `Online (${names.length})` : "Nobody else is online";
      list.replaceChildren(
        ...names.map((name) => {
          const item = h("li", "nbcall-peer");
          item.dataset.user = name;
          // In a room, or a connected call (which an invite turns into a room), the list
          // invites; otherwise it calls.
          const inviting = inRoom || state === State.CONNECTED;
          const callBtn = inviting
            ? button("Invite", "nbcall-invite", () => act(TO_PAGE_KIND.INVITE, phone.room.invite(name)))
            : button("Call", "nbcall-call", () => act(TO_PAGE_KIND.CALL, phone.placeCall(name)));
          callBtn.disabled = inviting ? !inRoom && name === phone.peer : !canCall(state);
          item.append(h("span", "nbcall-peer-name", name), callBtn);
          return item;
        }),
      );
    }
  };
  const unsubscribe = phone.subscribe(update);
  const offRoom = phone.room.events.on("change", update);
  const offQueue = queue.subscribe(update);
  const unlisten = listen(model, [
    ["change:audio", update],
    ["change:video", update],
    ["change:preview", update],
  ]);
  update();

  return () => {
    unsubscribe();
    offRoom();
    roomGrid.destroy();
    offQueue();
    unrenderFeatures();
    unlisten();
    if (audibleViews.get(phone) === view) audibleViews.delete(phone);
    remote.srcObject = null;
    local.srcObject = null;
    root.remove();
  };
}
