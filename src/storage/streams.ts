/**
 * Stream plumbing shared by the drivers: what `write` accepts turned into the
 * node or web stream a protocol library takes, and byte counting on the way.
 *
 * @module
 */
import { Readable, Transform } from "node:stream";
import type { ReadableStream as NodeWebStream } from "node:stream/web";
import type { WriteData } from "./types.ts";

/** `data` as a node Readable (bytes as one chunk; web streams adapted, pulled on demand). */
export function toReadable(data: WriteData): Readable {
  if (data instanceof Uint8Array) return Readable.from(data.length ? [data] : []);
  if (data instanceof Readable) return data;
  return Readable.fromWeb(data as unknown as NodeWebStream<Uint8Array>);
}

/** A node Readable as a web stream. */
export function toWeb(r: Readable): ReadableStream<Uint8Array> {
  return Readable.toWeb(r) as unknown as ReadableStream<Uint8Array>;
}

/** Passes chunks through and counts their bytes. */
export function counter(): { stream: Transform; bytes(): number } {
  let n = 0;
  const stream = new Transform({
    transform(chunk: Uint8Array, _enc, cb) {
      n += chunk.length;
      cb(null, chunk);
    },
  });
  return { stream, bytes: () => n };
}

/** Reads a whole stream into one buffer. */
export async function collect(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const c of s) {
    chunks.push(c);
    total += c.length;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
