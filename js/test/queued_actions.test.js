// Actions the kernel queued before the page was ready (Run All): carried out in order once
// the phone can, through the dispatcher; given up after QUEUED_ACTION_WAIT_S; a failure
// fails what was queued after it; every entry ends with queued_done.

import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeModel, flush, nameKey } from "./fakes/index.js";
import { fakeBrowser, fakePc, inCallWithBob } from "./helpers.js";
import { Dispatcher } from "../dispatch.js";
import { QueuedActions } from "../queued_actions.js";
import { QUEUED_ACTION_WAIT_S, QUEUE_WAITS, PageError } from "../messages.js";
import { fail } from "../failure.js";

/** @typedef {import("../call/phone.js").Phone} Phone */

/**
 * One widget's page: a model whose `_queued` the test (the kernel) writes, the call
 * handlers of widget.js, and the queue.
 * @param {import("node:test").TestContext} t
 * @param {Phone} phone
 * @param {unknown[]} queued
 */
function page(t, phone, queued) {
  const model = new FakeModel({ _queued: queued });
  const dispatcher = new Dispatcher(/** @type {any} */ (model));
  /** @param {string} action @param {import("../failure.js").Outcome} outcome */
  const act = (action, outcome) => {
    if (outcome) dispatcher.send("action_failed", { action, code: outcome.code, message: outcome.message });
    return outcome ? outcome.message : "";
  };
  dispatcher.handle({
    call: (msg) => act("call", phone.placeCall(String(msg.to))),
    accept: () => act("accept", phone.accept()),
    hangup: () => act("hangup", phone.hangup()),
    chat: () => act("chat", fail(PageError.NOT_CONNECTED, "no channel in this test")),
  });
  const queue = new QueuedActions({ model: /** @type {any} */ (model), phone, dispatcher });
  t.after(() => {
    queue.destroy();
    dispatcher.destroy();
  });
  /** The kernel drops what the page reported done (as CallWidget._on_queued_done does). */
  const kernelReads = () => {
    const done = new Set(model.sentOf("queued_done").map((m) => m.content.id));
    model.set("_queued", model.get("_queued").filter((/** @type {any} */ e) => !done.has(e.id)));
  };
  const failures = () => model.sentOf("action_failed").map((m) => `${m.content.action}: ${m.content.message}`);
  const done = () => model.sentOf("queued_done").map((m) => m.content.id);
  return { model, queue, kernelReads, failures, done };
}

/** @param {number} id @param {string} to */
const callEntry = (id, to) => ({ id, wait: "online", action: `call ${to}`, command: { kind: "call", to }, key: nameKey(to) });

test("the waits are the ones Python names", () => {
  assert.deepEqual([...QUEUE_WAITS].sort(), ["connected", "free", "in_call", "in_room", "member", "online", "ringing"]);
});

test("Run All: a call queued before the callee is online rings it once it is, and the callee's queued accept answers", async (t) => {
  const browser = fakeBrowser(t);
  const alice = await browser.phone("alice");
  const a = page(t, alice, [callEntry(1, "Bob")]);
  await flush();
  assert.equal(alice.state, "idle", "bob is not online yet: the call waits");
  assert.equal(a.queue.describe(), "Will call Bob — waiting for Bob to come online");
  assert.deepEqual(a.done(), []);

  const bob = await browser.phone("bob"); // listed as "bob": the call goes to the name the page lists for Bob's key
  assert.equal(alice.state, "calling");
  assert.equal(alice.peer, "bob");
  assert.deepEqual(a.done(), [1]);
  assert.equal(bob.state, "ringing");
  const b = page(t, bob, [{ id: 1, wait: "ringing", action: "accept", command: { kind: "accept" } }]);
  await flush();
  assert.equal(bob.state, "connecting", "bob's queued accept answered the call that rang");
  assert.deepEqual(b.done(), [1]);
  fakePc(alice).setConnectionState("connected");
  fakePc(bob).setConnectionState("connected");
  await flush();
  assert.equal(alice.state, "connected");

  // Until the kernel reads queued_done, the entry is still in the trait: it is not run twice.
  a.model.set("_queued", [...a.model.get("_queued")]);
  await flush();
  assert.equal(a.done().length, 1);
  a.kernelReads();
  assert.deepEqual(a.model.get("_queued"), []);
  assert.equal(a.queue.describe(), "");
  assert.deepEqual([...a.failures(), ...b.failures()], []);
});

test("an entry whose moment does not come fails after the wait, and so do the ones after it", async (t) => {
  const browser = fakeBrowser(t);
  const alice = await browser.phone("alice");
  const chat = { id: 2, wait: "connected", action: "send a message", command: { kind: "chat", text: "hi" } };
  const a = page(t, alice, [callEntry(1, "carol"), chat]);
  await flush();
  browser.clock.tick(QUEUED_ACTION_WAIT_S * 1000 - 300);
  assert.deepEqual(a.failures(), []);
  browser.clock.tick(600);
  assert.deepEqual(a.failures(), [
    `call carol: gave up after waiting ${QUEUED_ACTION_WAIT_S} s for carol to come online`,
    'send a message: not done: "call carol" before it failed',
  ]);
  assert.deepEqual(a.done(), [1, 2]);
  assert.match(alice.error, /send a message: not done/);
  a.kernelReads();
  // A later queue starts afresh: the earlier failure does not fail it.
  const bob = await browser.phone("bob");
  a.model.set("_queued", [callEntry(3, "bob")]);
  await flush();
  assert.equal(alice.state, "calling");
  assert.equal(bob.state, "ringing");
});

test("a queued action the phone refuses stops the rest (already reported by its handler)", async (t) => {
  const browser = fakeBrowser(t);
  const alice = await browser.phone("alice");
  await browser.phone("bob");
  await browser.phone("carol");
  const a = page(t, alice, [callEntry(1, "bob"), callEntry(2, "carol"), { id: 3, wait: "in_call", action: "hang up", command: { kind: "hangup" } }]);
  await flush();
  assert.deepEqual(a.failures(), ["call: cannot call while calling", 'hang up: not done: "call carol" before it failed']);
  assert.deepEqual(a.done(), [1, 2, 3]);
  assert.equal(alice.state, "calling", "the hang-up after the failed call was not carried out");
});

test("a malformed entry is reported and dropped, never run", async (t) => {
  const browser = fakeBrowser(t);
  const alice = await browser.phone("alice");
  await browser.phone("bob");
  const a = page(t, alice, [{ id: 7, wait: "whenever", action: "call bob", command: { kind: "call", to: "bob" } }, "junk"]);
  await flush();
  assert.equal(alice.state, "idle");
  assert.deepEqual(a.done(), [7]);
  const reported = a.model.sentOf("protocol_error").map((m) => m.content.detail);
  assert.deepEqual(reported, ["a queued action is malformed", "a queued action is malformed"]);
});

test("a command the table refuses fails like a failed action", async (t) => {
  const browser = fakeBrowser(t);
  const alice = await browser.phone("alice");
  await browser.phone("bob");
  const a = page(t, alice, [
    { id: 1, wait: "online", action: "take a snapshot", command: { kind: "snapshot", which: "remote" }, key: "bob" },
    callEntry(2, "bob"),
  ]);
  await flush();
  assert.equal(alice.state, "idle");
  assert.deepEqual(a.failures(), ['call bob: not done: "take a snapshot" before it failed']);
  assert.deepEqual(a.model.sentOf("protocol_error").map((m) => m.content.detail), ["'snapshot' needs 'id'"]);
});

test("destroy stops the timer and the listeners", async (t) => {
  const browser = fakeBrowser(t);
  const alice = await browser.phone("alice");
  const a = page(t, alice, [callEntry(1, "nobody")]);
  await flush();
  assert.ok(a.queue.timer !== undefined);
  a.queue.destroy();
  assert.equal(a.queue.timer, undefined);
  assert.equal(a.model.count("change:_queued"), 0);
});

test("a queued chat line waits for the call's data channel, which opens after the connection", async (t) => {
  const { alice, model, features, channel } = await inCallWithBob(t);
  const dispatcher = features.dispatcher;
  model.set("_queued", [{ id: 1, wait: "connected", action: "send a message", command: { kind: "chat", text: "hi 你好" } }]);
  const queue = new QueuedActions({ model: /** @type {any} */ (model), phone: alice, dispatcher, features });
  t.after(() => queue.destroy());
  await flush();
  assert.equal(alice.state, "connected");
  assert.deepEqual(model.sentOf("queued_done"), [], "connected, but the channel is not open yet");
  channel.open();
  await flush();
  assert.deepEqual(model.sentOf("queued_done").map((m) => m.content.id), [1]);
  assert.deepEqual(model.sentOf("action_failed"), []);
  assert.deepEqual(channel.sent.map((d) => JSON.parse(d)).filter((m) => m.kind === "chat").map((m) => m.text), ["hi 你好"]);
});
