// Chat that cannot be used as a weapon (js/features/chat.js): the history bounded by count
// and bytes, the rate limits on receive and on send, malformed channel messages ignored and
// counted, lines reaching the kernel one by one, and the chat log appended, never rebuilt.

import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "./fakes/index.js";
import { inCallWithBob } from "./helpers.js";
import { ChatHistory, TokenBucket, utf8Length, readChannelMessage, MAX_CHANNEL_CHARS } from "../features/chat.js";
import { chatLogWriter, shownText, SHOWN_CHARS } from "../ui/features_view.js";
import { MAX_CHAT_LINES, MAX_CHAT_BYTES, MAX_CHAT_CHARS, CHAT_BURST, CHAT_RATE, PageError } from "../messages.js";
import { ErrorCode } from "../protocol.js";
import { codeOf } from "../failure.js";

/** @typedef {import("./fakes/index.js").FakeDataChannel} FakeDataChannel */
/** @typedef {import("./fakes/index.js").FakeModel} FakeModel */
/** @typedef {import("../features/chat.js").ChatLine} ChatLine */

/** alice's InCall in a connected call with bob, its data channel open. @param {import("node:test").TestContext} t */
async function call(t) {
  const c = await inCallWithBob(t);
  c.channel.open();
  return { ...c, chat: c.features.chat };
}

/** @param {FakeModel} model @param {string} kind */
const kinds = (model, kind) => model.sentOf(kind).map((m) => m.content);

test("utf8Length counts like Python's str.encode('utf-8', 'surrogatepass')", () => {
  const enc = new TextEncoder();
  for (const s of ["", "abc", "é", "小文", "👋", "a👋b", "¡hola! Привет 🙂"]) assert.equal(utf8Length(s), enc.encode(s).length, s);
  assert.equal(utf8Length("\ud800"), 3); // a lone surrogate
  assert.equal(utf8Length("\ud800x"), 4);
});

test("the history keeps at most MAX_CHAT_LINES lines, oldest dropped first", () => {
  const history = new ChatHistory();
  let dropped = 0;
  for (let i = 0; i < MAX_CHAT_LINES + 50; i++) dropped += history.push({ from: "bob", text: `line ${i}`, time: i });
  assert.equal(history.lines.length, MAX_CHAT_LINES);
  assert.equal(dropped, 50);
  assert.equal(history.lines[0].text, "line 50");
  assert.equal(history.lines[history.lines.length - 1].text, `line ${MAX_CHAT_LINES + 49}`);
});

test("the history keeps at most MAX_CHAT_BYTES bytes (UTF-8 of sender and text)", () => {
  assert.equal(MAX_CHAT_BYTES, 256 * 1024);
  const history = new ChatHistory();
  const text = "é".repeat(MAX_CHAT_CHARS); // 8000 bytes
  const drops = [];
  for (let i = 0; i < 100; i++) drops.push(history.push({ from: "bob", text, time: i }));
  const per = 3 + 2 * MAX_CHAT_CHARS;
  assert.equal(history.lines.length, Math.floor(MAX_CHAT_BYTES / per));
  assert.equal(history.bytes, history.lines.length * per);
  assert.ok(history.bytes <= MAX_CHAT_BYTES);
  assert.equal(history.lines[history.lines.length - 1].time, 99, "the newest stays");
  assert.equal(drops.reduce((a, b) => a + b, 0), 100 - history.lines.length);
  // A line after big ones drops as many of the oldest as it needs, no more.
  assert.equal(history.push({ from: "bob", text: "hi", time: 100 }), 0); // fits in what is left
  assert.equal(history.push({ from: "bob", text: "é".repeat(3500), time: 101 }), 1);
  assert.ok(history.bytes <= MAX_CHAT_BYTES);
});

test("a token bucket: a burst, then the sustained rate", () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket(CHAT_RATE, CHAT_BURST, () => clock.now);
  let ok = 0;
  for (let i = 0; i < 100; i++) ok += bucket.take() ? 1 : 0;
  assert.equal(ok, CHAT_BURST);
  clock.now += 1000;
  ok = 0;
  for (let i = 0; i < 100; i++) ok += bucket.take() ? 1 : 0;
  assert.equal(ok, CHAT_RATE);
  clock.now += 60_000; // a long pause refills only up to the burst
  ok = 0;
  for (let i = 0; i < 100; i++) ok += bucket.take() ? 1 : 0;
  assert.equal(ok, CHAT_BURST);
});

test("receive: a flood of 1000 lines keeps a burst, drops the rest, counts them, and says so once", async (t) => {
  const { model, channel, chat, clock } = await call(t);
  /** @type {string[]} */
  const notices = [];
  chat.events.on("notice", (text) => notices.push(text));
  let lines = 0;
  chat.events.on("line", () => (lines += 1));
  const text = "x".repeat(4000);
  for (let i = 0; i < 1000; i++) channel.receive({ kind: "chat", text, time: 1 });
  assert.equal(lines, CHAT_BURST);
  assert.equal(chat.lines.length, CHAT_BURST);
  assert.equal(chat.receivedTotal, CHAT_BURST);
  assert.equal(kinds(model, "chat_received").length, CHAT_BURST, "one kernel message per kept line");
  assert.deepEqual(chat.dropped, { flood: 1000 - CHAT_BURST, malformed: 0 });
  assert.equal(notices.length, 1, "one notice at once; its count is redrawn at most every 250 ms");
  clock.tick(300);
  assert.equal(notices[notices.length - 1], `${1000 - CHAT_BURST} messages from bob were dropped (flood)`);
  assert.equal(chat.notice, notices[notices.length - 1]);
  // The kernel hears of the drops at once and then at most once a second, counts summed.
  clock.tick(1000);
  const reports = kinds(model, "chat_dropped");
  assert.ok(reports.length <= 2, JSON.stringify(reports));
  assert.equal(reports.reduce((n, r) => n + r.flood, 0), 1000 - CHAT_BURST);
  assert.ok(reports.every((r) => r.from === "bob" && r.malformed === 0));
  // The sustained rate is served again: 2.3 s after the flood, 11.5 tokens.
  clock.tick(1000);
  for (let i = 0; i < 20; i++) channel.receive({ kind: "chat", text: `again ${i}`, time: 2 });
  assert.equal(chat.lines.length, CHAT_BURST + Math.floor(2.3 * CHAT_RATE));
  assert.ok(chat.lines.slice(CHAT_BURST).every((l) => l.text.startsWith("again")));
  assert.equal(model.saves < 20, true, `the model is not saved per line (${model.saves} saves)`);
});

test("receive: malformed messages are ignored and counted; heartbeats and unknown kinds are not errors", async (t) => {
  const { model, channel, chat, clock } = await call(t);
  const bad = [
    "not json",
    "[1, 2]",
    "null",
    '"a string"',
    "{}",
    JSON.stringify({ kind: 7 }),
    JSON.stringify({ kind: "chat" }),
    JSON.stringify({ kind: "chat", text: 42 }),
    JSON.stringify({ kind: "chat", text: "" }),
    JSON.stringify({ kind: "chat", text: "x".repeat(MAX_CHAT_CHARS + 1) }),
    JSON.stringify({ kind: "chat", text: "hi", time: "yesterday" }),
    JSON.stringify({ kind: "media", audio: "yes", video: true }),
    " ".repeat(MAX_CHANNEL_CHARS + 1),
  ];
  for (const data of bad) channel.receiveRaw(data);
  channel.receiveRaw(new ArrayBuffer(8)); // binary
  assert.equal(chat.dropped.malformed, bad.length + 1);
  assert.equal(chat.lines.length, 0);
  channel.receive({ kind: "heartbeat", seq: 1 });
  channel.receive({ kind: "heartbeat" });
  channel.receive({ kind: "emoji_reaction", emoji: "👍" }); // a newer peer's kind
  assert.equal(chat.dropped.malformed, bad.length + 1, "not counted");
  assert.match(chat.notice, new RegExp(`^${bad.length + 1} malformed messages from bob ignored$`));
  clock.tick(1000);
  assert.equal(kinds(model, "chat_dropped").reduce((n, r) => n + r.malformed, 0), bad.length + 1);
  // A line's sender is the call's peer, whatever it says; an impossible time is replaced by ours.
  channel.receive({ kind: "chat", text: "<img src=x onerror=alert(1)>", from: "mallory", time: 5 });
  channel.receiveRaw('{"kind": "chat", "text": "far future", "time": 1e400}');
  channel.receive({ kind: "chat", text: "before 1970", time: -5 });
  channel.receive({ kind: "chat", text: "no time" });
  const now = Date.now() / 1000;
  assert.deepEqual(
    chat.lines.map((l) => [l.from, l.text, l.time]),
    [["bob", "<img src=x onerror=alert(1)>", 5], ["bob", "far future", now], ["bob", "before 1970", now], ["bob", "no time", now]],
  );
  assert.deepEqual(kinds(model, "chat_received")[0], { kind: "chat_received", from: "bob", text: "<img src=x onerror=alert(1)>", time: 5 });
});

test("readChannelMessage: valid messages of the table come back", () => {
  assert.deepEqual(readChannelMessage('{"kind": "media", "audio": true, "video": false}'), { msg: { kind: "media", audio: true, video: false } });
  assert.deepEqual(readChannelMessage('{"kind": "chat", "text": "hi", "time": null}'), { msg: { kind: "chat", text: "hi", time: null } });
  assert.deepEqual(readChannelMessage('{"kind": "future"}'), {});
  assert.ok(readChannelMessage('{"kind": "media"}').problem);
});

test("send: at most a burst, then the rate; over it the sender is told, the kernel too", async (t) => {
  const { model, channel, chat, features, clock } = await call(t);
  const sent = () => channel.sentOf("chat").length;
  for (let i = 0; i < CHAT_BURST; i++) assert.equal(features.sendChat(`line ${i}`), "");
  assert.equal(codeOf(features.sendChat("one too many")), ErrorCode.RATE_LIMITED);
  assert.equal(sent(), CHAT_BURST);
  // Through the kernel's command: action_failed says why, and `error` shows it.
  model.custom({ kind: "chat", text: "from python" });
  assert.deepEqual(kinds(model, "action_failed").map((m) => m.action), ["chat"]);
  assert.equal(kinds(model, "action_failed")[0].code, ErrorCode.RATE_LIMITED);
  clock.tick(1000 / CHAT_RATE);
  model.custom({ kind: "chat", text: "from python" });
  assert.equal(sent(), CHAT_BURST + 1);
  assert.equal(kinds(model, "chat_sent").length, CHAT_BURST + 1);
  assert.equal(chat.lines.length, CHAT_BURST + 1);
  assert.ok(chat.lines.every((l) => l.from === "alice"));
  assert.equal(codeOf(features.sendChat("x".repeat(MAX_CHAT_CHARS + 1))), ErrorCode.TOO_LARGE);
  assert.equal(codeOf(features.sendChat("")), PageError.INVALID_ARGUMENT);
});

test("the data channel is shared: chat listens beside others and leaves with the call", async (t) => {
  const { channel, chat, alice } = await call(t);
  assert.equal(channel.onmessage, null, "no on* property taken");
  /** @type {unknown[]} */
  const heard = [];
  channel.addEventListener("message", (/** @type {{data: unknown}} */ e) => heard.push(e.data));
  channel.receive({ kind: "heartbeat", seq: 3 });
  channel.receive({ kind: "chat", text: "hi" });
  assert.equal(heard.length, 2);
  assert.equal(chat.lines.length, 1);
  alice.hangup();
  assert.equal((channel.listeners.get("message") || new Set()).size, 1, "only the other listener remains");
});

test("the peer's media state: a toggle flood redraws at most every 100 ms, and the last state wins", async (t) => {
  const { model, channel, features, clock } = await call(t);
  let changes = 0;
  features.subscribe(() => (changes += 1));
  for (let i = 0; i < 1000; i++) channel.receive({ kind: "media", audio: i % 2 === 0, video: true, screen: false });
  assert.ok(changes <= 2, `${changes} redraws`);
  clock.tick(150);
  assert.equal(features.remote.audio, false);
  assert.equal(model.get("remote_audio"), false);
});

test("the chat log appends new lines and trims the top; it is filled once, never rebuilt", () => {
  /** A stand-in for the log element: children and the calls the writer makes. */
  const log = {
    /** @type {string[]} */ children: [],
    fills: 0,
    get firstChild() {
      return this.children[0] ?? null;
    },
    /** @param {string} node */ append(node) {
      this.children.push(node);
    },
    /** @param {string} node */ removeChild(node) {
      assert.equal(node, this.children[0]);
      this.children.shift();
      return node;
    },
    /** @param {string[]} nodes */ replaceChildren(...nodes) {
      this.fills += 1;
      this.children = nodes;
    },
  };
  const history = new ChatHistory(3, 1000);
  const writer = chatLogWriter(/** @type {any} */ (log), (/** @type {ChatLine} */ line) => /** @type {any} */ (`${line.from}: ${line.text}`));
  history.push({ from: "bob", text: "a", time: 1 });
  writer.fill(history.lines);
  for (const text of ["b", "c", "d", "e"]) {
    const line = { from: "bob", text, time: 2 };
    writer.add(line, history.push(line));
  }
  assert.deepEqual(log.children, ["bob: c", "bob: d", "bob: e"]);
  assert.deepEqual(log.children, history.lines.map((l) => `${l.from}: ${l.text}`));
  assert.equal(log.fills, 1);
  // A line that costs several old ones by bytes trims them all.
  const big = { from: "bob", text: "z".repeat(995), time: 3 }; // 998 bytes: c, d and e must go
  writer.add(big, history.push(big));
  assert.deepEqual(log.children, [`bob: ${big.text}`]);
});

test("a long line shows its start (never half an emoji) until the user asks for all of it", () => {
  assert.equal(shownText("short 👋"), "short 👋");
  const long = "x".repeat(MAX_CHAT_CHARS);
  assert.equal(shownText(long).length, SHOWN_CHARS);
  const emoji = "a".repeat(SHOWN_CHARS - 1) + "👋" + "b".repeat(100); // the emoji straddles the cut
  assert.equal(shownText(emoji), "a".repeat(SHOWN_CHARS - 1));
  assert.equal(shownText("<img src=x onerror=alert(1)>"), "<img src=x onerror=alert(1)>");
});
