// RoomClient: joining and leaving, invitations, what the server refuses, chat and media
// state, one call or room at a time, the move to the SFU, reconnects, close().

import { test } from "node:test";
import assert from "node:assert/strict";
import { flush, FakeWebSocket, FakeSfuSession } from "./fakes/index.js";
import { connect } from "./helpers.js";
import { roomBrowser, joinAll, linkPc, connectAll, memberKeys } from "./room_helpers.js";
import { MessageType, ErrorCode } from "../protocol.js";
import { RoomType, RoomError } from "../room/room_protocol.js";
import { HANDOVER_MS } from "../room/switchover.js";
import { PageError } from "../messages.js";
import { codeOf } from "../failure.js";

/** @typedef {import("../call/phone.js").Phone} Phone */

/** Everything a phone's room emits, by event. @param {Phone} p */
function record(p) {
  /** @type {{error: string[], joined: string[], left: string[], chat: any[], invited: any[], topology: string[]}} */
  const seen = { error: [], joined: [], left: [], chat: [], invited: [], topology: [] };
  p.room.events.on("error", (failure) => seen.error.push(failure.code)); // codes, not words
  p.room.events.on("joined", (n) => seen.joined.push(n));
  p.room.events.on("left", (n) => seen.left.push(n));
  p.room.events.on("chat", (c) => seen.chat.push(c));
  p.room.events.on("invited", (i) => seen.invited.push(i));
  p.room.events.on("topology", (tp) => seen.topology.push(tp));
  return seen;
}

/** The socket a phone registered on. @param {Phone} p */
function socketOf(p) {
  const ws = FakeWebSocket.instances.filter((w) => w.sent.some((m) => m.type === "register" && m.username === p.user)).pop();
  if (!ws) throw new Error(`no socket for ${p.user}`);
  return ws;
}

test("every room message type and error code the page uses is one of protocol.js's", () => {
  const types = /** @type {Record<string, string>} */ (/** @type {unknown} */ (MessageType));
  const codes = /** @type {Record<string, string>} */ (/** @type {unknown} */ (ErrorCode));
  for (const [name, value] of Object.entries(RoomType)) assert.equal(types[name], value, name);
  for (const [name, value] of Object.entries(RoomError)) assert.equal(codes[name], value, name);
});

test("join, the others hear who joined, leave: the room empties on the page at once", async (t) => {
  const { phone, hub } = roomBrowser(t);
  const [alice, bob] = [await phone("alice"), await phone("bob")];
  const seen = record(alice);
  assert.equal(codeOf(alice.room.leave()), ErrorCode.NOT_IN_ROOM);
  assert.equal(codeOf(alice.room.join("  ")), ErrorCode.INVALID_ROOM);
  assert.equal(alice.room.join("team"), "");
  assert.equal(codeOf(alice.room.join("team")), PageError.IN_ROOM);
  await flush(10);
  assert.equal(alice.room.name, "team");
  assert.equal(codeOf(alice.room.join("team")), PageError.IN_ROOM);
  assert.equal(codeOf(alice.room.join("other")), PageError.IN_ROOM);
  await joinAll("team", bob);
  assert.deepEqual(seen.joined, ["bob"]);
  assert.deepEqual(seen.topology, ["mesh"]);
  assert.deepEqual(alice.room.participants().map((p) => [p.name, p.state, p.audio, p.video]), [["bob", "connecting", true, true]]);
  assert.equal(alice.room.leave(), "");
  assert.equal(alice.room.name, "");
  assert.equal(alice.room.topology, "");
  assert.deepEqual(alice.room.participants(), []);
  await flush(10);
  assert.equal(hub.rooms.roomOf("alice"), null);
  assert.deepEqual(memberKeys(bob), []);
  assert.deepEqual(seen.error, [], "the server's room_left (left) is no news");
});

test("leaving before the server answered: its room_joined does not pull us back in", async (t) => {
  const { phone, hub } = roomBrowser(t);
  const alice = await phone("alice");
  alice.room.join("team");
  alice.room.leave();
  alice.room.join("other");
  await flush(10);
  assert.equal(alice.room.name, "other");
  assert.equal(hub.rooms.roomOf("alice")?.name, "other");
});

test("invite, ring, accept: the invitee joins; invite, decline: the ringing ends", async (t) => {
  const { phone } = roomBrowser(t);
  const [alice, bob, carol] = [await phone("alice"), await phone("bob"), await phone("carol")];
  const bobSaw = record(bob);
  assert.equal(codeOf(alice.room.invite("bob")), ErrorCode.NOT_IN_ROOM);
  assert.equal(codeOf(bob.room.acceptInvite()), ErrorCode.NOT_INVITED);
  assert.equal(codeOf(bob.room.declineInvite()), ErrorCode.NOT_INVITED);
  await joinAll("secret", alice);
  assert.equal(codeOf(alice.room.invite("nobody")), ErrorCode.UNKNOWN_PEER);
  assert.equal(codeOf(alice.room.invite("alice")), ErrorCode.SELF_CALL);
  assert.equal(alice.room.invite("bob"), "");
  await flush(10);
  assert.deepEqual(bob.room.invitation, { room: "secret", from: "alice", fromKey: "alice" });
  assert.deepEqual(bobSaw.invited, [{ room: "secret", from: "alice", fromKey: "alice" }]);
  assert.deepEqual(alice.room.participants().map((p) => [p.name, p.state]), [["bob", "ringing"]]);
  assert.equal(codeOf(alice.room.invite("bob")), PageError.ALREADY_MEMBER);
  assert.equal(bob.room.acceptInvite(), "");
  assert.equal(bob.room.invitation, null);
  await flush(10);
  assert.equal(bob.room.name, "secret");
  assert.deepEqual(alice.room.participants().map((p) => [p.name, p.state]), [["bob", "connecting"]]);
  assert.equal(codeOf(alice.room.invite("bob")), PageError.ALREADY_MEMBER);
  // carol declines
  alice.room.invite("carol");
  await flush(10);
  assert.deepEqual(memberKeys(bob), ["alice", "carol"], "every member sees who rings");
  assert.equal(carol.room.declineInvite(), "");
  await flush(10);
  assert.deepEqual(memberKeys(alice), ["bob"]);
  assert.deepEqual(memberKeys(bob), ["alice"]);
  assert.equal(carol.room.name, "");
});

test("an invitation nobody answers is forgotten after the server's ring timeout", async (t) => {
  const { phone, clock } = roomBrowser(t);
  const [alice, bob] = [await phone("alice"), await phone("bob")];
  await joinAll("team", alice);
  alice.room.invite("bob");
  await flush(10);
  assert.ok(bob.room.invitation);
  clock.tick(30_000 + 5_000); // registered.ring_timeout (30 s) and a little
  assert.equal(bob.room.invitation, null);
});

test("what the server refuses reaches the error event, with the server's code", async (t) => {
  const { phone, hub } = roomBrowser(t);
  const [a, b, c, d, e, f] = [await phone("a1"), await phone("b1"), await phone("c1"), await phone("d1"), await phone("e1"), await phone("f1")];
  const seen = record(e);
  await joinAll("team", a, b, c, d);
  // A mesh at its limit and no SFU configured: the fifth is refused.
  assert.equal(e.room.join("team"), "");
  await flush(10);
  assert.equal(e.room.name, "");
  assert.equal(seen.error[0], ErrorCode.ROOM_FULL);
  assert.equal(e.room.join("team"), "", "refused, not stuck: it may try again");
  await flush(10);
  // Invite-only, password.
  const fSaw = record(f);
  assert.equal(a.room.leave(), "");
  await flush(10);
  assert.equal(a.room.join("closed", { inviteOnly: true }), "");
  await flush(10);
  f.room.join("closed");
  await flush(10);
  assert.equal(fSaw.error[0], ErrorCode.NOT_INVITED);
  assert.equal(f.room.name, "");
  a.room.leave();
  await flush(10);
  a.room.join("locked", { password: "s3cret" });
  await flush(10);
  f.room.join("locked", { password: "wrong" });
  await flush(10);
  assert.deepEqual(fSaw.error, [ErrorCode.NOT_INVITED, ErrorCode.NOT_INVITED]);
  f.room.join("locked", { password: "s3cret" });
  await flush(10);
  assert.equal(f.room.name, "locked");
  // Chat to a room we are not in (the server's not_in_room), straight from the socket.
  socketOf(e).serverSend({ type: "error", code: "not_in_room", message: "you are not in that room", request: "room_chat" });
  assert.equal(seen.error.at(-1), ErrorCode.NOT_IN_ROOM);
  // A name the rules refuse; an SFU that did not answer when the room had to move.
  e.room.join("x".repeat(70));
  await flush(10);
  assert.equal(seen.error.at(-1), ErrorCode.INVALID_ROOM);
  e.room.join("team");
  socketOf(e).serverSend({ type: "error", code: "sfu_unavailable", message: "the SFU did not answer: try again later", request: "room_join" });
  assert.equal(seen.error.at(-1), ErrorCode.SFU_UNAVAILABLE);
  assert.equal(e.room.name, "");
  await flush(10); // the hub's own answer to that join (room_full) is no longer awaited: dropped
  assert.equal(seen.error.at(-1), ErrorCode.SFU_UNAVAILABLE);
  // A code this page does not know (a newer server) is reported as server_refused.
  socketOf(e).serverSendUnchecked({ type: "error", code: "brand_new_code", message: "new", request: "room_chat" });
  assert.equal(seen.error.at(-1), PageError.SERVER_REFUSED);
  socketOf(e).serverSendUnchecked({ type: "error", code: PageError.IN_CALL, message: "not a server code", request: "room_chat" });
  assert.equal(seen.error.at(-1), PageError.SERVER_REFUSED);
  // Errors about anything else are not the room's.
  assert.equal(e.room.onServerMessage({ type: "error", code: "no_call", message: "x", request: "hangup" }), false);
  assert.equal(hub.rooms.rooms.size, 2);
});

test("one call or room at a time: no room during a call, no call in a room", async (t) => {
  const { phone } = roomBrowser(t);
  const [alice, bob, carol] = [await phone("alice"), await phone("bob"), await phone("carol")];
  await connect(alice, bob);
  assert.equal(codeOf(alice.room.join("team")), PageError.IN_CALL);
  alice.hangup();
  await flush();
  await joinAll("team", alice);
  assert.equal(codeOf(alice.placeCall("carol")), PageError.IN_ROOM);
  // The server refuses to ring someone in a room; an invite that comes anyway is rejected here.
  carol.placeCall("alice");
  await flush(10);
  assert.equal(carol.state, "ended");
  assert.equal(carol.endReason, "busy");
  socketOf(alice).serverSend({ type: "invite", from: "carol", from_key: "carol", call_id: "c9" });
  assert.equal(alice.state, "ended", "not ringing");
  assert.deepEqual(socketOf(alice).sentOf("reject").at(-1), { type: "reject", to: "carol" });
  alice.room.leave();
  assert.equal(alice.placeCall("carol"), "");
});

test("chat goes to the others through the server; mute and camera reach them as member state", async (t) => {
  const { phone } = roomBrowser(t);
  const [alice, bob, carol] = [await phone("alice"), await phone("bob"), await phone("carol")];
  await joinAll("team", alice, bob, carol);
  const bobSaw = record(bob);
  const carolSaw = record(carol);
  assert.equal(codeOf(alice.room.sendChat("")), PageError.INVALID_ARGUMENT);
  assert.equal(codeOf(alice.room.sendChat("x".repeat(4001))), ErrorCode.TOO_LARGE);
  assert.equal(alice.room.sendChat("hello all"), "");
  await flush(10);
  assert.deepEqual(bobSaw.chat, [{ from: "alice", fromKey: "alice", text: "hello all" }]);
  assert.deepEqual(carolSaw.chat, bobSaw.chat);
  const tracks = alice.room.localStream?.getTracks() || [];
  assert.equal(alice.room.setSend({ audio: false, video: true }), "");
  assert.deepEqual(tracks.map((tr) => [tr.kind, tr.enabled]).sort(), [["audio", false], ["video", true]]);
  await flush(10);
  assert.deepEqual(bob.room.participants().find((p) => p.key === "alice"), {
    name: "alice", key: "alice", state: "connecting", audio: false, video: true, speaking: false, quality: "",
  });
});

test("who speaks comes from the receivers' audio level; quality from the link's numbers", async (t) => {
  const { phone, clock } = roomBrowser(t);
  const [alice, bob, carol] = [await phone("alice"), await phone("bob"), await phone("carol")];
  await joinAll("team", alice, bob, carol);
  await connectAll(alice, bob, carol);
  linkPc(alice, bob).audioLevel = 0.3;
  linkPc(alice, carol).audioLevel = 0.001;
  clock.tick(300);
  assert.deepEqual(alice.room.participants().map((p) => [p.name, p.speaking]), [["bob", true], ["carol", false]]);
  linkPc(alice, bob).audioLevel = 0;
  clock.tick(2000);
  await flush();
  assert.equal(alice.room.participants()[0].speaking, false, "silence after the hold");
  // The fake connection has no numbers yet: quality stays unknown ("").
  assert.equal(alice.room.participants()[0].quality, "");
});

test("the room moves to the SFU: each mesh link stays until that member's SFU stream arrives, the rest go after 5 s", async (t) => {
  const { phone, hub, clock } = roomBrowser(t);
  const [alice, bob, carol] = [await phone("alice"), await phone("bob"), await phone("carol")];
  await joinAll("team", alice, bob, carol);
  await connectAll(alice, bob, carol);
  const seen = record(alice);
  const meshStreams = new Map(alice.room.streams());
  hub.rooms.moveToSfu("team");
  await flush(10);
  assert.equal(alice.room.topology, "sfu");
  assert.deepEqual(seen.topology, ["sfu"]);
  const session = FakeSfuSession.instances.find((s) => s.opts.display === "alice");
  assert.ok(session && session.started);
  assert.equal(session.opts.token, "token-alice");
  assert.equal(session.opts.simulcast, true);
  assert.equal(session.opts.localStream, alice.room.localStream);
  // Nobody dropped: the mesh still carries both.
  assert.equal(alice.room.mesh?.size, 2);
  assert.deepEqual(alice.room.participants().map((p) => p.state), ["connected", "connected"]);
  const bobId = hub.rooms.roomOf("bob")?.members.get("bob")?.sfuId;
  const toBob = linkPc(alice, bob);
  const bobSfu = session.publish(/** @type {string} */ (bobId));
  await flush();
  assert.equal(toBob.closed, true, "bob's SFU stream came: his mesh link goes");
  assert.equal(alice.room.stream("bob"), bobSfu);
  assert.equal(linkPc(alice, carol).closed, false, "carol's has not: her link stays");
  assert.equal(alice.room.stream("carol"), meshStreams.get("carol"));
  alice.room.setTileSize("bob", 320, 180);
  assert.deepEqual(session.tiles, [[String(bobId), 320, 180]]);
  clock.tick(HANDOVER_MS);
  assert.equal(alice.room.mesh, null, "5 s on, the mesh is gone");
  assert.equal(alice.room.participants().find((p) => p.key === "carol")?.state, "connecting");
  const carolId = hub.rooms.roomOf("carol")?.members.get("carol")?.sfuId;
  session.publish(/** @type {string} */ (carolId));
  assert.equal(alice.room.participants().find((p) => p.key === "carol")?.state, "connected");
  await flush();
  session.numbers = { feeds: { [String(bobId)]: { quality: "good" }, [String(carolId)]: { packet_loss_pct: 8, rtt_ms: 40, quality: "poor" } }, uplinkKbps: 0 };
  clock.tick(1000);
  await flush();
  assert.deepEqual(alice.room.participants().map((p) => p.quality), ["good", "poor"], "from the session's numbers");
  session.state("failed", "lost the connection to the SFU");
  assert.deepEqual(alice.room.participants().map((p) => p.state), ["reconnecting", "reconnecting"]);
  alice.room.leave();
  assert.equal(session.closed, true);
});

test("a publisher id the server tells later (once in use in Janus): the held feed is shown then, at its tile's layer", async (t) => {
  const { phone, hub } = roomBrowser(t);
  const [alice, bob, carol] = [await phone("alice"), await phone("bob"), await phone("carol")];
  await joinAll("team", alice, bob, carol);
  await connectAll(alice, bob, carol);
  hub.rooms.moveToSfu("team");
  await flush(10);
  const session = FakeSfuSession.instances.find((s) => s.opts.display === "alice");
  assert.ok(session);
  const carolMember = alice.room.members.get("carol");
  assert.ok(carolMember);
  carolMember.sfuId = ""; // the server has not told carol's id yet: it is not in use in Janus
  const meshStream = alice.room.stream("carol");
  const toCarol = linkPc(alice, carol);
  alice.room.setTileSize("carol", 90, 60);
  assert.deepEqual(session.tiles, [], "no id, nothing to ask Janus for yet");
  const early = session.publish("late-id"); // a feed nobody was told about: held, not shown as carol
  await flush();
  assert.equal(alice.room.stream("carol"), meshStream);
  const sfu = { url: "ws://janus", room: "r", token: "token-alice", pin: "p", id: "alice-id" };
  socketOf(alice).serverSend({ type: "room_topology", room: "team", topology: "sfu", sfu,
                               members: [{ name: "carol", key: "carol", audio: true, video: true, offer: false, sfu_id: "late-id" }] }); // prettier-ignore
  await flush();
  assert.equal(alice.room.stream("carol"), early, "the held feed is carol's now");
  assert.equal(toCarol.closed, true, "and her mesh link goes");
  assert.deepEqual(session.tiles, [["late-id", 90, 60]], "the layer asked for before is asked for now");
  alice.room.leave();
});

test("a newcomer past the mesh limit moves the room to the SFU and joins there", async (t) => {
  const { phone, hub } = roomBrowser(t);
  hub.rooms.sfu = { url: "ws://janus" };
  const people = [];
  for (const name of ["a1", "b1", "c1", "d1", "e1"]) people.push(await phone(name));
  await joinAll("big", ...people);
  const e = people[4];
  assert.equal(e.room.topology, "sfu");
  assert.equal(e.room.mesh, null);
  assert.equal(e.room.participants().length, 4);
  const session = FakeSfuSession.instances.find((s) => s.opts.display === "e1");
  assert.ok(session?.started);
  const id = hub.rooms.roomOf("a1")?.members.get("a1")?.sfuId;
  session.publish(/** @type {string} */ (id));
  assert.ok(e.room.stream("a1"));
  assert.ok(people.slice(0, 4).every((p) => p.room.topology === "sfu"));
});

test("an SFU that cannot be reached keeps the mesh and says why", async (t) => {
  const { phone, hub, clock } = roomBrowser(t);
  const [alice, bob] = [await phone("alice"), await phone("bob")];
  await joinAll("team", alice, bob);
  const seen = record(alice);
  FakeSfuSession.failNext = new Error("janus did not answer");
  hub.rooms.moveToSfu("team");
  await flush(10);
  clock.tick(HANDOVER_MS * 2);
  assert.equal(seen.error[0], PageError.LINK_FAILED);
  assert.equal(alice.room.mesh?.size, 1);
});

test("the socket drops and comes back: the page joins its room again", async (t) => {
  const { phone, hub, clock } = roomBrowser(t);
  const [alice, bob] = [await phone("alice"), await phone("bob")];
  await joinAll("team", alice, bob);
  const camera = bob.room.localStream;
  hub.disconnect(bob.key);
  await flush(10);
  assert.deepEqual(memberKeys(alice), []);
  clock.tick(1000);
  await flush(20);
  assert.equal(bob.room.name, "team");
  assert.equal(bob.room.localStream, camera, "the camera stayed open");
  assert.deepEqual(memberKeys(alice), ["bob"]);
  assert.equal(bob.room.mesh?.links.get("alice")?.call.polite, false, "a newcomer again: it offers");
});

test("close() leaves, stops everything, and may be called again", async (t) => {
  const { phone, hub, clock } = roomBrowser(t);
  const [alice, bob] = [await phone("alice"), await phone("bob")];
  await joinAll("team", alice, bob);
  const tracks = alice.room.localStream?.getTracks() || [];
  const pc = linkPc(alice, bob);
  const timers = clock.pending;
  alice.room.close();
  alice.room.close();
  assert.equal(pc.closed, true);
  assert.ok(tracks.every((tr) => tr.readyState === "ended"));
  assert.ok(clock.pending <= timers - 2, "the levels and stats timers are gone");
  assert.equal(codeOf(alice.room.join("team")), PageError.CLOSED);
  assert.equal(alice.room.onServerMessage({ type: "room_chat", room: "team", text: "x" }), false);
  await flush(10);
  assert.equal(hub.rooms.roomOf("alice"), null);
  // Closing the phone closes its room.
  bob.close();
  assert.equal(bob.room.closed, true);
});

test("a camera that cannot open: the room says why once, and the links go on receiving only", async (t) => {
  const { phone, env } = roomBrowser(t);
  const [alice, bob] = [await phone("alice"), await phone("bob")];
  await joinAll("team", alice);
  const seen = record(bob);
  env.mediaDevices.deny = Object.assign(new Error("denied"), { name: "NotAllowedError" });
  await joinAll("team", bob);
  assert.deepEqual(seen.error, [PageError.MEDIA_FAILED]);
  assert.equal(bob.room.localStream, null);
  const pc = linkPc(bob, alice);
  assert.ok(pc.getTransceivers().every((tr) => tr.direction !== "sendrecv" && !tr.sender.track), "nothing announced that will not come");
});

test("turning on a kind the room opened without opens it and sends it on every link", async (t) => {
  const { phone } = roomBrowser(t);
  const alice = await phone("alice", { video: false });
  const [bob, carol] = [await phone("bob"), await phone("carol")];
  await joinAll("team", bob, carol, alice);
  assert.deepEqual(alice.room.localStream?.getTracks().map((tr) => tr.kind), ["audio"]);
  alice.media.setSend({ audio: true, video: true }); // as the widget does, before the room's
  assert.equal(alice.room.setSend({ audio: true, video: true }), "");
  await flush(10);
  assert.deepEqual(alice.room.localStream?.getTracks().map((tr) => tr.kind).sort(), ["audio", "video"]);
  for (const other of [bob, carol]) {
    const kinds = linkPc(alice, other).getSenders().filter((s) => s.track).map((s) => s.track?.kind).sort();
    assert.deepEqual(kinds, ["audio", "video"], `sent to ${other.user}`);
  }
});

test("joined straight into an SFU room while the camera opens: the session starts with the camera, publishing once", async (t) => {
  const { phone, hub, env } = roomBrowser(t);
  hub.rooms.sfu = { url: "ws://janus" };
  hub.rooms.meshLimit = 1;
  const [alice, bob] = [await phone("alice"), await phone("bob")];
  await joinAll("team", alice);
  /** @type {() => void} */
  let open = () => {};
  env.mediaDevices.slow = new Promise((resolve) => (open = () => resolve(undefined)));
  await joinAll("team", bob);
  // No session yet: one that started receive-only would negotiate each kind again later.
  assert.equal(FakeSfuSession.instances.find((s) => s.opts.display === "bob"), undefined);
  open();
  await flush(10);
  const session = FakeSfuSession.instances.find((s) => s.opts.display === "bob");
  assert.ok(session?.started);
  const kinds = (session.opts.localStream?.getTracks() || []).map((track) => track.kind).sort();
  assert.deepEqual(kinds, ["audio", "video"]);
  assert.equal(session.opts.id, String(hub.rooms.roomOf("bob")?.members.get("bob")?.sfuId));
  assert.equal(bob.room.mesh, null);
});
