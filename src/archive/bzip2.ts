/**
 * bzip2 for hop: parallel compression and decompression as web streams, on the embedded
 * bzip2.wasm run by a pool of web Workers (pool.ts).
 *
 * - compressStream cuts its input where bzip2 would end a block, compresses the chunks in
 *   parallel and splices their blocks in order into ONE bzip2 stream (as lbzip2 does), so
 *   every reader reads it, even those that stop after a first stream (bzip2_join.ts).
 * - decompressStream reads any .bz2 (single stream or many): it finds block boundaries by
 *   their bit-level magic (as lbzip2 does), decompresses blocks in parallel and checks
 *   every CRC.
 *
 * Memory stays bounded: at most a few blocks per worker are in flight; a slow reader slows
 * the writer (backpressure).
 *
 * @example
 * ```ts
 * import { compressStream, decompressStream } from "./bzip2.ts";
 * const file = await open("a.tar");
 * await file.readable.pipeThrough(compressStream({ level: 9 })).pipeTo(out.writable);
 * const plain = blob.stream().pipeThrough(decompressStream({ source: "a.tar.bz2" }));
 * ```
 *
 * @module
 */
import { HopError } from "../errors.ts";
import { ChunkCutter, StreamJoiner } from "./bzip2_join.ts";
import { BlockDecoder, type BlockJob, BlockSplitter } from "./bzip2_split.ts";
import { closeLane, type Lane, openLane, type PoolReply, runJob } from "./pool.ts";
import { bzip2ErrorText, kernel } from "./wasm.ts";

export { closePool } from "./pool.ts";

/** Options of compressStream / compressBytes. */
export interface CompressOptions {
  /** Block size in 100 kB, 1..9 (default 9, as `bzip2 -9`). */
  level?: number;
  /** Workers this stream may keep busy at once (default: the pool size). */
  workers?: number;
}

/** Options of decompressStream. */
export interface DecompressOptions {
  /** Workers this stream may keep busy at once (default: the pool size). */
  workers?: number;
  /** Name of the input, for error messages (default "bzip2 input"). */
  source?: string;
}

/** Jobs in flight per worker of a stream: enough to keep workers fed, little memory. */
const IN_FLIGHT_PER_WORKER = 2;

function checkLevel(level: number | undefined): number {
  const l = level ?? 9;
  if (!Number.isInteger(l) || l < 1 || l > 9) {
    throw new HopError(`bad bzip2 level: ${level}`, { hint: "use a level from 1 to 9" });
  }
  return l;
}

interface Flight<T> {
  promise: Promise<T>;
  settled: boolean;
}

function track<T>(promise: Promise<T>): Flight<T> {
  const f: Flight<T> = { promise, settled: false };
  promise.then(() => (f.settled = true), () => (f.settled = true));
  return f;
}

/**
 * A TransformStream that bzip2-compresses what goes through it: one bzip2 stream, its
 * blocks compressed in parallel on the worker pool. At most 2 chunks per worker are in
 * flight; the writer waits for the reader beyond that.
 *
 * @example
 * ```ts
 * const bz = new Blob([data]).stream().pipeThrough(compressStream({ level: 9 }));
 * ```
 */
export function compressStream(
  opts: CompressOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const level = checkLevel(opts.level);
  const cutter = new ChunkCutter(level);
  const joiner = new StreamJoiner(level);
  const initial = level * 100000 + 4096;
  let lane: Lane | undefined;
  const flights: Flight<Uint8Array>[] = [];
  let cur = new Uint8Array(initial);
  let fill = 0;

  const failAll = () => {
    if (lane) closeLane(lane);
    for (const f of flights.splice(0)) f.promise.catch(() => {});
  };
  const emit = async (ctrl: TransformStreamDefaultController<Uint8Array>) => {
    ctrl.enqueue(joiner.push(await flights.shift()!.promise));
  };
  const submit = async (ctrl: TransformStreamDefaultController<Uint8Array>) => {
    lane ??= openLane(opts.workers);
    while (flights.length >= lane.limit * IN_FLIGHT_PER_WORKER) await emit(ctrl);
    const src = cur.subarray(0, fill);
    cur = new Uint8Array(initial);
    fill = 0;
    cutter.reset();
    flights.push(track(runJob(lane, { op: "compress", src, level }).then(compressed)));
  };

  return new TransformStream<Uint8Array, Uint8Array>({
    async transform(input, ctrl) {
      try {
        let at = 0;
        while (at < input.length) {
          const n = cutter.fit(input, at, fill);
          if (fill + n > cur.length) {
            const bigger = new Uint8Array(Math.max(cur.length * 2, fill + n));
            bigger.set(cur.subarray(0, fill));
            cur = bigger;
          }
          cur.set(input.subarray(at, at + n), fill);
          fill += n;
          at += n;
          if (at < input.length) await submit(ctrl); // the chunk is one full block
        }
        while (flights.length > 0 && flights[0].settled) await emit(ctrl);
      } catch (e) {
        failAll();
        throw e;
      }
    },
    async flush(ctrl) {
      try {
        if (fill > 0) await submit(ctrl);
        while (flights.length > 0) await emit(ctrl);
        ctrl.enqueue(joiner.end());
      } catch (e) {
        failAll();
        throw e;
      } finally {
        if (lane) closeLane(lane);
      }
    },
    // Reader cancelled or writer aborted (runtimes that support it): free the lane now.
    cancel() {
      failAll();
    },
  });
}

function compressed(r: PoolReply): Uint8Array {
  if (r.out) return r.out;
  throw new HopError(`bzip2 compression failed: ${bzip2ErrorText(r.code ?? 0)}`);
}

/**
 * A TransformStream that decompresses any .bz2 (one stream or many concatenated), blocks
 * decompressed in parallel on the worker pool, output in order. Corrupt or truncated input
 * errors the stream with HopError "corrupt bzip2 data in <source>: ...".
 *
 * @example
 * ```ts
 * const tar = file.readable.pipeThrough(decompressStream({ source: "a.tar.bz2" }));
 * ```
 */
export function decompressStream(
  opts: DecompressOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const source = opts.source ?? "bzip2 input";
  const splitter = new BlockSplitter(source);
  const decoder = new BlockDecoder(source);
  let lane: Lane | undefined;
  const flights: { job: BlockJob; flight: Flight<PoolReply> }[] = [];

  const take = async (ctrl: TransformStreamDefaultController<Uint8Array>) => {
    const { job, flight } = flights.shift()!;
    const r = await flight.promise;
    if (r.src) job.bytes = r.src;
    const out = decoder.accept(job, r.out, r.code);
    if (out && out.length > 0) ctrl.enqueue(out);
  };
  const pump = async (ctrl: TransformStreamDefaultController<Uint8Array>, final: boolean) => {
    for (let job; (job = splitter.next(final));) {
      lane ??= openLane(opts.workers);
      while (flights.length >= lane.limit * IN_FLIGHT_PER_WORKER) await take(ctrl);
      const j = job;
      // The worker gets the bytes; the job keeps its description for checks and merges.
      const promise = runJob(lane, {
        op: "block",
        src: j.bytes,
        bitOffset: j.bitOffset,
        bitLength: j.bitLength,
        level: j.level,
        sizeHint: decoder.sizeHint(j),
      });
      flights.push({ job: j, flight: track(promise) });
    }
    while (flights.length > 0 && flights[0].flight.settled) await take(ctrl);
  };
  const failAll = () => {
    if (lane) closeLane(lane);
    for (const f of flights.splice(0)) f.flight.promise.catch(() => {});
  };

  return new TransformStream<Uint8Array, Uint8Array>({
    async transform(input, ctrl) {
      try {
        splitter.push(input);
        await pump(ctrl, false);
      } catch (e) {
        failAll();
        throw e;
      }
    },
    async flush(ctrl) {
      try {
        await pump(ctrl, true);
        while (flights.length > 0) await take(ctrl);
        decoder.finish();
      } catch (e) {
        failAll();
        throw e;
      } finally {
        if (lane) closeLane(lane);
      }
    },
    // Reader cancelled or writer aborted (runtimes that support it): free the lane now.
    cancel() {
      failAll();
    },
  });
}

/**
 * Compress small bytes (indexes, manifests) on the main thread, synchronously, into the
 * same single bzip2 stream compressStream would write.
 *
 * @example
 * ```ts
 * const bz = compressBytes(new TextEncoder().encode(json));
 * ```
 */
export function compressBytes(bytes: Uint8Array, opts: { level?: number } = {}): Uint8Array {
  const level = checkLevel(opts.level);
  const cutter = new ChunkCutter(level);
  const joiner = new StreamJoiner(level);
  const parts: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const n = cutter.fit(bytes, at, 0);
    cutter.reset();
    const r = kernel().compress(bytes.subarray(at, at + n), level);
    parts.push(joiner.push(compressed(typeof r === "number" ? { code: r } : { out: r })));
    at += n;
  }
  parts.push(joiner.end());
  return concat(parts);
}

/**
 * Decompress small .bz2 bytes on the main thread, synchronously; any .bz2 as
 * decompressStream. Throws HopError "corrupt bzip2 data in <source>: ..." on bad input.
 *
 * @example
 * ```ts
 * const json = new TextDecoder().decode(decompressBytes(bz, "index.json.bz2"));
 * ```
 */
export function decompressBytes(bytes: Uint8Array, source = "bzip2 input"): Uint8Array {
  const splitter = new BlockSplitter(source);
  const decoder = new BlockDecoder(source);
  splitter.push(bytes);
  const parts: Uint8Array[] = [];
  for (let job; (job = splitter.next(true));) {
    const r = kernel().decompressBlock(
      job.bytes,
      job.bitOffset,
      job.bitLength,
      job.level,
      decoder.sizeHint(job),
    );
    const out = typeof r === "number" ? decoder.accept(job, undefined, r) : decoder.accept(job, r);
    if (out) parts.push(out);
  }
  decoder.finish();
  return concat(parts);
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  n = 0;
  for (const p of parts) {
    out.set(p, n);
    n += p.length;
  }
  return out;
}
