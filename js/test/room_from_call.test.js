// A connected 1:1 call that becomes a room (js/room/from_call.js, docs/rooms.md "From a
// call"): the invite without `room`, both pages moving into the room with no hang-up, the
// call's RTCPeerConnection adopted as the mesh link (no new connection, no renegotiation)
// and its camera as the room's (nothing reopens), the third joining, a description lost in
// the move sent again, a hang-up racing the move, the preview, and what is refused.

import { test } from "node:test";
import assert from "node:assert/strict";
import { flush, FakeWebSocket, FakePeerConnection } from "./fakes/index.js";
import { connect, fakePc } from "./helpers.js";
import { roomBrowser, linkPc, connectAll, memberKeys } from "./room_helpers.js";
import { ErrorCode } from "../protocol.js";
import { PageError } from "../messages.js";
import { codeOf } from "../failure.js";

/** @typedef {import("../call/phone.js").Phone} Phone */

/** The socket a phone registered on. @param {Phone} p */
function socketOf(p) {
  const ws = FakeWebSocket.instances.filter((w) => w.sent.some((m) => m.type === "register" && m.username === p.user)).pop();
  if (!ws) throw new Error(`no socket for ${p.user}`);
  return ws;
}

/** alice and bob in a connected call, carol online. @param {import("node:test").TestContext} t */
async function threeWithACall(t) {
  const browser = roomBrowser(t);
  const [alice, bob, carol] = [await browser.phone("alice"), await browser.phone("bob"), await browser.phone("carol")];
  await connect(alice, bob);
  return { ...browser, alice, bob, carol };
}

test("invite during a call: both move into one room, the call's connection and camera carry on", async (t) => {
  const { alice, bob, carol, env, hub } = await threeWithACall(t);
  const [alicePc, bobPc] = [fakePc(alice), fakePc(bob)];
  const [aliceCamera, bobCamera] = [alice.localStream, bob.localStream];
  const opened = env.mediaDevices.calls.length;
  const pcs = FakePeerConnection.instances.length;
  /** @type {string[]} */
  const topology = [];
  alice.room.events.on("topology", (tp) => topology.push(tp));
  let callEnded = 0;
  bob.on("callend", () => callEnded++);
  // What Python would see on each change (widget.js syncModel): never the call ended and no room.
  /** @type {Set<string>} */
  const shown = new Set();
  for (const p of [alice, bob]) {
    const show = () => shown.add(`${p.state} ${p.room.name ? p.room.topology : p.call ? "p2p" : ""} ${p.endReason}`);
    p.subscribe(show);
    p.room.events.on("change", show);
  }
  assert.equal(alice.room.invite("carol"), "");
  assert.deepEqual(socketOf(alice).sentOf("room_invite"), [{ type: "room_invite", to: "carol" }], "no room: the call becomes one");
  await flush(10);
  const room = alice.room.name;
  assert.match(room, /^call-/);
  assert.equal(bob.room.name, room);
  for (const [p, peer, pc, camera] of /** @type {const} */ ([[alice, bob, alicePc, aliceCamera], [bob, alice, bobPc, bobCamera]])) {
    assert.equal(p.state, "ended");
    assert.equal(p.endReason, "moved");
    assert.equal(p.call, null);
    assert.equal(p.room.topology, "mesh");
    assert.equal(linkPc(p, peer), pc, `${p.user}: the call's connection is the link`);
    assert.equal(pc.closed, false);
    assert.equal(p.room.localStream, camera, `${p.user}: the call's camera is the room's`);
    assert.ok(camera?.getTracks().every((tr) => tr.readyState === "live"));
    assert.deepEqual(socketOf(p).sentOf("hangup"), [], "nobody hangs up");
    assert.equal(pc.channels[0].readyState, "closed", "the call's data channel is not the room's");
  }
  assert.equal(bob.room.mesh?.links.get("alice")?.call.polite, true, "the callee stays polite");
  assert.equal(alice.room.mesh?.links.get("bob")?.call.polite, false, "the caller offers, as in the call");
  assert.equal(FakePeerConnection.instances.length, pcs, "no new connection");
  assert.equal(env.mediaDevices.calls.length, opened, "no camera reopened");
  assert.equal(callEnded, 1, "in-call features let go of the call once");
  assert.deepEqual(topology, ["mesh"]);
  assert.deepEqual([...shown], ["ended mesh moved"]);
  assert.deepEqual(alice.room.participants().map((p) => [p.name, p.state]), [["bob", "connected"], ["carol", "ringing"]]);
  assert.deepEqual(bob.room.participants().map((p) => [p.name, p.state]), [["alice", "connected"], ["carol", "ringing"]]);
  assert.deepEqual(carol.room.invitation, { room, from: "alice", fromKey: "alice" });
  assert.deepEqual(hub.rooms.log.filter((m) => m.type === "offer"), [], "nothing renegotiated");
  // carol accepts: she offers to both, each gets a new link to her; the old one is untouched.
  assert.equal(carol.room.acceptInvite(), "");
  await flush(10);
  assert.deepEqual(memberKeys(carol), ["alice", "bob"]);
  assert.deepEqual(memberKeys(alice), ["bob", "carol"]);
  assert.deepEqual(memberKeys(bob), ["alice", "carol"]);
  await connectAll(alice, bob, carol);
  for (const p of [alice, bob, carol]) {
    assert.ok(p.room.participants().every((m) => m.state === "connected"), p.user);
    assert.equal(p.room.streams().size, 2, p.user);
  }
  assert.equal(linkPc(alice, bob), alicePc);
  assert.deepEqual(hub.rooms.log.filter((m) => m.type === "offer").map((m) => [m.from, m.to]).sort(), [["carol", "alice"], ["carol", "bob"]]);
  // Leaving ends it the room's way: the camera stops, the adopted connection closes.
  alice.room.leave();
  assert.equal(alicePc.closed, true);
  assert.ok(aliceCamera?.getTracks().every((tr) => tr.readyState === "ended"));
  await flush(10);
  assert.deepEqual(memberKeys(bob), ["carol"]);
});

test("the adopted link negotiates through the room from now on", async (t) => {
  const { alice, bob } = await threeWithACall(t);
  alice.room.invite("carol");
  await flush(10);
  const room = alice.room.name;
  linkPc(alice, bob).restartIce();
  await flush(10);
  const offer = socketOf(alice).sentOf("offer").at(-1);
  assert.equal(offer?.room, room);
  assert.equal(offer?.to, "bob");
  assert.equal(socketOf(bob).sentOf("answer").at(-1)?.room, room);
  assert.equal(linkPc(alice, bob).signalingState, "stable");
  assert.equal(bob.room.participants()[0].state, "connected");
});

test("an offer the server refused as the call moved is sent again through the room", async (t) => {
  const { alice, bob } = await threeWithACall(t);
  // bob's offer left just as the call moved: the server refuses it (no_call), its answer never comes.
  const bobPc = fakePc(bob);
  await bobPc.setLocalDescription();
  assert.equal(bobPc.signalingState, "have-local-offer");
  alice.room.invite("carol");
  await flush(10);
  const room = bob.room.name;
  const again = socketOf(bob).sentOf("offer").at(-1);
  assert.deepEqual(again, { type: "offer", sdp: bobPc.localDescription?.toJSON(), to: "alice", room });
  await flush(10);
  assert.equal(bobPc.signalingState, "stable", "alice answered it through the room");
  assert.equal(socketOf(alice).sentOf("answer").at(-1)?.room, room);
  // A plain signal of the old call, late: refused by the server, no error shown in the room.
  /** @type {string[]} */
  const errors = [];
  bob.room.events.on("error", (failure) => errors.push(failure.code));
  bob.signaling.send({ type: "candidate", to: "alice", candidate: { candidate: "c" } });
  await flush(10);
  assert.deepEqual(errors, []);
  assert.equal(bob.error, "");
});

test("hanging up as the call moves: the hang-up stands, the room goes on without us", async (t) => {
  const { alice, bob } = await threeWithACall(t);
  alice.room.invite("carol");
  bob.hangup(); // reaches the server after alice's invite moved the call
  await flush(10);
  assert.equal(bob.state, "ended");
  assert.equal(bob.endReason, "hangup");
  assert.equal(bob.room.name, "");
  assert.equal(bob.error, "", "the server's no_call for the late hangup is no news");
  assert.equal(socketOf(bob).sentOf("room_leave").length, 1, "out of the room the server put us in");
  assert.equal(alice.room.name !== "", true);
  assert.deepEqual(memberKeys(alice), ["carol"], "bob left; carol still rings");
});

test("with the preview on, the room sends its own clone and the adopted link switches to it", async (t) => {
  const { alice, bob } = await threeWithACall(t);
  alice.setPreview(true);
  await flush(10);
  alice.hangup();
  await flush(10);
  await connect(alice, bob);
  const preview = alice.localStream;
  assert.equal(preview, alice.media.previewed?.stream, "the call sends the preview");
  alice.room.invite("carol");
  await flush(20);
  const sent = alice.room.localStream;
  assert.ok(sent && sent !== preview, "a clone: the preview stays the phone's");
  const senders = linkPc(alice, bob).getSenders().map((s) => s.track);
  assert.deepEqual(senders.map((tr) => tr?.id).sort(), sent.getTracks().map((tr) => tr.id).sort());
  alice.setPreview(false);
  assert.ok(sent.getTracks().every((tr) => tr.readyState === "live"), "turning the preview off does not cut the room");
});

test("a screen shared in the call stops with it: the room sends the camera again", async (t) => {
  const { alice, bob, env } = await threeWithACall(t);
  const screen = /** @type {MediaStreamTrack} */ (/** @type {unknown} */ ((await env.mediaDevices.getDisplayMedia()).getTracks()[0]));
  await alice.media.replaceLocalTrack(alice.media.localTrack("video"), screen);
  alice.on("callend", () => screen.stop()); // as the in-call features do (devices.js callEnded)
  alice.room.invite("carol");
  await flush(20);
  const video = alice.room.localStream?.getVideoTracks() || [];
  assert.equal(video.length, 1);
  assert.notEqual(video[0], screen);
  assert.equal(video[0].readyState, "live");
  const sent = linkPc(alice, bob).getSenders().map((s) => s.track).filter((tr) => tr && tr.kind === "video");
  assert.deepEqual(sent, video, "the adopted link sends the camera, not the stopped screen");
});

test("what the page refuses, and what the server refuses, leave the call as it was", async (t) => {
  const { phone, alice, bob, carol } = await threeWithACall(t);
  const dave = await phone("dave");
  assert.equal(codeOf(alice.room.invite("bob")), PageError.ALREADY_MEMBER);
  assert.equal(codeOf(alice.room.invite("alice")), ErrorCode.SELF_CALL);
  assert.equal(codeOf(alice.room.invite("nobody")), ErrorCode.UNKNOWN_PEER);
  /** @type {string[]} */
  const errors = [];
  alice.room.events.on("error", (failure) => errors.push(failure.code));
  await connect(carol, dave);
  assert.equal(alice.room.invite("carol"), "");
  await flush(10);
  assert.equal(errors[0], ErrorCode.BUSY);
  assert.equal(alice.state, "connected");
  assert.equal(alice.room.name, "");
  // Not connected yet: nothing to carry over.
  alice.hangup();
  await flush(10);
  alice.placeCall("bob");
  assert.equal(codeOf(alice.room.invite("carol")), PageError.NOT_CONNECTED);
  await flush(10);
  bob.accept();
  await flush(10);
  assert.equal(alice.state, "connecting");
  assert.equal(codeOf(alice.room.invite("carol")), PageError.NOT_CONNECTED);
});
