// Auto-answer (the widget's `auto_answer` trait, off by default): a 1:1 call that rings is
// accepted here, in the page, the moment it rings — no round trip through the kernel
// (on_incoming still runs there).  Room invitations are not answered: joining a room stays
// a choice.  A kernel `accept` that arrives after the page answered (an on_incoming that
// accepts too) is not an error.

import { State } from "../names.js";

/**
 * @param {{phone: import("./phone.js").Phone, enabled: () => boolean, accept: () => void}} args
 *   accept: what answering does (the widget's own accept action, so a failure is reported)
 * @returns {{answeredHere: () => boolean, close: () => void}}
 */
export function autoAnswer({ phone, enabled, accept }) {
  let answered = false; // this call was answered by the page, not yet over
  const off = phone.on("state", (to, from) => {
    if (to === State.RINGING && from !== State.RINGING && enabled()) {
      // After the ringing state has been told to every listener (the kernel sees it ring).
      queueMicrotask(() => {
        if (phone.state !== State.RINGING || !enabled()) return;
        answered = true;
        accept();
      });
    } else if (to !== State.CONNECTING && to !== State.CONNECTED) {
      answered = false;
    }
  });
  return {
    answeredHere: () => answered && phone.state !== State.RINGING,
    close: off,
  };
}
