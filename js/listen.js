// Model event subscriptions that cannot be left half undone: one list says what to
// listen to, and the returned cleanup removes exactly that.

/**
 * @param {Pick<import("./types.js").AnyModel, "on" | "off">} model  an anywidget model
 * @param {[string, (...args: any[]) => void][]} handlers  [event, handler] pairs
 * @returns {() => void} removes every handler it added
 */
export function listen(model, handlers) {
  for (const [event, fn] of handlers) model.on(event, fn);
  return () => {
    for (const [event, fn] of handlers) model.off(event, fn);
  };
}
