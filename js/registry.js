// What the page keeps beyond one view: the phones by name, for tests and debugging
// (window.__nbcall.phones[user], with .state, .pc, .call ...), and by model, because
// anywidget hands `initialize` and `render` different facades of one model.

/** @typedef {import("./call/phone.js").Phone} Phone */
/**
 * What views of one model need, made once in `initialize`.
 * @typedef {object} ModelContext
 * @property {Phone} phone
 * @property {import("./features/in_call.js").InCall} features
 * @property {(action: string, outcome: import("./failure.js").Outcome) => string} act  report an action's outcome; "" or why it failed
 * @property {import("./queued_actions.js").QueuedActions} queue  actions waiting for the phone
 */

/** @returns {{phones: Record<string, Phone>}} */
function debugRegistry() {
  const g = /** @type {{__nbcall?: {phones: Record<string, Phone>}}} */ (globalThis);
  if (!g.__nbcall) g.__nbcall = { phones: {} };
  return g.__nbcall;
}

/** @param {string} name @param {Phone} phone */
export function registerPhone(name, phone) {
  debugRegistry().phones[name] = phone;
}

/** Forget `phone` (only if `name` is still it: a newer widget of that name stays). @param {string} name @param {Phone} phone */
export function unregisterPhone(name, phone) {
  const reg = debugRegistry();
  if (reg.phones[name] === phone) delete reg.phones[name];
}

/** Each model's context, keyed by the widget's (unique, kernel-made) credential. @returns {Map<string, ModelContext>} */
export function modelContexts() {
  const g = /** @type {{__nbcallModels?: Map<string, ModelContext>}} */ (globalThis);
  if (!g.__nbcallModels) g.__nbcallModels = new Map();
  return g.__nbcallModels;
}
