// The mesh: one link per pair, roles from the server, links independent of each other,
// signals only from members of this room, one camera shared by every link.

import { test } from "node:test";
import assert from "node:assert/strict";
import { flush, FakeWebSocket } from "./fakes/index.js";
import { roomBrowser, joinAll, linkPc, connectAll, memberKeys } from "./room_helpers.js";
import { MeshLinks, MAX_QUEUED_SIGNALS } from "../room/mesh.js";
import { PageError } from "../messages.js";

/** Offers, answers and candidates the hub saw between two users (by key), in order. @param {any} hub @param {string} a @param {string} b */
function signalsBetween(hub, a, b) {
  return hub.rooms.log.filter(
    (/** @type {any} */ m) => ["offer", "answer", "candidate"].includes(m.type) && ((m.from === a && m.to === b) || (m.from === b && m.to === a)),
  );
}

test("three in a room: each has two links, media from both others, and the newcomer offers", async (t) => {
  const { phone, hub } = roomBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  const carol = await phone("carol");
  await joinAll("team", alice, bob, carol);
  for (const p of [alice, bob, carol]) {
    assert.equal(p.room.name, "team");
    assert.equal(p.room.topology, "mesh");
    assert.equal(p.room.mesh?.size, 2, `${p.user} has a link to each other member`);
  }
  // The server said who offers: the newcomer, to everyone already in (impolite there).
  assert.equal(bob.room.mesh?.links.get("alice")?.call.polite, false);
  assert.equal(alice.room.mesh?.links.get("bob")?.call.polite, true);
  assert.equal(carol.room.mesh?.links.get("alice")?.call.polite, false);
  assert.equal(carol.room.mesh?.links.get("bob")?.call.polite, false);
  assert.equal(bob.room.mesh?.links.get("carol")?.call.polite, true);
  for (const [a, b] of [["alice", "bob"], ["alice", "carol"], ["bob", "carol"]]) {
    const offers = signalsBetween(hub, a, b).filter((/** @type {any} */ m) => m.type === "offer");
    assert.equal(offers.length, 1, `${a}-${b} negotiated once`);
    assert.equal(offers[0].from, b, "the later joiner made the offer");
    assert.equal(offers[0].room, "team");
  }
  // Every link negotiated to the end (stable both sides) and sends the room's camera.
  for (const [x, y] of [[alice, bob], [bob, alice], [alice, carol], [carol, alice], [bob, carol], [carol, bob]]) {
    const pc = linkPc(x, y);
    assert.equal(pc.signalingState, "stable", `${x.user}→${y.user}`);
    assert.ok(pc.remoteDescription);
    const sent = pc.getSenders().map((s) => s.track).filter(Boolean);
    assert.deepEqual(sent.map((tr) => tr?.kind).sort(), ["audio", "video"], `${x.user} sends to ${y.user}`);
    for (const track of sent) assert.ok(x.room.localStream?.getTracks().includes(/** @type {any} */ (track)), "the one shared camera");
  }
  await connectAll(alice, bob, carol);
  for (const p of [alice, bob, carol]) {
    const others = [alice, bob, carol].filter((o) => o !== p).map((o) => o.key).sort();
    assert.deepEqual([...p.room.streams().keys()].sort(), others);
    assert.deepEqual(p.room.participants().map((m) => m.state), ["connected", "connected"]);
  }
});

test("the camera opens once per room however many links share it, and only leaving stops it", async (t) => {
  const { phone, env } = roomBrowser(t);
  const alice = await phone("alice");
  const bob = await phone("bob");
  const carol = await phone("carol");
  const before = env.mediaDevices.calls.length;
  await joinAll("team", alice, bob, carol);
  assert.equal(env.mediaDevices.calls.length - before, 3, "one getUserMedia per member");
  const tracks = /** @type {import("./fakes/index.js").FakeTrack[]} */ (/** @type {unknown} */ (carol.room.localStream?.getTracks()));
  assert.equal(tracks.length, 2);
  assert.deepEqual(/** @type {any} */ (tracks.find((tr) => tr.kind === "video"))?.constraints, { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } });
  alice.room.leave();
  await flush(10);
  assert.ok(tracks.every((tr) => tr.readyState === "live"), "a link closing leaves the shared tracks alone");
  carol.room.leave();
  await flush();
  assert.ok(tracks.every((tr) => tr.readyState === "ended"), "leaving stops the room's camera");
  assert.equal(carol.room.localStream, null);
});

test("with the preview open the room sends a clone of it: nothing opens twice", async (t) => {
  const { phone, env } = roomBrowser(t);
  const alice = await phone("alice");
  await phone("bob");
  alice.setPreview(true);
  await flush();
  const preview = alice.localStream;
  const calls = env.mediaDevices.calls.length;
  await joinAll("team", alice);
  assert.equal(env.mediaDevices.calls.length, calls, "no second getUserMedia");
  const room = alice.room.localStream;
  assert.ok(room && preview && room !== preview);
  assert.equal(room.getTracks().length, 2);
  alice.room.leave();
  await flush();
  assert.ok(preview.getTracks().every((tr) => tr.readyState === "live"), "the preview goes on");
});

test("a fourth member joins: the three links between the others are not renegotiated", async (t) => {
  const { phone, hub } = roomBrowser(t);
  const [alice, bob, carol, dave] = [await phone("alice"), await phone("bob"), await phone("carol"), await phone("dave")];
  await joinAll("team", alice, bob, carol);
  await connectAll(alice, bob, carol);
  const pairs = [["alice", "bob"], ["alice", "carol"], ["bob", "carol"]];
  const counts = pairs.map(([a, b]) => signalsBetween(hub, a, b).length);
  const pcs = [linkPc(alice, bob), linkPc(alice, carol), linkPc(bob, carol)];
  const descriptions = pcs.map((pc) => pc.localDescription.sdp);
  await joinAll("team", dave);
  await connectAll(alice, bob, carol, dave);
  assert.deepEqual(pairs.map(([a, b]) => signalsBetween(hub, a, b).length), counts, "nothing crossed between the others");
  assert.deepEqual(pcs.map((pc) => pc.localDescription.sdp), descriptions);
  assert.ok(pcs.every((pc) => !pc.closed));
  assert.equal(linkPc(alice, bob), pcs[0], "the same connection");
  for (const p of [alice, bob, carol, dave]) assert.equal(p.room.mesh?.size, 3);
  assert.equal(dave.room.participants().filter((m) => m.state === "connected").length, 3);
});

test("a member leaves: the others close exactly that link, and hear who left", async (t) => {
  const { phone } = roomBrowser(t);
  const [alice, bob, carol] = [await phone("alice"), await phone("bob"), await phone("carol")];
  await joinAll("team", alice, bob, carol);
  await connectAll(alice, bob, carol);
  /** @type {string[]} */
  const left = [];
  alice.room.events.on("left", (name) => left.push(name));
  const toCarol = linkPc(alice, carol);
  const toBob = linkPc(alice, bob);
  const bobToAlice = linkPc(bob, alice);
  carol.room.leave();
  await flush(10);
  assert.deepEqual(left, ["carol"]);
  assert.equal(toCarol.closed, true);
  assert.equal(toBob.closed, false);
  assert.equal(bobToAlice.closed, false);
  assert.deepEqual(memberKeys(alice), ["bob"]);
  assert.deepEqual([...alice.room.streams().keys()], ["bob"]);
  assert.equal(carol.room.name, "");
  assert.equal(carol.room.mesh, null);
  assert.equal(bob.room.mesh?.has("carol"), false);
});

test("a member whose socket dies is told at once: its link closes, the others stay", async (t) => {
  const { phone, hub } = roomBrowser(t);
  const [alice, bob, carol] = [await phone("alice"), await phone("bob"), await phone("carol")];
  await joinAll("team", alice, bob, carol);
  await connectAll(alice, bob, carol);
  const toCarol = linkPc(alice, carol);
  hub.disconnect(carol.key);
  await flush(10);
  assert.equal(toCarol.closed, true);
  assert.deepEqual(memberKeys(alice), ["bob"]);
  assert.deepEqual(memberKeys(bob), ["alice"]);
  assert.equal(linkPc(alice, bob).closed, false);
});

test("signals from a non-member, or about another room, or without a link are ignored", async (t) => {
  const { phone } = roomBrowser(t);
  const [alice, bob] = [await phone("alice"), await phone("bob")];
  await joinAll("team", alice, bob);
  const ws = /** @type {FakeWebSocket} */ (FakeWebSocket.instances.find((w) => w.sent.some((m) => m.type === "register" && m.username === "alice")));
  const pc = linkPc(alice, bob);
  const remote = pc.remoteDescription;
  const added = pc.candidates.length;
  let stray = false;
  alice.on("state", () => (stray = true));
  ws.serverSend({ type: "offer", from: "mallory", from_key: "mallory", room: "team", sdp: { type: "offer", sdp: "evil" } });
  ws.serverSend({ type: "candidate", from: "bob", from_key: "bob", room: "other", candidate: { candidate: "candidate:evil" } });
  ws.serverSend({ type: "offer", from: "bob", from_key: "bob", room: "other", sdp: { type: "offer", sdp: "evil" } });
  await flush();
  assert.equal(pc.remoteDescription, remote);
  assert.equal(pc.candidates.length, added);
  assert.equal(alice.state, "idle", "a room's signal never rings as a 1:1 call");
  assert.equal(stray, false);
  // A real candidate from bob, for this room, goes in.
  ws.serverSend({ type: "candidate", from: "bob", from_key: "bob", room: "team", candidate: { candidate: "candidate:host" } });
  await flush();
  assert.equal(pc.candidates.length, added + 1);
});

test("a link that fails for good is closed and said; its member stays, reconnecting, until the server says it left", async (t) => {
  const { phone, clock } = roomBrowser(t);
  const [alice, bob, carol] = [await phone("alice"), await phone("bob"), await phone("carol")];
  await joinAll("team", alice, bob, carol);
  await connectAll(alice, bob, carol);
  /** @type {string[]} */
  const errors = [];
  alice.room.events.on("error", (failure) => errors.push(failure.code));
  const pc = linkPc(alice, bob);
  pc.setConnectionState("failed");
  await flush();
  assert.equal(pc.restarts, 1, "ICE restart first (PeerCall)");
  assert.equal(alice.room.participants().find((m) => m.key === "bob")?.state, "reconnecting");
  clock.tick(10_000);
  await flush();
  assert.equal(pc.closed, true);
  assert.equal(alice.room.mesh?.has("bob"), false);
  assert.equal(linkPc(alice, carol).closed, false, "the other link goes on");
  assert.equal(errors[0], PageError.LINK_FAILED);
  assert.equal(alice.room.participants().find((m) => m.key === "bob")?.state, "reconnecting");
  assert.equal(alice.room.stream("bob"), null);
  bob.room.leave();
  await flush(10);
  assert.deepEqual(memberKeys(alice), ["carol"]);
});

test("MeshLinks: what one member may queue on its link is bounded", async (t) => {
  const { clock } = roomBrowser(t);
  void clock;
  /** @type {any[]} */
  const sent = [];
  const mesh = new MeshLinks({
    send: (to, msg) => sent.push({ to: to.key, ...msg }),
    ice: () => ({ iceServers: [], iceTransportPolicy: "all" }),
    onStream: () => {},
    onState: () => {},
    onLost: () => {},
    onError: () => {},
  });
  t.after(() => mesh.close());
  const member = { name: "bob", key: "bob", audio: true, video: true, offer: false, sfuId: "", link: /** @type {""} */ (""), linkLost: false, meshStream: null, sfuStream: null, speaking: false, quality: /** @type {""} */ ("") };
  mesh.add(member);
  assert.equal(mesh.add(member), mesh.links.get("bob")?.call, "one link per member");
  let taken = 0;
  for (let i = 0; i < 500; i++) if (mesh.handle("bob", { type: "candidate", candidate: { candidate: `c${i}` } })) taken += 1;
  assert.ok(taken <= MAX_QUEUED_SIGNALS, `took ${taken}`);
  await flush();
  for (let i = 0; i < 500; i++) mesh.handle("bob", { type: "candidate", candidate: { candidate: `d${i}` } });
  await flush();
  assert.ok((mesh.links.get("bob")?.call.pendingCandidates.length || 0) <= 100);
  assert.equal(mesh.handle("nobody", { type: "offer", sdp: { type: "offer", sdp: "x" } }), false);
});
