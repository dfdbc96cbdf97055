// The one door between the kernel and the page: every custom comm message is checked
// against the generated table (messages.js) on its way in and on its way out.
//
// In: one `msg:custom` listener per model validates each message against TO_PAGE (a known
// kind, its fields present with the right types, its buffers) and routes it to the handler
// registered for its kind.  An unknown or malformed message is warned about in the console
// and reported to the kernel as a protocol error; nothing is dropped in silence.
// Out: sendToKernel builds messages only of TO_KERNEL kinds, checked the same way.

import { TO_PAGE, TO_KERNEL, TO_KERNEL_KIND, MAX_ID_CHARS, ERROR_CODES, PageError } from "./messages.js";

/** @typedef {import("./types.js").AnyModel} AnyModel */
/** @typedef {import("./types.js").PageMessage} PageMessage */
/** @typedef {keyof typeof TO_PAGE} ToPageKind */
/** @typedef {keyof typeof TO_KERNEL} ToKernelKind */
/** @typedef {Readonly<Record<string, {fields: Record<string, string>, buffers: number}>>} MessageTable */
/** @typedef {(msg: PageMessage, buffers: unknown[]) => unknown} Handler  may return why it failed (a string, already reported) */

/** @param {object} obj @param {string} key */
const has = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

/** @type {Record<string, (value: unknown) => boolean>} */
const CHECKS = {
  str: (v) => typeof v === "string",
  int: (v) => Number.isInteger(v),
  num: (v) => typeof v === "number",
  bool: (v) => typeof v === "boolean",
  error_code: (v) => typeof v === "string" && /** @type {readonly string[]} */ (ERROR_CODES).includes(v),
};

/**
 * Why `content` is not a valid message of `table`, or null (the same rules as
 * nbcall/_messages.py: a trailing "?" makes a field optional, absent or null).
 * @param {MessageTable} table
 * @param {unknown} content
 * @param {number} [buffers]  how many binary buffers came with it
 * @returns {string | null}
 */
export function problem(table, content, buffers = 0) {
  if (!content || typeof content !== "object" || Array.isArray(content)) return "a message must be a JSON object";
  const msg = /** @type {Record<string, unknown>} */ (content);
  const kind = msg.kind;
  const spec = typeof kind === "string" && has(table, kind) ? table[kind] : null;
  if (!spec) {
    const shown = typeof kind === "string" ? `'${kind.slice(0, 40)}'` : String(JSON.stringify(kind)).slice(0, 40);
    return `unknown message kind ${shown}`;
  }
  for (const [name, type] of Object.entries(spec.fields)) {
    const optional = type.endsWith("?");
    const base = optional ? type.slice(0, -1) : type;
    const value = msg[name];
    if (value === undefined || value === null) {
      if (optional) continue;
      return `'${kind}' needs '${name}'`;
    }
    if (!CHECKS[base](value)) return `'${kind}': '${name}' must be ${base}`;
    if (name === "id" && typeof value === "string" && value.length > MAX_ID_CHARS) {
      return `'${kind}': 'id' is longer than ${MAX_ID_CHARS} characters`;
    }
  }
  if (buffers < spec.buffers) return `'${kind}' needs ${spec.buffers} binary buffer(s), got ${buffers}`;
  return null;
}

/**
 * Send one page → kernel message; throws on a kind or field the table does not allow
 * (a bug in this page, caught by the unit tests).
 * @param {AnyModel} model
 * @param {ToKernelKind} kind
 * @param {Record<string, unknown>} [fields]
 * @param {ArrayBuffer[]} [buffers]
 */
export function sendToKernel(model, kind, fields = {}, buffers = []) {
  const content = { kind, ...fields };
  const why = problem(TO_KERNEL, content, buffers.length);
  if (why) throw new TypeError(`nbcall: not sending a malformed message: ${why}`);
  // anywidget's send is (content, callbacks, buffers)
  if (buffers.length) model.send(content, undefined, buffers);
  else model.send(content);
}

/** Routes the kernel's messages of one model to the handlers registered by kind. */
export class Dispatcher {
  /** @param {AnyModel} model */
  constructor(model) {
    this.model = model;
    /** @type {Map<string, Handler>} */
    this.handlers = new Map();
    /** @param {unknown} content @param {unknown[]} [buffers] */
    this.onCustom = (content, buffers) => this.receive(content, buffers || []);
    model.on("msg:custom", this.onCustom);
  }

  /**
   * Handle some kinds; each kind has exactly one handler.
   * @param {Partial<Record<ToPageKind, Handler>>} handlers
   * @returns {() => void} removes these handlers
   */
  handle(handlers) {
    const entries = /** @type {[string, Handler][]} */ (Object.entries(handlers));
    for (const [kind] of entries) {
      if (!has(TO_PAGE, kind)) throw new Error(`nbcall: no such kernel → page kind '${kind}'`);
      if (this.handlers.has(kind)) throw new Error(`nbcall: '${kind}' already has a handler`);
    }
    for (const [kind, fn] of entries) this.handlers.set(kind, fn);
    return () => {
      for (const [kind, fn] of entries) if (this.handlers.get(kind) === fn) this.handlers.delete(kind);
    };
  }

  /**
   * One message from the kernel (or a queued action: queued_actions.js).
   * @param {unknown} content
   * @param {unknown[]} [buffers]
   * @returns {string} why it could not be carried out (already reported), or ""
   */
  receive(content, buffers = []) {
    const why = problem(TO_PAGE, content, buffers.length);
    if (why) {
      this.report(why, content);
      return why;
    }
    const msg = /** @type {PageMessage} */ (content);
    const handler = this.handlers.get(msg.kind);
    if (!handler) {
      const detail = `'${msg.kind}' has no handler in this page`;
      this.report(detail, content);
      return detail;
    }
    try {
      const result = handler(msg, buffers);
      return typeof result === "string" ? result : "";
    } catch (err) {
      console.error(`nbcall: handling '${msg.kind}' failed`, err);
      const message = err instanceof Error ? err.message : String(err);
      this.send(TO_KERNEL_KIND.ACTION_FAILED, { action: msg.kind, code: PageError.PAGE_ERROR, message });
      return message;
    }
  }

  /**
   * Tell the console and the kernel about a message this page cannot handle.
   * @param {string} detail
   * @param {unknown} content
   */
  report(detail, content) {
    console.warn(`nbcall: protocol error: ${detail}`, content);
    this.send(TO_KERNEL_KIND.PROTOCOL_ERROR, { detail });
  }

  /**
   * sendToKernel on this model; a closed comm (the widget went away) is not an error here.
   * @param {ToKernelKind} kind
   * @param {Record<string, unknown>} [fields]
   * @param {ArrayBuffer[]} [buffers]
   */
  send(kind, fields = {}, buffers = []) {
    try {
      sendToKernel(this.model, kind, fields, buffers);
    } catch (err) {
      if (err instanceof TypeError && err.message.startsWith("nbcall:")) throw err;
      console.warn(`nbcall: could not send '${kind}' to the kernel`, err);
    }
  }

  destroy() {
    this.model.off("msg:custom", this.onCustom);
    this.handlers.clear();
  }
}
