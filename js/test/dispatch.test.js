// The one door for kernel <-> page messages: every message checked against the generated
// table; unknown or malformed ones reported to the kernel as protocol_error, never dropped.

import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeModel } from "./fakes/index.js";
import { Dispatcher, sendToKernel, problem } from "../dispatch.js";
import { TO_PAGE, TO_KERNEL, MAX_ID_CHARS, ERROR_CODES, PageError } from "../messages.js";
import { ErrorCode } from "../protocol.js";

/** @param {import("node:test").TestContext} t */
function door(t) {
  const model = new FakeModel();
  const dispatcher = new Dispatcher(/** @type {any} */ (model));
  /** @type {unknown[][]} */
  const warnings = [];
  t.mock.method(console, "warn", (/** @type {unknown[]} */ ...args) => warnings.push(args));
  /** @type {any[]} */
  const got = [];
  dispatcher.handle({
    call: (msg) => got.push(msg),
    snapshot: (msg) => got.push(msg),
    kernel_socket_closed: (msg) => got.push(msg),
  });
  return { model, dispatcher, got, warnings, errors: () => model.sentOf("protocol_error").map((m) => m.content.detail) };
}

test("one msg:custom listener per model, removed by destroy", (t) => {
  const { model, dispatcher } = door(t);
  assert.equal(model.count("msg:custom"), 1);
  dispatcher.destroy();
  assert.equal(model.count("msg:custom"), 0);
});

test("a valid message reaches the handler of its kind", (t) => {
  const { model, got, errors } = door(t);
  model.custom({ kind: "call", to: "bob" });
  model.custom({ kind: "kernel_socket_closed", id: "k1", code: 1000, reason: "" });
  model.custom({ kind: "call", to: "carol", since: 2 }); // fields the table does not list are let through
  assert.deepEqual(got, [
    { kind: "call", to: "bob" },
    { kind: "kernel_socket_closed", id: "k1", code: 1000, reason: "" },
    { kind: "call", to: "carol", since: 2 },
  ]);
  assert.deepEqual(errors(), []);
});

test("an unknown kind is warned about and reported as protocol_error", (t) => {
  const { model, got, errors, warnings } = door(t);
  model.custom({ kind: "relay-opened", id: "x" }); // an old kernel's name
  assert.deepEqual(got, []);
  assert.deepEqual(errors(), ["unknown message kind 'relay-opened'"]);
  assert.equal(warnings.length, 1);
});

test("malformed messages are reported, each with what is wrong", (t) => {
  const { model, got, errors } = door(t);
  model.custom({ kind: "call" });
  model.custom({ kind: "call", to: 7 });
  model.custom({ kind: "snapshot", id: "x".repeat(MAX_ID_CHARS + 1), which: "remote" });
  model.custom({ kind: "kernel_socket_closed", id: "k", code: 1000.5, reason: "" });
  model.custom({ kind: "kernel_socket_closed", id: "k", code: true, reason: "" });
  model.custom("call");
  model.custom(["call"]);
  model.custom({ to: "bob" });
  assert.deepEqual(got, []);
  assert.deepEqual(errors(), [
    "'call' needs 'to'",
    "'call': 'to' must be str",
    `'snapshot': 'id' is longer than ${MAX_ID_CHARS} characters`,
    "'kernel_socket_closed': 'code' must be int",
    "'kernel_socket_closed': 'code' must be int",
    "a message must be a JSON object",
    "a message must be a JSON object",
    "unknown message kind undefined",
  ]);
});

test("a known kind without a handler in this page is reported too", (t) => {
  const { model, errors } = door(t);
  model.custom({ kind: "recording_stop" });
  assert.deepEqual(errors(), ["'recording_stop' has no handler in this page"]);
});

test("a handler that throws is reported as action_failed, and the door stays open", (t) => {
  const { model, dispatcher, errors } = door(t);
  t.mock.method(console, "error", () => {});
  dispatcher.handle({ hangup: () => { throw new Error("boom"); } });
  model.custom({ kind: "hangup" });
  assert.deepEqual(model.sentOf("action_failed").map((m) => m.content), [{ kind: "action_failed", action: "hangup", code: PageError.PAGE_ERROR, message: "boom" }]);
  assert.deepEqual(errors(), []);
});

test("a kind has one handler; unknown kinds cannot be handled", (t) => {
  const { dispatcher } = door(t);
  assert.throws(() => dispatcher.handle({ call: () => {} }), /already has a handler/);
  assert.throws(() => dispatcher.handle(/** @type {any} */ ({ "relay-open": () => {} })), /no such kernel → page kind/);
  const off = dispatcher.handle({ accept: () => {} });
  off();
  dispatcher.handle({ accept: () => {} }); // free again
});

test("sendToKernel builds only messages of the table", () => {
  const model = new FakeModel();
  sendToKernel(/** @type {any} */ (model), "recording_chunk", { id: "r", seq: 0 }, [new ArrayBuffer(1)]);
  assert.deepEqual(model.sent[0].content, { kind: "recording_chunk", id: "r", seq: 0 });
  assert.equal(model.sent[0].buffers.length, 1);
  assert.throws(() => sendToKernel(/** @type {any} */ (model), /** @type {any} */ ("error"), {}), /unknown message kind 'error'/);
  assert.throws(() => sendToKernel(/** @type {any} */ (model), "recording_chunk", { id: "r", seq: 0 }), /needs 1 binary buffer/);
  assert.throws(() => sendToKernel(/** @type {any} */ (model), "snapshot_taken", { which: "remote", ok: "yes" }), /'ok' must be bool/);
  sendToKernel(/** @type {any} */ (model), "snapshot_taken", { id: null, which: "remote", ok: false, error: "no video" });
  assert.equal(model.sent.length, 2);
});

test("action_failed carries only a declared code: the server's or the page's", () => {
  const model = new FakeModel();
  const failed = (/** @type {unknown} */ code) => sendToKernel(/** @type {any} */ (model), "action_failed", { action: "room", code, message: "m" });
  for (const code of [ErrorCode.ROOM_FULL, ErrorCode.NOT_INVITED, ErrorCode.BUSY, ErrorCode.UNKNOWN_PEER, ErrorCode.RATE_LIMITED, PageError.IN_CALL]) {
    failed(code);
  }
  assert.deepEqual(model.sent.map((m) => m.content.code), ["room_full", "not_invited", "busy", "unknown_peer", "rate_limited", "in_call"]);
  assert.throws(() => failed("room full"), /'code' must be error_code/);
  assert.throws(() => sendToKernel(/** @type {any} */ (model), "action_failed", { action: "call", message: "m" }), /needs 'code'/);
  // One list of codes: every page code and every server code, and nothing else.
  assert.deepEqual([...ERROR_CODES].sort(), [...new Set([...Object.values(ErrorCode), ...Object.values(PageError)])].sort());
});

test("the checks agree with the table's types for every kind", () => {
  for (const [kind, spec] of Object.entries({ ...TO_PAGE, ...TO_KERNEL })) {
    /** @type {Record<string, unknown>} */
    const good = { kind };
    for (const [name, type] of Object.entries(spec.fields)) {
      good[name] = { str: "s", int: 1, num: 1.5, bool: true, error_code: ErrorCode.ROOM_FULL }[type.replace("?", "")];
    }
    const table = kind in TO_PAGE ? TO_PAGE : TO_KERNEL;
    assert.equal(problem(table, good, spec.buffers), null, kind);
  }
});
