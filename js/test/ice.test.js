// The ICE verdicts: why a call cannot connect, in words, and when they are given.

import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock, FakePeerConnection } from "./fakes/index.js";
import { IceWatch, CONNECT_TIMEOUT_MS } from "../call/ice.js";

/**
 * @param {import("node:test").TestContext} t
 * @param {{policy?: string, iceServers?: RTCIceServer[], held?: boolean}} [opts]
 */
function watch(t, opts = {}) {
  const clock = new FakeClock().install();
  t.after(() => clock.uninstall());
  const pc = new FakePeerConnection();
  /** @type {string[]} */
  const verdicts = [];
  const ice = new IceWatch(/** @type {any} */ (pc), { ...opts, onHopeless: (words) => verdicts.push(words) });
  return { pc, ice, verdicts, clock };
}

const TURN = [{ urls: "turn:turn.example:3478", username: "u", credential: "c" }];

test("no candidates at all: says so, and what Chromium needs on a loopback-only machine", (t) => {
  const { pc, verdicts } = watch(t);
  pc.gatheringComplete();
  assert.equal(verdicts.length, 1);
  assert.match(verdicts[0], /no ICE candidates were gathered.*--allow-loopback-in-peer-connection/);
});

test("relay-only without a TURN server: hopeless once gathering ends", (t) => {
  const { pc, verdicts } = watch(t, { policy: "relay", iceServers: [{ urls: "stun:stun.example" }] });
  pc.gather("host"); // not usable under the relay-only policy
  pc.gatheringComplete();
  assert.deepEqual(verdicts, ["relay-only policy (ice_transport_policy='relay') but no TURN server in ice_servers"]);
});

test("TURN refuses the credentials (401): says to mint fresh ones", (t) => {
  const { pc, verdicts } = watch(t, { policy: "relay", iceServers: TURN });
  pc.candidateError(401, "turn:turn.example:3478");
  pc.gatheringComplete();
  assert.equal(verdicts.length, 1);
  assert.match(verdicts[0], /^TURN authentication failed \(401\) at turn:turn\.example:3478.*turn_credentials/);
});

test("TURN unreachable under relay-only", (t) => {
  const { pc, verdicts } = watch(t, { policy: "relay", iceServers: TURN });
  pc.candidateError(701, "turn:turn.example:3478");
  pc.gatheringComplete();
  assert.deepEqual(verdicts, ["no relay candidate: the TURN server turn:turn.example:3478 could not be reached"]);
});

test("candidates but no connection in time: a timeout, with what was gathered", (t) => {
  const { pc, verdicts, clock } = watch(t);
  pc.gather("host");
  pc.gather("host");
  pc.gather("srflx");
  pc.gatheringComplete();
  assert.equal(verdicts.length, 0, "usable candidates: wait");
  clock.tick(CONNECT_TIMEOUT_MS - 1);
  assert.equal(verdicts.length, 0);
  clock.tick(1);
  assert.equal(verdicts.length, 1);
  assert.match(verdicts[0], /^timeout: no connection after 20 s \(gathered here: 2 host, 1 srflx\)/);
});

test("connected in time: no verdict, and the watch lets go of the connection", (t) => {
  const { pc, verdicts, clock } = watch(t);
  pc.gather("host");
  pc.setConnectionState("connected");
  clock.tick(CONNECT_TIMEOUT_MS * 2);
  assert.deepEqual(verdicts, []);
  assert.equal(pc.listeners.get("icecandidate")?.size ?? 0, 0);
});

test("held (still ringing): no clock, and a verdict reached meanwhile waits for the answer", (t) => {
  const { pc, ice, verdicts, clock } = watch(t, { held: true });
  pc.gatheringComplete();
  clock.tick(CONNECT_TIMEOUT_MS * 2);
  assert.deepEqual(verdicts, []);
  ice.arm();
  assert.equal(verdicts.length, 1);
  assert.match(verdicts[0], /no ICE candidates/);
});

test("the words for an ICE failure after candidates (no timeout)", (t) => {
  const { pc, ice } = watch(t);
  pc.gather("relay");
  assert.match(ice.diagnose(), /^ICE failed: no pair of candidates connected the two sides \(gathered here: 1 relay\)/);
});
