// What the room tests share: phones on a FakeHub with rooms, a fake SfuSession in place of
// sfu.js, the FakePeerConnection of one mesh link, and members joined one after another.

import { FakeSfuSession, FakeMediaStream, FakeTrack, flush } from "./fakes/index.js";
import { fakeBrowser } from "./helpers.js";

/** @typedef {import("../call/phone.js").Phone} Phone */
/** @typedef {import("./fakes/index.js").FakePeerConnection} FakePeerConnection */

/**
 * fakeBrowser, with every phone's room loading FakeSfuSession instead of sfu.js.
 * @param {import("node:test").TestContext} t
 */
export function roomBrowser(t) {
  const browser = fakeBrowser(t);
  FakeSfuSession.reset();
  /** @param {string} user @param {Partial<import("../types.js").PhoneOptions>} [opts] */
  const phone = async (user, opts) => {
    const p = await browser.phone(user, opts);
    p.room.loadSfu = async () => FakeSfuSession;
    return p;
  };
  return { ...browser, phone };
}

/**
 * Each phone joins `room` in turn (the server answers each before the next asks).
 * @param {string} room
 * @param {Phone[]} phones
 */
export async function joinAll(room, ...phones) {
  for (const p of phones) {
    const why = p.room.join(room);
    if (why) throw new Error(`${p.user} cannot join: ${why}`);
    await flush(10);
  }
}

/** The FakePeerConnection of `phone`'s mesh link to `other`. @param {Phone} phone @param {Phone} other */
export function linkPc(phone, other) {
  const mesh = phone.room.mesh;
  const link = mesh && mesh.links.get(other.key);
  if (!link) throw new Error(`${phone.user} has no link to ${other.user}`);
  return /** @type {FakePeerConnection} */ (/** @type {unknown} */ (link.call.pc));
}

/** Every link of these phones comes up, and each delivers the other side's media. @param {Phone[]} phones */
export async function connectAll(...phones) {
  for (const p of phones) {
    for (const other of phones) {
      if (p === other || !p.room.mesh || !p.room.mesh.has(other.key)) continue;
      const pc = linkPc(p, other);
      if (pc.connectionState !== "connected") pc.setConnectionState("connected");
      if (!p.room.stream(other.key)) pc.remoteTrack(new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]));
    }
  }
  await flush();
}

/** Keys of the members a phone lists (ringing ones too), sorted. @param {Phone} phone */
export function memberKeys(phone) {
  return phone.room
    .participants()
    .map((p) => p.key)
    .sort();
}
