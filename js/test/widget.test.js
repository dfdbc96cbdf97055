// The anywidget entry with a fake model, signaling through the kernel transport (the
// test plays the kernel): one msg:custom listener, commands routed, every listener and
// socket gone after cleanup.

import { test } from "node:test";
import assert from "node:assert/strict";
import { installGlobals, FakeClock, FakeModel, flush } from "./fakes/index.js";
import widget from "../widget.js";
import { modelContexts } from "../registry.js";
import { PageError } from "../messages.js";
import { SETUP_HOLD_MS } from "../model_sync.js";

/** @type {WeakMap<import("node:test").TestContext, FakeClock>} each test's clock */
const clocks = new WeakMap();
/** @param {import("node:test").TestContext} t */
const fakeClock = (t) => /** @type {FakeClock} */ (clocks.get(t));

/** The traits of nbcall.CallWidget the page reads. @param {Record<string, unknown>} [over] */
function traits(over = {}) {
  return {
    user: "alice", server: "ws://127.0.0.1:9900", _credential: "cred-a", _replaces: false,
    ice_servers: [], ice_transport_policy: "all", connect_via: "relay", audio: true, video: true,
    camera: "", microphone: "", screen_share: false, state: "registering", peers: [], messages: [],
    ...over,
  };
}

/** @param {import("node:test").TestContext} t */
function start(t, over = {}) {
  const env = installGlobals();
  const clock = new FakeClock().install();
  clocks.set(t, clock);
  const model = new FakeModel(traits(over));
  const cleanup = widget.initialize({ model: /** @type {any} */ (model) });
  t.after(() => {
    clock.uninstall();
    env.restore();
  });
  /** The kernel answers on its socket. @param {object} msg */
  const fromServer = (msg) => {
    const id = model.sentOf("kernel_socket_open")[0].content.id;
    model.custom({ kind: "kernel_socket_message", id, data: JSON.stringify(msg) });
  };
  /** Frames the page sent through the kernel. */
  const toServer = () => model.sentOf("kernel_socket_send").map((m) => JSON.parse(m.content.data));
  return { model, cleanup, fromServer, toServer };
}

test("initialize is quick and quiet: ready, one listener, a kernel socket asked for ('relay' means kernel)", async (t) => {
  const { model, cleanup } = start(t);
  assert.equal(model.sent[0].content.kind, "ready");
  assert.equal(model.count("msg:custom"), 1);
  await flush();
  const open = model.sentOf("kernel_socket_open");
  assert.equal(open.length, 1);
  assert.deepEqual(Object.keys(open[0].content).sort(), ["id", "kind"], "no url: the kernel connects to the widget's own server");
  cleanup();
});

test("through the kernel socket: register, the traits, a call placed by a kernel command", async (t) => {
  const { model, cleanup, fromServer, toServer } = start(t);
  await flush();
  const id = model.sentOf("kernel_socket_open")[0].content.id;
  model.custom({ kind: "kernel_socket_opened", id });
  assert.deepEqual(toServer()[0], { type: "register", username: "alice", client: "nbcall-widget", presence: true, credential: "cred-a" });
  fromServer({ type: "registered", username: "alice", key: "alice", credential: "cred-a", users: ["alice", "bob"], keys: ["alice", "bob"], online: 2, protocol: 1, ring_timeout: 30, server_id: "s1" });
  assert.equal(model.get("state"), "idle");
  assert.equal(model.get("transport"), "kernel");
  assert.deepEqual(model.get("peers"), ["bob"]);
  model.custom({ kind: "call", to: "bob" });
  assert.equal(model.get("state"), "calling");
  assert.equal(toServer()[1].type, "invite");
  model.custom({ kind: "call", to: "bob" });
  assert.deepEqual(model.sentOf("action_failed").map((m) => m.content), [{ kind: "action_failed", action: "call", code: PageError.IN_CALL, message: "cannot call while calling" }]);
  assert.equal(model.get("error"), "call: cannot call while calling");
  cleanup();
});

test("what the server refuses in a room reaches the kernel as action_failed with the server's code", async (t) => {
  const { model, cleanup, fromServer, toServer } = start(t);
  await flush();
  model.custom({ kind: "kernel_socket_opened", id: model.sentOf("kernel_socket_open")[0].content.id });
  fromServer({ type: "registered", username: "alice", key: "alice", credential: "cred-a", users: ["alice", "bob"], keys: ["alice", "bob"], online: 2, protocol: 1, ring_timeout: 30, server_id: "s1" });
  for (const code of ["room_full", "not_invited"]) {
    model.custom({ kind: "join", room: "team", invite_only: false });
    assert.equal(toServer().at(-1).type, "room_join");
    fromServer({ type: "error", code, message: `refused: ${code}`, request: "room_join" });
  }
  fromServer({ type: "error", code: "busy", message: "bob is in a call or room", request: "room_invite" });
  fromServer({ type: "error", code: "unknown_peer", message: "'carol' is not online", request: "room_invite" });
  fromServer({ type: "error", code: "rate_limited", message: "more than 5 chat lines a second", request: "room_chat" });
  const failed = model.sentOf("action_failed").map((m) => [m.content.action, m.content.code]);
  assert.deepEqual(failed, [["room", "room_full"], ["room", "not_invited"], ["room", "busy"], ["room", "unknown_peer"], ["room", "rate_limited"]]);
  assert.equal(model.get("error"), "room: more than 5 chat lines a second");
  cleanup();
});

test("an unknown or malformed command is reported to the kernel", async (t) => {
  const { model, cleanup } = start(t);
  t.mock.method(console, "warn", () => {});
  model.custom({ kind: "record_start", which: "both" }); // the old name
  model.custom({ kind: "chat" });
  assert.deepEqual(model.sentOf("protocol_error").map((m) => m.content.detail), ["unknown message kind 'record_start'", "'chat' needs 'text'"]);
  cleanup();
});

test("cleanup removes every listener, closes the kernel socket and forgets the model", async (t) => {
  const { model, cleanup } = start(t);
  await flush();
  const id = model.sentOf("kernel_socket_open")[0].content.id;
  model.custom({ kind: "kernel_socket_opened", id });
  assert.ok(modelContexts().has("cred-a"));
  cleanup();
  for (const [event, set] of model.handlers) assert.equal(set.size, 0, event);
  assert.deepEqual(model.sentOf("kernel_socket_close").map((m) => m.content.id), [id]);
  assert.equal(modelContexts().has("cred-a"), false);
  assert.equal(/** @type {any} */ (globalThis).__nbcall?.phones.alice, undefined);
});

test("the kernel's socket closing is a transport failure: retried, then the error says why", async (t) => {
  const { model, cleanup } = start(t);
  await flush();
  const id = model.sentOf("kernel_socket_open")[0].content.id;
  model.custom({ kind: "kernel_socket_closed", id, code: 1011, reason: "server unreachable" });
  assert.equal(model.get("state"), "error");
  assert.match(model.get("error"), /kernel: server unreachable/);
  model.custom({ kind: "kernel_socket_message", id, data: "{}" }); // late, for a closed socket: dropped
  assert.equal(model.sentOf("protocol_error").length, 0);
  cleanup();
});

/** Register alice through the kernel socket; returns the server side of the test. @param {import("node:test").TestContext} t */
async function registered(t, over = {}) {
  const env = start(t, over);
  await flush();
  const id = env.model.sentOf("kernel_socket_open")[0].content.id;
  env.model.custom({ kind: "kernel_socket_opened", id });
  env.fromServer({ type: "registered", username: "alice", key: "alice", credential: "cred-a", users: ["alice", "bob"], keys: ["alice", "bob"], online: 2, protocol: 1, ring_timeout: 30, server_id: "s1" });
  return env;
}

test("auto_answer: a ringing call is accepted in the page, after the kernel saw it ring; a later kernel accept is no error", async (t) => {
  const { model, cleanup, fromServer, toServer } = await registered(t, { auto_answer: true });
  /** @type {string[]} */
  const states = [];
  model.on("change:state", () => states.push(model.get("state")));
  fromServer({ type: "invite", from: "bob", from_key: "bob", call_id: "c1" });
  await flush();
  assert.deepEqual(states.slice(0, 2), ["ringing", "connecting"]);
  assert.deepEqual(toServer().filter((m) => m.type === "accept"), [{ type: "accept", to: "bob" }]);
  model.custom({ kind: "accept" }); // on_incoming accepting too
  assert.equal(model.sentOf("action_failed").length, 0);
  assert.equal(toServer().filter((m) => m.type === "accept").length, 1);
  model.custom({ kind: "reject" }); // or screening the caller too late: the answered call ends
  assert.equal(model.sentOf("action_failed").length, 0);
  assert.deepEqual(toServer().filter((m) => m.type === "hangup").map((m) => m.to), ["bob"]);
  assert.equal(model.get("state"), "ended");
  cleanup();
});

test("auto_answer does not answer our own calls: an accept while calling out is refused", async (t) => {
  const { model, cleanup, fromServer } = await registered(t, { auto_answer: true });
  model.custom({ kind: "call", to: "bob" });
  fromServer({ type: "ringing", from: "bob", from_key: "bob", call_id: "c2" });
  await flush();
  model.custom({ kind: "accept" });
  assert.deepEqual(model.sentOf("action_failed").map((m) => m.content.action), ["accept"]);
  cleanup();
});

test("auto_answer off (the default): a call rings until someone accepts; room invitations never auto-join", async (t) => {
  const { model, cleanup, fromServer, toServer } = await registered(t);
  fromServer({ type: "invite", from: "bob", from_key: "bob", call_id: "c1" });
  await flush();
  assert.equal(model.get("state"), "ringing");
  assert.equal(toServer().filter((m) => m.type === "accept").length, 0);
  cleanup();

  const other = await registered(t, { auto_answer: true });
  other.fromServer({ type: "room_invite", room: "standup", from: "bob", from_key: "bob", members: 1 });
  await flush();
  assert.equal(other.toServer().filter((m) => m.type === "room_join" || m.type === "accept").length, 0);
  other.cleanup();
});

test("a call being set up: its start goes at once, the rest in one update from the first held change", async (t) => {
  const { model, cleanup, fromServer } = await registered(t);
  const clock = fakeClock(t);
  const presence = (/** @type {string} */ name) =>
    fromServer({ type: "presence", joined: [name], joined_keys: [name], left: [], left_keys: [], online: 3 });
  model.custom({ kind: "call", to: "bob" });
  await flush();
  assert.equal(model.kernelSees("state"), "calling", "a call's start is never held");
  assert.equal(model.kernelSees("peer"), "bob");
  const saves = model.saves;
  fromServer({ type: "ringing", from: "bob", from_key: "bob", call_id: "c1" });
  presence("carol");
  await flush();
  assert.deepEqual(model.get("peers"), ["bob", "carol"], "the view has it at once");
  assert.equal(model.saves, saves, "held while the call is set up");
  clock.tick(SETUP_HOLD_MS - 200);
  presence("dave"); // a later change joins the hold; it does not restart it
  await flush();
  clock.tick(200);
  assert.equal(model.saves, saves + 1, "one update, SETUP_HOLD_MS after the first held change");
  assert.deepEqual(model.kernelSees("peers"), ["bob", "carol", "dave"]);
  // Hanging up while held: the end goes at once, and nothing stale follows it.
  presence("erin");
  model.custom({ kind: "hangup" });
  assert.equal(model.kernelSees("state"), "ended");
  assert.deepEqual(model.kernelSees("peers"), ["bob", "carol", "dave", "erin"], "the end takes the held changes along");
  const after = model.saves;
  clock.tick(SETUP_HOLD_MS * 2);
  assert.equal(model.saves, after);
  cleanup();
});

test("a call refused within the hold still shows in the kernel: calling, then ended, every time", async (t) => {
  const { model, cleanup, fromServer } = await registered(t);
  /** @type {string[]} */
  const seen = [];
  for (const id of ["c1", "c2"]) {
    model.custom({ kind: "call", to: "bob" });
    await flush();
    seen.push(model.kernelSees("state"));
    fromServer({ type: "busy", from: "bob", from_key: "bob", call_id: id });
    await flush();
    seen.push(model.kernelSees("state"));
  }
  assert.deepEqual(seen, ["calling", "ended", "calling", "ended"]);
  cleanup();
});

test("ringing goes at once; an accepted call is held until an error takes it along", async (t) => {
  const { model, cleanup, fromServer } = await registered(t);
  // A call ringing here is what the kernel acts on (on_incoming): sent at once.
  fromServer({ type: "invite", from: "bob", from_key: "bob", call_id: "c2" });
  await flush();
  assert.equal(model.kernelSees("state"), "ringing");
  assert.equal(model.kernelSees("incoming"), "bob");
  // Accepted: connecting is held, and what changes with it.
  model.custom({ kind: "accept" });
  fromServer({ type: "presence", joined: ["dave"], joined_keys: ["dave"], left: [], left_keys: [], online: 3 });
  await flush();
  assert.equal(model.get("state"), "connecting");
  assert.equal(model.kernelSees("state"), "ringing");
  assert.equal(model.kernelSees("peers").includes("dave"), false);
  // An error goes at once and takes the held changes along.
  model.custom({ kind: "call", to: "carol" }); // refused: already in a call
  assert.match(model.kernelSees("error"), /cannot call while/);
  assert.equal(model.kernelSees("state"), "connecting");
  assert.equal(model.kernelSees("peers").includes("dave"), true);
  cleanup();
});

test("cleanup sends what was held and leaves no timer behind", async (t) => {
  const { model, cleanup, fromServer } = await registered(t);
  model.custom({ kind: "call", to: "bob" });
  fromServer({ type: "presence", joined: ["dave"], joined_keys: ["dave"], left: [], left_keys: [], online: 3 });
  await flush();
  assert.equal(model.kernelSees("peers").includes("dave"), false);
  cleanup();
  assert.equal(model.kernelSees("peers").includes("dave"), true);
  const saves = model.saves;
  fakeClock(t).tick(SETUP_HOLD_MS * 2);
  assert.equal(model.saves, saves);
});

test("a queued entry's state reaches the kernel before its queued_done", async (t) => {
  const { model, cleanup, fromServer } = await registered(t, {
    _queued: [{ id: 1, wait: "ringing", action: "accept", command: { kind: "accept" } }],
  });
  /** @type {string[]} the kernel's view when each queued_done went */
  const stateAtDone = [];
  const send = model.send.bind(model);
  model.send = (/** @type {any} */ content, /** @type {any} */ callbacks, /** @type {any} */ buffers) => {
    if (content && content.kind === "queued_done") stateAtDone.push(String(model.kernelSees("state")));
    return send(content, callbacks, buffers);
  };
  fromServer({ type: "invite", from: "bob", from_key: "bob", call_id: "c3" });
  await flush();
  assert.equal(model.get("state"), "connecting", "the queued accept answered");
  assert.deepEqual(stateAtDone, ["connecting"], "held changes went before queued_done");
  cleanup();
});
