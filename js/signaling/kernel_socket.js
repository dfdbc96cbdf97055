// The kernel transport: a websocket-shaped object whose frames travel through the widget's
// comm to the kernel, which holds a real websocket to the widget's own server on the page's
// behalf (CallWidget's kernel sockets, Python).  Works wherever widgets work; the kernel
// reads comm messages only between cells.
//
// A page says goodbye on `pagehide`; one that crashes cannot, so while a socket is not
// closed the page pings the kernel every PING_INTERVAL_MS (KERNEL_SOCKET_PING), and the
// kernel drops a socket whose page has been silent for a few idle seconds.

import { TO_KERNEL_KIND, TO_PAGE_KIND } from "../messages.js";

/** @typedef {import("../dispatch.js").Dispatcher} Dispatcher */

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

export const PING_INTERVAL_MS = 1000;

let nextId = 1;

/** One socket through the kernel (a SocketLike, types.js); made by KernelSockets.open(). */
export class KernelSocket {
  /**
   * @param {string} id
   * @param {Dispatcher} dispatcher  sends this socket's frames to the kernel
   * @param {() => void} onFinished  forget this socket
   */
  constructor(id, dispatcher, onFinished) {
    this.id = id;
    this.dispatcher = dispatcher;
    this.onFinished = onFinished;
    this.readyState = CONNECTING;
    /** @type {((event: any) => void) | null} */
    this.onopen = null;
    /** @type {((event: any) => void) | null} */
    this.onmessage = null;
    /** @type {((event: any) => void) | null} */
    this.onclose = null;
    /** @type {((event: any) => void) | null} */
    this.onerror = null;
    // The kernel would keep our name online after the page is gone: say goodbye on unload.
    this.onPageHide = () => this.close();
    if (typeof globalThis.addEventListener === "function") globalThis.addEventListener("pagehide", this.onPageHide);
    dispatcher.send(TO_KERNEL_KIND.KERNEL_SOCKET_OPEN, { id });
    this.ping = () => dispatcher.send(TO_KERNEL_KIND.KERNEL_SOCKET_PING, { id });
    this.ping();
    this.pinger = setInterval(this.ping, PING_INTERVAL_MS);
  }

  opened() {
    if (this.readyState !== CONNECTING) return;
    this.readyState = OPEN;
    if (this.onopen) this.onopen({});
  }

  /** @param {string} data */
  message(data) {
    if (this.readyState === OPEN && this.onmessage) this.onmessage({ data });
  }

  /** @param {number} code @param {string} reason */
  finish(code, reason) {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    clearInterval(this.pinger);
    if (typeof globalThis.removeEventListener === "function") globalThis.removeEventListener("pagehide", this.onPageHide);
    this.onFinished();
    if (this.onclose) this.onclose({ code, reason });
  }

  /** @param {string} data */
  send(data) {
    if (this.readyState !== OPEN) throw new Error("the kernel socket is not open");
    this.dispatcher.send(TO_KERNEL_KIND.KERNEL_SOCKET_SEND, { id: this.id, data });
  }

  close() {
    if (this.readyState === CLOSED) return;
    this.dispatcher.send(TO_KERNEL_KIND.KERNEL_SOCKET_CLOSE, { id: this.id });
    this.finish(1000, "closed by the page");
  }
}

/** The kernel sockets of one model, and the routing of the kernel's kernel_socket_* messages to them. */
export class KernelSockets {
  /** @param {Dispatcher} dispatcher */
  constructor(dispatcher) {
    this.dispatcher = dispatcher;
    /** @type {Map<string, KernelSocket>} */
    this.sockets = new Map();
    // A message for a socket already closed here is a normal race (the kernel had it in
    // flight), not a protocol error: it is dropped.
    this.unhandle = dispatcher.handle({
      [TO_PAGE_KIND.KERNEL_SOCKET_OPENED]: (msg) => this.sockets.get(msg.id)?.opened(),
      [TO_PAGE_KIND.KERNEL_SOCKET_MESSAGE]: (msg) => this.sockets.get(msg.id)?.message(msg.data),
      [TO_PAGE_KIND.KERNEL_SOCKET_CLOSED]: (msg) => this.sockets.get(msg.id)?.finish(msg.code || 1006, msg.reason),
    });
  }

  /** A new socket through the kernel (the kernel connects to the widget's own server). */
  open() {
    const id = `${Date.now().toString(36)}-${nextId++}`;
    const socket = new KernelSocket(id, this.dispatcher, () => this.sockets.delete(id));
    this.sockets.set(id, socket);
    return socket;
  }

  destroy() {
    for (const socket of [...this.sockets.values()]) socket.close();
    this.unhandle();
  }
}
