/**
 * Byte arrays joined without node's Buffer pool: the result owns a fresh `ArrayBuffer`,
 * so it can be transferred to a worker or viewed from offset 0 (a pooled `Buffer.concat`
 * result shares its memory with unrelated buffers).
 *
 * @example
 * ```ts
 * const whole = concatBytes([head, body]); // whole.byteOffset === 0
 * ```
 *
 * @module
 */

/** `parts` one after another, in a new array of their total length. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
