/**
 * The compressions of update archives as web streams: bzip2 (the parallel engine of
 * `bzip2.ts`, Escale's format and the default), zstd and none (the tar as it is).
 *
 * zstd compresses with node:zlib's (the reference library, level 3, content checksum on):
 * Node 22.15+, Deno 2 and Bun all have it, so it runs in the single binary too. It
 * decompresses with `fzstd` (pure JavaScript, streaming): Deno 2.9's node:zlib throws a
 * damaged zstd stream's error outside the stream (an uncaught exception, the write never
 * answered), so a bad archive would end the process instead of failing its pull. fzstd
 * does not check the content checksum; every pulled file's checksum is checked against the
 * index anyway. Readers need not be told: {@linkcode decompressAny} looks at an archive's first bytes
 * and takes the codec they show, so a relay that changed codec, or an archive from
 * another client, still reads.
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";
import type { Transform } from "node:stream";
import { constants, createZstdCompress } from "node:zlib";
import { Decompress } from "fzstd";
import { archiveFormat, type Compression, FORMAT_HEAD_BYTES } from "../codec/compression.ts";
import { HopError } from "../errors.ts";
import { compressStream, decompressStream } from "./bzip2.ts";
import type { BytePair } from "./tar.ts";

/** zstd's level: its default, which keeps up with a disk while compressing about as well as bzip2 -1. */
export const ZSTD_LEVEL = 3;

/** A fresh compressor of `c`. */
export function compressorFor(c: Compression): BytePair {
  switch (c) {
    case "bzip2":
      return compressStream();
    case "zstd":
      return webPair(createZstdCompress({
        params: {
          [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL,
          // a checksum of the content, as bzip2 has its CRCs: damage is found, not extracted
          [constants.ZSTD_c_checksumFlag]: 1,
        },
      }));
    case "none":
      return new TransformStream<Uint8Array, Uint8Array>();
  }
}

/** A fresh decompressor of `c`; `source` names the input in messages. */
export function decompressorFor(c: Compression, source?: string): BytePair {
  switch (c) {
    case "bzip2":
      return decompressStream({ source });
    case "zstd":
      return zstdDecompressor(source);
    case "none":
      return new TransformStream<Uint8Array, Uint8Array>();
  }
}

/** Compressed bytes given to fzstd at once: bounds what one step can expand to (32 MB). */
const ZSTD_STEP = 1024;
/** Bytes decompressed between two yields to the event loop (a bomb is caught downstream). */
const ZSTD_YIELD_BYTES = 8 << 20;

/** A streaming zstd decompressor; damage errors the stream with a HopError. */
function zstdDecompressor(source = "zstd input"): BytePair {
  let out: Uint8Array[] = [];
  const d = new Decompress((chunk) => void out.push(chunk));
  const step = (bytes: Uint8Array, final: boolean) => {
    try {
      d.push(bytes, final);
    } catch (e) {
      throw new HopError(`corrupt zstd data in ${source}: ${(e as Error).message}`, {
        hint: "The archive is damaged or cut; ask its pusher to send it again.",
        cause: e,
      });
    }
  };
  const drain = (c: TransformStreamDefaultController<Uint8Array>): number => {
    let n = 0;
    for (const o of out) {
      c.enqueue(o);
      n += o.length;
    }
    out = [];
    return n;
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, c) {
      let since = 0;
      for (let i = 0; i < chunk.length; i += ZSTD_STEP) {
        step(chunk.subarray(i, i + ZSTD_STEP), false);
        since += drain(c);
        if (since >= ZSTD_YIELD_BYTES) {
          since = 0;
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
      }
    },
    flush(c) {
      step(new Uint8Array(0), true);
      drain(c);
    },
  });
}

/**
 * A node:zlib transform as a web stream pair, with backpressure both ways: a write resolves
 * once zlib took the chunk in, and zlib is paused while the reader is behind.
 */
function webPair(t: Transform): BytePair {
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      t.on("data", (chunk: Uint8Array) => {
        try {
          c.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        } catch {
          return; // cancelled meanwhile
        }
        if ((c.desiredSize ?? 0) <= 0) t.pause();
      });
      t.once("end", () => c.close());
      // every error (zlib may report one more than once): the reader sees the first
      t.on("error", (e) => {
        try {
          c.error(e);
        } catch { /* already errored or closed */ }
      });
    },
    pull() {
      t.resume();
    },
    cancel(reason) {
      t.destroy(reason instanceof Error ? reason : undefined);
    },
  }, { highWaterMark: 4 });
  const writable = new WritableStream<Uint8Array>({
    write: (chunk) =>
      new Promise<void>((resolve, reject) => {
        t.write(chunk, (e) => e ? reject(e) : resolve());
      }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        t.end((e?: Error | null) => e ? reject(e) : resolve());
      }),
    abort(reason) {
      t.destroy(reason instanceof Error ? reason : undefined);
    },
  });
  return { readable, writable };
}

/**
 * A decompressor for any archive hop writes: it reads the first bytes, then decompresses
 * with the codec they show ({@linkcode archiveFormat}). Input that is none of them errors
 * the stream with a HopError; the input is then cancelled.
 */
export function decompressAny(opts: { source?: string } = {}): BytePair {
  const pass = new TransformStream<Uint8Array, Uint8Array>();
  const raw = pass.readable.getReader();
  let out: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const open = async () => {
    const head: Uint8Array[] = [];
    let got = 0;
    let ended = false;
    while (got < FORMAT_HEAD_BYTES) {
      const r = await raw.read();
      if (r.done) {
        ended = true;
        break;
      }
      head.push(r.value);
      got += r.value.length;
    }
    const format = archiveFormat(concatBytes(head));
    if (format === undefined) {
      throw new HopError(
        got === 0
          ? `${opts.source ?? "the archive"} is empty, not an archive`
          : `${opts.source ?? "the archive"} is not an archive hop reads (bzip2, zstd or tar)`,
        { hint: "The update archive is damaged; ask its pusher to send it again." },
      );
    }
    const rest = new ReadableStream<Uint8Array>({
      start(c) {
        for (const h of head) c.enqueue(h);
        if (ended) c.close();
      },
      async pull(c) {
        const r = await raw.read();
        if (r.done) c.close();
        else c.enqueue(r.value);
      },
      cancel: (reason) => raw.cancel(reason),
    }, { highWaterMark: 0 });
    return rest.pipeThrough(decompressorFor(format, opts.source)).getReader();
  };
  const readable = new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        out ??= await open();
        const r = await out.read();
        if (r.done) c.close();
        else c.enqueue(r.value);
      } catch (e) {
        // the writer side must not wait forever on a reader that is gone
        await raw.cancel(e).catch(() => {});
        throw e;
      }
    },
    async cancel(reason) {
      if (out) await out.cancel(reason);
      else await raw.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { readable, writable: pass.writable };
}
