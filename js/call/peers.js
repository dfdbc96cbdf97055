// Who else is online, keyed by the server's key for each user.  The page has no name rule
// of its own: the server says which names are one user (NFKC + casefold: "Straße" and
// "STRASSE" are one), and sends that key beside every name.

/**
 * The key of names[i]: keys[i] from the server, or the name itself from a server that sends
 * no keys (then only identical names are one user).
 * @param {readonly unknown[]} names
 * @param {unknown} keys
 * @param {number} i
 */
function keyAt(names, keys, i) {
  const key = Array.isArray(keys) ? keys[i] : undefined;
  return typeof key === "string" && key ? key : String(names[i]);
}

/** @param {unknown} value @returns {unknown[]} */
const list = (value) => (Array.isArray(value) ? value : []);

/**
 * key -> display name of every other user online.
 * @extends {Map<string, string>}
 */
export class Peers extends Map {
  /**
   * Everyone, from a `registered` or `users` reply.
   * @param {unknown} names
   * @param {unknown} keys  parallel to names
   * @param {string} selfKey  left out
   */
  replace(names, keys, selfKey) {
    this.clear();
    this.join(names, keys, selfKey);
  }

  /**
   * @param {unknown} names
   * @param {unknown} keys  parallel to names
   * @param {string} selfKey  left out
   */
  join(names, keys, selfKey) {
    const all = list(names);
    for (let i = 0; i < all.length; i++) {
      const key = keyAt(all, keys, i);
      if (key !== selfKey) this.set(key, String(all[i]));
    }
  }

  /**
   * @param {unknown} names
   * @param {unknown} keys  parallel to names
   */
  leave(names, keys) {
    const all = list(names);
    for (let i = 0; i < all.length; i++) this.delete(keyAt(all, keys, i));
  }

  /**
   * The key of a name this page lists (as shown, or a key itself), or "".
   * @param {string} name
   */
  keyOf(name) {
    for (const [key, shown] of this) if (shown === name) return key;
    return this.has(name) ? name : "";
  }

  /** The display names, sorted. @returns {string[]} */
  names() {
    return [...this.values()].sort();
  }
}
