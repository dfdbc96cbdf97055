// Recording in a room through the kernel's commands (features/room_recording.js): the grid
// follows who is in the room while the recording goes on, a member's recording is that
// member's picture and ends when it leaves, leaving the room ends any recording, and a name
// that is nobody in the room says who is.

import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeMediaRecorder, FakeModel, flush } from "./fakes/index.js";
import { installCanvasGlobals, FakeAudioContext } from "./fakes/canvas.js";
import { roomBrowser, joinAll, connectAll } from "./room_helpers.js";
import { Dispatcher } from "../dispatch.js";
import { InCall } from "../features/in_call.js";
import { FIT_WAIT_MS } from "../media/grid_canvas.js";
import { PageError } from "../messages.js";

/** @typedef {import("./fakes/canvas.js").FakeVideo} FakeVideo */

/**
 * alice's in-call features, in the room "team" with bob (links up, media flowing).
 * @param {import("node:test").TestContext} t
 */
async function inRoom(t) {
  const browser = roomBrowser(t);
  const dom = installCanvasGlobals();
  t.after(() => dom.restore());
  const [alice, bob, carol] = [await browser.phone("alice"), await browser.phone("bob"), await browser.phone("carol")];
  const model = new FakeModel({ audio: true, video: true, camera: "", microphone: "", screen_share: false, messages: [] });
  const features = new InCall(/** @type {any} */ (model), alice, new Dispatcher(/** @type {any} */ (model)));
  t.after(() => features.destroy());
  await joinAll("team", alice, bob);
  await connectAll(alice, bob);
  /** What alice's recording plays now: the streams of its live tiles. */
  const playing = () => dom.made.videos.filter((v) => v.srcObject).map((v) => v.srcObject);
  return { ...browser, alice, bob, carol, model, features, made: dom.made, playing };
}

/** @param {FakeModel} model */
const kinds = (model) => model.sent.map((m) => m.content.kind).filter((k) => k.startsWith("recording"));

test("the grid: who joins appears, who leaves disappears, the recording goes on; leaving the room ends it", async (t) => {
  const { alice, bob, carol, model, playing } = await inRoom(t);
  model.custom({ kind: "recording_start", which: "grid" });
  await flush();
  assert.deepEqual(model.sentOf("recording_started").map((m) => m.content.which), ["grid"]);
  const recorder = FakeMediaRecorder.instances[0];
  assert.deepEqual(recorder.stream.getTracks().map((tr) => tr.kind), ["video", "audio"], "the canvas and the mix");
  assert.deepEqual(playing(), [alice.room.localStream, alice.room.stream("bob")], "ours first, then the members");
  await joinAll("team", carol);
  await connectAll(alice, bob, carol);
  assert.deepEqual(playing(), [alice.room.localStream, alice.room.stream("bob"), alice.room.stream("carol")]);
  const mix = FakeAudioContext.instances[0];
  assert.equal(mix.mixed.length, 3, "everyone's audio, ours too");
  bob.room.leave();
  await flush();
  assert.deepEqual(playing(), [alice.room.localStream, alice.room.stream("carol")]);
  assert.equal(mix.mixed.length, 2);
  assert.equal(recorder.state, "recording", "the recording went on");
  recorder.emit("grid");
  alice.room.leave();
  await flush();
  assert.deepEqual(kinds(model), ["recording_started", "recording_chunk", "recording_chunk", "recording_done"]);
  assert.deepEqual(playing(), [], "every tile released");
  assert.equal(mix.state, "closed");
});

test("a member by name: that member's picture in its shape, ended when it leaves", async (t) => {
  const { alice, bob, model, made, clock, features: inCall } = await inRoom(t);
  model.custom({ kind: "recording_start", which: "bob" });
  await flush();
  const video = /** @type {FakeVideo} */ (made.videos[0]);
  assert.equal(video.srcObject, /** @type {unknown} */ (alice.room.stream("bob")));
  video.frame(320, 240);
  clock.tick(50);
  await flush();
  assert.deepEqual(model.sentOf("recording_started").map((m) => m.content.which), ["bob"]);
  assert.deepEqual([made.canvases[0].width, made.canvases[0].height], [640, 480], "bob's shape");
  assert.equal(made.videos.length, 1, "bob alone");
  bob.room.leave();
  await flush();
  assert.deepEqual(kinds(model), ["recording_started", "recording_chunk", "recording_done"]);
  assert.equal(inCall.recording, null);
  assert.equal(alice.room.name, "team", "alice is still in the room");
});

test("`remote` is the first member, `local` is ours; `both` (the Record button) is the grid", async (t) => {
  const { alice, model, made, clock, features: inCall } = await inRoom(t);
  model.custom({ kind: "recording_start", which: "local" });
  clock.tick(FIT_WAIT_MS + 100); // our fake camera shows no frame: the fallback size
  await flush();
  assert.equal(made.videos[0].srcObject, /** @type {unknown} */ (alice.room.localStream));
  model.custom({ kind: "recording_stop" });
  await flush();
  model.custom({ kind: "recording_start", which: "remote" });
  clock.tick(FIT_WAIT_MS + 100);
  await flush();
  assert.equal(made.videos[1].srcObject, /** @type {unknown} */ (alice.room.stream("bob")));
  inCall.toggleRecording(); // stops
  await flush();
  inCall.toggleRecording(); // starts: the grid
  await flush();
  inCall.toggleRecording();
  await flush();
  model.custom({ kind: "recording_start", which: "both" }); // a notebook written for a 1:1 call
  await flush();
  assert.deepEqual(model.sentOf("recording_started").map((m) => m.content.which), ["local", "remote", "grid", "grid"]);
  model.custom({ kind: "recording_stop" });
  await flush();
  assert.equal(model.sentOf("recording_done").length, 4);
});

test("a name that is nobody in the room: recording_failed says who is, and nothing is left running", async (t) => {
  const { model, made } = await inRoom(t);
  model.custom({ kind: "recording_start", which: "zed" });
  await flush();
  assert.deepEqual(model.sentOf("recording_failed").map((m) => m.content.message), [
    "which must be grid, local or a member of the room (bob), not zed",
  ]);
  assert.deepEqual(model.sentOf("action_failed").map((m) => m.content.action), ["start_recording"]);
  assert.equal(made.videos.length, 0);
  assert.equal(FakeMediaRecorder.instances.length, 0);
});

test("outside a room and a call, and the grid outside a room: refused, with a code", async (t) => {
  const { alice, model } = await inRoom(t);
  alice.room.leave();
  await flush();
  model.custom({ kind: "recording_start", which: "grid" });
  await flush();
  assert.deepEqual(model.sentOf("action_failed").map((m) => m.content.code), [PageError.NOT_CONNECTED]);
});
