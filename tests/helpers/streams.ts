/**
 * Streams for storage and relay backend tests: deterministic generated content of any
 * size (pull-driven, so a test can act while it flows) and the hash of what a read gave.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

/** Deterministic bytes: chunk `i` of size `size` of the stream seeded `seed`. */
function chunkAt(i: number, size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761 + i * 40503 + 1) >>> 0;
  const v = new Uint32Array(out.buffer, 0, size >>> 2);
  for (let k = 0; k < v.length; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    v[k] = x >>> 0;
  }
  return out;
}

/** Options of {@linkcode generated}. */
export interface GeneratedOptions {
  /** Bytes a chunk (default 1 MB). */
  chunk?: number;
  /** A pause before each chunk (a slow writer). */
  delayMs?: number;
  /** Called with the bytes produced so far before each chunk. */
  onChunk?: (bytes: number) => Promise<void>;
}

/**
 * A pull-driven stream of `total` deterministic bytes, its SHA-256 once fully read, and
 * how much of it was pulled.
 *
 * @example
 * const gen = generated(4 << 20, 3);
 * await driver.write("c.data", gen.stream);
 * assert.equal((await hashStream(await driver.read("c.data"))).hex, gen.digest());
 */
export function generated(
  total: number,
  seed: number,
  opts: GeneratedOptions = {},
): { stream: ReadableStream<Uint8Array>; digest: () => string; pulled: () => number } {
  const { chunk = 1 << 20, delayMs = 0, onChunk } = opts;
  const hash = createHash("sha256");
  let sent = 0;
  let i = 0;
  let digest = "";
  const stream = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (sent >= total) {
        digest = hash.digest("hex");
        c.close();
        return;
      }
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      if (onChunk) await onChunk(sent);
      const n = Math.min(chunk, total - sent);
      const data = chunkAt(i++, n, seed);
      hash.update(data);
      sent += n;
      c.enqueue(data);
    },
  }, { highWaterMark: 0 });
  return {
    stream,
    digest: () => {
      assert.ok(digest, "stream not fully read");
      return digest;
    },
    pulled: () => sent,
  };
}

/** The SHA-256 (hex) and size of everything `s` gives. */
export async function hashStream(
  s: ReadableStream<Uint8Array>,
): Promise<{ hex: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of s) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { hex: hash.digest("hex"), size };
}
