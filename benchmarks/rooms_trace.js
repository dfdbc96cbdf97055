// --trace (benchmarks/_rooms_trace.py): the page's own events, on its epoch clock, in
// window.__trace (at most 5,000).  Wraps WebSocket, RTCPeerConnection and getUserMedia;
// nothing in the widget changes to be traced.
(() => {
  const log = (window.__trace = []);
  const now = () => performance.timeOrigin + performance.now();
  const note = (what, detail) => {
    if (log.length < 5000) log.push([now(), what, detail || ""]);
  };
  const kindOf = (data) => {
    if (typeof data !== "string") return "binary";
    try {
      const m = JSON.parse(data);
      const peer = m.from ? ` from ${m.from}` : m.to ? ` to ${m.to}` : "";
      return (m.type || m.kind || "?") + peer;
    } catch {
      return "text";
    }
  };
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => note("ws in", kindOf(e.data)));
    }
    send(data) {
      note("ws out", kindOf(data));
      return super.send(data);
    }
  };
  let pcs = 0;
  const PC = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends PC {
    constructor(...args) {
      super(...args);
      const id = `pc${++pcs}`;
      this.traceId = id;
      note("pc new", id);
      this.addEventListener("connectionstatechange", () => note(`pc ${this.connectionState}`, id));
      this.addEventListener("iceconnectionstatechange", () => note(`ice ${this.iceConnectionState}`, id));
      this.addEventListener("track", (e) => note("pc track", `${id} ${e.track.kind}`));
    }
    async setLocalDescription(d) {
      note("sld start", `${this.traceId} ${(d && d.type) || "auto"}`);
      await super.setLocalDescription(d);
      note("sld done", `${this.traceId} ${this.localDescription.type}`);
    }
    async setRemoteDescription(d) {
      note("srd start", `${this.traceId} ${d && d.type}`);
      await super.setRemoteDescription(d);
      note("srd done", `${this.traceId} ${d && d.type}`);
    }
  };
  if (navigator.mediaDevices) {
    const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = async (constraints) => {
      note("gum start");
      try {
        return await gum(constraints);
      } finally {
        note("gum done");
      }
    };
  }
})();
