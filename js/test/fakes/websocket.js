// A browser WebSocket whose server side the test plays.  Whatever the server side sends
// (the FakeHub, or a test playing the server by hand) must be a message the wire declares
// (js/wire.js, generated from nbcall/signaling/wire.py): anything else throws, so no unit
// test passes on a message the real server could never send.

import { problems } from "../../wire_check.js";

export class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  /** @type {FakeWebSocket[]} every socket made since the last reset() */
  static instances = [];

  static reset() {
    FakeWebSocket.instances = [];
  }

  /** The socket made last. */
  static last() {
    const ws = FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    if (!ws) throw new Error("no FakeWebSocket was opened");
    return ws;
  }

  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = FakeWebSocket.CONNECTING;
    /** @type {any[]} the page's frames, parsed */
    this.sent = [];
    /** @type {any[]} the server's frames to the page */
    this.received = [];
    /** @type {{code: number, reason: string} | null} */
    this.closedWith = null;
    /** @type {((event: any) => void) | null} */
    this.onopen = null;
    /** @type {((event: any) => void) | null} */
    this.onmessage = null;
    /** @type {((event: any) => void) | null} */
    this.onclose = null;
    /** @type {((event: any) => void) | null} */
    this.onerror = null;
    /** @type {((msg: any) => void) | null} the server hears a frame (FakeHub) */
    this.onsend = null;
    /** @type {((code: number) => void) | null} the server hears the page close it (FakeHub) */
    this.onpageclose = null;
    FakeWebSocket.instances.push(this);
  }

  /** @param {string} data */
  send(data) {
    if (this.readyState !== FakeWebSocket.OPEN) throw new Error("FakeWebSocket is not open");
    const msg = JSON.parse(data);
    this.sent.push(msg);
    if (this.onsend) this.onsend(msg);
  }

  /** The page closes it: like a browser, onclose follows (on a microtask). */
  close(code = 1000, reason = "") {
    if (this.readyState >= FakeWebSocket.CLOSING) return;
    this.readyState = FakeWebSocket.CLOSING;
    this.closedWith = { code, reason };
    if (this.onpageclose) this.onpageclose(code);
    queueMicrotask(() => this.serverClose(1005, reason));
  }

  // -- what the server does --

  serverOpen() {
    this.readyState = FakeWebSocket.OPEN;
    if (this.onopen) this.onopen({});
  }

  /** @param {object} msg */
  serverSend(msg) {
    const found = problems(msg);
    if (found.length > 0) throw new Error(`not a message the server sends: ${found.join("; ")}`);
    this.serverSendUnchecked(msg);
  }

  /**
   * What no nbcall server of this version sends (a newer one, or a hostile one): for tests
   * of how the page copes with it.  Everything else goes through serverSend.
   * @param {object} msg
   */
  serverSendUnchecked(msg) {
    this.received.push(msg);
    if (this.onmessage) this.onmessage({ data: JSON.stringify(msg) });
  }

  serverClose(code = 1006, reason = "") {
    if (this.readyState === FakeWebSocket.CLOSED) return;
    this.readyState = FakeWebSocket.CLOSED;
    if (this.onclose) this.onclose({ code, reason });
  }

  /**
   * Frames of one type the page sent.
   * @param {string} type
   */
  sentOf(type) {
    return this.sent.filter((m) => m.type === type);
  }
}

