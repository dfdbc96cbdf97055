// PeerCall: perfect negotiation when both sides offer at once, candidates that arrive
// before their description, and the held offer of a ringing call.

import { test } from "node:test";
import assert from "node:assert/strict";
import { installGlobals, FakeClock, FakeMediaStream, FakeTrack, flush } from "./fakes/index.js";
import { PeerCall, inDescription } from "../call/peer_call.js";

/** @typedef {import("../call/peer_call.js").Signal} Signal */
/** @typedef {import("./fakes/index.js").FakePeerConnection} FakePeerConnection */

/** @param {import("node:test").TestContext} t */
function pair(t, { held = false } = {}) {
  const env = installGlobals();
  const clock = new FakeClock().install();
  /** @type {Signal[]} */
  const toPolite = [];
  /** @type {Signal[]} */
  const toImpolite = [];
  /** @type {unknown[]} */
  const errors = [];
  /** @param {boolean} polite @param {Signal[]} out */
  const make = (polite, out) =>
    new PeerCall({
      polite,
      send: (m) => out.push(m),
      onRemoteStream: () => {},
      onConnectionState: () => {},
      onFailed: () => {},
      onError: (err) => errors.push(err),
      dataChannel: true,
      held: held && !polite,
    });
  const impolite = make(false, toPolite); // the caller
  const polite = make(true, toImpolite); // the callee
  t.after(() => {
    impolite.close();
    polite.close();
    clock.uninstall();
    env.restore();
  });
  const pcOf = (/** @type {PeerCall} */ c) => /** @type {FakePeerConnection} */ (/** @type {unknown} */ (c.pc));
  return { impolite, polite, toPolite, toImpolite, errors, pcOf };
}

const stream = () => /** @type {any} */ (new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]));

/** Deliver everything queued for `call`, in order. @param {PeerCall} call @param {Signal[]} queue */
async function deliver(call, queue) {
  for (const msg of queue.splice(0)) await call.handle(msg);
}

test("a plain offer / answer: both sides stable, candidates applied once the description is in", async (t) => {
  const { impolite, polite, toPolite, toImpolite, pcOf, errors } = pair(t);
  impolite.startAsOfferer(stream());
  polite.startAsAnswerer(stream());
  await flush();
  toPolite.unshift({ type: "candidate", candidate: { candidate: "early", sdpMid: "0" } }); // before the offer
  toPolite.push({ type: "candidate", candidate: { candidate: "late", sdpMid: "0" } });
  await deliver(polite, toPolite);
  await deliver(impolite, toImpolite);
  assert.equal(pcOf(impolite).signalingState, "stable");
  assert.equal(pcOf(polite).signalingState, "stable");
  assert.deepEqual(pcOf(polite).candidates.map((c) => c.candidate), ["early", "late"]);
  assert.deepEqual(errors, []);
});

test("glare in negotiation: both offer at once; the impolite side ignores, the polite side yields and answers", async (t) => {
  const { impolite, polite, toPolite, toImpolite, pcOf, errors } = pair(t);
  impolite.startAsOfferer(stream());
  polite.startAsAnswerer(stream());
  await flush();
  await deliver(polite, toPolite);
  await deliver(impolite, toImpolite);
  // Both restart ICE at the same moment: two offers cross.
  impolite.restartIce();
  polite.restartIce();
  await flush();
  assert.equal(pcOf(impolite).signalingState, "have-local-offer");
  assert.equal(pcOf(polite).signalingState, "have-local-offer");
  await deliver(impolite, toImpolite); // the polite side's offer: ignored
  assert.equal(impolite.ignoreOffer, true);
  await deliver(polite, toPolite); // the impolite side's offer: the polite side rolls back and answers
  await deliver(impolite, toImpolite);
  assert.equal(pcOf(impolite).signalingState, "stable");
  assert.equal(pcOf(polite).signalingState, "stable");
  assert.match(pcOf(polite).remoteDescription.sdp, /restart/);
  assert.deepEqual(errors, []);
});

test("held: the offer and candidates wait for release(), then go out in order", async (t) => {
  const { impolite, toPolite, pcOf } = pair(t, { held: true });
  impolite.startAsOfferer(stream());
  await flush();
  pcOf(impolite).gather("host");
  assert.equal(toPolite.length, 0);
  assert.deepEqual(impolite.heldBack?.map((m) => m.type), ["offer", "candidate"]);
  impolite.release();
  assert.deepEqual(toPolite.map((m) => m.type), ["offer", "candidate"]);
  assert.equal(impolite.heldBack, null);
});

test("held: on release the offer goes with the candidates gathered meanwhile in it, and those are not sent again", async (t) => {
  const { impolite, toPolite, pcOf } = pair(t, { held: true });
  impolite.startAsOfferer(stream());
  await flush();
  const pc = pcOf(impolite);
  pc.gather("host");
  pc.gather("srflx");
  // Like a browser, the local description now lists a candidate gathered after it was set.
  const sdp = `${pc.localDescription.sdp}\r\na=candidate:host\r\n`;
  pc.localDescription = { type: "offer", sdp, toJSON: () => ({ type: "offer", sdp }) };
  impolite.release();
  assert.deepEqual(toPolite.map((m) => m.type), ["offer", "candidate"]);
  assert.deepEqual(toPolite[0].sdp, { type: "offer", sdp });
  assert.deepEqual(toPolite[1].candidate, { candidate: "candidate:srflx", sdpMid: "0" }, "only the one not in the offer");
});

test("inDescription: a candidate is in an SDP when one of its lines is that candidate", () => {
  const sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host\r\n";
  assert.equal(inDescription(sdp, { candidate: "candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host" }), true);
  assert.equal(inDescription(sdp, { candidate: "candidate:1 1 udp 2122260223 127.0.0.1 4000 typ host" }), false);
  assert.equal(inDescription(sdp, { candidate: "" }), false);
  assert.equal(inDescription(sdp, null), false);
});

test("a stray answer (no offer out) is ignored, not an error", async (t) => {
  const { polite, errors } = pair(t);
  await polite.handle({ type: "answer", sdp: { type: "answer", sdp: "v=0" } });
  assert.deepEqual(errors, []);
});
