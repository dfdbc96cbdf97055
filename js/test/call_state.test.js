// The call state machine: every listed move is allowed, anything else is refused.

import { test } from "node:test";
import assert from "node:assert/strict";
import { CALL_STATES } from "../messages.js";
import { TRANSITIONS, CallState, IllegalTransition, allowed, canCall, inCall, busy } from "../call/call_state.js";

/** @typedef {import("../names.js").CallStateName} CallStateName */

test("the table covers exactly the generated states", () => {
  assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...CALL_STATES].sort());
  for (const targets of Object.values(TRANSITIONS)) {
    for (const to of targets) assert.ok(CALL_STATES.includes(to), to);
  }
});

for (const [from, targets] of Object.entries(TRANSITIONS)) {
  for (const to of targets) {
    test(`allowed: ${from} → ${to}`, () => {
      const machine = new CallState(/** @type {CallStateName} */ (from));
      const moved = machine.transition(to, "test");
      assert.equal(machine.state, to);
      assert.equal(moved, from !== to, "a move to the same state changes nothing");
      assert.equal(machine.history.length, moved ? 1 : 0);
    });
  }
}

test("every move the table does not list is refused, and the state stays", () => {
  let refused = 0;
  for (const from of CALL_STATES) {
    for (const to of CALL_STATES) {
      if (allowed(from, to)) continue;
      const machine = new CallState(from);
      assert.throws(() => machine.transition(to, "test"), IllegalTransition);
      assert.equal(machine.state, from);
      refused += 1;
    }
  }
  assert.ok(refused > 30);
});

test("an illegal move says what and why", () => {
  const machine = new CallState("idle");
  assert.throws(() => machine.transition("connected", "a stray event"), {
    name: "IllegalTransition",
    message: "nbcall: no transition idle → connected (a stray event)",
  });
});

test("a call in progress never jumps to error: it ends first", () => {
  for (const state of ["calling", "ringing", "connecting", "connected"]) {
    assert.equal(allowed(/** @type {CallStateName} */ (state), "error"), false, state);
    assert.equal(allowed(/** @type {CallStateName} */ (state), "ended"), true, state);
  }
});

test("the state groups come from the generated lists", () => {
  assert.deepEqual(CALL_STATES.filter(canCall), ["idle", "ended"]);
  assert.deepEqual(CALL_STATES.filter(inCall), ["calling", "connecting", "connected"]);
  assert.deepEqual(CALL_STATES.filter(busy), ["calling", "ringing", "connecting", "connected"]);
});
