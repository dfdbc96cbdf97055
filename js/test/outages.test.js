// Liveness and outages (issue 12): the heartbeat on the call's data channel (or inbound
// RTP), the server's peer_status, our own socket dropping mid-call, a server restart, and
// the kernel transport's pings.

import { test } from "node:test";
import assert from "node:assert/strict";
import { flush, FakeDataChannel, FakeClock, FakeModel, installGlobals } from "./fakes/index.js";
import { fakeBrowser, fakePc, connect } from "./helpers.js";
import { Heartbeat, HEARTBEAT_INTERVAL_MS, SILENT_AFTER_MS } from "../call/heartbeat.js";
import { URGENT_MAX_RETRY_MS } from "../signaling/signaling.js";
import { PING_INTERVAL_MS } from "../signaling/kernel_socket.js";
import widget from "../widget.js";

/** @typedef {import("./fakes/index.js").FakeHub} FakeHub */
/** @typedef {import("../call/phone.js").Phone} Phone */

/**
 * Let `ms` pass in `step` steps, letting promises and the network settle in between.
 * @param {FakeClock} clock @param {number} ms @param {number} [step] @param {() => void} [each]  after every step
 */
async function pass(clock, ms, step = 100, each = () => {}) {
  for (let t = 0; t < ms; t += step) {
    clock.tick(step);
    await flush();
    each();
  }
}

/** The peers' heartbeats arriving (what the other side's Heartbeat would send). @param {FakeDataChannel[]} channels */
const beating = (...channels) => () => channels.forEach((c) => c.receive({ kind: "heartbeat" }));

/** The data channel of a phone's call, opened. @param {Phone} phone */
function openChannel(phone) {
  const channel = /** @type {FakeDataChannel} */ (/** @type {unknown} */ (phone.call?.channel));
  assert.ok(channel, `${phone.user} has a data channel`);
  channel.open();
  return channel;
}

/** The socket a user is registered on at the hub. @param {FakeHub} hub @param {string} key */
function wsOf(hub, key) {
  const ws = hub.users.get(key)?.ws;
  assert.ok(ws, `${key} is registered`);
  return ws;
}

test("the heartbeat alone: a beat every 500 ms, silent at 1.5 s, back on any valid message, lost at lostAfter", async (t) => {
  const clock = new FakeClock().install();
  t.after(() => clock.uninstall());
  const channel = new FakeDataChannel("nbcall", {});
  channel.open();
  /** @type {string[]} */
  const seen = [];
  const start = performance.now();
  const beat = new Heartbeat({
    channel,
    pc: { getStats: async () => new Map() },
    lostAfterMs: 4000,
    onSilent: (silent) => seen.push(`${silent ? "silent" : "back"}@${performance.now() - start}`),
    onLost: () => seen.push(`lost@${performance.now() - start}`),
  });
  t.after(() => beat.stop());
  assert.deepEqual(channel.sentOf("heartbeat"), [{ kind: "heartbeat", seq: 0 }], "one beat at once");
  await pass(clock, 1000, 50);
  assert.deepEqual(channel.sentOf("heartbeat").map((m) => m.seq), [0, 1, 2]);
  await pass(clock, 500, 50); // 1.5 s of silence
  assert.deepEqual(seen, [`silent@${SILENT_AFTER_MS}`]);
  channel.receive({ kind: "chat", text: "hi" }); // any valid message is life
  assert.deepEqual(seen.slice(1), [`back@${SILENT_AFTER_MS}`]);
  await pass(clock, 4000, 50);
  assert.deepEqual(seen.slice(2), [`silent@${SILENT_AFTER_MS * 2}`, `lost@${SILENT_AFTER_MS + 4000}`]);
  beat.stop();
  const sent = channel.sent.length;
  await pass(clock, 1000);
  assert.equal(channel.sent.length, sent, "stopped: no more beats");
  assert.equal(channel.listeners.get("message")?.size, 0, "its listener is gone");
});

test("a hostile peer's messages: malformed, unknown or mistyped are ignored and counted, never thrown, and are no sign of life", async (t) => {
  const clock = new FakeClock().install();
  t.after(() => clock.uninstall());
  const channel = new FakeDataChannel("nbcall", {});
  channel.open();
  let silent = false;
  const beat = new Heartbeat({ channel, pc: { getStats: async () => new Map() }, lostAfterMs: 60_000, onSilent: (s) => (silent = s), onLost: () => {} });
  t.after(() => beat.stop());
  const garbage = ["not json", "null", "[1,2]", "42", JSON.stringify({ kind: "nope" }), JSON.stringify({ kind: "heartbeat", seq: "one" }),
    JSON.stringify({ kind: "media", audio: "yes", video: true }), JSON.stringify({ kind: "heartbeat", seq: 1.5 }), "x".repeat(100_000)];
  for (let i = 0; i < 4; i++) {
    for (const data of garbage) assert.doesNotThrow(() => channel.receiveRaw(data));
    channel.receiveRaw(new ArrayBuffer(8)); // binary: not ours either
    await pass(clock, 500);
  }
  assert.equal(beat.ignored, 4 * (garbage.length + 1));
  assert.equal(beat.received, 0);
  assert.equal(silent, true, "garbage is no sign of life");
  channel.receive({ kind: "heartbeat", seq: 7 });
  channel.receive({ kind: "heartbeat" }); // seq is optional
  assert.equal(beat.received, 2);
  assert.equal(silent, false);
});

test("a connected call: heartbeats keep it 'connected', silence makes it 'reconnecting' at ~1.5 s, back when they resume, 'lost' at lost_after", async (t) => {
  const { phone, hub, clock } = fakeBrowser(t);
  const alice = await phone("alice", { lostAfter: 3 });
  const bob = await phone("bob", { lostAfter: 60 });
  assert.equal(alice.peerStatus, "");
  await connect(alice, bob);
  assert.equal(alice.peerStatus, "connected");
  const channel = openChannel(alice);
  openChannel(bob);
  const sentBefore = channel.sentOf("heartbeat").length;
  for (let i = 0; i < 6; i++) {
    await pass(clock, HEARTBEAT_INTERVAL_MS);
    channel.receive({ kind: "heartbeat", seq: i });
  }
  assert.ok(channel.sentOf("heartbeat").length >= sentBefore + 6, "alice beats too");
  assert.equal(alice.peerStatus, "connected");
  // Bob's side goes quiet.
  const quietAt = performance.now();
  /** @type {number[]} */
  const changes = [];
  alice.subscribe(() => {
    if (alice.peerStatus === "reconnecting" && !changes.length) changes.push(performance.now() - quietAt);
  });
  await pass(clock, 1400);
  assert.equal(alice.peerStatus, "connected");
  await pass(clock, 200);
  assert.equal(alice.peerStatus, "reconnecting");
  assert.ok(changes[0] >= 1500 && changes[0] <= 1600, `reconnecting after ${changes[0]} ms`);
  assert.equal(alice.state, "connected", "the state stays connected");
  channel.receive({ kind: "heartbeat", seq: 99 });
  assert.equal(alice.peerStatus, "connected");
  // Quiet again, for good: lost after 3 s.
  const aliceWs = wsOf(hub, "alice");
  await pass(clock, 2900);
  assert.equal(alice.state, "connected");
  assert.equal(alice.peerStatus, "reconnecting");
  await pass(clock, 400);
  assert.equal(alice.state, "ended");
  assert.equal(alice.endReason, "lost");
  assert.equal(alice.peerStatus, "");
  assert.deepEqual(aliceWs.sentOf("hangup").map((m) => [m.to, m.reason]), [["bob", "lost"]], "the server is told");
  await flush();
  assert.equal(bob.state, "ended");
  assert.equal(bob.endReason, "lost");
  assert.equal(alice.heartbeat, null);
});

test("a seed call (no data channel) is watched through inbound RTP: bytes rising is life", async (t) => {
  const { phone, hub, clock } = fakeBrowser(t);
  const seed = hub.seedClient("seedy");
  const alice = await phone("alice", { lostAfter: 5 });
  alice.placeCall("seedy");
  await flush();
  assert.equal(alice.call?.channel, null);
  let bytes = 1000;
  let flowing = true;
  fakePc(alice).getStats = async () => {
    if (flowing) bytes += 5000;
    return new Map([["in-v", { type: "inbound-rtp", kind: "video", bytesReceived: bytes }], ["out", { type: "outbound-rtp", bytesSent: 1 }]]);
  };
  fakePc(alice).setConnectionState("connected");
  await flush();
  await pass(clock, 4000);
  assert.equal(alice.state, "connected");
  assert.equal(alice.peerStatus, "connected");
  flowing = false;
  await pass(clock, 2000);
  assert.equal(alice.peerStatus, "reconnecting");
  flowing = true;
  await pass(clock, 1200);
  assert.equal(alice.peerStatus, "connected");
  assert.ok(seed, "the seed page stays (nothing to say)");
});

test("the server's peer_status about the peer: reconnecting, then connected; from anyone else it is ignored", async (t) => {
  const { phone, hub } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  await connect(alice, bob);
  const ws = wsOf(hub, "alice");
  const callId = alice.callId;
  ws.serverSend({ type: "peer_status", from: "carol", from_key: "carol", call_id: callId, status: "reconnecting", grace: 15 });
  assert.equal(alice.peerStatus, "connected");
  ws.serverSend({ type: "peer_status", from: "bob", from_key: "bob", call_id: "another-call", status: "reconnecting", grace: 15 });
  assert.equal(alice.peerStatus, "connected");
  /** @type {string[]} */
  const shown = [];
  alice.subscribe(() => shown.push(alice.peerStatus));
  ws.serverSend({ type: "peer_status", from: "bob", from_key: "bob", call_id: callId, status: "reconnecting", grace: 15 });
  assert.equal(alice.peerStatus, "reconnecting");
  assert.equal(alice.state, "connected");
  ws.serverSend({ type: "peer_status", from: "bob", from_key: "bob", call_id: callId, status: "connected", grace: 15 });
  assert.equal(alice.peerStatus, "connected");
  assert.deepEqual(shown, ["reconnecting", "connected"]);
});

test("our socket drops mid-call: still connected; re-register carries the credential and announces the call; same server with the call: kept", async (t) => {
  const { phone, hub, clock } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  await connect(alice, bob);
  const first = wsOf(hub, "alice");
  const credential = hub.users.get("alice")?.credential;
  first.serverClose(1006); // the server has not noticed yet (or holds the call for the grace)
  assert.equal(alice.state, "connected");
  await pass(clock, 300);
  const second = wsOf(hub, "alice");
  assert.notEqual(second, first);
  const register = second.sentOf("register")[0];
  assert.equal(register.credential, credential);
  assert.deepEqual(register.call, { peer: "bob", call_id: alice.callId });
  assert.equal(alice.state, "connected");
  assert.equal(alice.error, "");
  // An idle page announces nothing.
  const idle = await phone("carol");
  wsOf(hub, "carol").serverClose(1006);
  await pass(clock, 300);
  assert.equal(wsOf(hub, "carol").sentOf("register")[0].call, undefined);
  assert.equal(idle.state, "idle");
});

test("same server_id and no call in registered: the server's grace ended it: ended 'disconnected'", async (t) => {
  const { phone, hub, clock } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  await connect(alice, bob);
  hub.disconnect("alice"); // the server gave up on us: bob is told, the call is gone
  await flush();
  assert.equal(alice.state, "connected");
  await pass(clock, 300);
  const registered = wsOf(hub, "alice");
  assert.equal(registered.sentOf("register").length, 1);
  assert.equal(alice.serverId, "server-1");
  assert.equal(alice.state, "ended");
  assert.equal(alice.endReason, "disconnected");
});

test("the server restarts mid-call: both keep the call, re-register within ~1 s of it coming back, announce it, and hanging up works again", async (t) => {
  const { phone, hub, clock } = fakeBrowser(t);
  const alice = await phone("alice", { lostAfter: 60 });
  const bob = await phone("bob", { lostAfter: 60 });
  await connect(alice, bob);
  const media = beating(openChannel(alice), openChannel(bob)); // media flows throughout
  const callId = alice.callId;
  hub.restart({ down: true }); // killed; not listening for a while
  await pass(clock, 1000, 100, media);
  assert.equal(alice.state, "connected");
  assert.equal(bob.state, "connected");
  hub.down = false; // back, knowing nobody
  const backAt = performance.now();
  /** @type {Record<string, number>} */
  const registeredAfter = {};
  for (const p of [alice, bob]) p.signaling.onStatus = ((orig) => (/** @type {any} */ status, /** @type {any} */ detail) => {
    if (status === "registered" && !(p.user in registeredAfter)) registeredAfter[p.user] = performance.now() - backAt;
    orig(status, detail);
  })(p.signaling.onStatus);
  await pass(clock, 2500, 100, media);
  assert.ok(registeredAfter.alice <= URGENT_MAX_RETRY_MS + 100 && registeredAfter.bob <= URGENT_MAX_RETRY_MS + 100, JSON.stringify(registeredAfter));
  assert.equal(alice.serverId, "server-2");
  assert.equal(alice.state, "connected");
  assert.equal(bob.state, "connected");
  assert.equal(alice.peerStatus, "connected");
  assert.equal(bob.peerStatus, "connected");
  assert.deepEqual(wsOf(hub, "alice").sentOf("register")[0].call, { peer: "bob", call_id: callId });
  assert.deepEqual(wsOf(hub, "bob").sentOf("register")[0].call, { peer: "alice", call_id: callId });
  assert.equal(hub.calls.get("alice")?.id, callId, "the restarted server has the call back");
  assert.equal(alice.hangup(), "");
  await flush();
  assert.equal(bob.state, "ended");
  assert.equal(bob.endReason, "hangup");
});

test("a restart where the peer never announces: kept on the heartbeat, lost when the media is dead too; the server's no_call is no error", async (t) => {
  const { phone, hub, clock } = fakeBrowser(t);
  const alice = await phone("alice", { lostAfter: 3 });
  const bob = await phone("bob", { lostAfter: 60 });
  await connect(alice, bob);
  const channel = openChannel(alice);
  bob.close(); // bob's page is gone with the server
  hub.restart();
  await pass(clock, 1000);
  channel.receive({ kind: "heartbeat", seq: 1 }); // a last beat in flight
  assert.equal(alice.state, "connected");
  assert.equal(alice.serverId, "server-2");
  await pass(clock, 3200);
  assert.equal(alice.state, "ended");
  assert.equal(alice.endReason, "lost");
  assert.equal(alice.error, "", "the restarted server's no_call for our hang-up is not shown");
});

test("a call still ringing when the server restarts ends 'disconnected' (no server keeps a ringing call)", async (t) => {
  const { phone, hub, clock } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  alice.placeCall("bob");
  await flush();
  assert.equal(bob.state, "ringing");
  hub.restart();
  await pass(clock, 1000);
  assert.equal(alice.state, "ended");
  assert.equal(alice.endReason, "disconnected");
  assert.equal(bob.state, "ended");
});

test("the widget: peer_status and lost_after as traits; the kernel transport pings every second while its socket is open", async (t) => {
  const env = installGlobals();
  const clock = new FakeClock().install();
  t.after(() => {
    clock.uninstall();
    env.restore();
  });
  const model = new FakeModel({
    user: "alice", server: "ws://127.0.0.1:9900", _credential: "cred-a", _replaces: false, ice_servers: [],
    ice_transport_policy: "all", connect_via: "kernel", audio: true, video: true, camera: "", microphone: "",
    screen_share: false, state: "registering", peers: [], messages: [], lost_after: 4, peer_status: "",
  });
  const cleanup = widget.initialize({ model: /** @type {any} */ (model) });
  await flush();
  const id = model.sentOf("kernel_socket_open")[0].content.id;
  const pings = () => model.sentOf("kernel_socket_ping").filter((m) => m.content.id === id).length;
  assert.equal(pings(), 1, "one at once");
  clock.tick(3 * PING_INTERVAL_MS);
  assert.equal(pings(), 4);
  const phone = /** @type {any} */ (globalThis).__nbcall.phones.alice;
  assert.equal(phone.lostAfterMs, 4000);
  model.set("lost_after", 2.5);
  assert.equal(phone.lostAfterMs, 2500);
  model.custom({ kind: "kernel_socket_closed", id, code: 1006, reason: "the page went silent" });
  clock.tick(3 * PING_INTERVAL_MS);
  assert.equal(pings(), 4, "no pings for a closed socket");
  assert.equal(model.get("peer_status"), "");
  cleanup();
});
