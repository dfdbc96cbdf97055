// Shapes shared across the page's modules (JSDoc only: this module exports no code).

/**
 * The part of anywidget's model the widget uses.  anywidget hands `initialize` and
 * `render` different facades of one model; both have these.
 * @typedef {object} AnyModel
 * @property {(name: string) => any} get
 * @property {(name: string, value: any) => void} set
 * @property {() => void} save_changes
 * @property {(event: string, fn: (...args: any[]) => void) => void} on
 * @property {(event: string, fn: (...args: any[]) => void) => void} off
 * @property {(content: object, callbacks?: unknown, buffers?: ArrayBuffer[]) => void} send
 */

/**
 * What signaling needs of a socket: a browser WebSocket, or a KernelSocket (the comm).
 * Handlers take `any` so that WebSocket's own handler types fit.
 * @typedef {object} SocketLike
 * @property {number} readyState  0 connecting, 1 open, 2 closing, 3 closed (as WebSocket)
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {((event: any) => void) | null} onopen
 * @property {((event: any) => void) | null} onmessage  event.data: one JSON text frame
 * @property {((event: any) => void) | null} onclose    event.code, event.reason
 * @property {((event: any) => void) | null} onerror
 */

/**
 * One way to reach the signaling server (transports.js).
 * @typedef {object} Transport
 * @property {import("./signaling/transports.js").TransportName} name
 * @property {() => SocketLike} open
 */

/** A JSON message from the signaling server (fields per docs/protocol.md). @typedef {Record<string, any> & {type: string}} ServerMessage */

/** A kernel → page message that passed the table's check. @typedef {Record<string, any> & {kind: string}} PageMessage */

/**
 * @typedef {object} PhoneEvents
 * @property {[import("./call/phone.js").Phone]} change
 * @property {[import("./names.js").CallStateName, import("./names.js").CallStateName, string]} state  to, from, why
 * @property {[import("./call/peer_call.js").PeerCall]} callstart
 * @property {[]} connected
 * @property {[]} callend
 */

/**
 * @typedef {object} PhoneOptions
 * @property {string} user
 * @property {string} server
 * @property {string} [credential]
 * @property {RTCIceServer[]} [iceServers]
 * @property {RTCIceTransportPolicy} [iceTransportPolicy]
 * @property {boolean} audio
 * @property {boolean} video
 * @property {() => Promise<Transport[]>} [plan]
 * @property {boolean} [replaces]  this widget replaced one of the same name (a cell run again)
 * @property {number} [lostAfter]  seconds of silence from the peer after which a call ends `lost` (default 10)
 */

export {};
