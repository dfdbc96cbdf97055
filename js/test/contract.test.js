/**
 * Contract tests of the fake signaling server (fakes/hub.js + fakes/hub_rooms.js): every
 * session recorded against the real server (tests/contract/sessions/*.json, written by
 * `python -m tests.contract.record` and kept current by tests/test_contract.py) is
 * replayed into a FakeHub, step by step, and what each client receives must be what the
 * real server sent: the same messages, in the same order, with the same fields and values,
 * and the same sockets closed with the same codes.  So a JS unit test cannot pass against
 * a rule the server does not have.
 *
 * Compared as the recording does it (tests/contract/normalise.py, ported below): what
 * the server makes up (credentials, server_id, call ids nobody sent, a call room's name
 * and key) is named `<kind:n>` by first appearance, so the fake's own inventions compare
 * equal when they are used the same way.
 *
 * Two declared differences, not compared:
 * - Key spelling.  The server's key of a name is a TR39 confusable skeleton ("alice" ->
 *   "aiice"); the fake's is NFKC + lower case (so tests can say hub.users.get("alice")).
 *   The page never derives a key, it only compares the keys it is told, so keys are
 *   compared as identities: the recording pairs each name with its server key (username/
 *   key, from/from_key, users/keys ...), the fake's keys are translated through those
 *   pairs, and the test fails if the two rules group the session's names differently.
 * - Prose.  `message` of `error` and `replaced` is English for people; programs read `code`.
 *
 * A step is a frame a client sends, a client closing its socket with a code (the page's
 * ws.close), or a client's socket dropping: the recordings run with a reconnect grace of
 * 0, so a drop is replayed as the fake's disconnect() (the server giving up on a user).
 * Not recorded, so not checked here: timers (ring timeout, the grace and its
 * peer_status), the SFU, restarts, rate limits.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { FakeHub, flush, nameKey } from "./fakes/index.js";

/** @typedef {import("./fakes/index.js").FakeWebSocket} FakeWebSocket */

const SESSIONS = new URL("../../tests/contract/sessions/", import.meta.url);

/** @typedef {{client: string, send?: Record<string, any>, drop?: true, close?: number, received: Record<string, any[]>, closed?: Record<string, number>}} Step */
/** @typedef {{ring_timeout: number, reconnect_grace: number, room_mesh_limit: number, room_max_members: number}} Limits */
/** @typedef {{name: string, about: string, limits: Limits, steps: Step[]}} Recording */

// -- tests/contract/normalise.py, the same rules --

/** @type {Record<string, string>} field -> kind of placeholder */
const RANDOM_FIELDS = { call_id: "call_id", credential: "credential", server_id: "server_id" };
const ROOM_FIELDS = ["room", "room_key"];
const CALL_ROOM = /^call-[0-9a-f]{8}$/;
const PLACEHOLDER = /^<(\w+):(\d+)>$/;

/** The values of random-looking fields the clients sent themselves. @param {any[]} messages */
function sentLiterals(messages) {
  /** @type {Set<string>} */
  const found = new Set();
  /** @param {any} value */
  const walk = (value) => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") {
      for (const [key, item] of Object.entries(value)) {
        const random = key in RANDOM_FIELDS || ROOM_FIELDS.includes(key);
        if (random && typeof item === "string" && !PLACEHOLDER.test(item)) found.add(item);
        walk(item);
      }
    }
  };
  messages.forEach(walk);
  return found;
}

class Normaliser {
  /** @param {Set<string>} literals */
  constructor(literals) {
    this.literals = literals;
    /** @type {Map<string, string>} kind + "\0" + value -> placeholder */
    this.names = new Map();
    /** @type {Map<string, string>} placeholder -> value */
    this.values = new Map();
    /** @type {Map<string, number>} */
    this.counts = new Map();
  }

  /** @param {string} key @param {any} value */
  kind(key, value) {
    if (typeof value !== "string" || this.literals.has(value)) return null;
    if (key in RANDOM_FIELDS) return RANDOM_FIELDS[key];
    if (ROOM_FIELDS.includes(key) && CALL_ROOM.test(value)) return "room";
    return null;
  }

  /** @param {string} kind @param {string} value */
  name(kind, value) {
    const id = `${kind}\0${value}`;
    let placeholder = this.names.get(id);
    if (placeholder === undefined) {
      const n = (this.counts.get(kind) || 0) + 1;
      this.counts.set(kind, n);
      placeholder = `<${kind}:${n}>`;
      this.names.set(id, placeholder);
      this.values.set(placeholder, value);
    }
    return placeholder;
  }

  /** A message the server sent, its random values named. @param {any} value @param {string} [key] @returns {any} */
  received(value, key = "") {
    if (Array.isArray(value)) return value.map((v) => this.received(v, key));
    if (value && typeof value === "object") {
      /** @type {Record<string, any>} */
      const out = {};
      for (const [k, v] of Object.entries(value)) {
        const randomRoom = k === "room_key" && typeof v === "string" && this.kind("room", value.room) === "room";
        out[k] = randomRoom ? this.name("room_key", v) : this.received(v, k);
      }
      return out;
    }
    if (key === "message" && typeof value === "string") {
      let text = value;
      for (const [id, placeholder] of this.names) text = text.split(id.slice(id.indexOf("\0") + 1)).join(placeholder);
      return text;
    }
    const kind = this.kind(key, value);
    return kind === null ? value : this.name(kind, value);
  }

  /** A scripted message, its placeholders replaced by what they stand for. @param {any} value @returns {any} */
  resolve(value) {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.resolve(v)]));
    if (typeof value === "string" && PLACEHOLDER.test(value)) {
      const resolved = this.values.get(value);
      if (resolved === undefined) throw new Error(`${value} was not seen before it is sent`);
      return resolved;
    }
    return value;
  }
}

// -- keys compared as identities --

/** A name field and the field with its key, in the server's messages. */
const PAIRS = [["username", "key"], ["users", "keys"], ["joined", "joined_keys"], ["left", "left_keys"], ["from", "from_key"], ["name", "key"], ["peer", "peer_key"], ["room", "room_key"]];
const KEY_FIELDS = new Set(PAIRS.map(([, key]) => key));

/**
 * The fake's key of each name in the recording -> the server's; throws when the two name
 * rules group the session's names differently.
 * @param {Recording} recording
 */
function keyTranslation(recording) {
  /** @type {Map<string, string>} name -> server key */
  const serverKey = new Map();
  /** @param {string} name @param {string} key */
  const pair = (name, key) => {
    if (typeof name === "string" && typeof key === "string" && !PLACEHOLDER.test(name)) serverKey.set(name, key);
  };
  /** @param {any} value */
  const walk = (value) => {
    if (Array.isArray(value)) return value.forEach(walk);
    if (!value || typeof value !== "object") return;
    for (const [nameField, keyField] of PAIRS) {
      const names = value[nameField];
      const keys = value[keyField];
      if (Array.isArray(names) && Array.isArray(keys)) names.forEach((n, i) => pair(n, keys[i]));
      else pair(names, keys);
    }
    Object.values(value).forEach(walk);
  };
  for (const step of recording.steps) walk(Object.values(step.received));
  /** @type {Map<string, string>} fake key -> server key */
  const translation = new Map();
  /** @type {Map<string, string>} server key -> the fake key that stands for it */
  const back = new Map();
  for (const [name, key] of serverKey) {
    const fake = nameKey(name);
    const before = translation.get(fake);
    if (before !== undefined && before !== key) throw new Error(`the fake's name rule makes one user of '${name}' and another name the server keeps apart (${before} / ${key})`);
    const other = back.get(key);
    if (other !== undefined && other !== fake) throw new Error(`the server makes one user of '${name}' and another name the fake keeps apart (${other} / ${fake})`);
    translation.set(fake, key);
    back.set(key, fake);
  }
  return translation;
}

/** @param {any} value @param {Map<string, string>} translation @param {string} [field] @returns {any} */
function translateKeys(value, translation, field = "") {
  if (Array.isArray(value)) return value.map((v) => translateKeys(v, translation, field));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, translateKeys(v, translation, k)]));
  if (KEY_FIELDS.has(field) && typeof value === "string") return translation.get(value) ?? value;
  return value;
}

/** Without the prose for people. @param {Record<string, any[]>} received */
function withoutProse(received) {
  return Object.fromEntries(
    Object.entries(received).map(([client, messages]) => [
      client,
      messages.map((m) => {
        if (m.type !== "error" && m.type !== "replaced") return m;
        const rest = { ...m };
        delete rest.message;
        return rest;
      }),
    ]),
  );
}

/** @param {Step} step */
function describe(step) {
  if (step.drop) return `${step.client}'s socket drops`;
  if (step.close) return `${step.client} closes its socket with ${step.close}`;
  return `${step.client} sends ${JSON.stringify(step.send)}`;
}

/** @param {Recording} recording */
async function replay(recording) {
  const hub = new FakeHub();
  // The server's configuration the recording was made with.
  hub.ringTimeout = recording.limits.ring_timeout;
  hub.reconnectGrace = recording.limits.reconnect_grace;
  hub.rooms.meshLimit = recording.limits.room_mesh_limit;
  hub.rooms.maxMembers = recording.limits.room_max_members;
  const translation = keyTranslation(recording);
  const names = new Normaliser(sentLiterals(recording.steps.flatMap((s) => (s.send ? [s.send] : []))));
  /** @type {Map<string, FakeWebSocket>} label -> socket, in the order they connected */
  const sockets = new Map();
  /** @type {Map<string, number>} label -> the code the fake closed it with */
  const closes = new Map();
  /** @type {Set<string>} */
  const gone = new Set();
  for (const [index, step] of recording.steps.entries()) {
    let ws = sockets.get(step.client);
    if (!ws) {
      const socket = hub.socket();
      const label = step.client;
      socket.onclose = (/** @type {{code: number}} */ event) => closes.set(label, event.code);
      sockets.set(label, socket);
      await flush();
      ws = socket;
    }
    const present = [...sockets.keys()].filter((label) => !gone.has(label));
    const seen = new Map(present.map((label) => [label, /** @type {FakeWebSocket} */ (sockets.get(label)).received.length]));
    closes.clear();
    if (step.send) {
      ws.send(JSON.stringify(names.resolve(step.send)));
    } else if (step.close) {
      gone.add(step.client);
      ws.close(step.close);
    } else {
      const socket = ws;
      const client = [...hub.users.values()].find((c) => c.ws === socket);
      gone.add(step.client);
      if (client) hub.disconnect(client.key);
    }
    await flush();
    /** @type {Record<string, any[]>} */
    const received = {};
    for (const label of present) {
      if ((step.drop || step.close) && label === step.client) continue;
      const socket = /** @type {FakeWebSocket} */ (sockets.get(label));
      received[label] = socket.received.slice(seen.get(label)).map((m) => translateKeys(names.received(m), translation));
    }
    /** @type {{received: Record<string, any[]>, closed?: Record<string, number>}} */
    const actual = { received: withoutProse(received) };
    /** @type {typeof actual} */
    const expected = { received: withoutProse(step.received) };
    const closed = Object.fromEntries([...closes].filter(([label]) => label in received));
    for (const label of Object.keys(closed)) gone.add(label);
    if (Object.keys(closed).length) actual.closed = closed;
    if (step.closed) expected.closed = step.closed;
    assert.deepStrictEqual(actual, expected, `${recording.name}, step ${index + 1} (${describe(step)}): the fake answers differently from the real server`);
  }
}

const files = readdirSync(SESSIONS).filter((f) => f.endsWith(".json")).sort();

test("there are recorded sessions to replay", () => {
  assert.ok(files.length >= 10, `only ${files.length} recordings in ${SESSIONS.pathname}`);
});

for (const file of files) {
  /** @type {Recording} */
  const recording = JSON.parse(readFileSync(new URL(file, SESSIONS), "utf8"));
  test(`contract: ${recording.name}: ${recording.about}`, () => replay(recording));
}
