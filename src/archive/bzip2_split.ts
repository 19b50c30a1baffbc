/**
 * Splitting a .bz2 byte stream into its blocks, as lbzip2 does, so blocks can be decompressed
 * in parallel: finds the 48-bit block magic 0x314159265359 and end-of-stream magic
 * 0x177245385090 at any bit offset, reads stream headers (`BZh1`..`BZh9`) and handles
 * concatenated streams. Input arrives in pieces (push); blocks come out in order (next).
 * Also the in-order checker (BlockDecoder) that verifies each stream's combined CRC and
 * repairs a split made at a false magic match by merging it with the next block.
 *
 * @module
 */
import { bzip2ErrorText, corruptError, kernel } from "./wasm.ts";

/** One bzip2 block, cut out of the input, ready for a worker. */
export interface BlockJob {
  /** Own copy of the bytes holding the block's bits (transferable). */
  bytes: Uint8Array;
  /** Bit (0..7, MSB first) of bytes[0] where the block magic starts. */
  bitOffset: number;
  /** Length of the block in bits, magic included, up to the next magic. */
  bitLength: number;
  /** The stream's block size digit (1..9). */
  level: number;
  /** The block CRC stored after its magic. */
  crc: number;
  /** 0-based index of the stream the block belongs to. */
  stream: number;
  /** Set on the last block of a stream: the stream's stored combined CRC. */
  streamCrc?: number;
  /** Offset in the whole input of bytes[0] (for error messages). */
  offset: number;
}

const BLOCK_MAGIC = 0x314159265359;
const EOS_MAGIC = 0x177245385090;
/** No real compressed block is this long (900k symbols at <= 20 bits plus tables). */
const MAX_BLOCK_BITS = 8 * 4 * 1024 * 1024;

/** PATTERNS[s*2+kind]: the 32 bits of bytes i+1..i+4 when a magic starts at bit s of byte i. */
const PATTERNS = new Uint32Array(16);
/** FILTER[top 16 bits of a 32-bit window]: 1 if some pattern starts that way. */
const FILTER = new Uint8Array(65536);
for (let s = 0; s < 8; s++) {
  for (let kind = 0; kind < 2; kind++) {
    const m = kind === 0 ? BLOCK_MAGIC : EOS_MAGIC;
    const p = Math.floor(m / 2 ** (8 + s)) % 2 ** 32;
    PATTERNS[s * 2 + kind] = p;
    FILTER[p >>> 16] = 1;
  }
}

/**
 * Finds bzip2 blocks in a byte stream given piece by piece.
 *
 * @example
 * ```ts
 * const split = new BlockSplitter("a.tar.bz2");
 * split.push(bytes);
 * for (let b; (b = split.next(true));) console.log(b.stream, b.bitLength);
 * ```
 */
export class BlockSplitter {
  #source: string;
  #buf = new Uint8Array(1 << 16);
  /** Valid bytes are #buf[0 .. #end). Bit positions below are relative to #buf[0]. */
  #end = 0;
  /** Bytes dropped from the front so far (for error messages). */
  #dropped = 0;
  #inBlock = false;
  /** Header state: byte-aligned bit position of the next stream header. */
  #pos = 0;
  #blockStart = 0;
  #scanFrom = 0;
  #level = 9;
  #streams = 0;
  #crcs: number[] = [];

  constructor(source: string) {
    this.#source = source;
  }

  /** Append input bytes (copied). */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.#end + chunk.length > this.#buf.length) this.#compact(chunk.length);
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  #compact(extra: number): void {
    const keep = (this.#inBlock ? this.#blockStart : this.#pos) >>> 3;
    const live = this.#end - keep;
    let buf = this.#buf;
    if (live + extra > buf.length) {
      let n = buf.length;
      while (n < live + extra) n *= 2;
      buf = new Uint8Array(n);
      buf.set(this.#buf.subarray(keep, this.#end));
    } else {
      buf.copyWithin(0, keep, this.#end);
    }
    this.#buf = buf;
    this.#end = live;
    this.#dropped += keep;
    const shift = keep * 8;
    this.#pos -= shift;
    this.#blockStart -= shift;
    this.#scanFrom -= shift;
  }

  /**
   * The next complete block, or null when more input is needed (or, with `final`, when the
   * input is done). `final` says no more input will come: a truncated stream then throws.
   */
  next(final: boolean): BlockJob | null {
    for (;;) {
      if (!this.#inBlock) {
        if (!this.#header(final)) return null;
        continue;
      }
      const cand = this.#scan(this.#scanFrom);
      if (cand < 0) {
        if (this.#scanFrom - this.#blockStart > MAX_BLOCK_BITS) {
          throw this.#corrupt("no block boundary where one must be");
        }
        if (final) throw this.#corrupt("data ends inside a block (truncated file?)");
        return null;
      }
      const bit = Math.floor(cand / 2);
      if (cand % 2 === 0) {
        const job = this.#cut(bit);
        this.#blockStart = bit;
        this.#scanFrom = bit + 80;
        return job;
      }
      // End-of-stream candidate: accept it only if what follows is a stream header, zero
      // padding, or the end of input; otherwise it was a false match inside a block.
      const next = Math.ceil((bit + 80) / 8);
      const rest = this.#end - next;
      let real: boolean;
      if (rest >= 10) real = this.#isHeader(next) || this.#zeros(next, next + 10);
      else if (!final) return null;
      else real = this.#zeros(next, this.#end);
      if (!real) {
        this.#scanFrom = bit + 1;
        continue;
      }
      const job = this.#cut(bit);
      job.streamCrc = this.#bits(bit + 48, 32);
      this.#inBlock = false;
      this.#pos = next * 8;
      this.#streams++;
      return job;
    }
  }

  /** Parse a stream header at #pos; true when the state changed (go on), false to wait. */
  #header(final: boolean): boolean {
    const at = this.#pos >>> 3;
    const avail = this.#end - at;
    if (avail === 0) {
      // Like bzip2 and lbzip2, an empty input is not a valid .bz2.
      if (final && this.#streams === 0) throw this.#corrupt("empty input, no bzip2 stream");
      return false;
    }
    if (this.#streams > 0 && this.#buf[at] === 0) {
      // Zero padding after the last stream (some writers pad to a record size).
      if (!this.#zeros(at, this.#end)) throw this.#corrupt("unexpected data after a stream");
      this.#pos = this.#end * 8;
      return false;
    }
    if (avail < 14) {
      if (!final) return false;
      throw this.#streams === 0 && !this.#magicBytes(at, avail)
        ? this.#corrupt("not bzip2 data (no BZh header)")
        : this.#corrupt("data ends inside a stream header (truncated file?)");
    }
    if (!this.#magicBytes(at, 4)) {
      throw this.#streams === 0
        ? this.#corrupt("not bzip2 data (no BZh header)")
        : this.#corrupt("unexpected data after a stream");
    }
    this.#level = this.#buf[at + 3] - 0x30;
    const m = this.#bits(this.#pos + 32, 16) * 2 ** 32 + this.#bits(this.#pos + 48, 32);
    if (m === BLOCK_MAGIC) {
      this.#inBlock = true;
      this.#blockStart = this.#pos + 32;
      this.#scanFrom = this.#blockStart + 80;
      return true;
    }
    if (m === EOS_MAGIC) {
      // An empty stream: its combined CRC must be 0.
      if (this.#bits(this.#pos + 80, 32) !== 0) throw this.#corrupt("bad CRC of an empty stream");
      this.#pos += 14 * 8;
      this.#streams++;
      return true;
    }
    throw this.#corrupt("no block after a stream header");
  }

  /** True when bytes at `at` start like a stream header ("BZh" + 1..9), as far as `n`. */
  #magicBytes(at: number, n: number): boolean {
    const want = [0x42, 0x5a, 0x68];
    for (let i = 0; i < Math.min(n, 3); i++) if (this.#buf[at + i] !== want[i]) return false;
    if (n >= 4) {
      const d = this.#buf[at + 3];
      if (d < 0x31 || d > 0x39) return false;
    }
    return true;
  }

  #isHeader(at: number): boolean {
    if (!this.#magicBytes(at, 4)) return false;
    const m = this.#bits(at * 8 + 32, 16) * 2 ** 32 + this.#bits(at * 8 + 48, 32);
    return m === BLOCK_MAGIC || m === EOS_MAGIC;
  }

  #zeros(from: number, to: number): boolean {
    for (let i = from; i < to; i++) if (this.#buf[i] !== 0) return false;
    return true;
  }

  /** Read n <= 32 bits at bit position p (MSB first), unsigned. */
  #bits(p: number, n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++, p++) v = v * 2 + ((this.#buf[p >>> 3] >>> (7 - (p & 7))) & 1);
    return v;
  }

  /** Copy out the block [#blockStart, endBit). */
  #cut(endBit: number): BlockJob {
    const start = this.#blockStart;
    return {
      bytes: this.#buf.slice(start >>> 3, Math.ceil(endBit / 8)),
      bitOffset: start & 7,
      bitLength: endBit - start,
      level: this.#level,
      crc: this.#bits(start + 48, 32),
      stream: this.#streams,
      offset: this.#dropped + (start >>> 3),
    };
  }

  /**
   * The first magic at bit >= from, encoded as bit*2 + kind (0 block, 1 end of stream), or -1
   * when none is in the buffer yet (#scanFrom then moves past what was searched).
   */
  #scan(from: number): number {
    const buf = this.#buf;
    const limit = this.#end - 5; // a candidate at byte i needs bytes up to i+6
    const first = (from >>> 3) + 1;
    for (let j = first; j < limit; j++) {
      if (FILTER[(buf[j] << 8) | buf[j + 1]] === 0) continue;
      const w = ((buf[j] << 24) | (buf[j + 1] << 16) | (buf[j + 2] << 8) | buf[j + 3]) >>> 0;
      for (let k = 0; k < 16; k++) {
        if (PATTERNS[k] !== w) continue;
        const bit = (j - 1) * 8 + (k >>> 1);
        if (bit < from) continue;
        const m = this.#bits(bit, 16) * 2 ** 32 + this.#bits(bit + 16, 32);
        if (m === ((k & 1) === 0 ? BLOCK_MAGIC : EOS_MAGIC)) return bit * 2 + (k & 1);
      }
    }
    this.#scanFrom = Math.max(from, (Math.max(first, limit) - 1) * 8);
    return -1;
  }

  #corrupt(problem: string) {
    return corruptError(this.#source, problem);
  }
}

/**
 * Checks decompressed blocks in input order: folds block CRCs into each stream's combined
 * CRC and compares it at the stream's end; when a block fails to decompress and is not the
 * last of its stream, its boundary may be a false magic match inside compressed data, so the
 * block is merged with the next one and retried (on the main thread; rare).
 */
export class BlockDecoder {
  #source: string;
  #combined = 0;
  #pending: BlockJob | undefined;
  #pendingCode = 0;
  #maxOut = 0;

  constructor(source: string) {
    this.#source = source;
  }

  /** Output buffer size to start with for `job` (learns from earlier blocks). */
  sizeHint(job: BlockJob): number {
    return Math.max(job.level * 100000 + 4096, Math.ceil(this.#maxOut * 1.02));
  }

  /**
   * Take the result for the next block in order: its output, or its libbzip2 error `code`
   * (then `job.bytes` must hold the block's bytes again). Returns the bytes to emit, or null
   * while a merge with the next block is pending. Throws the corrupt-data HopError.
   */
  accept(job: BlockJob, out: Uint8Array | undefined, code = 0): Uint8Array | null {
    const pending = this.#pending;
    if (pending) {
      this.#pending = undefined;
      return this.#inline(mergeBlocks(pending, job), this.#pendingCode);
    }
    if (out === undefined) return this.#failed(job, code, code);
    return this.#done(job, out);
  }

  /** Call once all blocks were accepted. */
  finish(): void {
    if (this.#pending) this.#throw(this.#pending, this.#pendingCode);
  }

  #inline(job: BlockJob, firstCode: number): Uint8Array | null {
    const r = kernel().decompressBlock(
      job.bytes,
      job.bitOffset,
      job.bitLength,
      job.level,
      this.sizeHint(job),
    );
    if (typeof r === "number") return this.#failed(job, r, firstCode);
    return this.#done(job, r);
  }

  #failed(job: BlockJob, code: number, firstCode: number): null {
    // A real block is never much longer than its block size; past that, stop merging.
    const cap = job.level * 100000 * 8 * 1.25 + 800000;
    if (job.streamCrc !== undefined || job.bitLength > cap) this.#throw(job, firstCode || code);
    this.#pending = job;
    this.#pendingCode = firstCode || code;
    return null;
  }

  #done(job: BlockJob, out: Uint8Array): Uint8Array {
    this.#combined = (((this.#combined << 1) | (this.#combined >>> 31)) ^ job.crc) >>> 0;
    if (out.length > this.#maxOut) this.#maxOut = out.length;
    if (job.streamCrc !== undefined) {
      const want = job.streamCrc >>> 0;
      const got = this.#combined;
      this.#combined = 0;
      if (want !== got) {
        throw corruptError(
          this.#source,
          `stream ${job.stream + 1} CRC mismatch (stored ${hex(want)}, computed ${hex(got)})`,
        );
      }
    }
    return out;
  }

  #throw(job: BlockJob, code: number): never {
    throw corruptError(
      this.#source,
      `${bzip2ErrorText(code)} in the block at byte ${job.offset} of stream ${job.stream + 1}`,
    );
  }
}

/** The block made of `a` followed by `b` (adjacent in the input). */
function mergeBlocks(a: BlockJob, b: BlockJob): BlockJob {
  const cut = (a.bitOffset + a.bitLength) >>> 3;
  const bytes = new Uint8Array(cut + b.bytes.length);
  bytes.set(a.bytes.subarray(0, cut));
  bytes.set(b.bytes, cut);
  return { ...a, bytes, bitLength: a.bitLength + b.bitLength, streamCrc: b.streamCrc };
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}
