// Why ICE failed, in words a user can act on.
//
// A call that cannot connect must not hang in "connecting": this watches candidate
// gathering and errors on one RTCPeerConnection, gives up early when no usable candidate
// can ever exist (e.g. relay-only with a TURN server that refused our credentials), and
// turns what it saw into a sentence.  ("relay" here is TURN's: the relay-only policy and
// relay candidates.)

import { ICE_POLICIES } from "../messages.js";
import { pick } from "../names.js";

export const CONNECT_TIMEOUT_MS = 20000;
const RELAY_ONLY = pick(ICE_POLICIES, "relay");

/** @typedef {"host" | "srflx" | "prflx" | "relay"} CandidateType */
/** @typedef {typeof ICE_POLICIES[number]} IcePolicy */

/**
 * @typedef {object} IceWatchOptions
 * @property {string} [policy]  "all" | "relay" (RTCConfiguration.iceTransportPolicy)
 * @property {RTCIceServer[]} [iceServers]
 * @property {(words: string) => void} onHopeless  no connection can come of this
 * @property {boolean} [held]  gathering ahead of the answer: no clock, and a verdict waits for arm()
 */

export class IceWatch {
  /**
   * @param {RTCPeerConnection} pc
   * @param {IceWatchOptions} opts
   */
  constructor(pc, { policy, iceServers, onHopeless, held = false }) {
    this.pc = pc;
    this.relayOnly = policy === RELAY_ONLY;
    this.hasTurn = (iceServers || []).some((s) => [s.urls].flat().some((u) => String(u).startsWith("turn")));
    this.onHopeless = onHopeless;
    /** @type {Record<CandidateType, number>} */
    this.types = { host: 0, srflx: 0, prflx: 0, relay: 0 };
    /** @type {{code: number, url: string, text: string}[]} */
    this.errors = [];
    this.done = false;
    this.held = held;
    /** @type {{kind: string} | null} a verdict reached while held */
    this.verdict = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this._onCandidate = (/** @type {RTCPeerConnectionIceEvent} */ event) => {
      const type = event.candidate && event.candidate.type;
      if (type && type in this.types) this.types[type] += 1;
    };
    this._onError = (/** @type {Event} */ event) => {
      const e = /** @type {RTCPeerConnectionIceErrorEvent} */ (event);
      this.errors.push({ code: e.errorCode, url: e.url || "", text: e.errorText || "" });
    };
    this._onGathering = () => {
      if (pc.iceGatheringState === "complete" && this.usable() === 0) this._hopeless("gathered");
    };
    this._onState = () => {
      if (pc.connectionState === "connected") this.stop();
    };
    pc.addEventListener("icecandidate", this._onCandidate);
    pc.addEventListener("icecandidateerror", this._onError);
    pc.addEventListener("icegatheringstatechange", this._onGathering);
    pc.addEventListener("connectionstatechange", this._onState);
    if (!held) this.arm();
  }

  /** The other side is in: start the connect clock and deliver a verdict reached meanwhile. */
  arm() {
    this.held = false;
    if (this.done) return;
    if (this.verdict) return this._hopeless(this.verdict.kind);
    this.timer = setTimeout(() => {
      if (this.pc.connectionState !== "connected") this._hopeless("timeout");
    }, CONNECT_TIMEOUT_MS);
  }

  /** Candidates that could carry this call under its policy. */
  usable() {
    const t = this.types;
    return this.relayOnly ? t.relay : t.host + t.srflx + t.prflx + t.relay;
  }

  /** @param {string} kind */
  _hopeless(kind) {
    if (this.done) return;
    if (this.held) {
      this.verdict = { kind }; // a call still ringing is not failed yet: tell once it is answered
      return;
    }
    const words = this.diagnose(kind);
    this.stop();
    this.onHopeless(words);
  }

  /**
   * A sentence saying why no connection could be made.
   * @param {string} [kind]  "timeout" when the connect clock ran out
   */
  diagnose(kind) {
    const turnAuth = this.errors.find((e) => e.code === 401);
    const unreachable = this.errors.find((e) => e.code === 701);
    const counts = Object.entries(this.types)
      .filter(([, n]) => n)
      .map(([type, n]) => `${n} ${type}`)
      .join(", ");
    if (turnAuth) {
      return (
        `TURN authentication failed (401) at ${turnAuth.url}: the credentials are wrong or expired; ` +
        "mint fresh ones with nbcall.turn_credentials(secret, urls)"
      );
    }
    if (this.relayOnly && this.types.relay === 0) {
      if (!this.hasTurn) return "relay-only policy (ice_transport_policy='relay') but no TURN server in ice_servers";
      if (unreachable) return `no relay candidate: the TURN server ${unreachable.url} could not be reached`;
      return "no relay candidate was gathered from the TURN server (relay-only policy)";
    }
    if (this.usable() === 0) {
      return (
        "no ICE candidates were gathered: this browser has no network interface it may use for WebRTC " +
        "(on a loopback-only machine Chromium needs --allow-loopback-in-peer-connection)"
      );
    }
    const seen = `gathered here: ${counts || "none"}`;
    if (kind === "timeout") {
      return `timeout: no connection after ${CONNECT_TIMEOUT_MS / 1000} s (${seen}); behind NAT or a firewall add a TURN server to ice_servers`;
    }
    return `ICE failed: no pair of candidates connected the two sides (${seen}); behind NAT or a firewall add a TURN server to ice_servers`;
  }

  stop() {
    this.done = true;
    clearTimeout(this.timer);
    const pc = this.pc;
    pc.removeEventListener("icecandidate", this._onCandidate);
    pc.removeEventListener("icecandidateerror", this._onError);
    pc.removeEventListener("icegatheringstatechange", this._onGathering);
    pc.removeEventListener("connectionstatechange", this._onState);
  }
}
