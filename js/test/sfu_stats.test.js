// Per-member quality and speaking on the SFU, from fake getStats reports and receivers:
// each feed's packet loss between two readings, the subscriber connection's round trip,
// the quality judged as a mesh link's is, what room_watch.js makes of it; and each
// member's audio level read from the subscription's receivers (no AudioContext).

import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeSfuSession, flush } from "./fakes/index.js";
import { Rates, readStats, roundTrip } from "../room/sfu_stats.js";
import { sfuQuality } from "../room/room_watch.js";
import { SfuSession } from "../room/sfu.js";
import { roomBrowser, joinAll, connectAll } from "./room_helpers.js";

/** A getStats() report (an RTCStatsReport is a read-only Map by id). @param {Record<string, any>[]} stats */
const report = (stats) => /** @type {RTCStatsReport} */ (/** @type {unknown} */ (new Map(stats.map((s) => [s.id, s]))));

/** A peer connection whose getStats() answers the report `next()` gives. @param {() => RTCStatsReport} next */
const pcWith = (next) => /** @type {RTCPeerConnection} */ (/** @type {unknown} */ ({ getStats: async () => next() }));

/** @param {string} mid @param {"audio" | "video"} kind @param {number} received @param {number} lost @param {number} bytes */
const inbound = (mid, kind, received, lost, bytes) => ({
  id: `in-${mid}`, type: "inbound-rtp", mid, kind, packetsReceived: received, packetsLost: lost, bytesReceived: bytes,
  ...(kind === "video" ? { framesDecoded: received, frameWidth: 320, frameHeight: 180 } : {}),
});

/** The subscriber's selected pair: `rtt` seconds. @param {number | undefined} rtt */
const pair = (rtt) => [
  { id: "t", type: "transport", selectedCandidatePairId: "p1" },
  { id: "p1", type: "candidate-pair", nominated: true, state: "succeeded", ...(rtt === undefined ? {} : { currentRoundTripTime: rtt }) },
];

// m-lines 0/1 carry "a" (audio, video), 2/3 "b", 4/5 "c".
const FEEDS = { 0: "a", 1: "a", 2: "b", 3: "b", 4: "c", 5: "c" };
const feedOf = (/** @type {string} */ mid) => /** @type {Record<string, string>} */ (FEEDS)[mid] ?? null;

test("each member's loss between two readings and the subscription's round trip make its quality", async () => {
  const rates = new Rates();
  const read = (/** @type {RTCStatsReport} */ r, /** @type {number} */ now) =>
    readStats({ sub: pcWith(() => r), pub: null, feedOf, layerOf: () => 2, rates, now });
  const first = await read(report([...pair(0.04), inbound("0", "audio", 500, 0, 1e4), inbound("1", "video", 500, 0, 1e5),
    inbound("2", "audio", 500, 0, 1e4), inbound("3", "video", 500, 0, 1e5), inbound("4", "audio", 500, 0, 1e4), inbound("5", "video", 500, 0, 1e5)]), 1000); // prettier-ignore
  assert.equal(first.rtt_ms, 40);
  assert.deepEqual(Object.keys(first.feeds).sort(), ["a", "b", "c"]);
  assert.deepEqual(first.feeds.a.packet_loss_pct, 0, "nothing to compare with yet");
  assert.equal(first.feeds.a.quality, "good", "the round trip alone is good");
  assert.deepEqual([first.feeds.a.packetsReceived, first.feeds.a.framesDecoded, first.feeds.a.layer], [1000, 500, 2]);
  // A second on: a lost 10% of its packets, b 1% (not over the line), c 3%.
  const second = await read(report([...pair(0.04), inbound("0", "audio", 950, 50, 2e4), inbound("1", "video", 950, 50, 2e5),
    inbound("2", "audio", 995, 5, 2e4), inbound("3", "video", 995, 5, 2e5), inbound("4", "audio", 985, 15, 2e4), inbound("5", "video", 985, 15, 2e5)]), 2000); // prettier-ignore
  assert.deepEqual(Object.fromEntries(Object.entries(second.feeds).map(([k, f]) => [k, [f.packet_loss_pct, f.quality, f.rtt_ms]])), {
    a: [10, "poor", 40], b: [1, "good", 40], c: [3, "fair", 40],
  });
  assert.equal(second.feeds.a.kbps, 880, "(2.2e5 - 1.1e5) bytes in 1 s");
  // What room_watch.js makes of it for each member.
  const member = (/** @type {string} */ sfuId) => /** @type {any} */ ({ sfuId });
  assert.deepEqual(["a", "b", "c", "gone"].map((id) => sfuQuality(second, member(id))), ["poor", "good", "fair", ""]);
  // A slow round trip makes everyone fair at least; a lost count that goes down is no gain.
  const third = await read(report([...pair(0.2), inbound("0", "audio", 1450, 40, 3e4), inbound("1", "video", 1450, 40, 3e5)]), 3000);
  assert.deepEqual([third.feeds.a.packet_loss_pct, third.feeds.a.quality, third.rtt_ms], [0, "fair", 200]);
  assert.equal(rates.packets.size, 1, "members no longer read are forgotten");
});

test("readings moments apart keep the older base, so the numbers are not noise", async () => {
  const rates = new Rates();
  const read = (/** @type {number} */ received, /** @type {number} */ lost, /** @type {number} */ now) =>
    readStats({ sub: pcWith(() => report([inbound("1", "video", received, lost, received * 1000)])), pub: null, feedOf, layerOf: () => null, rates, now });
  await read(1000, 0, 0);
  assert.equal((await read(1090, 10, 100)).feeds.a.packet_loss_pct, 10);
  assert.equal((await read(1180, 20, 200)).feeds.a.packet_loss_pct, 10, "still against the reading at 0");
  assert.equal((await read(1180, 20, 600)).feeds.a.packet_loss_pct, 10);
  assert.equal((await read(1280, 20, 1200)).feeds.a.packet_loss_pct, 0, "against the reading at 600");
});

test("the round trip: the transport's selected pair, else a nominated one; unknown without", () => {
  assert.equal(roundTrip(report(pair(0.0123))), 12);
  const nominated = [{ id: "x", type: "candidate-pair", nominated: false, state: "succeeded", currentRoundTripTime: 1 },
    { id: "y", type: "candidate-pair", nominated: true, state: "succeeded", currentRoundTripTime: 0.3 }]; // prettier-ignore
  assert.equal(roundTrip(report(nominated)), 300);
  assert.equal(roundTrip(report(pair(undefined))), null);
  assert.equal(roundTrip(report([])), null);
});

test("before the subscription has a pair, the publisher's round trip is used; the uplink rate too", async () => {
  const rates = new Rates();
  const pub = pcWith(() => report([...pair(0.05), { id: "o", type: "outbound-rtp", bytesSent: 5000 }]));
  const sub = pcWith(() => report([inbound("1", "video", 10, 0, 100)]));
  const got = await readStats({ sub, pub, feedOf, layerOf: () => null, rates, now: 0 });
  assert.equal(got.rtt_ms, 50);
  assert.equal(got.feeds.a.rtt_ms, 50);
  assert.equal(got.uplinkKbps, 0);
});

test("SfuSession.receivers: the subscription's receivers that carry a member, by Janus's layout", () => {
  const session = new SfuSession({ url: "ws://janus", room: "1", token: "t", pin: "p", id: "me" });
  assert.deepEqual(session.receivers("a"), [], "no subscription yet");
  const receiver = (/** @type {string} */ mid) => ({ mid, track: { kind: Number(mid) % 2 ? "video" : "audio" } });
  const transceivers = ["0", "1", "2", "3"].map((mid) => ({ mid, receiver: receiver(mid) }));
  transceivers.push({ mid: /** @type {any} */ (null), receiver: receiver("9") });
  session.sub.handle = /** @type {any} */ ({ webrtcStuff: { pc: { getTransceivers: () => transceivers } } });
  session.feeds.subscription([
    { mid: "0", feed_id: "a", feed_mid: "0", type: "audio" }, { mid: "1", feed_id: "a", feed_mid: "1", type: "video" },
    { mid: "2", feed_id: "b", feed_mid: "0", type: "audio" }, { mid: "3", feed_id: "b", feed_mid: "1", type: "video", active: false },
  ]); // prettier-ignore
  assert.deepEqual(session.receivers("a").map((r) => /** @type {any} */ (r).mid), ["0", "1"]);
  assert.deepEqual(session.receivers("b").map((r) => /** @type {any} */ (r).mid), ["2"], "an inactive m-line carries nobody");
  session.close();
  assert.deepEqual(session.receivers("a"), [], "closed: none");
});

test("speaking on the SFU comes from the session's receivers: no AudioContext is made", async (t) => {
  const { phone, hub, clock } = roomBrowser(t);
  const [alice, bob, carol] = [await phone("alice"), await phone("bob"), await phone("carol")];
  await joinAll("team", alice, bob, carol);
  await connectAll(alice, bob, carol);
  const g = /** @type {any} */ (globalThis);
  const saved = g.AudioContext;
  let contexts = 0;
  g.AudioContext = class {
    constructor() {
      contexts += 1;
    }
  };
  t.after(() => (g.AudioContext = saved));
  hub.rooms.moveToSfu("team");
  await flush(10);
  const session = /** @type {FakeSfuSession & {receiversByFeed?: () => Map<string, any[]>}} */ (FakeSfuSession.instances.find((s) => s.opts.display === "alice"));
  /** @type {Record<string, number>} */
  const levels = {};
  const ids = ["bob", "carol"].map((k) => String(hub.rooms.roomOf(k)?.members.get(k)?.sfuId));
  const receiver = (/** @type {string} */ id) => ({ track: { kind: "audio" }, getSynchronizationSources: () => [{ audioLevel: levels[id] ?? 0, timestamp: 0 }] });
  session.receiversByFeed = () => new Map(ids.map((id) => [id, [receiver(id)]]));
  for (const id of ids) session.publish(id);
  clock.tick(6000); // the handover is over: the mesh links are gone
  await flush();
  assert.equal(alice.room.mesh, null);
  levels[ids[0]] = 0.4;
  clock.tick(300);
  assert.deepEqual(alice.room.participants().map((p) => [p.name, p.speaking]), [["bob", true], ["carol", false]]);
  levels[ids[0]] = 0;
  levels[ids[1]] = 0.2;
  clock.tick(1000);
  assert.deepEqual(alice.room.participants().map((p) => [p.name, p.speaking]), [["bob", false], ["carol", true]]);
  assert.equal(contexts, 0, "no AudioContext");
});
