// What several test files share: a fresh fake browser per test, phones on a FakeHub, and
// a call taken all the way to connected.

import { installGlobals, FakeClock, FakeHub, FakeModel, flush } from "./fakes/index.js";
import { Phone } from "../call/phone.js";
import { Dispatcher } from "../dispatch.js";
import { InCall } from "../features/in_call.js";

/** @typedef {import("./fakes/index.js").FakePeerConnection} FakePeerConnection */

/**
 * Fake globals and clock for one test, undone when it ends.
 * @param {import("node:test").TestContext} t
 */
export function fakeBrowser(t) {
  const env = installGlobals();
  const clock = new FakeClock().install();
  const hub = new FakeHub();
  /** @type {Phone[]} */
  const phones = [];
  t.after(() => {
    for (const phone of phones) phone.close();
    clock.uninstall();
    env.restore();
  });
  /**
   * A phone registered on the hub.
   * @param {string} user
   * @param {Partial<import("../types.js").PhoneOptions>} [opts]
   */
  const phone = async (user, opts = {}) => {
    const p = new Phone({ user, server: hub.url, plan: hub.plan(), audio: true, video: true, ...opts });
    phones.push(p);
    p.start();
    await flush();
    return p;
  };
  return { env, clock, hub, phone };
}

/** The FakePeerConnection of a phone's call. @param {Phone} phone */
export function fakePc(phone) {
  const pc = phone.pc;
  if (!pc) throw new Error(`${phone.user} has no peer connection`);
  return /** @type {FakePeerConnection} */ (/** @type {unknown} */ (pc));
}

/**
 * `a` calls `b`, `b` answers, and both connections come up.
 * @param {Phone} a
 * @param {Phone} b
 */
export async function connect(a, b) {
  if (a.placeCall(b.user)) throw new Error("placeCall failed");
  await flush();
  if (b.accept()) throw new Error("accept failed");
  await flush();
  fakePc(a).setConnectionState("connected");
  fakePc(b).setConnectionState("connected");
  await flush();
}

/**
 * alice's in-call features in a call with bob, connected (the data channel not yet open).
 * @param {import("node:test").TestContext} t
 */
export async function inCallWithBob(t) {
  const browser = fakeBrowser(t);
  const alice = await browser.phone("alice");
  const bob = await browser.phone("bob");
  const model = new FakeModel({ audio: true, video: true, camera: "", microphone: "", screen_share: false, messages: [] });
  const dispatcher = new Dispatcher(/** @type {any} */ (model));
  const features = new InCall(/** @type {any} */ (model), alice, dispatcher);
  t.after(() => features.destroy());
  await connect(alice, bob);
  const channel = /** @type {import("./fakes/index.js").FakeDataChannel} */ (/** @type {unknown} */ (features.channel));
  return { ...browser, alice, bob, model, features, channel };
}
