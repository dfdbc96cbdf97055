// What is wrong with a signaling message against the wire's declarations (js/wire.js, generated
// from nbcall/signaling/wire.py).  The same rules and the same words as the server's checker
// (wire.problems): js/test/wire_check.test.js replays cases generated from the Python one.
// The JS fake hub checks everything it sends with it, so the page's unit tests cannot pass
// against messages the real server would never send.

import { SERVER_MESSAGES } from "./wire.js";

/** @typedef {{kind: string, required?: boolean, nullable?: boolean, values?: string[], items?: Record<string, FieldSpec>}} FieldSpec */
/** @typedef {Readonly<Record<string, {fields: Record<string, FieldSpec>}>>} MessageTable */

const SDP_KEYS = new Set(["type", "sdp"]);
const CANDIDATE_KEYS = new Set(["candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"]);

/** @param {unknown} value @returns {value is Record<string, unknown>} */
const isObject = (value) => typeof value === "object" && value !== null && !Array.isArray(value);

/** @param {unknown} value */
const isStrings = (value) => Array.isArray(value) && value.every((v) => typeof v === "string");

/** @param {Record<string, unknown>} value @param {Set<string>} keys */
const keysWithin = (value, keys) => Object.keys(value).every((k) => keys.has(k));

/** @type {Record<string, (value: unknown) => boolean>} */
const CHECKS = {
  string: (v) => typeof v === "string",
  username: (v) => typeof v === "string",
  name: (v) => typeof v === "string",
  key: (v) => typeof v === "string",
  room: (v) => typeof v === "string",
  text: (v) => typeof v === "string",
  boolean: (v) => typeof v === "boolean",
  integer: (v) => typeof v === "number" && Number.isInteger(v),
  number: (v) => typeof v === "number",
  sdp: (v) => typeof v === "string" || (isObject(v) && keysWithin(v, SDP_KEYS)),
  candidate: (v) => isObject(v) && keysWithin(v, CANDIDATE_KEYS),
  names: isStrings,
  keys: isStrings,
  ignored: () => true,
};

/** The name Python gives a JSON value's type, so that both checkers say the same words. @param {unknown} value */
function pythonType(value) {
  if (typeof value === "string") return "str";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float";
  if (Array.isArray(value)) return "list";
  return value === null ? "NoneType" : "dict";
}

/** Python's repr of a JSON scalar or list, as the server's messages quote values. @param {unknown} value @returns {string} */
function pythonRepr(value) {
  if (typeof value === "string") return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(pythonRepr).join(", ")}]`;
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value === null) return "None";
  return String(value);
}

/**
 * @param {Record<string, FieldSpec>} fields
 * @param {Record<string, unknown>} data
 * @param {string} where
 * @param {string[]} [skip]
 * @returns {string[]}
 */
function fieldProblems(fields, data, where, skip = []) {
  /** @type {string[]} */
  const out = [];
  for (const name of Object.keys(data)) {
    if (!(name in fields) && !skip.includes(name)) out.push(`${where}: undeclared field ${pythonRepr(name)}`);
  }
  for (const [name, spec] of Object.entries(fields)) {
    if (!(name in data)) {
      if (spec.required) out.push(`${where}: required field ${pythonRepr(name)} is missing`);
      continue;
    }
    const value = data[name];
    const path = `${where}.${name}`;
    if (value === null) {
      if (!spec.nullable) out.push(`${path} is null`);
    } else if (spec.kind === "enum") {
      if (!(spec.values ?? []).includes(/** @type {string} */ (value))) {
        out.push(`${path}: ${pythonRepr(value)} is not one of ${pythonRepr(spec.values ?? [])}`);
      }
    } else if (spec.kind === "object") {
      if (isObject(value)) out.push(...fieldProblems(spec.items ?? {}, value, path));
      else out.push(`${path} is not an object`);
    } else if (spec.kind === "objects") {
      if (!Array.isArray(value)) {
        out.push(`${path} is not a list`);
      } else {
        value.forEach((item, i) => {
          const itemPath = `${path}[${i}]`;
          if (isObject(item)) out.push(...fieldProblems(spec.items ?? {}, item, itemPath));
          else out.push(`${itemPath} is not an object`);
        });
      }
    } else if (!CHECKS[spec.kind](value)) {
      out.push(`${path}: ${pythonType(value)} is not ${spec.kind}`);
    }
  }
  return out;
}

/**
 * What is wrong with `message` against `table` (the server's messages by default); empty
 * when it is a declared message whose fields are declared and of their declared kinds.
 * @param {unknown} message
 * @param {MessageTable} [table]
 * @returns {string[]}
 */
export function problems(message, table = SERVER_MESSAGES) {
  if (!isObject(message)) return ["not a JSON object"];
  const type = message.type;
  const spec = typeof type === "string" && Object.hasOwn(table, type) ? table[type] : undefined;
  if (spec === undefined) return [`undeclared message type ${pythonRepr(type ?? null)}`];
  return fieldProblems(spec.fields, message, /** @type {string} */ (type), ["type"]);
}
