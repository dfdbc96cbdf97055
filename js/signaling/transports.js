// How the page reaches the signaling server: three transports with one socket interface.
//
//   same-origin  the Jupyter server's own endpoint (its origin, TLS and auth), which carries
//                frames to the kernel's signaling server (?upstream=)
//   direct       a websocket straight to the server URL: lowest latency, works when the
//                browser can reach that host and port (and the page is not https)
//   kernel       the widget's comm to the kernel, whose websocket talks to the server:
//                works wherever widgets work; the kernel reads comm messages between cells
//
// "auto" tries them in that order (TRANSPORTS) and keeps the first that registers.  Every
// transport yields a SocketLike (types.js), so signaling.js does not care which one it has.

import { TRANSPORTS, CONNECT_VIA, DEPRECATED_TRANSPORTS } from "../messages.js";
import { pick } from "../names.js";

/** @typedef {typeof TRANSPORTS[number]} TransportName */
/** @typedef {typeof CONNECT_VIA[number]} ConnectVia */
/** @typedef {import("../types.js").SocketLike} SocketLike */
/** @typedef {import("../types.js").Transport} Transport */

export const OPEN_TIMEOUT_MS = 4000;

const AUTO = pick(CONNECT_VIA, "auto");
const SAME_ORIGIN = pick(TRANSPORTS, "same-origin");
export const DIRECT = pick(TRANSPORTS, "direct");

/**
 * What the plan needs to know about the page it runs in (a fake in the unit tests).
 * @typedef {object} PageEnv
 * @property {string} protocol  location.protocol of the page ("https:" forbids ws://)
 * @property {() => Promise<boolean>} sameOriginAvailable  the nbcall endpoint answers on this origin
 * @property {(server: string) => string} sameOriginUrl  its websocket URL for `server`
 */

/**
 * `connect_via` as given, with old names mapped (a notebook from before 0.2 says "relay"
 * for the kernel transport) and anything unknown taken as "auto".
 * @param {unknown} value
 * @returns {ConnectVia}
 */
export function connectVia(value) {
  const name = typeof value === "string" ? value : "";
  const renamed = /** @type {Record<string, string>} */ (DEPRECATED_TRANSPORTS)[name] || name;
  const known = CONNECT_VIA.find((v) => v === renamed);
  return known || AUTO;
}

/** The Jupyter page's config (JupyterLab, Notebook 7), or null elsewhere (VS Code, Colab...). */
export function jupyterPageConfig() {
  const el = typeof document !== "undefined" ? document.getElementById("jupyter-config-data") : null;
  if (!el) return null;
  try {
    const config = JSON.parse(el.textContent || "{}");
    return { baseUrl: String(config.baseUrl || "/"), token: String(config.token || "") };
  } catch {
    return null;
  }
}

/** @type {Promise<boolean> | null} */
let endpointProbe = null;

/** Whether the nbcall Jupyter server extension answers on this page's origin (cached). */
function sameOriginAvailable() {
  if (endpointProbe) return endpointProbe;
  const config = jupyterPageConfig();
  if (!config) return (endpointProbe = Promise.resolve(false));
  /** @type {Record<string, string>} */
  const headers = config.token ? { Authorization: `token ${config.token}` } : {};
  endpointProbe = fetch(`${config.baseUrl}nbcall/info`, { headers, credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((info) => !!info && info.server === "nbcall")
    .catch(() => false);
  return endpointProbe;
}

/** @param {string} server */
function sameOriginUrl(server) {
  const config = jupyterPageConfig() || { baseUrl: "/", token: "" };
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let url = `${scheme}//${location.host}${config.baseUrl}nbcall/signal?upstream=${encodeURIComponent(server)}`;
  if (config.token) url += `&token=${encodeURIComponent(config.token)}`;
  return url;
}

/** @returns {PageEnv} this browser page */
export function browserPage() {
  return { protocol: location.protocol, sameOriginAvailable, sameOriginUrl };
}

/**
 * The transports to try, in order, for a `connect_via` preference.  Resolves quickly (one
 * small same-origin fetch at most).
 * @param {unknown} preference  connect_via: auto | same-origin | direct | kernel (or the old "relay")
 * @param {string} server  the signaling server's ws:// or wss:// URL
 * @param {{openKernel: () => SocketLike, page?: PageEnv}} opts  page: this browser page unless given
 * @returns {Promise<Transport[]>}
 */
export async function planTransports(preference, server, { openKernel, page: given }) {
  const page = () => given || browserPage(); // only asked when needed: a forced transport needs no page
  /** @type {Record<TransportName, () => SocketLike>} */
  const openers = {
    "same-origin": () => new WebSocket(page().sameOriginUrl(server)),
    direct: () => new WebSocket(server),
    kernel: openKernel,
  };
  /** @param {TransportName} name @returns {Transport} */
  const transport = (name) => ({ name, open: openers[name] });
  const via = connectVia(preference);
  if (via !== AUTO) return [transport(via)];
  /** @type {Transport[]} */
  const plan = [];
  for (const name of TRANSPORTS) {
    // The endpoint only where the server extension answers; direct not from an https page
    // to a ws:// server (mixed content: the browser refuses it outright).
    if (name === SAME_ORIGIN && !(await page().sameOriginAvailable())) continue;
    if (name === DIRECT && page().protocol === "https:" && server.startsWith("ws:")) continue;
    plan.push(transport(name));
  }
  return plan;
}
