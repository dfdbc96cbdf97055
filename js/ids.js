// Random ids: call ids for the server, recording ids for the kernel.

/** `bytes` random bytes as hex. @param {number} bytes */
export function randomId(bytes) {
  const b = new Uint8Array(bytes);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
