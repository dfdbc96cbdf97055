// When the page's lasting state reaches the kernel.  Every model.save_changes() is a comm
// message through the Jupyter server to the kernel, which answers with busy, an echo and
// idle; in JupyterLab each of those is work on the page's main thread (and a favicon swap)
// and on a machine that a call's set-up already keeps busy.  Measured: a call set-up sent
// nine of them, and holding all but the ringing one took ~70 ms (a fifth) off the time to
// the first frame (benchmarks/README.md, "Keeping the kernel out of the set-up").
//
// So while a call is being set up (calling, connecting), what changes is held and sent in
// one update SETUP_HOLD_MS after the first change; what the kernel must act on (the call's
// start, a call ringing here, an invitation, an error, the end of a call, the state a queued
// action produced before its queued_done) goes at once and takes what was held with it: the
// caller says which (widget.js, queued_actions.js).  The view never waits: model.set() has
// already updated it.

/** @typedef {import("./types.js").AnyModel} AnyModel */

/** How long state changes made during a call's set-up may wait before reaching the kernel (ms). */
export const SETUP_HOLD_MS = 500;

export class ModelSync {
  /**
   * @param {AnyModel} model
   * @param {() => boolean} settingUp  whether a call is being set up now
   * @param {number} [holdMs]
   */
  constructor(model, settingUp, holdMs = SETUP_HOLD_MS) {
    this.model = model;
    this.settingUp = settingUp;
    this.holdMs = holdMs;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
  }

  /** Whether changes are being held now. */
  get holding() {
    return this.timer !== null;
  }

  /**
   * Send the changes made with model.set(): at once if `urgent` or no call is being set up,
   * otherwise with the set-up's other changes.
   * @param {boolean} [urgent]
   */
  save(urgent = false) {
    if (urgent || (!this.holding && !this.settingUp())) {
      this.flush();
      return;
    }
    if (!this.holding) this.timer = setTimeout(() => this.flush(), this.holdMs);
  }

  /** Send everything held (and anything set since). */
  flush() {
    this.cancel();
    this.model.save_changes();
  }

  /** Drop the pending send (the model is going away). */
  cancel() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
