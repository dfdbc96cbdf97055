// The recording compositor (media/grid_canvas.js): the layout math (the widget's grid
// columns, pictures fitted, sizes bounded), and its life: tiles that come and go with the
// sources, audio mixed and unmixed, every frame drawn, everything released by stop().

import { test } from "node:test";
import assert from "node:assert/strict";
import { installGlobals, FakeClock, FakeMediaStream, FakeTrack, flush } from "./fakes/index.js";
import { installCanvasGlobals, FakeAudioContext } from "./fakes/canvas.js";
import {
  GridCanvas, gridLayout, pipLayout, fitRect, boundedSize, fitSize, MAX_TILES, MAX_FPS, SYNC_MS, FIT_WAIT_MS, FIT_FALLBACK, GRID_WIDTH, GRID_HEIGHT,
} from "../media/grid_canvas.js";
import { gridColumns } from "../ui/grid.js";

/** @typedef {import("../media/grid_canvas.js").TileSource} TileSource */
/** @typedef {import("./fakes/canvas.js").FakeVideo} FakeVideo */

/** @param {import("node:test").TestContext} t */
function browser(t) {
  const env = installGlobals();
  const canvas = installCanvasGlobals();
  const clock = new FakeClock().install();
  t.after(() => {
    clock.uninstall();
    canvas.restore();
    env.restore();
  });
  return { made: canvas.made, clock };
}

/** A member's media: an audio and a video track. */
const media = () => /** @type {MediaStream} */ (/** @type {unknown} */ (new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")])));

/** @param {string} key @param {MediaStream | null} [stream] @returns {TileSource} */
const source = (key, stream = media()) => ({ key, name: key, stream, video: true, speaking: false });

/** @param {{x: number, y: number, width: number, height: number}} a @param {{x: number, y: number, width: number, height: number}} b */
const overlap = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

test("the layout has the widget's columns, fills rows left to right, stays inside the canvas, never overlaps", () => {
  for (const count of [1, 2, 3, 4, 5, 9, 10, 17, 50]) {
    const rects = gridLayout(count, 1280, 720);
    assert.equal(rects.length, count);
    const columns = gridColumns(count);
    assert.equal(new Set(rects.map((r) => r.x)).size, Math.min(count, columns), `columns for ${count}`);
    assert.equal(new Set(rects.map((r) => r.y)).size, Math.ceil(count / columns), `rows for ${count}`);
    for (const [i, r] of rects.entries()) {
      assert.ok(r.x >= 0 && r.y >= 0 && r.x + r.width <= 1280 && r.y + r.height <= 720, `${count}: ${JSON.stringify(r)}`);
      for (const other of rects.slice(i + 1)) assert.ok(!overlap(r, other), `${count}: tiles overlap`);
    }
  }
  assert.deepEqual(gridLayout(2, 1280, 720, 0), [{ x: 0, y: 0, width: 640, height: 720 }, { x: 640, y: 0, width: 640, height: 720 }]);
  const four = gridLayout(4, 1280, 720, 0);
  assert.deepEqual(four[3], { x: 640, y: 360, width: 640, height: 360 });
  assert.equal(gridLayout(MAX_TILES + 30, 1920, 1080).length, MAX_TILES, "at most MAX_TILES");
  assert.deepEqual(gridLayout(0, 1280, 720), []);
  assert.deepEqual(gridLayout(Number.NaN, 1280, 720), []);
});

test("a picture is fitted into its tile, centred, its aspect kept", () => {
  assert.deepEqual(fitRect(640, 480, { x: 0, y: 0, width: 640, height: 360 }), { x: 80, y: 0, width: 480, height: 360 });
  assert.deepEqual(fitRect(1280, 720, { x: 10, y: 20, width: 640, height: 480 }), { x: 10, y: 80, width: 640, height: 360 });
  assert.deepEqual(fitRect(0, 0, { x: 1, y: 2, width: 3, height: 4 }), { x: 1, y: 2, width: 3, height: 4 }, "no frame yet: the tile");
});

test("canvas sizes are bounded, even, and never scaled up", () => {
  assert.deepEqual(boundedSize(1280, 720), { width: 1280, height: 720 });
  assert.deepEqual(boundedSize(320, 240), { width: 320, height: 240 });
  assert.deepEqual(boundedSize(4000, 3000), { width: 1440, height: 1080 });
  assert.deepEqual(boundedSize(3840, 2160), { width: 1920, height: 1080 });
  assert.deepEqual(boundedSize(321, 241), { width: 322, height: 242 });
  assert.deepEqual(boundedSize(2, 2), { width: 16, height: 16 });
  assert.deepEqual(boundedSize(Number.NaN, -5), { width: GRID_WIDTH, height: GRID_HEIGHT });
});

test("the grid: one stream of a canvas track and the mix; tiles come and go with the sources; the recording's tracks never change", async (t) => {
  const { made, clock } = browser(t);
  let sources = [source("me"), source("bob")];
  const grid = new GridCanvas({ sources: () => sources, labels: true, fps: 500 });
  const out = await grid.start();
  const canvas = made.canvases[0];
  assert.deepEqual([canvas.width, canvas.height, canvas.fps], [1280, 720, MAX_FPS], "the grid's size; the rate bounded");
  const tracks = out.getTracks();
  assert.deepEqual(tracks.map((tr) => tr.kind), ["video", "audio"]);
  const audio = FakeAudioContext.instances[0];
  assert.equal(audio.state, "running", "resumed without a click");
  assert.deepEqual(audio.mixed, sources.map((s) => /** @type {MediaStream} */ (s.stream).getAudioTracks()[0]));
  assert.equal(grid.tiles.size, 2);
  const [meVideo, bobVideo] = /** @type {FakeVideo[]} */ (made.videos);
  assert.ok(meVideo.muted && meVideo.playing && meVideo.srcObject === /** @type {unknown} */ (sources[0].stream));
  // Frames: only tiles with a picture are drawn into; the others show the name.
  bobVideo.frame(640, 360);
  canvas.ctx.calls = [];
  clock.tick(1000 / MAX_FPS);
  const images = canvas.ctx.takeImages();
  assert.equal(images.length, 1);
  assert.equal(images[0][0], bobVideo);
  const [, x, y, w, h] = images[0];
  assert.ok(x >= 640 && y >= 0 && w <= 640 && h <= 360 && Math.abs(w / h - 16 / 9) < 0.02, `bob on the right: ${images[0].slice(1)}`);
  // carol joins: a third tile, her audio in the mix, the same two tracks recorded.
  const carol = source("carol");
  sources = [...sources, carol];
  clock.tick(SYNC_MS);
  assert.equal(grid.tiles.size, 3);
  assert.ok(audio.mixed.includes(/** @type {any} */ (/** @type {MediaStream} */ (carol.stream).getAudioTracks()[0])));
  // bob leaves: his tile and his audio go.
  sources = sources.filter((s) => s.key !== "bob");
  grid.sync();
  assert.deepEqual([...grid.tiles.keys()], ["me", "carol"]);
  assert.equal(bobVideo.srcObject, null);
  assert.equal(bobVideo.playing, false);
  assert.equal(audio.mixed.length, 2);
  // carol's media moves (the SFU): her tile follows the new stream, and mixes its audio.
  const moved = media();
  carol.stream = moved;
  grid.sync();
  const carolVideo = /** @type {FakeVideo} */ (made.videos[2]);
  assert.equal(carolVideo.srcObject, /** @type {unknown} */ (moved));
  assert.ok(audio.mixed.includes(/** @type {any} */ (moved.getAudioTracks()[0])));
  assert.equal(audio.mixed.length, 2);
  assert.deepEqual(out.getTracks(), tracks, "the recorded stream kept its tracks");
  grid.stop();
  grid.stop();
  assert.equal(grid.tiles.size, 0);
  assert.ok(tracks.every((tr) => tr.readyState === "ended"));
  assert.equal(audio.state, "closed");
  assert.equal(clock.pending, 0, "no timer left");
  const drawn = grid.frames;
  clock.tick(1000);
  assert.equal(grid.frames, drawn);
});

test("labels, camera off and the active speaker are drawn on the grid", async (t) => {
  const { made } = browser(t);
  const bob = { ...source("bob"), video: false };
  const carol = { ...source("carol"), speaking: true };
  const grid = new GridCanvas({ sources: () => [source("me"), bob, carol], labels: true });
  await grid.start();
  t.after(() => grid.stop());
  /** @type {FakeVideo} */ (made.videos[1]).frame(640, 360); // bob's black frames are not shown
  const ctx = made.canvases[0].ctx;
  ctx.calls = [];
  grid.draw();
  const texts = ctx.calls.filter((c) => c[0] === "fillText").map((c) => c[1]);
  assert.ok(texts.includes("bob (camera off)") && texts.includes("carol") && texts.includes("me"), texts.join());
  assert.equal(ctx.takeImages().length, 0);
  ctx.calls = [];
  grid.draw();
  assert.equal(ctx.calls.filter((c) => c[0] === "strokeRect").length, 1, "one speaker outlined");
});

test("at most MAX_TILES are drawn, whatever the sources say", async (t) => {
  const { made } = browser(t);
  const many = Array.from({ length: MAX_TILES + 10 }, (_, i) => source(`m${i}`));
  const grid = new GridCanvas({ sources: () => many, labels: true });
  await grid.start();
  t.after(() => grid.stop());
  assert.equal(grid.tiles.size, MAX_TILES);
  assert.equal(made.videos.length, MAX_TILES);
  assert.equal(FakeAudioContext.instances[0].mixed.length, MAX_TILES);
});

test("one member's canvas: the first frame's shape, at least 640 on its longer side, bounded", () => {
  assert.deepEqual(fitSize(320, 240), { width: 640, height: 480 });
  assert.deepEqual(fitSize(80, 45), { width: 640, height: 360 });
  assert.deepEqual(fitSize(180, 320), { width: 360, height: 640 });
  assert.deepEqual(fitSize(1280, 720), { width: 1280, height: 720 });
  assert.deepEqual(fitSize(3840, 2160), { width: 1920, height: 1080 });
});

test("one member: the canvas takes the shape of its first frame; the whole canvas is its picture", async (t) => {
  const { made, clock } = browser(t);
  const grid = new GridCanvas({ sources: () => [source("bob")], fit: true });
  const started = grid.start();
  await flush();
  clock.tick(100);
  /** @type {FakeVideo} */ (made.videos[0]).frame(320, 240);
  clock.tick(50);
  await flush();
  await started;
  const canvas = made.canvases[0];
  assert.deepEqual([canvas.width, canvas.height], [640, 480]);
  canvas.ctx.calls = [];
  grid.draw();
  assert.deepEqual(canvas.ctx.takeImages().map((c) => c.slice(1)), [[0, 0, 640, 480]]);
  grid.stop();
});

test("one member with no picture in time: the fallback size, and the recording still starts", async (t) => {
  const { made, clock } = browser(t);
  const grid = new GridCanvas({ sources: () => [source("bob", null)], fit: true });
  const started = grid.start();
  for (let waited = 0; waited <= FIT_WAIT_MS; waited += 50) {
    await flush(1);
    clock.tick(50);
  }
  await started;
  assert.deepEqual([made.canvases[0].width, made.canvases[0].height], [FIT_FALLBACK.width, FIT_FALLBACK.height]);
  grid.stop();
});

test("stopped while waiting for the first frame: start() says so and nothing is left", async (t) => {
  const { clock } = browser(t);
  const grid = new GridCanvas({ sources: () => [source("bob")], fit: true });
  const started = grid.start();
  grid.stop();
  clock.tick(100);
  await assert.rejects(started, /stopped/);
  assert.equal(FakeAudioContext.instances[0].state, "closed");
});

test("picture in picture (a 1:1 call's both): the first fills the canvas, the second a quarter wide in its corner", () => {
  assert.deepEqual(pipLayout(0, 640, 480, 4 / 3), []);
  assert.deepEqual(pipLayout(1, 640, 480, 4 / 3), [{ x: 0, y: 0, width: 640, height: 480 }]);
  assert.deepEqual(pipLayout(2, 640, 480, 4 / 3), [{ x: 0, y: 0, width: 640, height: 480 }, { x: 472, y: 352, width: 160, height: 120 }]);
  assert.deepEqual(pipLayout(2, 640, 480, 16 / 9)[1], { x: 472, y: 382, width: 160, height: 90 }, "the inset keeps its own shape");
  assert.deepEqual(pipLayout(2, 640, 480, 0)[1], { x: 472, y: 352, width: 160, height: 120 }, "4:3 until it has a picture");
});

test("picture in picture drawn: the remote picture fills the canvas, ours in the corner, a third source not drawn", async (t) => {
  const { made, clock } = browser(t);
  const grid = new GridCanvas({ sources: () => [source("remote"), source("local"), source("extra")], fit: true, pip: true });
  const started = grid.start();
  await flush();
  clock.tick(100);
  for (const video of made.videos) /** @type {FakeVideo} */ (video).frame(320, 240);
  clock.tick(50);
  await flush();
  await started;
  const canvas = made.canvases[0];
  assert.deepEqual([canvas.width, canvas.height], [640, 480]);
  canvas.ctx.calls = [];
  grid.draw();
  assert.deepEqual(canvas.ctx.takeImages().map((c) => c.slice(1)), [[0, 0, 640, 480], [472, 352, 160, 120]]);
  grid.stop();
});
