// Which transport the page uses: the plan for connect_via, falling through a failing
// transport to the next, and choosing again after REPLAN_AFTER_FAILURES.

import { test } from "node:test";
import assert from "node:assert/strict";
import { installGlobals, FakeClock, FakeWebSocket, flush } from "./fakes/index.js";
import { planTransports, connectVia } from "../signaling/transports.js";
import { Signaling, REPLAN_AFTER_FAILURES } from "../signaling/signaling.js";

/** @param {import("node:test").TestContext} t */
function fake(t) {
  const env = installGlobals();
  const clock = new FakeClock().install();
  t.after(() => {
    clock.uninstall();
    env.restore();
  });
  return clock;
}

/**
 * A page for the plan: whether the same-origin endpoint answers, and its scheme.
 * @param {boolean} endpoint
 * @param {string} [protocol]
 */
function page(endpoint, protocol = "http:") {
  return { protocol, sameOriginAvailable: async () => endpoint, sameOriginUrl: (/** @type {string} */ s) => `ws://lab/nbcall/signal?upstream=${s}` };
}

const kernel = () => /** @type {any} */ ({ kernel: true });

/** @param {Promise<{name: string}[]>} plan */
const names = async (plan) => (await plan).map((tr) => tr.name);

test("auto: the endpoint if it answers, then direct, then the kernel", async () => {
  assert.deepEqual(await names(planTransports("auto", "ws://h:9900", { openKernel: kernel, page: page(true) })), ["same-origin", "direct", "kernel"]);
  assert.deepEqual(await names(planTransports("auto", "ws://h:9900", { openKernel: kernel, page: page(false) })), ["direct", "kernel"]);
});

test("auto from an https page: no ws:// direct attempt (mixed content), wss:// is fine", async () => {
  assert.deepEqual(await names(planTransports("auto", "ws://h:9900", { openKernel: kernel, page: page(true, "https:") })), ["same-origin", "kernel"]);
  assert.deepEqual(await names(planTransports("auto", "wss://h:9900", { openKernel: kernel, page: page(false, "https:") })), ["direct", "kernel"]);
});

test("a forced transport is the whole plan; the old name 'relay' means the kernel", async () => {
  for (const via of ["direct", "same-origin", "kernel"]) {
    assert.deepEqual(await names(planTransports(via, "ws://h", { openKernel: kernel, page: page(false) })), [via]);
  }
  assert.deepEqual(await names(planTransports("relay", "ws://h", { openKernel: kernel, page: page(true) })), ["kernel"]);
  assert.equal(connectVia("relay"), "kernel");
  assert.equal(connectVia("carrier pigeon"), "auto");
  assert.equal(connectVia(undefined), "auto");
});

test("the plan's openers: direct to the server, same-origin to the endpoint, kernel through the comm", async (t) => {
  fake(t);
  const plan = await planTransports("auto", "ws://h:9900", { openKernel: kernel, page: page(true) });
  const [sameOrigin, direct, viaKernel] = plan.map((tr) => /** @type {any} */ (tr.open()));
  assert.equal(sameOrigin.url, "ws://lab/nbcall/signal?upstream=ws://h:9900");
  assert.equal(direct.url, "ws://h:9900");
  assert.deepEqual(viaKernel, { kernel: true });
});

/**
 * A Signaling over named fake transports; `refuse` names those whose socket fails at once.
 * @param {string[]} order
 * @param {Set<string>} refuse
 */
function signalingOver(order, refuse) {
  /** @type {{name: string, ws: FakeWebSocket}[]} */
  const opened = [];
  let plans = 0;
  /** @type {string[]} */
  const statuses = [];
  const plan = async () => {
    plans += 1;
    return order.map((name) => ({
      name: /** @type {any} */ (name),
      open: () => {
        const ws = new FakeWebSocket(`ws://${name}`);
        opened.push({ name, ws });
        queueMicrotask(() => (refuse.has(name) ? ws.serverClose(1006, `${name} refused`) : ws.serverOpen()));
        return ws;
      },
    }));
  };
  const signaling = new Signaling({
    url: "ws://server",
    username: "alice",
    onMessage: () => {},
    onStatus: (status, detail) => statuses.push(detail ? `${status}:${detail}` : status),
    plan,
  });
  return { signaling, opened, statuses, plans: () => plans };
}

/** @param {FakeWebSocket} ws */
function register(ws) {
  ws.serverSend({ type: "registered", username: "alice", key: "alice", credential: "c1", users: [], keys: [], online: 1, protocol: 1, ring_timeout: 30, server_id: "s1" });
}

test("a failing transport falls to the next at once; the one that registers is kept", async (t) => {
  fake(t);
  const s = signalingOver(["same-origin", "direct", "kernel"], new Set(["same-origin", "direct"]));
  s.signaling.start();
  await flush();
  assert.deepEqual(s.opened.map((o) => o.name), ["same-origin", "direct", "kernel"]);
  register(s.opened[2].ws);
  assert.equal(s.signaling.transport, "kernel");
  assert.ok(s.statuses.includes("transport:kernel"));
  s.signaling.close();
});

test("all transports failing: one retry with every reason, backing off", async (t) => {
  const clock = fake(t);
  const s = signalingOver(["direct", "kernel"], new Set(["direct", "kernel"]));
  s.signaling.start();
  await flush();
  const retry = s.statuses.find((st) => st.startsWith("retrying:"));
  assert.match(String(retry), /direct: direct refused; kernel: kernel refused; retrying in 0\.\d s/);
  assert.equal(s.opened.length, 2);
  clock.tick(300);
  await flush();
  assert.equal(s.plans(), 2, "nothing was kept: plan again");
  assert.equal(s.opened.length, 4);
  s.signaling.close();
});

test("a kept transport that drops is retried alone, and after REPLAN_AFTER_FAILURES the plan is made again", async (t) => {
  const clock = fake(t);
  const refuse = new Set();
  const s = signalingOver(["direct", "kernel"], refuse);
  s.signaling.start();
  await flush();
  register(s.opened[0].ws);
  assert.equal(s.signaling.transport, "direct");
  refuse.add("direct");
  s.opened[0].ws.serverClose(1006); // it worked before: reconnect through it
  for (let i = 0; i < REPLAN_AFTER_FAILURES; i++) {
    clock.tick(10000);
    await flush();
  }
  const names1 = s.opened.map((o) => o.name);
  assert.deepEqual(names1.slice(0, 1 + REPLAN_AFTER_FAILURES), ["direct", ...Array(REPLAN_AFTER_FAILURES).fill("direct")]);
  assert.equal(s.plans(), 1);
  clock.tick(10000);
  await flush();
  assert.equal(s.plans(), 2, "chosen again from scratch");
  assert.deepEqual(s.opened.slice(-2).map((o) => o.name), ["direct", "kernel"]);
  register(s.opened[s.opened.length - 1].ws);
  assert.equal(s.signaling.transport, "kernel");
  s.signaling.close();
});

test("a transport that opens but never registers is given up on after the open timeout", async (t) => {
  const clock = fake(t);
  const s = signalingOver(["direct", "kernel"], new Set());
  s.signaling.start();
  await flush();
  assert.equal(s.opened.length, 1);
  clock.tick(4000);
  await flush();
  assert.deepEqual(s.opened.map((o) => o.name), ["direct", "kernel"]);
  s.signaling.close();
});

test("an endpoint's refusal before registering is the transport's failure reason", async (t) => {
  fake(t);
  const s = signalingOver(["same-origin"], new Set());
  s.signaling.start();
  await flush();
  const ws = s.opened[0].ws;
  ws.serverSend({ type: "error", code: "upstream_unreachable", message: "cannot reach ws://server" });
  ws.serverClose(1011);
  assert.match(String(s.statuses.find((st) => st.startsWith("retrying:"))), /same-origin: upstream_unreachable: cannot reach ws:\/\/server/);
  s.signaling.close();
});

test("closed with code 4001 (replaced): no fighting back", async (t) => {
  fake(t);
  const s = signalingOver(["direct"], new Set());
  s.signaling.start();
  await flush();
  register(s.opened[0].ws);
  s.opened[0].ws.serverClose(4001, "replaced");
  assert.ok(s.statuses.some((st) => st.startsWith("replaced:")));
  assert.equal(s.signaling.closed, true);
});
