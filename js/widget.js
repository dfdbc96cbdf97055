// anywidget entry: the call lives in `initialize` (one per model), views in `render`.

import { Phone } from "./phone.js";
import { Features, renderFeatures } from "./features.js";
import { planTransports } from "./transports.js";
import { listen } from "./listen.js";

const STATE_WORDS = {
  idle: (p) => `Ready — online as ${p.user}`,
  registering: () => "Connecting to the signaling server…",
  calling: (p) => `Calling ${p.peer}…`,
  ringing: (p) => `${p.incoming || p.peer} is calling you`,
  connecting: (p) => `Connecting to ${p.peer}…`,
  connected: (p) => `In a call with ${p.peer}`,
  ended: (p) => `Call with ${p.peer} ended${p.endReason ? ` (${reasonWords(p.endReason)})` : ""}`,
  error: () => "Not connected",
};

const TRANSPORT_WORDS = {
  "same-origin": "Signaling through the Jupyter server's own endpoint",
  direct: "Signaling over a direct websocket to the server",
  relay: "Signaling through the kernel: messages from this page reach it only between cells",
};

function reasonWords(reason) {
  return (
    {
      hangup: "hung up",
      rejected: "declined",
      busy: "busy in another call",
      cancelled: "caller gave up",
      timeout: "no answer",
      disconnected: "the other side went away",
      failed: "connection failed",
      unknown_peer: "not online",
      closed: "the other side closed the widget",
    }[reason] || reason
  );
}

/** Mirror the phone into the model's traitlets; Python reads them between cells. */
function syncModel(model, phone) {
  const next = {
    state: phone.state,
    peer: phone.peer,
    incoming: phone.incoming,
    peers: [...phone.peers.values()].sort(),
    error: phone.error,
    end_reason: phone.endReason,
    stats: phone.stats,
    transport: phone.transport,
  };
  let dirty = false;
  for (const [name, value] of Object.entries(next)) {
    if (JSON.stringify(model.get(name)) !== JSON.stringify(value)) {
      model.set(name, value);
      dirty = true;
    }
  }
  if (dirty) model.save_changes();
}

function reply(model, phone, action, error) {
  if (!error) return;
  phone.error = `${action}: ${error}`;
  phone._changed();
  model.send({ kind: "error", action, message: error });
}

function phonesByModel() {
  const g = globalThis;
  if (!g.__nbcallModels) g.__nbcallModels = new Map();
  return g.__nbcallModels;
}

function initialize({ model }) {
  // Nothing here may wait for the network or the camera: Phone.start only opens a socket.
  const phone = new Phone({
    user: model.get("user"),
    server: model.get("server"),
    credential: model.get("_credential"),
    iceServers: model.get("ice_servers"),
    iceTransportPolicy: model.get("ice_transport_policy"),
    plan: () => planTransports(model.get("connect_via"), model.get("server"), model),
    audio: model.get("audio"),
    video: model.get("video"),
    replaces: model.get("_replaces"),
  });
  // anywidget hands initialize and render different model facades, so views find the
  // phone through a page-wide map keyed by this widget's (unique, kernel-made) credential.
  const modelKey = model.get("_credential");
  phonesByModel().set(modelKey, phone);
  const unsubscribe = phone.subscribe(() => syncModel(model, phone));
  const features = new Features(model, phone); // chat, devices, screen, snapshots, recording

  const onCustom = (msg) => {
    if (!msg || typeof msg !== "object") return;
    if (msg.kind === "call") reply(model, phone, "call", phone.placeCall(msg.to));
    else if (msg.kind === "accept") reply(model, phone, "accept", phone.accept());
    else if (msg.kind === "reject") reply(model, phone, "reject", phone.reject());
    else if (msg.kind === "hangup") reply(model, phone, "hangup", phone.hangup());
  };
  const onToggle = () => phone.setSend({ audio: model.get("audio"), video: model.get("video") });
  const onIce = () => {
    phone.iceServers = model.get("ice_servers");
    phone.iceTransportPolicy = model.get("ice_transport_policy");
  };
  // A kernel restart only marks models "not live" (they are not destroyed), so the page
  // would keep this name registered and a re-run cell would find it taken: leave now.
  const onCommLive = () => {
    phone.close("the kernel restarted or disconnected: run the cell again for a new widget");
    if (phonesByModel().get(modelKey) === phone) phonesByModel().delete(modelKey);
  };
  const unlisten = listen(model, [
    ["comm_live_update", onCommLive],
    ["msg:custom", onCustom],
    ["change:audio", onToggle],
    ["change:video", onToggle],
    ["change:ice_servers", onIce],
    ["change:ice_transport_policy", onIce],
  ]);
  phone.start();
  syncModel(model, phone);
  model.send({ kind: "ready" });

  return () => {
    // Kernel restart or widget closed: end the call, stop the camera, close the socket.
    unlisten();
    unsubscribe();
    features.destroy();
    phone.close();
    if (phonesByModel().get(modelKey) === phone) phonesByModel().delete(modelKey);
  };
}

function h(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function button(label, className, onClick) {
  const b = h("button", `nbcall-button ${className}`, label);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

function playVideo(video, unmuteButton) {
  const p = video.play();
  if (p && p.catch) {
    p.catch((err) => {
      // Autoplay with sound needs a user gesture; play muted and offer to unmute.
      if (err && err.name === "NotAllowedError" && !video.muted) {
        video.muted = true;
        if (unmuteButton) unmuteButton.hidden = false;
        video.play().catch(() => {});
      }
    });
  }
}

function render({ model, el }) {
  const phone = phonesByModel().get(model.get("_credential"));
  const root = h("div", "nbcall-root");
  el.appendChild(root);
  if (!phone) {
    root.appendChild(h("div", "nbcall-error", "nbcall: this widget's model did not initialize"));
    return () => root.remove();
  }

  const header = h("div", "nbcall-header");
  const who = h("span", "nbcall-user", phone.user);
  const status = h("span", "nbcall-status");
  // Which way signaling travels: a relayed widget waits for idle kernels, worth knowing.
  const via = h("span", "nbcall-transport");
  header.append(who, status, via);

  const error = h("div", "nbcall-error");
  error.setAttribute("role", "alert");

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
  const answerBtn = button("Answer", "nbcall-answer", () => reply(model, phone, "accept", phone.accept()));
  const rejectBtn = button("Reject", "nbcall-reject", () => reply(model, phone, "reject", phone.reject()));
  ring.append(ringText, answerBtn, rejectBtn);

  const controls = h("div", "nbcall-controls");
  const hangupBtn = button("Hang up", "nbcall-hangup", () => reply(model, phone, "hangup", phone.hangup()));
  const micLabel = h("label", "nbcall-toggle");
  const mic = h("input");
  mic.type = "checkbox";
  micLabel.append(mic, document.createTextNode(" mic"));
  const camLabel = h("label", "nbcall-toggle");
  const cam = h("input");
  cam.type = "checkbox";
  camLabel.append(cam, document.createTextNode(" camera"));
  mic.addEventListener("change", () => {
    model.set("audio", mic.checked);
    model.save_changes();
  });
  cam.addEventListener("change", () => {
    model.set("video", cam.checked);
    model.save_changes();
  });
  controls.append(hangupBtn, micLabel, camLabel);

  const online = h("div", "nbcall-online");
  const onlineTitle = h("div", "nbcall-online-title");
  const list = h("ul", "nbcall-peers");
  online.append(onlineTitle, list);

  root.append(header, error, stage, ring, controls, online);
  const unrenderFeatures = renderFeatures({ model, phone, header, stage, controls, root });
  root.dataset.user = phone.user;
  root.nbcall = phone; // for tests and debugging: el.querySelector('.nbcall-root').nbcall.pc

  const view = {};
  // Only one view of a call plays the remote audio, or it would echo.
  if (!phone.audibleView) phone.audibleView = view;

  let shownRemote = null;
  let shownLocal = null;
  let shownPeers = "";
  const update = () => {
    root.dataset.state = phone.state;
    status.textContent = (STATE_WORDS[phone.state] || (() => phone.state))(phone);
    status.className = `nbcall-status nbcall-state-${phone.state}`;
    via.textContent = phone.transport ? `via ${phone.transport}` : "";
    via.title = TRANSPORT_WORDS[phone.transport] || "";
    error.textContent = phone.error;
    error.hidden = !phone.error;
    ring.hidden = phone.state !== "ringing";
    ringText.textContent = `Incoming call from ${phone.incoming || phone.peer}`;
    const inCall = ["calling", "connecting", "connected"].includes(phone.state);
    hangupBtn.hidden = !inCall;
    hangupBtn.textContent = phone.state === "calling" ? "Cancel" : "Hang up";
    mic.checked = !!model.get("audio");
    cam.checked = !!model.get("video");
    // Video only once there is something to show: ringing and calling are a line of text.
    stage.hidden = !(phone.state === "connecting" || phone.state === "connected");
    peerLabel.textContent = phone.peer;
    if (phone.remoteStream !== shownRemote) {
      shownRemote = phone.remoteStream;
      remote.srcObject = shownRemote;
      remote.muted = phone.audibleView !== view;
      if (shownRemote) playVideo(remote, unmute);
      else unmute.hidden = true;
    }
    if (phone.localStream !== shownLocal) {
      shownLocal = phone.localStream;
      local.srcObject = shownLocal;
      local.hidden = !shownLocal;
      if (shownLocal) playVideo(local, null);
    }
    const names = [...phone.peers.values()].sort();
    const signature = `${names.join("\n")}|${phone.state}`;
    if (signature !== shownPeers) {
      shownPeers = signature;
      onlineTitle.textContent = names.length ? `Online (${names.length})` : "Nobody else is online";
      list.replaceChildren(
        ...names.map((name) => {
          const item = h("li", "nbcall-peer");
          item.dataset.user = name;
          const callBtn = button("Call", "nbcall-call", () => reply(model, phone, "call", phone.placeCall(name)));
          callBtn.disabled = !(phone.state === "idle" || phone.state === "ended");
          item.append(h("span", "nbcall-peer-name", name), callBtn);
          return item;
        }),
      );
    }
  };
  const unsubscribe = phone.subscribe(update);
  const onModel = () => update();
  const unlisten = listen(model, [
    ["change:audio", onModel],
    ["change:video", onModel],
  ]);
  update();
  model.send({ kind: "view" });

  return () => {
    // Output cleared or view closed: release the elements; the call itself stays with the model.
    unsubscribe();
    unrenderFeatures();
    unlisten();
    if (phone.audibleView === view) phone.audibleView = null;
    remote.srcObject = null;
    local.srcObject = null;
    root.remove();
  };
}

export default { initialize, render };
