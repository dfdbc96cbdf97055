// Direct websocket transport to the nbcall signaling server.
//
// Keeps one registered connection alive: when the socket drops it reconnects with
// exponential backoff and re-registers with the name's credential, so the server hands
// the name (and any call in progress) back to us instead of refusing it as taken.

const CLOSE_REPLACED = 4001;

export class Signaling {
  /**
   * @param {object} opts
   * @param {string} opts.url        ws:// URL of the server
   * @param {string} opts.username   name to register
   * @param {string} [opts.credential]
   * @param {(msg: object) => void} opts.onMessage   every message from the server, in order
   * @param {(status: string, detail?: string) => void} opts.onStatus  connecting|registered|retrying|replaced|closed
   */
  constructor({ url, username, credential, onMessage, onStatus }) {
    this.url = url;
    this.username = username;
    this.credential = credential || null;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.ws = null;
    this.closed = false;
    this.registered = false;
    this.attempt = 0;
    this.timer = null;
    this.outbox = []; // messages sent while reconnecting, flushed after re-registering
  }

  start() {
    this.closed = false;
    this._connect();
  }

  _connect() {
    if (this.closed) return;
    this.onStatus("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this._retry(String(err));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const msg = { type: "register", username: this.username, client: "nbcall-widget", presence: true };
      if (this.credential) msg.credential = this.credential;
      ws.send(JSON.stringify(msg));
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return; // the server only sends JSON; ignore anything else rather than crash
      }
      if (msg.type === "registered") {
        this.registered = true;
        this.attempt = 0;
        if (msg.credential) this.credential = msg.credential;
        const queued = this.outbox.splice(0);
        for (const m of queued) ws.send(JSON.stringify(m));
        this.onStatus("registered");
      }
      this.onMessage(msg);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.registered = false;
      if (this.closed) return;
      if (event.code === CLOSE_REPLACED) {
        // Another page took this name with our credential: fighting back would flap.
        this.closed = true;
        this.onStatus("replaced", "this name was taken over by another page or connection");
        return;
      }
      this._retry(event.reason || `connection closed (code ${event.code})`);
    };
    ws.onerror = () => {
      // onclose follows and schedules the retry
    };
  }

  _retry(detail) {
    if (this.closed) return;
    // 0.25 s, 0.5 s, 1 s ... capped at 8 s, with jitter so many pages don't stampede.
    const base = Math.min(8000, 250 * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    this.onStatus("retrying", `${detail}; retrying in ${(delay / 1000).toFixed(1)} s`);
    this.timer = setTimeout(() => this._connect(), delay);
  }

  /** Send a message now, or after re-registering when the socket is down. */
  send(msg) {
    if (this.closed) return false;
    if (this.ws && this.registered && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    if (this.outbox.length < 200) this.outbox.push(msg);
    return false;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000, "widget closed");
      } catch {
        // already closing
      }
    }
    this.onStatus("closed");
  }
}
