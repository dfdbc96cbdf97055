// In-call features over a connected fake call: chat over the data channel, the media state
// told to the peer, a device switch without renegotiation, recording through the kernel's
// commands, and the features' messages checked by the table.

import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeMediaRecorder, flush } from "./fakes/index.js";
import { fakePc, inCallWithBob } from "./helpers.js";
import { PageError } from "../messages.js";


/** @param {import("node:test").TestContext} t */
const call = (t) => inCallWithBob(t);

test("chat: needs an open channel; a line goes out, is kept in `messages`, and one comes in", async (t) => {
  const { model, channel, features } = await call(t);
  model.custom({ kind: "chat", text: "too early" });
  assert.deepEqual(model.sentOf("action_failed").map((m) => m.content.code), [PageError.NOT_CONNECTED]);
  channel.open();
  model.custom({ kind: "chat", text: "héllo 小文" });
  const out = channel.sent.map((d) => JSON.parse(d)).filter((m) => m.kind === "chat");
  assert.equal(out.length, 1);
  assert.equal(out[0].text, "héllo 小文");
  channel.receive({ kind: "chat", text: "hi back", time: 1 });
  assert.deepEqual(features.messages.map((m) => [m.from, m.text]), [["alice", "héllo 小文"], ["bob", "hi back"]]);
  // The kernel's `messages` hears of each line once, not of the whole history (chat.test.js).
  assert.deepEqual(model.sentOf("chat_sent").map((m) => m.content.text), ["héllo 小文"]);
  assert.deepEqual(model.sentOf("chat_received").map((m) => [m.content.from, m.content.text, m.content.time]), [["bob", "hi back", 1]]);
  assert.deepEqual(model.get("messages"), [], "the page does not sync the whole history");
});

test("mute and camera: the peer is told over the channel; its own state sets remote_*", async (t) => {
  const { model, channel } = await call(t);
  channel.open();
  model.set("video", false);
  const last = JSON.parse(channel.sent[channel.sent.length - 1]);
  assert.deepEqual(last, { kind: "media", audio: true, video: false, screen: false });
  channel.receive({ kind: "media", audio: false, video: true, screen: false });
  assert.equal(model.get("remote_audio"), false);
  assert.equal(model.get("remote_video"), true);
});

test("a camera switch replaces the sender's track: same connection, no new offer, old track stopped", async (t) => {
  const { model, alice } = await call(t);
  const pc = fakePc(alice);
  const old = alice.media.localTrack("video");
  const offers = pc.localDescription.sdp;
  model.set("camera", "cam2");
  await flush();
  const now = alice.media.localTrack("video");
  assert.ok(now && now !== old);
  assert.equal(old?.readyState, "ended");
  assert.ok(pc.getSenders().some((s) => /** @type {unknown} */ (s.track) === now));
  assert.equal(pc.localDescription.sdp, offers, "no renegotiation");
  assert.equal(alice.pc, pc);
});

test("recording with nothing to record: recording_failed and action_failed say why", async (t) => {
  const { model } = await call(t);
  model.custom({ kind: "recording_start", which: "remote" }); // the fake peer sent no media
  await flush();
  assert.deepEqual(model.sentOf("recording_failed").map((m) => m.content.message), ["no remote video to record"]);
  assert.deepEqual(model.sentOf("action_failed").map((m) => m.content.action), ["start_recording"]);
});

test("recording the local video: the messages the kernel assembles", async (t) => {
  const { model } = await call(t);
  model.custom({ kind: "recording_start", which: "local" });
  await flush();
  const recorder = FakeMediaRecorder.instances[0];
  recorder.emit("a");
  model.custom({ kind: "recording_stop" });
  await flush();
  assert.deepEqual(
    model.sent.map((m) => m.content.kind).filter((k) => k.startsWith("recording")),
    ["recording_started", "recording_chunk", "recording_chunk", "recording_done"],
  );
  assert.deepEqual(model.sentOf("recording_chunk").map((m) => m.content.seq), [0, 1]);
  assert.equal(model.sentOf("recording_done")[0].content.chunks, 2);
  model.custom({ kind: "recording_stop" });
  assert.deepEqual(model.sentOf("action_failed").map((m) => m.content), [{ kind: "action_failed", action: "stop_recording", code: PageError.NOT_RECORDING, message: "not recording" }]);
});

test("a snapshot that cannot be taken answers ok: false with the reason", async (t) => {
  const { model } = await call(t);
  model.custom({ kind: "snapshot", id: "s1", which: "sideways" });
  await flush();
  assert.deepEqual(model.sentOf("snapshot_taken").map((m) => m.content), [
    { kind: "snapshot_taken", id: "s1", which: "sideways", ok: false, error: "which must be remote or local, not sideways" },
  ]);
});

test("the call's end stops its recording and freezes the duration", async (t) => {
  const { model, alice, clock } = await call(t);
  model.custom({ kind: "recording_start", which: "local" });
  await flush();
  clock.tick(3000);
  alice.hangup();
  await flush();
  assert.equal(model.sentOf("recording_done").length, 1);
  const frozen = model.get("duration");
  assert.equal(frozen, 3);
  clock.tick(5000);
  assert.equal(model.get("duration"), frozen);
});

test("a peer that answered without video (a seed page, receive-only) sets remote_video false until it sends", async (t) => {
  const { model, alice, features } = await call(t);
  const pc = fakePc(alice);
  const video = pc.getTransceivers().filter((tr) => tr.receiver.track.kind === "video");
  assert.ok(video.length, "the call negotiates video");
  assert.equal(features.remoteSendsVideo, true, "nothing known about directions yet: assume it sends");
  for (const tr of video) /** @type {any} */ (tr).currentDirection = "sendonly"; // we send, it does not
  alice.emitChange();
  assert.equal(features.remoteSendsVideo, false);
  assert.equal(model.get("remote_video"), false);
  for (const tr of video) /** @type {any} */ (tr).currentDirection = "sendrecv"; // its user pressed call: renegotiated
  alice.emitChange();
  assert.equal(model.get("remote_video"), true);
});
