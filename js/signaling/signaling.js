// The registered connection to the nbcall signaling server, over whichever transport
// works from this page (transports.js: same-origin, direct, kernel).
//
// The first transport that registers is kept.  Keeps one registered connection alive: when
// the socket drops it reconnects with exponential backoff and re-registers with the name's
// credential, so the server hands the name (and any call in progress) back to us instead
// of refusing it as taken.  `register` also announces the call we are in (`announce`), so a
// server that restarted meanwhile can restore it; and while a call is up (`urgent`) the
// backoff stays short, so a server back after a second is found a second later.

import { MessageType, CloseCode } from "../protocol.js";
import { OPEN_TIMEOUT_MS, DIRECT } from "./transports.js";

/** @typedef {import("../types.js").SocketLike} SocketLike */
/** @typedef {import("../types.js").Transport} Transport */
/** @typedef {import("../types.js").ServerMessage} ServerMessage */

/**
 * How the connection is doing:
 *   connecting | transport (detail: its name) | registered | retrying (detail: why, when)
 *   | replaced (detail: words) | closed
 * @typedef {"connecting" | "transport" | "registered" | "retrying" | "replaced" | "closed"} SignalingStatus
 */

export const REPLAN_AFTER_FAILURES = 3; // a kept transport that fails this often in a row: choose again
export const FIRST_RETRY_MS = 250; // the backoff: 0.25 s, 0.5 s, 1 s ... (each with jitter down to half)
export const MAX_RETRY_MS = 8000;
export const URGENT_MAX_RETRY_MS = 1000; // the cap while a call is up
const MAX_OUTBOX = 200;
const OPEN = 1; // WebSocket.OPEN, and KernelSocket's
const CLIENT = "nbcall-widget";

/**
 * @typedef {object} SignalingOptions
 * @property {string} url  ws:// URL of the server
 * @property {string} username  name to register
 * @property {string} [credential]
 * @property {(msg: ServerMessage) => void} onMessage  every message from the server, in order
 * @property {(status: SignalingStatus, detail?: string) => void} onStatus
 * @property {() => Promise<Transport[]>} [plan]  the transports to try, in order; default: a direct websocket to url
 * @property {() => ({peer: string, call_id: string} | null)} [announce]  the call to announce in `register`
 * @property {() => boolean} [urgent]  a call is up: retry at most URGENT_MAX_RETRY_MS apart
 */

export class Signaling {
  /** @param {SignalingOptions} opts */
  constructor({ url, username, credential, onMessage, onStatus, plan, announce, urgent }) {
    this.url = url;
    this.plan = plan || (async () => [this._direct()]);
    /** @type {Transport[] | null} the current plan, tried in order until one registers */
    this.candidates = null;
    this.index = 0;
    /** @type {Transport | null} the transport that registered, kept for reconnects */
    this.kept = null;
    this.failuresInARow = 0;
    /** @type {string[]} */
    this.failures = [];
    this.transport = "";
    this.username = username;
    this.credential = credential || null;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.announce = announce || (() => null);
    this.urgent = urgent || (() => false);
    /** @type {SocketLike | null} */
    this.ws = null;
    this.closed = false;
    this.registered = false;
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    /** @type {object[]} messages sent while reconnecting, flushed after re-registering */
    this.outbox = [];
  }

  /** @returns {Transport} */
  _direct() {
    return { name: DIRECT, open: () => new WebSocket(this.url) };
  }

  start() {
    this.closed = false;
    this._connect();
  }

  async _connect() {
    if (this.closed) return;
    this.onStatus("connecting");
    if (!this.candidates) {
      try {
        this.candidates = await this.plan();
      } catch {
        this.candidates = [this._direct()];
      }
      this.index = 0;
      this.failures = [];
      if (this.closed) return;
    }
    const candidate = this.kept || this.candidates[this.index];
    let ws;
    try {
      ws = candidate.open();
    } catch (err) {
      this._failed(candidate, false, err instanceof Error ? err.message : String(err));
      return;
    }
    this._watch(ws, candidate);
  }

  /** @param {SocketLike} ws @param {Transport} candidate */
  _watch(ws, candidate) {
    this.ws = ws;
    // A transport works once the server has registered us through it; one that neither
    // registers nor fails (a filtered port, a busy kernel) is given up on.
    let registered = false;
    let refusal = ""; // why an endpoint turned us away before registering (e.g. its upstream is down)
    const openTimer = setTimeout(() => {
      if (!registered && this.ws === ws) ws.close();
    }, OPEN_TIMEOUT_MS);
    ws.onopen = () => this._sendRegister(ws);
    ws.onmessage = (/** @type {{data: unknown}} */ event) => {
      /** @type {ServerMessage} */
      let msg;
      try {
        msg = JSON.parse(String(event.data));
      } catch {
        return; // the server only sends JSON; ignore anything else rather than crash
      }
      if (!msg || typeof msg !== "object") return;
      if (msg.type === MessageType.REGISTERED) {
        registered = true;
        clearTimeout(openTimer);
        this._registered(ws, candidate, msg);
      } else if (!registered && msg.type === MessageType.ERROR && msg.request !== MessageType.REGISTER) {
        // Not about us but about this way in: it becomes the transport's failure reason,
        // so the widget's error stays one stable sentence across retries.
        refusal = `${msg.code}: ${msg.message}`;
        return;
      }
      this.onMessage(msg);
    };
    ws.onclose = (/** @type {{code: number, reason?: string}} */ event) => {
      clearTimeout(openTimer);
      if (this.ws !== ws) return;
      this.ws = null;
      this.registered = false;
      if (this.closed) return;
      if (event.code === CloseCode.REPLACED) {
        // Another page took this name with our credential: fighting back would flap.
        this.closed = true;
        this.onStatus("replaced", "this name was taken over by another page or connection");
        return;
      }
      this._failed(candidate, registered, refusal || event.reason || `connection closed (code ${event.code})`);
    };
    ws.onerror = () => {
      // onclose follows and decides what to do
    };
  }

  /** @param {SocketLike} ws @param {Transport} candidate @param {ServerMessage} msg */
  _registered(ws, candidate, msg) {
    this.failures = [];
    if (this.kept !== candidate) {
      this.kept = candidate;
      this.transport = candidate.name;
      this.onStatus("transport", candidate.name);
    }
    this.registered = true;
    this.attempt = 0;
    this.failuresInARow = 0;
    if (msg.credential) this.credential = msg.credential;
    for (const m of this.outbox.splice(0)) ws.send(JSON.stringify(m));
    this.onStatus("registered");
  }

  /** @param {SocketLike} ws */
  _sendRegister(ws) {
    /** @type {Record<string, unknown>} */
    const msg = { type: MessageType.REGISTER, username: this.username, client: CLIENT, presence: true };
    if (this.credential) msg.credential = this.credential;
    const call = this.announce();
    if (call) msg.call = call;
    ws.send(JSON.stringify(msg));
  }

  /** Ask again on the open socket (the name was taken a moment ago and may be free now). */
  register() {
    const ws = this.ws;
    if (!this.closed && ws && !this.registered && ws.readyState === OPEN) this._sendRegister(ws);
  }

  /** @param {Transport} candidate @param {boolean} worked @param {string} detail */
  _failed(candidate, worked, detail) {
    if (!worked) this.failures.push(`${candidate.name}: ${detail}`);
    if (!this.kept && this.candidates && this.index < this.candidates.length - 1) {
      this.index += 1; // this transport does not work from here: try the next one at once
      this._connect();
      return;
    }
    const summary = worked ? detail : this.failures.join("; ");
    if (this.kept && !worked && ++this.failuresInARow >= REPLAN_AFTER_FAILURES) {
      this.kept = null; // what worked before keeps failing: choose again from scratch
      this.failuresInARow = 0;
    }
    if (!this.kept) this.candidates = null;
    this._retry(summary);
  }

  /** @param {string} detail */
  _retry(detail) {
    if (this.closed) return;
    // 0.25 s, 0.5 s, 1 s ... capped at 8 s (1 s in a call), with jitter so many pages don't stampede.
    const cap = this.urgent() ? URGENT_MAX_RETRY_MS : MAX_RETRY_MS;
    const base = Math.min(cap, FIRST_RETRY_MS * 2 ** Math.min(this.attempt, 16));
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    this.onStatus("retrying", `${detail}; retrying in ${(delay / 1000).toFixed(1)} s`);
    this.timer = setTimeout(() => this._connect(), delay);
  }

  /**
   * Send a message now, or after re-registering when the socket is down.
   * @param {object} msg
   * @returns {boolean} sent now
   */
  send(msg) {
    if (this.closed) return false;
    if (this.ws && this.registered && this.ws.readyState === OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    if (this.outbox.length < MAX_OUTBOX) this.outbox.push(msg);
    return false;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000, "widget closed");
      } catch {
        // already closing
      }
    }
    this.onStatus("closed");
  }
}
