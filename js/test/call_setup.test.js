// Call set-up: what runs beside what, so that a call connects quickly.  The caller's offer
// and candidates are made while the callee rings (held until it accepts), neither side's
// offer or answer waits for its camera, and a preview (opt-in) keeps the camera open.

import { test } from "node:test";
import assert from "node:assert/strict";
import { flush } from "./fakes/index.js";

/** @typedef {import("./fakes/index.js").FakeWebSocket} FakeWebSocket */
import { fakeBrowser, fakePc, connect } from "./helpers.js";

test("the caller's offer and candidates are made while its camera opens, held while the callee rings", async (t) => {
  const { phone, env, hub } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  /** @type {() => void} */
  let cameraReady = () => {};
  env.mediaDevices.slow = new Promise((resolve) => (cameraReady = resolve));
  alice.placeCall("bob");
  await flush();
  assert.equal(bob.state, "ringing");
  const call = alice.call;
  assert.ok(call && call.heldBack && call.heldBack.some((m) => m.type === "offer"), "the offer is made without the camera");
  const aliceWs = /** @type {FakeWebSocket} */ (hub.users.get("alice")?.ws);
  assert.equal(aliceWs.sentOf("offer").length, 0, "and held");
  env.mediaDevices.slow = null;
  cameraReady();
  await flush();
  assert.equal(alice.call, call);
  assert.deepEqual(fakePc(alice).getSenders().map((s) => s.track && s.track.kind), ["audio", "video"], "the camera joined it");
});

test("accepted while the caller's camera is still opening: the offer is made at once, the camera joins it", async (t) => {
  const { phone, env, hub } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  /** @type {() => void} */
  let cameraReady = () => {};
  env.mediaDevices.slow = new Promise((resolve) => (cameraReady = resolve));
  alice.placeCall("bob");
  await flush();
  const callOf = () => alice.call;
  env.mediaDevices.slow = null;
  bob.accept(); // at once, as an on_incoming callback does
  await flush();
  assert.equal(alice.state, "connecting");
  const call = callOf();
  assert.ok(call, "accepted: the offer does not wait for the camera");
  assert.equal(call.heldBack, null);
  const aliceWs = /** @type {FakeWebSocket} */ (hub.users.get("alice")?.ws);
  assert.equal(aliceWs.sentOf("offer").length, 1);
  assert.equal(fakePc(bob).remoteDescription?.type, "offer", "bob got the offer before alice's camera opened");
  assert.equal(alice.localStream, null, "the camera is not open yet");
  const senders = fakePc(alice).getSenders();
  assert.equal(senders.length, 2, "audio and video announced");
  assert.ok(senders.every((s) => s.track === null));
  cameraReady();
  await flush();
  assert.ok(alice.localStream);
  assert.equal(callOf(), call, "the same connection");
  assert.deepEqual(
    fakePc(alice).getSenders().map((s) => s.track && s.track.kind),
    ["audio", "video"],
    "the camera's tracks went into the announced senders",
  );
  assert.equal(fakePc(alice).getSenders().length, 2, "no new transceivers");
  assert.equal(aliceWs.sentOf("offer").length, 1, "no renegotiation");
});

test("the callee answers while its camera opens; the tracks go in when it opens, without a new round", async (t) => {
  const { phone, env, hub } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  alice.placeCall("bob");
  await flush();
  /** @type {() => void} */
  let cameraReady = () => {};
  env.mediaDevices.slow = new Promise((resolve) => (cameraReady = resolve));
  bob.accept();
  await flush();
  const bobWs = /** @type {FakeWebSocket} */ (hub.users.get("bob")?.ws);
  assert.equal(bobWs.sentOf("answer").length, 1, "answered before the camera opened");
  assert.equal(bob.localStream, null);
  const answered = fakePc(bob).getTransceivers().filter((tr) => tr.direction === "sendrecv");
  assert.equal(answered.length, 2, "the answer says bob sends audio and video");
  assert.ok(answered.every((tr) => tr.sender.track === null && tr.sender.streams && tr.sender.streams.length === 1));
  env.mediaDevices.slow = null;
  cameraReady();
  await flush();
  assert.ok(bob.localStream);
  assert.deepEqual(answered.map((tr) => tr.sender.track && tr.sender.track.kind).sort(), ["audio", "video"]);
  assert.equal(bobWs.sentOf("offer").length, 0, "no renegotiation");
  assert.equal(bob.error, "");
});

test("a camera that cannot open after the offer left: that kind is no longer announced, and the widget says why", async (t) => {
  const { phone, env, hub } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  /** @type {() => void} */
  let cameraDone = () => {};
  env.mediaDevices.slow = new Promise((resolve) => (cameraDone = resolve));
  alice.placeCall("bob");
  await flush();
  bob.accept();
  await flush();
  const aliceWs = /** @type {FakeWebSocket} */ (hub.users.get("alice")?.ws);
  assert.equal(aliceWs.sentOf("offer").length, 1);
  env.mediaDevices.deny = Object.assign(new Error("denied"), { name: "NotAllowedError" });
  cameraDone();
  await flush();
  assert.match(alice.error, /permission denied/);
  // A browser fires negotiationneeded on the direction change: one more offer, receive-only.
  assert.deepEqual(fakePc(alice).getTransceivers().map((tr) => tr.direction), ["recvonly", "recvonly"]);
});

test("no offer, answer or candidate reaches a ringing callee before it accepts", async (t) => {
  const { phone, hub } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  alice.placeCall("bob");
  await flush();
  fakePc(alice).gather("host"); // candidates gathered while bob rings
  await flush();
  const bobWs = /** @type {FakeWebSocket} */ (hub.users.get("bob")?.ws);
  const received = () => bobWs.received.map((m) => m.type);
  assert.equal(bob.state, "ringing");
  assert.deepEqual(received().filter((type) => ["offer", "answer", "candidate"].includes(type)), []);
  assert.equal(bob.pc, null, "the ringing callee has no peer connection");
  bob.accept();
  await flush();
  assert.deepEqual(received().filter((type) => ["offer", "candidate"].includes(type)), ["offer", "candidate"], "then all of it, in order");
});

test("preview: the camera opens at once and stays open between calls; a call uses it without asking again", async (t) => {
  const { phone, env } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  alice.setPreview(true);
  await flush();
  assert.equal(env.mediaDevices.calls.length, 1);
  const preview = alice.localStream;
  assert.ok(preview, "shown between calls");
  await connect(alice, bob);
  assert.equal(alice.localStream, preview, "the call sends the preview's tracks");
  assert.equal(env.mediaDevices.calls.length, 2, "only bob opened a camera for the call");
  assert.deepEqual(fakePc(alice).getSenders().map((s) => s.track), preview.getTracks());
  alice.hangup();
  await flush();
  assert.equal(alice.localStream, preview, "still open after the call");
  assert.ok(preview.getTracks().every((track) => track.readyState === "live"));
  await connect(alice, bob);
  assert.equal(env.mediaDevices.calls.length, 3, "the second call too: only bob's camera");
  alice.hangup();
  await flush();
  alice.setPreview(false);
  assert.equal(alice.localStream, null);
  assert.ok(preview.getTracks().every((track) => track.readyState === "ended"), "turned off: the camera closes");
});

test("preview off (the default): no camera between calls", async (t) => {
  const { phone, env } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  await connect(alice, bob);
  const tracks = alice.localStream ? alice.localStream.getTracks() : [];
  alice.hangup();
  await flush();
  assert.equal(alice.localStream, null);
  assert.ok(tracks.length && tracks.every((track) => track.readyState === "ended"));
  assert.equal(env.mediaDevices.calls.length, 2);
});

test("preview turned off during a call: the call keeps the camera until it ends", async (t) => {
  const { phone } = fakeBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  alice.setPreview(true);
  await flush();
  await connect(alice, bob);
  const tracks = alice.localStream ? alice.localStream.getTracks() : [];
  alice.setPreview(false);
  assert.ok(tracks.every((track) => track.readyState === "live"), "still sending");
  alice.hangup();
  await flush();
  assert.ok(tracks.every((track) => track.readyState === "ended"));
  assert.equal(alice.localStream, null);
});
