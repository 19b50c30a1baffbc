/**
 * Stream plumbing shared by the drivers: what `write` accepts turned into the
 * node or web stream a protocol library takes, and byte counting on the way.
 *
 * @module
 */
import type { FileHandle } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import type { ReadableStream as NodeWebStream } from "node:stream/web";
import { lentChunks } from "../ftp/data.ts";
import { giveReadBuffer, readBufferSize, readerOpened, takeReadBuffer } from "./read_buffers.ts";
import type { WriteData } from "./types.ts";

/** Most bytes read from a file per pull of {@linkcode fileReadStream}. */
const FILE_CHUNK = 256 * 1024;

/**
 * A pull-driven web stream over an open file from `offset`: one chunk read per pull (one
 * read ahead), the file closed at its end, on an error (mapped by `mapError`) or on cancel.
 * Chunks are read into the shared read buffers (`read_buffers.ts`: smaller while many
 * streams are open, so hundreds of downloads do not hold a megabyte each) and lent
 * (`lentChunks`): once the FTP engine wrote one to its client, the buffer is reused
 * instead of being left to the garbage collector.
 */
export function fileReadStream(
  fh: FileHandle,
  offset = 0,
  mapError: (e: unknown) => unknown = (e) => e,
): ReadableStream<Uint8Array> {
  let closed = false;
  let pos = offset;
  const counted = readerOpened();
  const close = async () => {
    if (!closed) {
      closed = true;
      counted();
      await fh.close().catch(() => {});
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const size = Math.min(FILE_CHUNK, readBufferSize());
      const buf = takeReadBuffer(size);
      try {
        const { bytesRead } = await fh.read(buf, 0, size, pos);
        if (bytesRead === 0) {
          giveReadBuffer(buf);
          await close();
          controller.close();
        } else {
          pos += bytesRead;
          const chunk = buf.subarray(0, bytesRead);
          lentChunks.set(chunk, () => giveReadBuffer(buf));
          controller.enqueue(chunk);
        }
      } catch (e) {
        giveReadBuffer(buf);
        await close();
        controller.error(mapError(e));
      }
    },
    cancel: close,
  }, { highWaterMark: 1 });
}

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
