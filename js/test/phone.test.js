// The Phone against a fake signaling server: names and keys, calls placed, answered,
// cancelled, hung up, crossing (glare), and reconnects with the credential.

import { test } from "node:test";
import assert from "node:assert/strict";
import { flush, FakeWebSocket } from "./fakes/index.js";
import { fakeBrowser, fakePc, connect } from "./helpers.js";
import { ErrorCode } from "../protocol.js";
import { codeOf } from "../failure.js";

test("Straße leaves and STRASSE joins in one presence batch: one user, and calling the stale name connects", async (t) => {
  const { phone } = fakeBrowser(t);
  const alice = await phone("alice");
  const ws = FakeWebSocket.last();
  // The hub in this test is played by hand: the batch is what nbcall's server sends.
  ws.serverSend({ type: "presence", joined: ["Straße"], joined_keys: ["strasse"], left: [], left_keys: [], online: 2 });
  assert.deepEqual(alice.peers.names(), ["Straße"]);
  assert.equal(alice.placeCall("Straße"), ""); // the page still lists the stale name
  ws.serverSend({ type: "presence", joined: ["STRASSE"], joined_keys: ["strasse"], left: [], left_keys: [], online: 2 });
  assert.deepEqual(alice.peers.names(), ["STRASSE"]);
  const invite = ws.sentOf("invite")[0];
  assert.equal(invite.to, "Straße");
  ws.serverSend({ type: "accept", from: "STRASSE", from_key: "strasse", call_id: invite.call_id });
  assert.equal(alice.state, "connecting");
  assert.equal(alice.peerKey, "strasse");
});

test("the page keeps no name rule of its own: names are one user when the server's keys say so", async (t) => {
  const { phone } = fakeBrowser(t);
  const alice = await phone("alice");
  const ws = FakeWebSocket.last();
  ws.serverSend({ type: "users", users: ["alice", "Bob", "BOB"], keys: ["alice", "bob", "bob2"], online: 3 });
  assert.deepEqual(alice.peers.names(), ["BOB", "Bob"]); // different keys: two users, however alike
  ws.serverSend({ type: "presence", joined: [], joined_keys: [], left: ["Bob"], left_keys: ["bob"], online: 2 });
  assert.deepEqual(alice.peers.names(), ["BOB"]);
  assert.equal(codeOf(alice.placeCall("Bob")), ErrorCode.UNKNOWN_PEER);
  assert.equal(codeOf(alice.placeCall("alice")), ErrorCode.SELF_CALL);
});

test("registered carries our key: we are left out of our own list", async (t) => {
  const { phone, hub } = fakeBrowser(t);
  await phone("bob");
  const alice = await phone("ALICE");
  assert.equal(alice.key, "alice");
  assert.equal(alice.state, "idle");
  assert.deepEqual(alice.peers.names(), ["bob"]);
  assert.equal(hub.users.size, 2);
});

test("a call from placing to connected to hung up, with its events", async (t) => {
  const { phone } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  /** @type {string[]} */
  const seen = [];
  alice.on("state", (to, from) => seen.push(`${from}>${to}`));
  alice.on("callstart", () => seen.push("callstart"));
  alice.on("connected", () => seen.push("connected"));
  alice.on("callend", () => seen.push("callend"));
  await connect(alice, bob);
  assert.equal(alice.state, "connected");
  assert.equal(bob.state, "connected");
  assert.equal(typeof alice.stats.setup_ms, "number");
  assert.equal(alice.hangup(), "");
  await flush();
  assert.equal(alice.endReason, "hangup");
  assert.equal(bob.state, "ended");
  assert.equal(bob.endReason, "hangup");
  assert.deepEqual(seen, ["idle>calling", "callstart", "calling>connecting", "connecting>connected", "connected", "callend", "connected>ended"]);
  assert.equal(alice.pc, null);
  assert.equal(alice.localStream, null);
});

test("the caller prepares while it rings: camera, offer and candidates held until accepted", async (t) => {
  const { phone, hub } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  alice.placeCall("bob");
  await flush();
  assert.equal(bob.state, "ringing");
  assert.equal(bob.incoming, "alice");
  assert.ok(alice.localStream, "the caller's camera is open while it rings");
  assert.equal(bob.localStream, null, "a ringing widget never opens its camera");
  const call = alice.call;
  assert.ok(call && call.heldBack && call.heldBack.length >= 1, "the offer waits");
  const aliceWs = /** @type {FakeWebSocket} */ (hub.users.get("alice")?.ws);
  assert.equal(aliceWs.sentOf("offer").length, 0);
  bob.accept();
  await flush();
  assert.equal(aliceWs.sentOf("offer").length, 1);
  assert.equal(alice.state, "connecting");
  assert.equal(bob.state, "connecting");
  assert.equal(fakePc(bob).remoteDescription.type, "offer");
});

test("cancel while ringing: both sides end 'cancelled', the callee never opened a camera", async (t) => {
  const { phone, env } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  alice.placeCall("bob");
  await flush();
  const aliceTracks = alice.localStream ? alice.localStream.getTracks() : [];
  assert.equal(alice.hangup(), "");
  await flush();
  assert.equal(alice.state, "ended");
  assert.equal(alice.endReason, "cancelled");
  assert.equal(bob.state, "ended");
  assert.equal(bob.endReason, "cancelled");
  assert.ok(aliceTracks.every((track) => track.readyState === "ended"), "the caller's camera is closed again");
  assert.equal(env.mediaDevices.calls.length, 1, "only the caller asked for a camera");
});

test("the callee rejects: the caller ends 'rejected'", async (t) => {
  const { phone } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  alice.placeCall("bob");
  await flush();
  assert.equal(bob.reject(), "");
  await flush();
  assert.equal(alice.endReason, "rejected");
  assert.equal(bob.endReason, "rejected");
});

test("remote hang-up while connecting ends the call here and releases its media", async (t) => {
  const { phone } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  alice.placeCall("bob");
  await flush();
  bob.accept();
  await flush();
  assert.equal(alice.state, "connecting");
  const pc = fakePc(alice);
  const tracks = alice.localStream ? alice.localStream.getTracks() : [];
  bob.hangup();
  await flush();
  assert.equal(alice.state, "ended");
  assert.equal(alice.endReason, "hangup");
  assert.ok(pc.closed);
  assert.ok(tracks.length && tracks.every((track) => track.readyState === "ended"));
});

test("glare: both call each other at once; the server rings one call and refuses the other as busy", async (t) => {
  const { phone, hub } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  assert.equal(alice.placeCall("bob"), "");
  assert.equal(bob.placeCall("alice"), "");
  await flush();
  // The server took alice's invite first: bob's own invite is refused, and bob's page,
  // already calling, does not ring for alice's.
  assert.equal(bob.state, "ended");
  assert.equal(bob.endReason, "busy");
  assert.equal(bob.localStream, null);
  assert.equal(alice.state, "calling");
  // Nobody answers alice's call: the server's ring timeout ends it.
  hub.endCall("bob", "timeout");
  await flush();
  assert.equal(alice.state, "ended");
  assert.equal(alice.endReason, "timeout");
});

test("an invite while in a call is ignored here (the server answers busy)", async (t) => {
  const { phone } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  await phone("carol");
  await connect(alice, bob);
  const ws = FakeWebSocket.instances.find((w) => w.sent.some((m) => m.type === "register" && m.username === "alice"));
  ws?.serverSend({ type: "invite", from: "carol", from_key: "carol", call_id: "x" });
  assert.equal(alice.state, "connected");
  assert.equal(alice.peer, "bob");
  // Messages about the call from anyone but the peer change nothing.
  ws?.serverSend({ type: "hangup", from: "carol", from_key: "carol", call_id: "x", reason: "hangup" });
  assert.equal(alice.state, "connected");
});

test("reconnect with the credential: the socket drops, re-registering keeps the call", async (t) => {
  const { phone, hub, clock } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  await connect(alice, bob);
  const first = /** @type {FakeWebSocket} */ (hub.users.get("alice")?.ws);
  const credential = hub.users.get("alice")?.credential; // the server gave us one in `registered`
  const call = alice.call;
  first.serverClose(1006); // the page's socket died; the server has not noticed yet
  assert.equal(alice.state, "connected", "a call in progress is not interrupted by a reconnect");
  clock.tick(300);
  await flush();
  const second = /** @type {FakeWebSocket} */ (hub.users.get("alice")?.ws);
  assert.notEqual(second, first);
  const register = second.sentOf("register")[0];
  assert.ok(credential);
  assert.equal(register.credential, credential);
  assert.equal(alice.state, "connected");
  assert.equal(alice.call, call);
  assert.equal(alice.signaling.registered, true);
});

test("reconnect with the credential: a call the server ended meanwhile ends here 'disconnected'", async (t) => {
  const { phone, hub, clock } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  await connect(alice, bob);
  hub.disconnect("alice"); // the server noticed: bob is told, the call is gone
  await flush();
  assert.equal(bob.endReason, "disconnected");
  assert.equal(alice.state, "connected");
  clock.tick(300);
  await flush();
  assert.equal(alice.state, "ended");
  assert.equal(alice.endReason, "disconnected");
  assert.equal(alice.signaling.registered, true);
});

test("messages sent while the socket is down go out after re-registering", async (t) => {
  const { phone, hub, clock } = fakeBrowser(t);
  const alice = await phone("alice");
  await phone("bob");
  const first = /** @type {FakeWebSocket} */ (hub.users.get("alice")?.ws);
  first.serverClose(1006);
  assert.equal(alice.state, "registering", "the first retry is quiet");
  alice.signaling.send({ type: "list" });
  clock.tick(300);
  await flush();
  const second = /** @type {FakeWebSocket} */ (hub.users.get("alice")?.ws);
  assert.deepEqual(second.sent.map((m) => m.type).slice(0, 2), ["register", "list"]);
  assert.equal(alice.state, "idle");
});

test("a seed client's plain offer rings like a call; answering sends no accept", async (t) => {
  const { phone } = fakeBrowser(t);
  const alice = await phone("alice");
  const ws = FakeWebSocket.last();
  ws.serverSend({ type: "offer", from: "seedy", from_key: "seedy", sdp: { type: "offer", sdp: "v=0" } });
  assert.equal(alice.state, "ringing");
  assert.equal(alice.seedCall, true);
  assert.equal(alice.pendingSignals.length, 1);
  alice.accept();
  await flush();
  assert.equal(ws.sentOf("accept").length, 0);
  assert.equal(ws.sentOf("answer").length, 1);
  assert.equal(ws.sentOf("answer")[0].to, "seedy");
});

/** Let `ms` pass in steps, letting the network deliver in between. @param {import("./fakes/index.js").FakeClock} clock @param {number} ms */
async function pass(clock, ms) {
  for (let t = 0; t < ms; t += 100) {
    clock.tick(100);
    await flush();
  }
}

test("name_taken right after a replaced widget is retried: the old one leaves, the new one registers", async (t) => {
  const { phone, clock } = fakeBrowser(t);
  const old = await phone("alice");
  const again = await phone("alice", { replaces: true, credential: "another" });
  assert.equal(again.state, "registering");
  assert.ok(again.nameRetry, "a retry is scheduled");
  await pass(clock, 1000);
  old.close();
  await pass(clock, 500);
  assert.equal(again.state, "idle");
});

test("name_taken is retried only for a few seconds, then the widget says why", async (t) => {
  const { phone, clock } = fakeBrowser(t);
  await phone("alice");
  const again = await phone("alice", { replaces: true, credential: "another" });
  await pass(clock, 7000);
  assert.equal(again.state, "error");
  assert.match(again.error, /cannot register as alice: name_taken/);
});

test("replaced by another page: the call ends and the widget says so", async (t) => {
  const { phone } = fakeBrowser(t);
  const alice = await phone("alice");
  const ws = FakeWebSocket.last();
  ws.serverClose(4001, "replaced");
  assert.equal(alice.state, "error");
  assert.equal(alice.endReason, "replaced");
  assert.match(alice.error, /taken over/);
});

test("calling a seed client: accepted at once by the server, a plain offer, no data channel", async (t) => {
  const { phone, hub } = fakeBrowser(t);
  const seed = hub.seedClient("seedy");
  /** @type {any[]} what the seed page receives */
  const received = [];
  seed.onmessage = (event) => received.push(JSON.parse(event.data));
  const alice = await phone("alice");
  assert.deepEqual(alice.peers.names(), ["seedy"]);
  alice.placeCall("seedy");
  await flush();
  assert.equal(alice.seedCall, true);
  assert.equal(alice.state, "connecting");
  assert.equal(alice.call?.channel, null);
  const offers = received.filter((m) => m.type === "offer");
  assert.equal(offers.length, 1);
  assert.deepEqual(Object.keys(offers[0]), ["type", "from", "sdp"], "the seed's shape, no call_id, no key");
});
