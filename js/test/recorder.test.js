// Recording chunks: numbered from 0, in order, recording_done carries the count, and
// nothing follows it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { installGlobals, FakeMediaRecorder, FakeMediaStream, FakeTrack, flush } from "./fakes/index.js";
import { Recording, TIMESLICE_MS } from "../media/recorder.js";
import { installCanvasGlobals } from "./fakes/canvas.js";

/** @param {import("node:test").TestContext} t */
function record(t) {
  const env = installGlobals();
  t.after(() => env.restore());
  /** @type {{kind: string, fields: Record<string, unknown>, buffers: ArrayBuffer[]}[]} */
  const sent = [];
  let ended = 0;
  const recording = new Recording({
    send: (kind, fields, buffers = []) => sent.push({ kind, fields, buffers }),
    onEnd: () => (ended += 1),
  });
  const remote = /** @type {any} */ (new FakeMediaStream([new FakeTrack("video"), new FakeTrack("audio")]));
  return { recording, sent, remote, ended: () => ended };
}

test("chunks are numbered from 0, each with one buffer, and recording_done counts them", async (t) => {
  const { recording, sent, remote, ended } = record(t);
  await recording.start("remote", { remote, local: null });
  const recorder = FakeMediaRecorder.instances[0];
  assert.equal(recorder.timeslice, TIMESLICE_MS);
  assert.equal(recorder.mimeType, "video/webm;codecs=vp8,opus");
  assert.deepEqual(sent[0], { kind: "recording_started", fields: { id: recording.id, which: "remote", mime: "video/webm;codecs=vp8,opus" }, buffers: [] });
  recorder.emit("one");
  recorder.emit("two");
  recorder.stop(); // the last chunk, then stop
  await flush();
  const chunks = sent.filter((m) => m.kind === "recording_chunk");
  assert.deepEqual(chunks.map((m) => m.fields.seq), [0, 1, 2]);
  assert.ok(chunks.every((m) => m.buffers.length === 1 && m.fields.id === recording.id));
  assert.deepEqual(new TextDecoder().decode(chunks[2].buffers[0]), "last");
  const done = sent[sent.length - 1];
  assert.deepEqual(done, { kind: "recording_done", fields: { id: recording.id, chunks: 3 }, buffers: [] });
  assert.equal(ended(), 1);
});

test("nothing is sent after recording_done", async (t) => {
  const { recording, sent, remote, ended } = record(t);
  await recording.start("remote", { remote, local: null });
  const recorder = FakeMediaRecorder.instances[0];
  recorder.stop();
  await flush();
  const count = sent.length;
  recorder.emit("late");
  recorder.onstop?.();
  recording.stop();
  await flush();
  assert.equal(sent.length, count);
  assert.equal(ended(), 1);
});

test("empty blobs are not chunks", async (t) => {
  const { recording, sent, remote } = record(t);
  await recording.start("remote", { remote, local: null });
  const recorder = FakeMediaRecorder.instances[0];
  recorder.emit("");
  recorder.emit("x");
  await flush();
  assert.deepEqual(sent.filter((m) => m.kind === "recording_chunk").map((m) => m.fields.seq), [0]);
});

test("nothing to record says why, before anything is sent", async (t) => {
  const { recording, sent } = record(t);
  await assert.rejects(recording.start("local", { remote: null, local: null }), /no local video to record/);
  await assert.rejects(recording.start("sideways", { remote: null, local: null }), /which must be remote, local, both/);
  assert.deepEqual(sent, []);
});

test("a stop asked for while start is still under way ends the recording once it exists", async (t) => {
  const { recording, sent, remote, ended } = record(t);
  // Compositing "both" awaits before the recorder exists: the stop lands in that gap.
  recording.stop(); // a queued stop_recording right behind a queued start_recording
  await recording.start("remote", { remote, local: null });
  await flush();
  assert.deepEqual(sent.map((m) => m.kind).filter((k) => k !== "recording_chunk"), ["recording_started", "recording_done"]);
  assert.equal(ended(), 1);
});

test("both: one recording of the remote picture with ours in its corner and both sides' audio (GridCanvas)", async (t) => {
  const canvas = installCanvasGlobals();
  t.after(() => canvas.restore());
  const { recording, sent, remote } = record(t);
  const local = /** @type {any} */ (new FakeMediaStream([new FakeTrack("video"), new FakeTrack("audio")]));
  const started = recording.start("both", { remote, local });
  await flush();
  for (const video of canvas.made.videos) video.frame(640, 480);
  await started;
  assert.deepEqual(sent[0].fields.which, "both");
  const recorded = FakeMediaRecorder.instances[0].stream;
  assert.equal(recorded.getVideoTracks().length, 1, "the canvas's track");
  assert.equal(recorded.getAudioTracks().length, 1, "the mix of both sides");
  recording.stop();
  await flush();
  assert.ok(canvas.made.videos.every((v) => v.srcObject === null), "the composition stopped with the recording");
});
