// A small signaling server for tests of several phones: registration with credentials,
// presence, invite / ringing / accept / reject / cancel / hangup and relayed
// offer / answer / candidate, shaped like nbcall.signaling's (keys beside every name).
// Frames are delivered on microtasks, like a network: `await flush()` lets them arrive.
// Its answers are checked against the real server's by ../contract.test.js (sessions
// recorded under tests/contract/): a rule changed here must match nbcall.signaling's.
// Keys are spelled its own way (NFKC + lower case; the server's are confusable skeletons).

import { FakeWebSocket } from "./websocket.js";
import { FakeRooms } from "./hub_rooms.js";
import { Limit, Reason } from "../../protocol.js";
import { CLIENT_MESSAGES } from "../../wire.js";

/** What a client may send (the server answers anything else with bad_message). */
const CLIENT_TYPES = new Set(Object.keys(CLIENT_MESSAGES));
/** The reasons a client may give (the server's REASONS). */
const REASONS = new Set(Object.values(Reason));

/**
 * The fake's key of a name: NFKC + case folding (ß → ss), so tests can say
 * hub.users.get("alice").  It groups names as the server's key does for the names the
 * tests use (contract.test.js checks that); the server spells keys differently.
 * @param {string} name
 */
export function nameKey(name) {
  return name.normalize("NFKC").trim().toLowerCase().replace(/ß/g, "ss");
}

/** @typedef {{ws: FakeWebSocket, name: string, key: string, credential: string, nbcall: boolean, presence: boolean}} Client */
/** @typedef {{caller: string, callee: string, id: string, state: "ringing" | "active", implicit?: boolean}} HubCall */

export class FakeHub {
  constructor(url = "ws://hub") {
    this.url = url;
    /** @type {Map<string, Client>} key -> client */
    this.users = new Map();
    /** @type {Map<string, HubCall>} key -> call */
    this.calls = new Map();
    /** @type {FakeWebSocket[]} */
    this.sockets = [];
    this.nextCredential = 1;
    this.nextSeedCall = 1; // ids of calls started the seed's way (a plain offer)
    // The server's Limits the page is told of (seconds): registered.ring_timeout, peer_status.grace.
    this.ringTimeout = 30;
    this.reconnectGrace = 15;
    this.instance = 1;
    this.serverId = "server-1"; // registered.server_id: a new one after restart()
    this.down = false; // while true, every new socket fails at once (the server is not listening)
    /** @type {Map<string, {peer: string, id: string}>} after a restart: key -> the call it announced */
    this.announced = new Map();
    this.rooms = new FakeRooms(this, nameKey); // docs/rooms.md
  }

  /**
   * The server process dies (every socket drops, no close frame) and comes back knowing
   * nobody, with a new server_id; `down` keeps it away until the test clears it.
   * @param {{down?: boolean}} [opts]
   */
  restart({ down = false } = {}) {
    const sockets = [...this.users.values()].map((c) => c.ws);
    this.users.clear();
    this.calls.clear();
    this.announced.clear();
    this.rooms.clear();
    this.serverId = `server-${++this.instance}`;
    this.down = down;
    for (const ws of sockets) ws.serverClose(1006);
  }

  /**
   * A client of the seed's kind (registered without `client`): the test plays it on the
   * returned socket.
   * @param {string} name
   */
  seedClient(name) {
    const ws = this.socket();
    queueMicrotask(() => ws.send(JSON.stringify({ type: "register", username: name })));
    return ws;
  }

  /** A Signaling plan whose one transport connects to this hub. */
  plan() {
    return async () => [{ name: /** @type {const} */ ("direct"), open: () => this.socket() }];
  }

  socket() {
    const ws = new FakeWebSocket(this.url);
    this.sockets.push(ws);
    if (this.down) {
      queueMicrotask(() => ws.serverClose(1006, "connection refused"));
      return ws;
    }
    ws.onsend = (msg) => queueMicrotask(() => this._receive(ws, msg));
    ws.onpageclose = (code) => queueMicrotask(() => this._pageClosed(ws, code));
    queueMicrotask(() => ws.serverOpen());
    return ws;
  }

  /** @param {FakeWebSocket} ws @param {object} msg */
  _deliver(ws, msg) {
    queueMicrotask(() => {
      if (ws.readyState === FakeWebSocket.OPEN) ws.serverSend(msg);
    });
  }

  /** @param {string} key @param {object} msg */
  tell(key, msg) {
    const client = this.users.get(key);
    if (client) this._deliver(client.ws, msg);
  }

  /** @param {FakeWebSocket} ws */
  _client(ws) {
    for (const client of this.users.values()) if (client.ws === ws) return client;
    return null;
  }

  /** The page's socket died and the server noticed: leave, end its call. @param {string} key */
  disconnect(key) {
    const client = this.users.get(key);
    if (!client) return;
    client.ws.serverClose(1006);
    this._release(client, "disconnected");
  }

  /**
   * The user is gone (as the server: its room told first, then its call ended, then presence).
   * @param {Client} client @param {"disconnected" | "closed"} roomReason
   */
  _release(client, roomReason) {
    this._forget(client, roomReason);
    this._presence({ joined: [], joined_keys: [], left: [client.name], left_keys: [client.key] });
  }

  /** Out of the users, its room and its call. @param {Client} client @param {"disconnected" | "closed"} roomReason */
  _forget(client, roomReason) {
    this.users.delete(client.key);
    this.rooms.drop(client.key, roomReason);
    this.endCall(client.key, "disconnected", client.name);
  }

  /**
   * The page closed its socket.  As the server: with 1000 or 1001 it left on purpose and
   * is gone at once (its room told "closed"); any other code is a drop: its room is told
   * "disconnected" at once, and a user in a connected call keeps its name and the call
   * for the server's grace (which the fake does not time: disconnect() ends it).
   * @param {FakeWebSocket} ws @param {number} code
   */
  _pageClosed(ws, code) {
    const client = this._client(ws);
    if (!client) return;
    if (code === 1000 || code === 1001) return this._release(client, "closed");
    const call = this.calls.get(client.key);
    if (call && call.state === "active") this.rooms.drop(client.key, "disconnected");
    else this._release(client, "disconnected");
  }

  /**
   * As the server: a presence change goes to every user that registered with `presence`,
   * the one it is about too (the server batches changes; here each is one batch).
   * @param {{joined: string[], joined_keys: string[], left: string[], left_keys: string[]}} change
   */
  _presence(change) {
    for (const c of this.users.values()) if (c.presence) this._deliver(c.ws, { type: "presence", ...change, online: this.users.size });
  }

  /** @param {string} key @param {string} reason @param {string} [name] the user's, if it is gone already */
  endCall(key, reason, name = this.users.get(key)?.name || key) {
    const call = this.calls.get(key);
    if (!call) return;
    this.calls.delete(call.caller);
    this.calls.delete(call.callee);
    const other = call.caller === key ? call.callee : call.caller;
    this.tell(other, { type: "hangup", from: name, from_key: key, call_id: call.id, reason });
  }

  /** @param {FakeWebSocket} ws @param {any} msg */
  _receive(ws, msg) {
    /** @param {string} code @param {string} message @param {string} [request] */
    const refuse = (code, message, request = msg.type) => this._deliver(ws, { type: "error", code, message, request });
    if (!CLIENT_TYPES.has(msg.type)) return this._deliver(ws, { type: "error", code: "bad_message", message: `unknown message type '${msg.type}'` });
    if (msg.type === "register") return this._register(ws, msg);
    if (msg.type === "ping") return this._deliver(ws, { type: "pong" });
    if (msg.type === "list") return this._deliver(ws, { type: "users", ...this._users() });
    const me = this._client(ws);
    if (!me) return refuse("not_registered", "register first");
    const oneToOne = !msg.type.startsWith("room_"); // (a room request's fields: FakeRooms)
    if (oneToOne && (typeof msg.to !== "string" || !msg.to.trim())) return refuse("bad_message", "'to' is not a valid user name");
    if (oneToOne && msg.reason != null && !REASONS.has(msg.reason)) return refuse("bad_message", `unknown reason '${msg.reason}'`);
    if (this.rooms.receive(me, msg)) return;
    const to = nameKey(msg.to);
    const target = this.users.get(to);
    const stamp = { from: me.name, from_key: me.key };
    if (msg.type === "invite") {
      if (!target) return this._deliver(ws, { type: "error", code: "unknown_peer", message: `'${msg.to}' is not online`, request: "invite" });
      if (to === me.key) return refuse("self_call", "you cannot call yourself");
      const mine = this.calls.get(me.key);
      if ((mine && !mine.implicit) || this.rooms.inRoom.has(me.key)) return this._deliver(ws, { type: "error", code: "busy", message: "you are already in a call", request: "invite" });
      this.rooms.endRinging(me.key); // as the server: calling someone ends the room invitation ringing us
      if (this.calls.has(to) || this.rooms.engaged(to)) return this._deliver(ws, { type: "busy", from: target.name, from_key: to, call_id: msg.call_id });
      if (mine) this.endCall(me.key, "hangup"); // our own seed-style call ends
      /** @type {HubCall} */
      const call = { caller: me.key, callee: to, id: msg.call_id || "c1", state: "ringing" };
      this.calls.set(me.key, call);
      this.calls.set(to, call);
      if (!target.nbcall) {
        // A seed client cannot ring: the server accepts on its behalf.
        call.state = "active";
        return this._deliver(ws, { type: "accept", from: target.name, from_key: to, call_id: call.id, seed: true });
      }
      this.tell(to, { type: "invite", ...stamp, call_id: call.id });
      this._deliver(ws, { type: "ringing", from: target.name, from_key: to, call_id: call.id });
    } else if (["accept", "reject", "cancel", "hangup"].includes(msg.type)) {
      const call = this.calls.get(me.key);
      if (!call || (call.caller !== to && call.callee !== to)) {
        return this._deliver(ws, { type: "error", code: "no_call", message: "no such call", request: msg.type });
      }
      // As the server: only the callee answers or declines a ringing call, only the caller cancels one.
      const ringing = call.state === "ringing";
      if ((msg.type === "accept" || msg.type === "reject") && (!ringing || call.callee !== me.key)) return refuse("no_call", `there is no ringing call to ${msg.type}`);
      if (msg.type === "cancel" && (!ringing || call.caller !== me.key)) return refuse("no_call", "there is no outgoing ringing call to cancel");
      if (msg.type === "accept") {
        call.state = "active";
        return this.tell(to, { type: "accept", ...stamp, call_id: call.id });
      }
      this.calls.delete(call.caller);
      this.calls.delete(call.callee);
      const reason = msg.reason || { reject: "rejected", cancel: "cancelled", hangup: "hangup" }[/** @type {"reject"} */ (msg.type)];
      this.tell(to, { type: msg.type, ...stamp, call_id: call.id, reason });
    } else if (["offer", "answer", "candidate"].includes(msg.type)) {
      if (!target) return this._deliver(ws, { type: "error", code: "unknown_peer", message: "not online", request: msg.type });
      // As the server: an answer or candidate goes only to the other side of your call; a
      // plain offer outside one is the seed's way to call, and starts one.
      const call = this.calls.get(me.key);
      const inCall = call !== undefined && (call.caller === to || call.callee === to);
      if (!inCall && msg.type !== "offer") return refuse("no_call", `you have no call with '${msg.to}'`);
      if (!inCall && !this._seedCall(me, target, refuse)) return;
      const field = msg.type === "candidate" ? "candidate" : "sdp";
      /** @type {Record<string, unknown>} */
      const out = { type: msg.type, from: me.name, [field]: msg[field] };
      if (msg.call_id !== undefined) out.call_id = msg.call_id;
      if (target.nbcall) out.from_key = me.key; // a seed client gets the seed's shape
      this.tell(to, out);
    }
  }

  /**
   * As the server: `me`'s plain offer to `target` outside a call starts a call (the seed's
   * way); false when the offer is not to be forwarded (refused, or `target` is busy).
   * @param {Client} me @param {Client} target @param {(code: string, message: string) => void} refuse
   */
  _seedCall(me, target, refuse) {
    const mine = this.calls.get(me.key);
    if (target.key === me.key || (mine && !mine.implicit)) {
      if (target.key === me.key) refuse("self_call", "you cannot call yourself");
      else refuse("busy", "you are in another call; hang up first");
      return false;
    }
    this.rooms.endRinging(me.key);
    if (this.calls.has(target.key) || this.rooms.engaged(target.key)) {
      this._deliver(me.ws, { type: "busy", from: target.name, from_key: target.key });
      return false;
    }
    if (mine) this.endCall(me.key, "hangup"); // its earlier seed-style call ends
    /** @type {HubCall} */
    const call = { caller: me.key, callee: target.key, id: `seed-call-${this.nextSeedCall++}`, state: "active", implicit: true };
    this.calls.set(me.key, call);
    this.calls.set(target.key, call);
    return true;
  }

  /**
   * A call announced in `register` after a restart: restored once both sides announced it.
   * @param {string} key @param {string} peer @param {string} id
   * @returns {HubCall | undefined}
   */
  _restore(key, peer, id) {
    const theirs = this.announced.get(peer);
    if (!theirs || theirs.peer !== key || theirs.id !== id || !this.users.has(peer) || this.calls.has(peer)) {
      this.announced.set(key, { peer, id });
      return undefined;
    }
    this.announced.delete(peer);
    /** @type {HubCall} */
    const call = { caller: peer, callee: key, id, state: "active" };
    this.calls.set(key, call);
    this.calls.set(peer, call);
    const me = this.users.get(key);
    this.tell(peer, { type: "peer_status", from: me?.name || key, from_key: key, call_id: id, status: "connected", grace: this.reconnectGrace });
    return call;
  }

  _users() {
    const all = [...this.users.values()];
    return { users: all.map((c) => c.name), keys: all.map((c) => c.key), online: all.length };
  }

  /** @param {FakeWebSocket} ws @param {any} msg */
  _register(ws, msg) {
    const name = typeof msg.username === "string" ? msg.username.normalize("NFKC").trim() : "";
    // The server's name rules are many (scripts, look-alikes, symbols): here only the length.
    if (!name || name.length > Limit.MAX_NAME_LENGTH) return this._deliver(ws, { type: "error", code: "invalid_name", message: "not a valid user name", request: "register" });
    const key = nameKey(name);
    const holder = this.users.get(key);
    if (holder && holder.ws !== ws && holder.ws.readyState === FakeWebSocket.OPEN && holder.credential !== msg.credential) {
      return this._deliver(ws, { type: "error", code: "name_taken", message: `'${name}' is taken`, request: "register" });
    }
    // As the server: a socket registering another name gives up its old one (it leaves, cleanly).
    const previous = this._client(ws);
    const renamed = previous && previous.key !== key ? previous : null;
    if (renamed) this._forget(renamed, "closed");
    if (holder && holder.ws !== ws && holder.ws.readyState === FakeWebSocket.OPEN) {
      // A reconnect takes over: as the server, the old socket is told before it is closed.
      holder.ws.serverSend({ type: "replaced", message: "this name was taken over by a newer connection" });
      holder.ws.serverClose(4001, "replaced");
    }
    const credential = msg.credential || `cred-${this.nextCredential++}`;
    this.users.set(key, { ws, name, key, credential, nbcall: msg.client !== undefined, presence: msg.presence === true });
    let call = this.calls.get(key);
    if (!call && msg.call && typeof msg.call.peer === "string") call = this._restore(key, nameKey(msg.call.peer), String(msg.call.call_id));
    /** @type {Record<string, unknown>} */
    const reply = { type: "registered", username: name, key, credential, ...this._users(), protocol: 1, ring_timeout: this.ringTimeout, server_id: this.serverId };
    if (call) {
      const other = call.caller === key ? call.callee : call.caller;
      reply.call = { call_id: call.id, peer: this.users.get(other)?.name || other, peer_key: other, state: call.state };
    }
    this._deliver(ws, reply);
    // One presence change, as the server's batch of this moment: the new name in, the old out.
    const joined = holder ? [] : [name];
    const left = renamed ? [renamed] : [];
    if (joined.length || left.length) {
      this._presence({ joined, joined_keys: holder ? [] : [key], left: left.map((c) => c.name), left_keys: left.map((c) => c.key) });
    }
  }
}
