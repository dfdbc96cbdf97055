// How the page reaches the signaling server: three transports with one socket interface.
//
//   same-origin  the Jupyter server's own endpoint (its origin, TLS and auth), which carries
//                frames to the kernel's signaling server (?upstream=)
//   direct       a websocket straight to the server URL: lowest latency, works when the
//                browser can reach that host and port (and the page is not https)
//   relay        the widget's comm to the kernel, whose Python client talks to the server:
//                works wherever widgets work; the kernel reads comm messages between cells
//
// "auto" tries them in that order and keeps the first that opens.  Every transport yields
// an object shaped like a WebSocket (send, close, readyState, on{open,message,close,error}),
// so signaling.js does not care which one it has.

const OPEN_TIMEOUT_MS = 4000;

/** The Jupyter page's config (JupyterLab, Notebook 7), or null elsewhere (VS Code, Colab...). */
export function jupyterPageConfig() {
  const el = globalThis.document && document.getElementById("jupyter-config-data");
  if (!el) return null;
  try {
    const config = JSON.parse(el.textContent || "{}");
    return { baseUrl: config.baseUrl || "/", token: config.token || "" };
  } catch {
    return null;
  }
}

let endpointProbe = null;

/** Whether the nbcall Jupyter server extension answers on this page's origin (cached). */
export function sameOriginAvailable() {
  if (endpointProbe) return endpointProbe;
  const config = jupyterPageConfig();
  if (!config) return (endpointProbe = Promise.resolve(false));
  const headers = config.token ? { Authorization: `token ${config.token}` } : {};
  endpointProbe = fetch(`${config.baseUrl}nbcall/info`, { headers, credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((info) => !!info && info.server === "nbcall")
    .catch(() => false);
  return endpointProbe;
}

export function sameOriginUrl(server) {
  const config = jupyterPageConfig();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let url = `${scheme}//${location.host}${config.baseUrl}nbcall/signal?upstream=${encodeURIComponent(server)}`;
  if (config.token) url += `&token=${encodeURIComponent(config.token)}`;
  return url;
}

/**
 * A websocket-shaped object whose frames travel through the widget's comm and the kernel.
 * The kernel side is CallWidget._on_relay (Python), one KernelRelay per socket id.
 */
export class RelaySocket {
  static nextId = 1;

  constructor(model, url) {
    this.model = model;
    this.id = `${Date.now().toString(36)}-${RelaySocket.nextId++}`;
    this.readyState = 0; // CONNECTING
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    this._onCustom = (msg) => this._fromKernel(msg);
    model.on("msg:custom", this._onCustom);
    // The kernel would keep our name online after the page is gone: say goodbye on unload.
    this._onPageHide = () => this.close();
    globalThis.addEventListener("pagehide", this._onPageHide);
    model.send({ kind: "relay-open", id: this.id, url });
  }

  _fromKernel(msg) {
    if (!msg || msg.id !== this.id) return;
    if (msg.kind === "relay-opened") {
      this.readyState = 1;
      if (this.onopen) this.onopen({});
    } else if (msg.kind === "relay-message") {
      if (this.onmessage) this.onmessage({ data: msg.data });
    } else if (msg.kind === "relay-closed") {
      this._finish(msg.code || 1006, msg.reason || "");
    }
  }

  _finish(code, reason) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.model.off("msg:custom", this._onCustom);
    globalThis.removeEventListener("pagehide", this._onPageHide);
    if (this.onclose) this.onclose({ code, reason });
  }

  send(data) {
    if (this.readyState !== 1) throw new Error("the kernel relay is not open");
    this.model.send({ kind: "relay-send", id: this.id, data });
  }

  close() {
    if (this.readyState === 3) return;
    this.model.send({ kind: "relay-close", id: this.id });
    this._finish(1000, "closed by the page");
  }
}

/**
 * The transports to try, in order, for a preference: "auto" | "direct" | "same-origin" | "relay".
 * Each is { name, open() -> socket }.  Resolves quickly (one small same-origin fetch at most).
 */
export async function planTransports(preference, server, model) {
  const direct = { name: "direct", open: () => new WebSocket(server) };
  const relay = { name: "relay", open: () => new RelaySocket(model, server) };
  const sameOrigin = { name: "same-origin", open: () => new WebSocket(sameOriginUrl(server)) };
  if (preference === "direct") return [direct];
  if (preference === "relay") return [relay];
  if (preference === "same-origin") return [sameOrigin];
  const plan = [];
  if (await sameOriginAvailable()) plan.push(sameOrigin);
  // An https page may not open ws:// at all (mixed content): don't even try.
  if (!(location.protocol === "https:" && server.startsWith("ws:"))) plan.push(direct);
  plan.push(relay);
  return plan;
}

export { OPEN_TIMEOUT_MS };
