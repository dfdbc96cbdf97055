// janus-gateway (janus.js, bundled) behind promises: the library initialised once, a
// session, a VideoRoom handle, a message, an offer or answer.  Only js/room/sfu.js uses it.

import Janus from "janus-gateway";
// @ts-expect-error: adapter types only its main module; detectBrowser(window) → {browser, version}
import { detectBrowser } from "webrtc-adapter/src/js/utils.js";

/** @typedef {import("janus-gateway").JanusJS.Janus} JanusSession */
/** @typedef {import("janus-gateway").JanusJS.PluginHandle} PluginHandle */
/** @typedef {import("janus-gateway").JanusJS.PluginCallbacks} PluginCallbacks */
/** @typedef {import("janus-gateway").JanusJS.JSEP} JSEP */
/** @typedef {import("janus-gateway").JanusJS.TrackOption} TrackOption */
/**
 * The parts of janus.js's `Janus` class the session uses (a fake one in the unit tests).
 * @typedef {{new (options: import("janus-gateway").JanusJS.ConstructorOptions): JanusSession,
 *   sessions?: Map<unknown, unknown>}} JanusLibrary
 */

export const PLUGIN = "janus.plugin.videoroom";

/** @type {Promise<JanusLibrary> | null} */
let ready = null;

/**
 * janus.js, initialised once per page.  janus.js only reads `browserDetails` from the
 * webrtc-adapter it is given, so it gets adapter's browser detection alone: importing
 * adapter itself would replace RTCPeerConnection for the whole page (every other call and
 * notebook extension) the moment the widget loads.
 * @returns {Promise<JanusLibrary>}
 */
export function janusLibrary() {
  if (!ready) {
    ready = new Promise((resolve, reject) => {
      // The bundle's UMD wrapper hands janus.js to an AMD loader when the page has one
      // (classic Notebook's RequireJS), and then there is nothing here.
      if (typeof Janus !== "function") {
        reject(new Error("janus-gateway did not load on this page (an AMD loader took it)"));
        return;
      }
      const adapter = { browserDetails: detectBrowser(window) };
      Janus.init({
        debug: false,
        dependencies: Janus.useDefaultDependencies({ adapter }),
        callback: () => resolve(/** @type {JanusLibrary} */ (/** @type {unknown} */ (Janus))),
      });
    });
  }
  return ready;
}

/**
 * A Janus session on `server` (ws(s):// or http(s)://).  Resolves once Janus created it;
 * `onLost` is told when the connection drops afterwards.  `session` is the janus.js
 * object from the start, so it can be destroyed even while it is still connecting.
 * @param {JanusLibrary} lib
 * @param {{server: string, iceServers: RTCIceServer[], onLost: (why: string) => void}} opts
 * @returns {{session: JanusSession, created: Promise<void>}}
 */
export function openSession(lib, { server, iceServers, onLost }) {
  let settled = false;
  /** @type {(v?: void) => void} */
  let resolve = () => {};
  /** @type {(e: Error) => void} */
  let reject = () => {};
  const created = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const session = new lib({
    server,
    // janus.js puts Google's STUN server in when none is given: nbcall sends nothing anywhere it was not told to.
    iceServers: iceServers || [],
    destroyOnUnload: true,
    success: () => {
      settled = true;
      resolve();
    },
    error: (/** @type {unknown} */ why) => {
      if (settled) onLost(String(why));
      else {
        settled = true;
        reject(new Error(String(why)));
      }
    },
  });
  return { session, created };
}

/**
 * A VideoRoom handle on the session.
 * @param {JanusSession} session
 * @param {PluginCallbacks} callbacks
 * @returns {Promise<PluginHandle>}
 */
export function attach(session, callbacks) {
  return new Promise((resolve, reject) => {
    session.attach({
      ...callbacks,
      plugin: PLUGIN,
      success: resolve,
      error: (/** @type {unknown} */ why) => reject(new Error(String(why))),
    });
  });
}

/**
 * Send a plugin message (and a JSEP); resolves when Janus took it.  VideoRoom answers most
 * requests later, in an event the session waits for.
 * @param {PluginHandle} handle
 * @param {Record<string, unknown>} message
 * @param {JSEP} [jsep]
 * @returns {Promise<unknown>}
 */
export function send(handle, message, jsep) {
  return new Promise((resolve, reject) => {
    handle.send({
      message: /** @type {{request: string}} */ (message),
      jsep,
      success: resolve,
      error: (/** @type {unknown} */ why) => reject(new Error(String(why))),
    });
  });
}

/**
 * An offer for these tracks (janus.js adds them to the handle's connection).
 * @param {PluginHandle} handle
 * @param {TrackOption[]} tracks
 * @returns {Promise<JSEP>}
 */
export function makeOffer(handle, tracks) {
  return new Promise((resolve, reject) => {
    handle.createOffer({
      tracks,
      success: resolve,
      error: (/** @type {unknown} */ why) => reject(why instanceof Error ? why : new Error(String(why))),
    });
  });
}

/**
 * Answer Janus's offer, receiving only (a subscription).
 * @param {PluginHandle} handle
 * @param {JSEP} jsep
 * @returns {Promise<JSEP>}
 */
export function makeAnswer(handle, jsep) {
  return new Promise((resolve, reject) => {
    handle.createAnswer({
      jsep,
      tracks: [],
      success: resolve,
      error: (/** @type {unknown} */ why) => reject(why instanceof Error ? why : new Error(String(why))),
    });
  });
}

/**
 * Apply Janus's answer to our offer.
 * @param {PluginHandle} handle
 * @param {JSEP} jsep
 * @returns {Promise<void>}
 */
export function takeAnswer(handle, jsep) {
  return new Promise((resolve, reject) => {
    handle.handleRemoteJsep({
      jsep,
      success: () => resolve(),
      error: (/** @type {unknown} */ why) => reject(why instanceof Error ? why : new Error(String(why))),
    });
  });
}

/** The handle's RTCPeerConnection, once it has one. @param {PluginHandle | null} handle */
export function peerConnection(handle) {
  return (handle && handle.webrtcStuff && handle.webrtcStuff.pc) || null;
}
