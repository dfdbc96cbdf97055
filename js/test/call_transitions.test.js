// The page's Phone against the one table of call moves nbcall.Peer is tested on too
// (tests/call_transitions.json; tests/test_call_transitions.py replays it into the Peer).
// The server is played by the test on a bare socket: only the table's messages arrive.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { flush, FakeWebSocket, FakeClock, installGlobals } from "./fakes/index.js";
import { Phone } from "../call/phone.js";

/** @typedef {{server?: Record<string, unknown>, close?: number, do?: "call" | "accept" | "reject" | "hangup", to?: string}} Step */
/** @typedef {{name: string, steps: Step[], state: string, end_reason?: string, peer?: string}} Case */

/** @type {{registered: Record<string, unknown>, cases: Case[]}} */
const table = JSON.parse(readFileSync(new URL("../../tests/call_transitions.json", import.meta.url), "utf8"));

/** @param {unknown} value @param {string} callId @returns {unknown} */
function substitute(value, callId) {
  if (value === "$call") return callId;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, callId)]));
  }
  return value;
}

for (const c of table.cases) {
  test(`the Phone: ${c.name}`, async (t) => {
    const env = installGlobals();
    const clock = new FakeClock().install();
    /** @type {FakeWebSocket | null} */
    let socket = null;
    const plan = async () => [
      {
        name: /** @type {const} */ ("direct"),
        open: () => {
          const ws = new FakeWebSocket("ws://127.0.0.1:9");
          socket = ws;
          queueMicrotask(() => ws.serverOpen());
          return ws;
        },
      },
    ];
    const alice = new Phone({ user: "alice", server: "ws://127.0.0.1:9", plan, audio: true, video: true });
    t.after(() => {
      alice.close();
      clock.uninstall();
      env.restore();
    });
    alice.start();
    await flush();
    const ws = /** @type {FakeWebSocket} */ (/** @type {unknown} */ (socket));
    ws.serverSend(table.registered);
    await flush();
    assert.equal(alice.state, "idle");
    for (const step of c.steps) {
      if (step.close !== undefined) {
        ws.serverClose(step.close, "");
      } else if (step.server) {
        ws.serverSend(/** @type {object} */ (substitute(step.server, alice.callId ?? "")));
      } else if (step.do === "call") {
        assert.equal(alice.placeCall(step.to ?? ""), "");
      } else if (step.do) {
        assert.equal(alice[step.do](), "");
      }
      await flush();
    }
    assert.equal(alice.state, c.state);
    if (c.end_reason !== undefined) assert.equal(alice.endReason, c.end_reason);
    if (c.peer !== undefined) assert.equal(alice.peer, c.peer);
  });
}
