// The SFU client without a Janus: which layer a tile gets, what Janus's messages mean for
// members' feeds, and SfuSession's life (join, refusal, loss, timeouts, close) against a
// fake janus.js.  The real thing against a real Janus: tests/e2e/test_sfu_page.py.

import { test } from "node:test";
import assert from "node:assert/strict";
import { installGlobals, FakeClock, FakeTrack, FakeMediaStream, flush } from "./fakes/index.js";
import { layerFor, simulcastEncodings, refusalWords, Feeds } from "../room/sfu_feeds.js";
import { SfuSession, START_TIMEOUT_MS } from "../room/sfu.js";
import { REQUEST_TIMEOUT_MS } from "../room/sfu_waits.js";
import { LAYER_NUDGE_MS, LAYER_NUDGES } from "../room/sfu_layers.js";

test("a tile's size picks the simulcast layer", () => {
  assert.equal(layerFor(160, 90), 0);
  assert.equal(layerFor(240, 135), 0);
  assert.equal(layerFor(241, 135), 1);
  assert.equal(layerFor(480, 270), 1);
  assert.equal(layerFor(481, 270), 2);
  assert.equal(layerFor(1280, 720), 2);
  assert.equal(layerFor(120, 300), 2, "a tall tile needs a picture as wide as its height asks");
  assert.equal(layerFor(0, 0), 0);
  assert.equal(layerFor(NaN, Number("x")), 0);
});

test("the camera goes in three layers, each sized explicitly when the camera's size is known", () => {
  const [l, m, h] = simulcastEncodings({ width: 320, height: 180 }); // smallest first: js/test/sfu_encodings.test.js
  assert.deepEqual([h.rid, m.rid, l.rid], ["h", "m", "l"]);
  assert.deepEqual([h, m, l].map((e) => e.scaleResolutionDownBy), [1, 2, 4]);
  assert.deepEqual(/** @type {any} */ (l).scaleResolutionDownTo, { maxWidth: 80, maxHeight: 45 });
  assert.deepEqual(/** @type {any} */ (m).scaleResolutionDownTo, { maxWidth: 160, maxHeight: 90 });
  assert.ok(/** @type {number} */ (h.maxBitrate) > /** @type {number} */ (m.maxBitrate));
  assert.ok(simulcastEncodings({}).every((e) => !("scaleResolutionDownTo" in e)));
});

test("Janus's refusals in words", () => {
  assert.equal(refusalWords(433, "Unauthorized (not in the allowed list)"),
    "the SFU refused to let this member in: wrong or missing PIN or token (Unauthorized (not in the allowed list), code 433)"); // prettier-ignore
  assert.match(refusalWords(426, "No such room (x)"), /^the SFU refused to let this member in: the room does not exist/);
  assert.match(refusalWords(499, "odd"), /: odd \(code 499\)$/);
});

const pub = (/** @type {string} */ id, simulcast = true) => ({
  id,
  display: id,
  streams: [{ type: "audio", mid: "0" }, { type: "video", mid: "1", simulcast }],
});

test("publishers come and go; ourselves, dummies and stream-less publishers are no feeds", () => {
  const feeds = new Feeds("me");
  const joined = feeds.publisherEvent({
    videoroom: "joined",
    publishers: [pub("a"), pub("me"), { id: "d", dummy: true, streams: [{ type: "video", mid: "0" }] }, { id: "e", streams: [] }],
  });
  assert.deepEqual(joined, { added: ["a"], gone: [] });
  assert.deepEqual(feeds.publisherEvent({ videoroom: "event", publishers: [pub("b"), pub("a")] }), { added: ["b"], gone: [] });
  assert.deepEqual(feeds.publisherEvent({ videoroom: "event", unpublished: "ok" }), { added: [], gone: [] }, "ours");
  assert.deepEqual(feeds.publisherEvent({ videoroom: "event", leaving: "a" }), { added: [], gone: ["a"] });
  assert.deepEqual(feeds.publisherEvent({ videoroom: "event", unpublished: "a" }), { added: [], gone: [] }, "once");
  assert.deepEqual(feeds.missing(), [{ feed: "b", mid: "0" }, { feed: "b", mid: "1" }]);
  assert.ok(feeds.simulcast("b"));
  // One voice and one picture per member, however many streams it publishes.
  const many = Array.from({ length: 40 }, (_, i) => ({ type: i % 2 ? "video" : "audio", mid: String(i) }));
  feeds.publisherEvent({ videoroom: "event", publishers: [{ id: "c", streams: [{ type: "data", mid: "x" }, ...many] }] });
  assert.deepEqual(feeds.missing().filter((m) => m.feed === "c"), [{ feed: "c", mid: "0" }, { feed: "c", mid: "1" }]);
});

test("feeds are bounded", () => {
  const feeds = new Feeds("me", 2);
  feeds.publisherEvent({ publishers: [pub("a"), pub("b"), pub("c")] });
  assert.deepEqual([...feeds.publishers.keys()], ["a", "b"]);
  assert.equal(feeds.dropped, 1);
});

test("the subscription's layout maps m-lines to feeds, and says which m-lines changed hands", () => {
  const feeds = new Feeds("me");
  feeds.publisherEvent({ publishers: [pub("a"), pub("b")] });
  const line = (/** @type {string} */ mid, /** @type {string} */ feed, /** @type {string} */ type, active = true) => ({
    mid, type, active, feed_id: feed, feed_mid: type === "audio" ? "0" : "1",
  }); // prettier-ignore
  let changes = feeds.subscription([line("0", "a", "audio"), line("1", "a", "video")]);
  assert.deepEqual(changes, [{ mid: "0", from: null, to: "a" }, { mid: "1", from: null, to: "a" }]);
  assert.equal(feeds.videoMid("a"), "1");
  assert.deepEqual(feeds.missing(), [{ feed: "b", mid: "0" }, { feed: "b", mid: "1" }]);
  // a left; its m-lines were recycled for b.
  changes = feeds.subscription([line("0", "b", "audio"), line("1", "b", "video"), { mid: "2", type: "video", active: false }]);
  assert.deepEqual(changes, [{ mid: "0", from: "a", to: "b" }, { mid: "1", from: "a", to: "b" }]);
  assert.equal(feeds.feedOf("1"), "b");
  assert.equal(feeds.feedOf("2"), null);
  feeds.forget("b");
  assert.equal(feeds.feedOf("0"), null);
});

// ---- SfuSession against a fake janus.js ----

class FakeHandle {
  /** @param {Record<string, any>} callbacks */
  constructor(callbacks) {
    this.callbacks = callbacks;
    /** @type {{message: Record<string, any>, jsep?: any}[]} */
    this.sent = [];
    /** @type {any[]} */
    this.offers = [];
    /** @type {any[]} what janus.js would have added to the connection */
    this.transceivers = [];
    this.webrtcStuff = { pc: { getTransceivers: () => this.transceivers, getStats: async () => new Map() } };
  }
  /** @param {{message: Record<string, any>, jsep?: any, success?: Function}} req */
  send(req) {
    this.sent.push({ message: req.message, jsep: req.jsep });
    if (req.success) req.success();
  }
  /** @param {{tracks: any[], success: Function}} req */
  createOffer(req) {
    this.offers.push(req.tracks);
    for (const t of req.tracks) {
      const sender = {
        track: t.capture,
        params: { encodings: t.sendEncodings || [{}] },
        replaceTrack: async (/** @type {any} */ track) => void (sender.track = track),
        getParameters: () => structuredClone(sender.params),
        setParameters: async (/** @type {any} */ params) => void (sender.params = params),
      };
      this.transceivers.push({ mid: String(this.transceivers.length), sender, receiver: { track: { kind: t.type } } });
    }
    req.success({ type: "offer", sdp: "offer" });
  }
  /** @param {{success: Function}} req */
  createAnswer(req) {
    req.success({ type: "answer", sdp: "answer" });
  }
  /** @param {{success: Function}} req */
  handleRemoteJsep(req) {
    req.success();
  }
  /** Janus says something to this handle. @param {Record<string, any>} msg @param {any} [jsep] */
  emit(msg, jsep) {
    this.callbacks.onmessage(msg, jsep);
  }
  /** @param {string} request */
  requests(request) {
    return this.sent.filter((s) => s.message.request === request).map((s) => s.message);
  }
}

/** A janus.js Janus class whose server the test plays. */
function fakeJanus() {
  const lib = class FakeJanus {
    /** @param {Record<string, any>} options */
    constructor(options) {
      this.options = options;
      /** @type {FakeHandle[]} */
      this.handles = [];
      /** @type {any[]} */
      this.destroyed = [];
      lib.instances.push(this);
    }
    connect() {
      this.options.success();
    }
    /** @param {string} why */
    lose(why) {
      this.options.error(why);
    }
    /** @param {Record<string, any>} callbacks */
    attach(callbacks) {
      const handle = new FakeHandle(callbacks);
      this.handles.push(handle);
      queueMicrotask(() => callbacks.success(handle));
    }
    getSessionId() {
      return 42;
    }
    isConnected() {
      return true;
    }
    /** @param {Record<string, any>} opts */
    destroy(opts) {
      this.destroyed.push(opts);
      if (opts.success) opts.success();
    }
  };
  /** @type {any[]} */
  lib.instances = [];
  lib.sessions = new Map([[42, {}]]);
  return lib;
}

/** @param {import("node:test").TestContext} t @param {Record<string, any>} [opts] */
function session(t, opts = {}) {
  const env = installGlobals();
  const clock = new FakeClock().install();
  const lib = fakeJanus();
  const log = { states: /** @type {string[]} */ ([]), errors: /** @type {string[]} */ ([]), streams: /** @type {[string, any][]} */ ([]), gone: /** @type {string[]} */ ([]) };
  const camera = new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]);
  const s = new SfuSession({
    url: "ws://127.0.0.1:8188", room: "standup", token: "tok", pin: "1234", id: "me", display: "me",
    localStream: /** @type {any} */ (camera), iceServers: [], janus: /** @type {any} */ (lib),
    onStream: (id, stream) => log.streams.push([id, stream]),
    onStreamGone: (id) => log.gone.push(id),
    onState: (state, words) => log.states.push(words ? `${state}: ${words}` : state),
    onError: (words) => log.errors.push(words),
    ...opts,
  }); // prettier-ignore
  t.after(() => {
    s.close();
    clock.uninstall();
    env.restore();
  });
  const janus = () => lib.instances[0];
  return { s, lib, janus, clock, log };
}

/** Connect and let the publisher handle send its join. @param {ReturnType<typeof session>} ctx */
async function untilJoin(ctx) {
  const started = ctx.s.start();
  started.catch(() => {});
  ctx.janus().connect();
  await flush();
  return { started, handle: /** @type {FakeHandle} */ (ctx.janus().handles[0]) };
}

test("joins with its id, token and PIN, publishes in simulcast, subscribes to the others, and closes", async (t) => {
  const ctx = session(t);
  const { started, handle } = await untilJoin(ctx);
  assert.deepEqual(handle.requests("join"), [{ request: "join", ptype: "publisher", room: "standup", id: "me", display: "me", token: "tok", pin: "1234" }]);
  handle.emit({ videoroom: "joined", id: "me", private_id: 7, publishers: [pub("ann")] });
  await flush();
  const video = handle.offers[0].find((/** @type {any} */ o) => o.type === "video");
  assert.equal(video.simulcast, true);
  assert.equal(video.sendEncodings.length, 3);
  assert.ok(handle.offers[0].every((/** @type {any} */ o) => o.dontStop && o.recv === false), "the page's tracks, sent only");
  assert.deepEqual(handle.requests("publish"), [{ request: "publish" }]);
  handle.emit({ videoroom: "event", configured: "ok", video_codec: "vp8" }, { type: "answer", sdp: "a" });
  await flush();
  handle.callbacks.webrtcState(true);
  await started;
  assert.deepEqual(ctx.log.states, ["connecting", "connected"]);

  const sub = /** @type {FakeHandle} */ (ctx.janus().handles[1]);
  assert.deepEqual(sub.requests("join"), [{ request: "join", ptype: "subscriber", room: "standup", pin: "1234", private_id: 7,
    streams: [{ feed: "ann", mid: "0" }, { feed: "ann", mid: "1" }] }]); // prettier-ignore
  const layout = [{ mid: "0", type: "audio", feed_id: "ann", feed_mid: "0" }, { mid: "1", type: "video", feed_id: "ann", feed_mid: "1" }];
  sub.emit({ videoroom: "attached", streams: layout }, { type: "offer", sdp: "o" });
  await flush();
  assert.equal(sub.requests("start").length, 1);
  const track = new FakeTrack("video");
  sub.callbacks.onremotetrack(track, "1", true, { reason: "created" });
  assert.equal(ctx.log.streams.length, 1);
  assert.equal(ctx.log.streams[0][0], "ann");
  assert.deepEqual(ctx.log.streams[0][1].getTracks(), [track]);

  assert.equal(ctx.s.layer("ann"), 2, "Janus's default: the top layer");
  ctx.s.setTileSize("ann", 160, 90);
  ctx.s.setTileSize("ann", 200, 100); // same layer: no second configure
  assert.deepEqual(sub.requests("configure"), [{ request: "configure", streams: [{ mid: "1", substream: 0 }] }]);
  assert.equal(ctx.s.layer("ann"), 0);
  sub.emit({ videoroom: "event", mid: "1", substream: 0 });
  assert.equal(ctx.s.receivedLayer("ann"), 0);
  assert.equal(ctx.s.layer("nobody"), null);

  handle.emit({ videoroom: "event", unpublished: "ann" });
  assert.deepEqual(ctx.log.gone, ["ann"]);
  ctx.s.close();
  ctx.s.close();
  assert.deepEqual(ctx.log.states, ["connecting", "connected", "closed"]);
  assert.equal(ctx.janus().destroyed.length, 1);
  assert.equal(ctx.janus().destroyed[0].cleanupHandles, true);
  assert.equal(ctx.lib.sessions.size, 0, "janus.js's registry forgets the session");
  assert.equal(ctx.clock.pending, 0, "no timer left");
  assert.deepEqual(ctx.log.errors, []);
});

test("a wrong token or PIN: refused in words, failed, everything released", async (t) => {
  const ctx = session(t);
  const { started, handle } = await untilJoin(ctx);
  handle.emit({ videoroom: "event", error_code: 433, error: "Unauthorized (not in the allowed list)" });
  await assert.rejects(started, /^Error: the SFU refused to let this member in: wrong or missing PIN or token/);
  assert.equal(ctx.log.errors.length, 1);
  assert.match(ctx.log.states.at(-1) || "", /^failed: the SFU refused to let this member in/);
  assert.equal(ctx.janus().destroyed.length, 1);
  assert.equal(ctx.clock.pending, 0);
  ctx.s.close();
  assert.equal(ctx.s.state, "closed");
  assert.equal(ctx.janus().destroyed.length, 1, "released once");
});

test("Janus unreachable, or not answering: failed with words, never a hang", async (t) => {
  const ctx = session(t);
  const started = ctx.s.start();
  await flush();
  ctx.janus().lose("Error connecting to the Janus WebSockets server: Is the server down?");
  await assert.rejects(started, /could not reach the SFU at ws:\/\/127\.0\.0\.1:8188: Error connecting/);

  const silent = session(t); // the socket never opens, and never fails either
  const waiting = silent.s.start();
  await flush();
  silent.clock.tick(REQUEST_TIMEOUT_MS);
  await assert.rejects(waiting, new RegExp(`the SFU did not answer at ws://127.0.0.1:8188 within ${REQUEST_TIMEOUT_MS / 1000} s`));
  assert.equal(silent.s.state, "failed");
  assert.equal(silent.janus().destroyed.length, 1, "the half-open session is dropped too");

  const quiet = session(t);
  const join = await untilJoin(quiet);
  quiet.clock.tick(REQUEST_TIMEOUT_MS);
  await assert.rejects(join.started, new RegExp(`the SFU did not join the room within ${REQUEST_TIMEOUT_MS / 1000} s`));
  assert.equal(quiet.clock.pending, 0);

  const slow = session(t); // answers every request, but the media never comes up
  const s = await untilJoin(slow);
  s.handle.emit({ videoroom: "joined", id: "me", publishers: [] });
  await flush();
  s.handle.emit({ videoroom: "event", configured: "ok", video_codec: "vp8" }, { type: "answer", sdp: "a" });
  await flush();
  slow.clock.tick(START_TIMEOUT_MS);
  await assert.rejects(s.started, /did not/);
  assert.equal(slow.s.state, "failed");
});

test("the connection lost after joining: failed", async (t) => {
  const ctx = session(t, { localStream: null });
  const { started, handle } = await untilJoin(ctx);
  handle.emit({ videoroom: "joined", id: "me", publishers: [] });
  await started; // receive only: in as soon as joined
  ctx.janus().lose("Lost connection to the server (is it down?)");
  assert.deepEqual(ctx.log.states, ["connecting", "connected", "failed: lost the connection to the SFU (Lost connection to the server (is it down?))"]);
  assert.equal(ctx.janus().destroyed.length, 1);
});

test("a layer Janus does not reach is asked for again, a few times", async (t) => {
  const ctx = session(t, { localStream: null });
  const { started, handle } = await untilJoin(ctx);
  handle.emit({ videoroom: "joined", id: "me", publishers: [pub("ann")] });
  await started;
  await flush();
  const sub = /** @type {FakeHandle} */ (ctx.janus().handles[1]);
  sub.emit({ videoroom: "attached", streams: [{ mid: "0", type: "video", feed_id: "ann", feed_mid: "1" }] }, { type: "offer", sdp: "o" });
  await flush();
  ctx.s.setTileSize("ann", 400, 225);
  sub.emit({ videoroom: "event", mid: "0", substream: 0 }); // stuck below
  for (let i = 0; i < LAYER_NUDGES + 3; i++) ctx.clock.tick(LAYER_NUDGE_MS);
  assert.equal(sub.requests("configure").length, 1 + LAYER_NUDGES);
  ctx.s.setTileSize("ann", 1280, 720); // another layer: asked, and watched again
  sub.emit({ videoroom: "event", mid: "0", substream: 2 });
  ctx.clock.tick(10 * LAYER_NUDGE_MS);
  assert.equal(sub.requests("configure").length, 2 + LAYER_NUDGES);
  assert.equal(ctx.clock.pending, 0);
});

test("a member that left before being subscribed to is not waited for", async (t) => {
  const ctx = session(t, { localStream: null });
  const { started, handle } = await untilJoin(ctx);
  handle.emit({ videoroom: "joined", id: "me", publishers: [pub("ann"), pub("bob")] });
  await started;
  await flush();
  const sub = /** @type {FakeHandle} */ (ctx.janus().handles[1]);
  handle.emit({ videoroom: "event", leaving: "bob" });
  sub.emit({ videoroom: "event", error_code: 428, error: "No such feed (bob)" });
  ctx.clock.tick(500);
  await flush();
  assert.deepEqual(sub.requests("join").at(-1)?.streams, [{ feed: "ann", mid: "0" }, { feed: "ann", mid: "1" }]);
  assert.equal(ctx.s.state, "connected");
  assert.deepEqual(ctx.log.errors, []);
});

test("a member that leaves and comes back on recycled m-lines gets its stream, with no new track event", async (t) => {
  const ctx = session(t, { localStream: null });
  const { started, handle } = await untilJoin(ctx);
  handle.emit({ videoroom: "joined", id: "me", publishers: [pub("ann"), pub("bob")] });
  await started;
  await flush();
  const sub = /** @type {FakeHandle} */ (ctx.janus().handles[1]);
  const tracks = ["audio", "video", "audio", "video"].map((kind) => new FakeTrack(/** @type {any} */ (kind)));
  sub.transceivers = tracks.map((track, i) => ({ mid: String(i), receiver: { track } }));
  const line = (/** @type {number} */ mid, /** @type {string} */ feed) => ({ mid: String(mid), type: mid % 2 ? "video" : "audio", feed_id: feed, feed_mid: String(mid % 2) });
  sub.emit({ videoroom: "attached", streams: [line(0, "ann"), line(1, "ann"), line(2, "bob"), line(3, "bob")] }, { type: "offer", sdp: "o" });
  await flush();
  tracks.forEach((track, i) => sub.callbacks.onremotetrack(track, String(i), true, { reason: "created" }));
  const streamOf = (/** @type {string} */ id) => ctx.log.streams.filter(([feed]) => feed === id).at(-1)?.[1];
  assert.deepEqual(streamOf("ann").getTracks(), tracks.slice(0, 2));

  // ann leaves; Janus (1.1) may leave her m-lines as they are (recvonly, unmuted) ...
  handle.emit({ videoroom: "event", leaving: "ann" });
  assert.deepEqual(ctx.log.gone, ["ann"]);
  // ... and comes back with the same id: subscribed again, on her old m-lines.
  handle.emit({ videoroom: "event", publishers: [pub("ann")] });
  assert.deepEqual(sub.requests("subscribe").at(-1)?.streams, [{ feed: "ann", mid: "0" }, { feed: "ann", mid: "1" }]);
  const before = ctx.log.streams.length;
  sub.emit({ videoroom: "updated", streams: [line(0, "ann"), line(1, "ann"), line(2, "bob"), line(3, "bob")] }, { type: "offer", sdp: "o2" });
  await flush();
  assert.equal(ctx.log.streams.length, before + 1, "no ontrack, no unmute: the layout alone makes her stream");
  assert.deepEqual(streamOf("ann").getTracks(), tracks.slice(0, 2));
  sub.callbacks.onremotetrack(tracks[1], "1", true, { reason: "unmute" }); // if it does come: nothing new
  assert.equal(ctx.log.streams.length, before + 1);

  // Someone new takes bob's m-lines before bob's leaving is heard of: bob's stream loses them.
  handle.emit({ videoroom: "event", publishers: [pub("cat")] });
  sub.emit({ videoroom: "updated", streams: [line(0, "ann"), line(1, "ann"), line(2, "cat"), line(3, "cat")] }, { type: "offer", sdp: "o3" });
  await flush();
  assert.deepEqual(streamOf("cat").getTracks(), tracks.slice(2));
  assert.deepEqual(streamOf("bob").getTracks(), []);
  assert.deepEqual(ctx.s.receivers("cat").map((r) => r.track), tracks.slice(2));
  handle.emit({ videoroom: "event", leaving: "bob" });
  assert.deepEqual(ctx.log.gone, ["ann", "bob"]);
  assert.deepEqual(streamOf("cat").getTracks(), tracks.slice(2), "bob's going takes nothing from cat");
  assert.deepEqual(ctx.log.errors, []);
});

test("tracks replaced on the same senders; a kind not sent yet is negotiated with Janus", async (t) => {
  const ctx = session(t);
  const { started, handle } = await untilJoin(ctx);
  handle.emit({ videoroom: "joined", id: "me", publishers: [] });
  await flush();
  handle.emit({ videoroom: "event", configured: "ok", video_codec: "vp8" }, { type: "answer", sdp: "a" });
  await flush();
  handle.callbacks.webrtcState(true);
  await started;
  const camera = Object.assign(new FakeTrack("video"), { getSettings: () => ({ width: 640, height: 360 }) });
  await ctx.s.replaceTrack("video", /** @type {any} */ (camera));
  await ctx.s.replaceTrack("audio", null); // muted
  const [audio, video] = handle.transceivers;
  assert.equal(video.sender.track, camera);
  assert.equal(audio.sender.track, null);
  assert.deepEqual(video.sender.params.encodings.map((/** @type {any} */ e) => e.scaleResolutionDownTo.maxWidth), [160, 320, 640]); // smallest first (sfu_feeds.js)
  assert.equal(handle.offers.length, 1, "no renegotiation");

  const quiet = session(t, { localStream: null }); // receive only, then the camera opens
  const q = await untilJoin(quiet);
  q.handle.emit({ videoroom: "joined", id: "me", publishers: [] });
  await q.started;
  const sending = quiet.s.replaceTrack("video", /** @type {any} */ (new FakeTrack("video")));
  await flush();
  assert.deepEqual(q.handle.requests("publish"), [{ request: "publish" }]);
  q.handle.emit({ videoroom: "event", configured: "ok", video_codec: "vp8" }, { type: "answer", sdp: "a" });
  await flush();
  q.handle.callbacks.webrtcState(true);
  await sending;
  assert.deepEqual(quiet.log.errors, []);
});
