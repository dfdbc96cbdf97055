// Fakes of the browser and anywidget for the unit tests (node --test), in one place:
// FakeWebSocket, FakeModel (anywidget's model), FakePeerConnection (+ data channel),
// FakeMediaStream/FakeTrack, fake navigator.mediaDevices, FakeMediaRecorder, FakeClock,
// FakeHub (with rooms: hub_rooms.js), FakeSfuSession (js/room/sfu.js's stand-in).
// installGlobals() puts them where the page's code looks for them (globalThis).

import { FakeWebSocket } from "./websocket.js";
import { FakePeerConnection } from "./peer_connection.js";
import { FakeMediaStream, FakeMediaRecorder, fakeMediaDevices } from "./media.js";

export { FakeWebSocket } from "./websocket.js";
export { FakeModel } from "./model.js";
export { FakeTrack, FakeMediaStream, FakeMediaRecorder, fakeMediaDevices } from "./media.js";
export { FakePeerConnection, FakeDataChannel } from "./peer_connection.js";
export { FakeClock, flush } from "./clock.js";
export { FakeHub, nameKey } from "./hub.js";
export { FakeSfuSession } from "./sfu.js";

/**
 * Install the fakes as the browser globals the page's code uses; returns a restore function.
 * @returns {{restore: () => void, mediaDevices: ReturnType<typeof fakeMediaDevices>}}
 */
export function installGlobals() {
  const g = /** @type {any} */ (globalThis);
  const names = ["WebSocket", "RTCPeerConnection", "MediaStream", "MediaRecorder", "navigator"];
  /** @type {Record<string, PropertyDescriptor | undefined>} */
  const saved = {};
  for (const name of names) saved[name] = Object.getOwnPropertyDescriptor(g, name);
  const mediaDevices = fakeMediaDevices();
  const define = (/** @type {string} */ name, /** @type {any} */ value) =>
    Object.defineProperty(g, name, { value, configurable: true, writable: true });
  define("WebSocket", FakeWebSocket);
  define("RTCPeerConnection", FakePeerConnection);
  define("MediaStream", FakeMediaStream);
  define("MediaRecorder", FakeMediaRecorder);
  define("navigator", { mediaDevices });
  FakeWebSocket.reset();
  FakePeerConnection.instances = [];
  FakeMediaRecorder.instances = [];
  delete g.__nbcall;
  return {
    mediaDevices,
    restore() {
      for (const name of names) {
        const d = saved[name];
        if (d) Object.defineProperty(g, name, d);
        else delete g[name];
      }
      delete g.__nbcall;
    },
  };
}
