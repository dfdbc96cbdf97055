// anywidget's model, with the kernel's side for the test.

/** The part of anywidget's model the widget uses: get/set/save_changes/on/off/send. */
export class FakeModel {
  /** @param {Record<string, any>} [attrs] */
  constructor(attrs = {}) {
    /** @type {Record<string, any>} */
    this.attrs = { ...attrs };
    /** @type {Map<string, Set<Function>>} */
    this.handlers = new Map();
    /** @type {{content: any, buffers: any[]}[]} what the page sent to the kernel */
    this.sent = [];
    this.saves = 0;
    /** @type {Record<string, any>[]} the traits as the kernel got them, one entry per save */
    this.kernelStates = [];
  }

  /** @param {string} name */
  get(name) {
    return this.attrs[name];
  }

  /** @param {string} name @param {any} value */
  set(name, value) {
    const old = this.attrs[name];
    this.attrs[name] = value;
    if (old !== value) this.emit(`change:${name}`, value);
  }

  save_changes() {
    this.saves += 1;
    this.kernelStates.push(JSON.parse(JSON.stringify(this.attrs)));
  }

  /** The value of a trait as the kernel last got it (undefined: never saved). @param {string} name */
  kernelSees(name) {
    return this.kernelStates.at(-1)?.[name];
  }

  /** @param {string} event @param {Function} fn */
  on(event, fn) {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(fn);
  }

  /** @param {string} event @param {Function} fn */
  off(event, fn) {
    const set = this.handlers.get(event);
    if (set) set.delete(fn);
  }

  /** @param {any} content @param {any} [_callbacks] @param {any[]} [buffers] */
  send(content, _callbacks, buffers) {
    this.sent.push({ content, buffers: buffers || [] });
  }

  /** @param {string} event @param {...any} args */
  emit(event, ...args) {
    for (const fn of [...(this.handlers.get(event) || [])]) fn(...args);
  }

  /** The kernel sends a custom message (CallWidget.send in Python). @param {any} content */
  custom(content, /** @type {unknown[]} */ buffers = []) {
    this.emit("msg:custom", content, buffers);
  }

  /** Listeners currently registered for `event`. @param {string} event */
  count(event) {
    return (this.handlers.get(event) || new Set()).size;
  }

  /** Contents the page sent of one kind. @param {string} kind */
  sentOf(kind) {
    return this.sent.filter((m) => m.content.kind === kind);
  }
}

