// The seams rule (eslint.config.mjs, issue 22): outside js/test no module touches another
// object's underscored members.  `npm run lint` enforces it on the tree; this makes sure the
// rule itself still refuses what it must and lets through what it should, so a selector
// weakened by accident fails here rather than passing every file.

import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The private-member offences ESLint finds in `code` as the page's file `path`. @param {string} code @param {string} path */
async function offences(code, path = "js/room/probe.js") {
  const eslint = new ESLint({ cwd: ROOT });
  const [result] = await eslint.lintText(code, { filePath: `${ROOT}${path}` });
  assert.deepEqual(result.messages.filter((m) => m.fatal), [], "the probe parses");
  return result.messages.filter((m) => m.ruleId === "no-restricted-syntax" && m.message.startsWith("Underscored")).map((m) => m.line);
}

const REACHING_IN = [
  "export const callsMethod = (/** @type {any} */ room) => room._changed();", // another object's method
  "export const writesField = (/** @type {any} */ room) => { room._topology = 1; };", // or field
  "export const throughPublic = (/** @type {any} */ o) => o.room._enter();", // through a public one
  'export const byComputedName = (/** @type {any} */ o) => o["_x"];', // by computed name
  "export const byDestructuring = (/** @type {any} */ o) => { const { _x } = o; return _x; };", // by destructuring
].join("\n");

test("reaching into another object's underscored members is refused, line by line", async () => {
  assert.deepEqual(await offences(REACHING_IN), [1, 2, 3, 4, 5]);
});

test("the door (dispatch.js) is held to it too", async () => {
  assert.deepEqual(await offences(REACHING_IN, "js/dispatch.js"), [1, 2, 3, 4, 5]);
});

test("an object's own underscored members, #private ones and __name globals are fine", async () => {
  const own = [
    "export class A {",
    "  #hidden = 1;",
    "  constructor() { this._state = 1; }",
    "  _step() { const { _state } = this; return _state + this.#hidden; }",
    "  /** @param {A} other */ same(other) { return other.#hidden; }",
    "}",
    "const g = /** @type {any} */ (globalThis);",
    "g.__nbcall = { phones: {} };",
  ].join("\n");
  assert.deepEqual(await offences(own), []);
});

test("tests may look inside", async () => {
  assert.deepEqual(await offences(REACHING_IN, "js/test/probe.test.js"), []);
});
