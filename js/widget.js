// anywidget entry: the call lives in `initialize` (one per model), views in `render`.
//
//   dispatch.js         the one door for kernel <-> page messages (messages.js's table)
//   signaling/          the websocket to the signaling server, over same-origin, direct or the kernel
//   call/               the call state machine (phone.js, call_state.js), the peer connection, ICE, stats
//   media/              camera and microphone, snapshots, recordings
//   features/           in-call features: chat, media state, devices, screen, snapshots, recording
//   ui/                 the views

import { TO_PAGE_KIND, TO_KERNEL_KIND } from "./messages.js";
import { Dispatcher, sendToKernel } from "./dispatch.js";
import { Phone } from "./call/phone.js";
import { InCall } from "./features/in_call.js";
import { QueuedActions } from "./queued_actions.js";
import { KernelSockets } from "./signaling/kernel_socket.js";
import { planTransports } from "./signaling/transports.js";
import { modelContexts } from "./registry.js";
import { listen } from "./listen.js";
import { renderView } from "./ui/view.js";
import { inCall } from "./call/call_state.js";
import { State } from "./names.js";
import { autoAnswer } from "./call/auto_answer.js";
import { ModelSync } from "./model_sync.js";

/** @typedef {import("./types.js").AnyModel} AnyModel */
/** @typedef {import("./call/phone.js").Phone} PhoneType */
/** @typedef {import("./failure.js").Outcome} Outcome */

/** How the current call carries media (TOPOLOGIES in messages.js). @param {PhoneType} phone */
function topology(phone) {
  if (phone.room.name) return phone.room.topology;
  return inCall(phone.state) ? "p2p" : "";
}

// A call being set up: its state changes may wait a moment before reaching the kernel (model_sync.js).
/** @type {ReadonlySet<string>} */
const SETTING_UP = new Set([State.CALLING, State.CONNECTING]);
// Past the set-up, while changes are still held: they go with the set-up's.
/** @type {ReadonlySet<string>} */
const HOLDABLE = new Set([State.CALLING, State.CONNECTING, State.CONNECTED]);

/**
 * Mirror the phone into the model's traitlets; Python reads them between cells.
 * @param {AnyModel} model
 * @param {PhoneType} phone
 * @param {ModelSync} sync
 */
function syncModel(model, phone, sync) {
  // A call starting: the state moves into calling now (a call passes through it once).
  const starting = phone.state === State.CALLING && model.get("state") !== State.CALLING;
  const next = {
    state: phone.state,
    peer: phone.peer,
    incoming: phone.incoming,
    peers: phone.peers.names(),
    error: phone.error,
    end_reason: phone.endReason,
    stats: phone.stats,
    transport: phone.transport,
    peer_status: phone.peerStatus,
    // Rooms (docs/rooms.md): `room` before `participants`, so that leaving is not a flurry of on_leave.
    room: phone.room.name,
    participants: phone.room.participants(),
    topology: topology(phone),
    room_invite: phone.room.invitation ? { room: phone.room.invitation.room, from: phone.room.invitation.from } : {},
  };
  let dirty = false;
  for (const [name, value] of Object.entries(next)) {
    if (JSON.stringify(model.get(name)) !== JSON.stringify(value)) {
      model.set(name, value);
      dirty = true;
    }
  }
  // What the kernel acts on goes at once: a call starting (calling, so that every call shows
  // in Python even if it ends within the hold: on_state, and the actions that wait for it), a
  // ringing call (on_incoming), an invitation, an error, the end of a call.
  if (dirty) sync.save(starting || !HOLDABLE.has(phone.state) || !!phone.error || !!phone.room.invitation);
}

/**
 * The call machinery of one model.  Nothing here waits for the network or the camera:
 * Phone.start only opens a socket.
 * @param {{model: AnyModel}} args
 * @returns {() => void} ends the call, stops the camera, leaves the server
 */
function initialize({ model }) {
  const dispatcher = new Dispatcher(model);
  const kernelSockets = new KernelSockets(dispatcher);
  const phone = new Phone({
    user: model.get("user"),
    server: model.get("server"),
    credential: model.get("_credential"),
    iceServers: model.get("ice_servers"),
    iceTransportPolicy: model.get("ice_transport_policy"),
    plan: () => planTransports(model.get("connect_via"), model.get("server"), { openKernel: () => kernelSockets.open() }),
    audio: model.get("audio"),
    video: model.get("video"),
    replaces: model.get("_replaces"),
    lostAfter: model.get("lost_after"),
  });
  /** @param {string} action @param {Outcome} outcome  "" when the action started @returns {string} why not, or "" */
  const act = (action, outcome) => {
    if (!outcome) return "";
    const { code, message } = outcome;
    phone.setError(`${action}: ${message}`);
    dispatcher.send(TO_KERNEL_KIND.ACTION_FAILED, { action, code, message });
    return message;
  };
  const sync = new ModelSync(model, () => SETTING_UP.has(phone.state));
  const features = new InCall(model, phone, dispatcher, sync); // chat, devices, screen, snapshots, recording
  // anywidget hands initialize and render different model facades, so views find the
  // phone through a page-wide map keyed by this widget's (unique, kernel-made) credential.
  const modelKey = model.get("_credential");
  // After the handlers: Run All's actions wait in the `_queued` trait until the phone is ready.
  const queue = new QueuedActions({ model, phone, dispatcher, features, beforeDone: () => sync.flush() });
  modelContexts().set(modelKey, { phone, features, act, queue });
  const forget = () => {
    if (modelContexts().get(modelKey)?.phone === phone) modelContexts().delete(modelKey);
  };

  // Mute and camera apply to the call and to every link of the room.
  const setSend = () => {
    const send = { audio: !!model.get("audio"), video: !!model.get("video") };
    phone.media.setSend(send);
    if (phone.room.name) phone.room.setSend(send);
  };
  const roomInvited = () => !!phone.room.invitation && phone.state !== State.RINGING;
  const auto = autoAnswer({ phone, enabled: () => !!model.get("auto_answer"), accept: () => act(TO_PAGE_KIND.ACCEPT, phone.accept()) });
  const offs = [
    auto.close,
    phone.subscribe(() => syncModel(model, phone, sync)),
    phone.room.events.on("change", () => syncModel(model, phone, sync)),
    // What the server refused (a full room, not invited ...) reaches Python as a failed action.
    phone.room.events.on("error", (failure) => act("room", failure)),
    dispatcher.handle({
      [TO_PAGE_KIND.CALL]: (msg) => act(TO_PAGE_KIND.CALL, phone.placeCall(msg.to)),
      // A room invitation is answered like a call (unless a call rings too: the call first).
      // After the page auto-answered, on_incoming's accept is a no-op and its reject hangs up.
      [TO_PAGE_KIND.ACCEPT]: () =>
        act(TO_PAGE_KIND.ACCEPT, auto.answeredHere() ? "" : roomInvited() ? phone.room.acceptInvite() : phone.accept()),
      [TO_PAGE_KIND.REJECT]: () =>
        act(TO_PAGE_KIND.REJECT, auto.answeredHere() ? phone.hangup() : roomInvited() ? phone.room.declineInvite() : phone.reject()),
      [TO_PAGE_KIND.JOIN]: (msg) =>
        act(TO_PAGE_KIND.JOIN, phone.room.join(msg.room, { inviteOnly: !!msg.invite_only, password: msg.password || "" })),
      [TO_PAGE_KIND.LEAVE]: () => act(TO_PAGE_KIND.LEAVE, phone.room.leave()),
      [TO_PAGE_KIND.INVITE]: (msg) => act(TO_PAGE_KIND.INVITE, phone.room.invite(msg.to)),
      [TO_PAGE_KIND.HANGUP]: () => act(TO_PAGE_KIND.HANGUP, phone.hangup()),
    }),
    listen(model, [
      // A kernel restart only marks models "not live" (they are not destroyed), so the page
      // would keep this name registered and a re-run cell would find it taken: leave now.
      [
        "comm_live_update",
        () => {
          phone.close("the kernel restarted or disconnected: run the cell again for a new widget");
          forget();
        },
      ],
      ["change:audio", () => setSend()],
      ["change:video", () => setSend()],
      ["change:ice_servers", () => phone.media.setIceConfig(model.get("ice_servers"), model.get("ice_transport_policy"))],
      ["change:ice_transport_policy", () => phone.media.setIceConfig(model.get("ice_servers"), model.get("ice_transport_policy"))],
      ["change:lost_after", () => phone.setLostAfter(model.get("lost_after"))],
      ["change:preview", () => phone.setPreview(model.get("preview"))],
      ["change:room_video", () => phone.room.camera.setVideo(model.get("room_video"))],
    ]),
  ];
  phone.room.camera.setVideo(model.get("room_video"));
  phone.start();
  if (model.get("preview")) phone.setPreview(true);
  syncModel(model, phone, sync);
  sendToKernel(model, TO_KERNEL_KIND.READY);

  return () => {
    // Kernel restart or widget closed: end the call, stop the camera, close the socket.
    offs.forEach((off) => off());
    try {
      sync.flush(); // what was held, if the comm is still open
    } catch {
      sync.cancel(); // a closed comm: the rest of the cleanup must still run
    }
    queue.destroy();
    features.destroy();
    phone.close();
    kernelSockets.destroy();
    dispatcher.destroy();
    forget();
  };
}

/**
 * One view; returns its cleanup (output cleared or view closed: the call stays with the model).
 * @param {{model: AnyModel, el: HTMLElement}} args
 */
function render({ model, el }) {
  const context = modelContexts().get(model.get("_credential"));
  const cleanup = renderView({ model, el, context });
  if (context) sendToKernel(model, TO_KERNEL_KIND.VIEW);
  return cleanup;
}

export default { initialize, render };
