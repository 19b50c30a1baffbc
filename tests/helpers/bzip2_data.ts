/**
 * Test and benchmark data for the bzip2 engine: deterministic random, text-like and
 * long-run bytes, and stream helpers. Not used by hop itself.
 *
 * @module
 */

/** Deterministic pseudo-random bytes (xorshift32), `n` long. */
export function randomBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Text-like bytes (log lines with numbers), `n` long. */
export function textBytes(n: number, seed = 1): Uint8Array {
  const words = ["alpha", "beta", "gamma", "delta", "relay", "node", "sync", "file", "block"];
  const r = randomBytes(n, seed);
  const out = new Uint8Array(n);
  const enc = new TextEncoder();
  let at = 0;
  for (let i = 0; at < n; i++) {
    const line = enc.encode(
      `${i} ${words[r[i % n] % 9]} ${words[r[(i * 7) % n] % 9]} size=${r[(i * 3) % n] * 977}\n`,
    );
    out.set(line.subarray(0, n - at), at);
    at += line.length;
  }
  return out;
}

/** `n` bytes mixing text, random and long runs of one byte, in ~256 kB pieces. */
export function mixedBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  const piece = 256 * 1024;
  for (let at = 0, k = 0; at < n; at += piece, k++) {
    const len = Math.min(piece, n - at);
    const kind = k % 4;
    if (kind === 0 || kind === 2) out.set(textBytes(len, seed + k), at);
    else if (kind === 1) out.set(randomBytes(len, seed + k), at);
    else out.fill(k & 0xff, at, at + len);
  }
  return out;
}

/** A stream giving `data` in pieces of `piece` bytes. */
export function streamOf(data: Uint8Array, piece = 64 * 1024): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= data.length) {
        c.close();
        return;
      }
      c.enqueue(data.slice(at, at + piece));
      at += piece;
    },
  });
}

/** All bytes of a stream, concatenated. */
export async function collect(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const p of s) {
    parts.push(p);
    n += p.length;
  }
  const out = new Uint8Array(n);
  n = 0;
  for (const p of parts) {
    out.set(p, n);
    n += p.length;
  }
  return out;
}

/** True when both byte arrays are equal. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
