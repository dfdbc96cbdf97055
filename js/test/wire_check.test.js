// The page's checker agrees with the server's, word for word, on cases generated from the
// server's (wire_cases.json, written by `python -m nbcall._codegen` from nbcall/signaling/wire.py).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { problems } from "../wire_check.js";
import { SERVER_MESSAGES, CLIENT_MESSAGES, ROOM_EVENTS, ROOM_REQUESTS } from "../wire.js";
import { MessageType } from "../protocol.js";

/** @type {{message: unknown, problems: string[]}[]} */
const cases = JSON.parse(readFileSync(new URL("./wire_cases.json", import.meta.url), "utf8"));

test("the generated cases cover every server message, valid and broken", () => {
  const types = new Set(cases.map((c) => /** @type {{type?: unknown}} */ (c.message)?.type));
  for (const type of Object.keys(SERVER_MESSAGES)) assert.ok(types.has(type), type);
  assert.ok(cases.some((c) => c.problems.length === 0));
  assert.ok(cases.filter((c) => c.problems.length > 0).length > cases.length / 2);
});

test("the page's checker says what the server's says of each case", () => {
  for (const { message, problems: expected } of cases) {
    assert.deepEqual(problems(message), expected, JSON.stringify(message));
  }
});

test("every message type the page names is declared in some direction", () => {
  for (const type of Object.values(MessageType)) {
    assert.ok(type in SERVER_MESSAGES || type in CLIENT_MESSAGES, type);
  }
  for (const type of ROOM_EVENTS) assert.ok(type in SERVER_MESSAGES, type);
  for (const type of ROOM_REQUESTS) assert.ok(type in CLIENT_MESSAGES, type);
});
