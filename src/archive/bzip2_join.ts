/**
 * Making ONE bzip2 stream out of chunks compressed in parallel, as lbzip2 does: the input is
 * cut where bzip2 would end a block (ChunkCutter counts bzip2's first run-length step,
 * RLE1), each chunk is compressed on its own into a single-block stream, and StreamJoiner
 * splices the blocks' bits after one `BZh<level>` header, ending with the end-of-stream
 * magic and the combined CRC. Readers that stop after the first stream (Python 2, Java
 * commons-compress by default, ...) therefore read all of it.
 *
 * @module
 */

const EOS_HI = 0x1772;
const EOS_LO = 0x45385090;
const BLOCK_HI = 0x3141;
const BLOCK_LO = 0x59265359;

/**
 * Cuts input so that each chunk fills exactly one bzip2 block: bzip2 closes a block when
 * its RLE1 output reaches level*100000-19 symbols (a run of 4..255 equal bytes takes 5).
 */
export class ChunkCutter {
  readonly #limit: number;
  readonly #maxBytes: number;
  #runByte = -1;
  #runLen = 0;
  #cost = 0;

  /** `maxBytes` caps a chunk's input (long runs pack ~50x into one block). */
  constructor(level: number, maxBytes = level * 100000 * 8) {
    // Stay a few symbols under bzip2's limit (level*100000-19, checked before each byte).
    this.#limit = level * 100000 - 19 - 8;
    this.#maxBytes = maxBytes;
  }

  /**
   * How many bytes of `input` (from `from`) still fit in the current chunk, which holds
   * `inChunk` bytes already. Returns `input.length - from` when all fit; a smaller number
   * means: cut after that many, then call reset().
   */
  fit(input: Uint8Array, from: number, inChunk: number): number {
    let runByte = this.#runByte;
    let runLen = this.#runLen;
    let cost = this.#cost;
    const limit = this.#limit;
    const end = Math.min(input.length, from + this.#maxBytes - inChunk);
    let i = from;
    for (; i < end; i++) {
      const b = input[i];
      if (b !== runByte) {
        if (cost >= limit) break;
        cost++;
        runByte = b;
        runLen = 1;
      } else if (runLen < 3) {
        if (cost >= limit) break;
        cost++;
        runLen++;
      } else if (runLen === 3) {
        // The 4th equal byte adds itself and the run's count byte.
        if (cost + 2 > limit) break;
        cost += 2;
        runLen = 4;
      } else if (runLen < 255) {
        runLen++;
      } else {
        // A run of 255 is full: this byte starts a new one.
        if (cost >= limit) break;
        cost++;
        runLen = 1;
      }
    }
    this.#runByte = runByte;
    this.#runLen = runLen;
    this.#cost = cost;
    return i - from;
  }

  /** Start a new chunk. */
  reset(): void {
    this.#runByte = -1;
    this.#runLen = 0;
    this.#cost = 0;
  }
}

/**
 * Joins single-block bzip2 streams into one stream. Feed each chunk's compressed stream in
 * order to push(); write what push() and end() return.
 *
 * @example
 * ```ts
 * const j = new StreamJoiner(9);
 * const parts = [j.push(compressBlock(a)), j.push(compressBlock(b)), j.end()];
 * ```
 */
export class StreamJoiner {
  readonly #level: number;
  #started = false;
  #combined = 0;
  /** Pending bits (top `#nacc` bits of `#acc`) not yet making a full byte. */
  #acc = 0;
  #nacc = 0;

  constructor(level: number) {
    this.#level = level;
  }

  /** Append the blocks of one compressed stream; returns the bytes now complete. */
  push(stream: Uint8Array): Uint8Array {
    const level = stream[3] - 0x30;
    const eos = findEos(stream);
    const blockCrc = bitsAt(stream, 80, 32);
    const singleBlock = stream.length >= 14 && stream[0] === 0x42 && stream[1] === 0x5a &&
      stream[2] === 0x68 && level === this.#level && eos >= 112 &&
      bitsAt(stream, 32, 16) === BLOCK_HI && bitsAt(stream, 48, 32) === BLOCK_LO &&
      bitsAt(stream, eos + 48, 32) === blockCrc; // combined CRC of one block = its CRC
    if (!singleBlock) {
      // Not one block (cannot happen with ChunkCutter's chunks, but stay correct): end our
      // stream and pass this one through as a stream of its own.
      const head = this.#started ? this.end() : new Uint8Array(0);
      const out = new Uint8Array(head.length + stream.length);
      out.set(head);
      out.set(stream, head.length);
      return out;
    }
    const parts: Uint8Array[] = [];
    if (!this.#started) {
      this.#started = true;
      parts.push(new Uint8Array([0x42, 0x5a, 0x68, 0x30 + this.#level]));
    }
    this.#combined = (((this.#combined << 1) | (this.#combined >>> 31)) ^ blockCrc) >>> 0;
    parts.push(this.#append(stream, 4, eos - 32));
    return parts.length === 1 ? parts[0] : concat2(parts[0], parts[1]);
  }

  /** Finish the stream (end-of-stream magic, combined CRC, padding); joiner restarts. */
  end(): Uint8Array {
    const bytes: number[] = [];
    if (!this.#started) bytes.push(0x42, 0x5a, 0x68, 0x30 + this.#level);
    let acc = this.#acc;
    let n = this.#nacc;
    const put = (v: number, bits: number) => {
      for (let b = bits - 1; b >= 0; b--) {
        acc |= ((v >>> b) & 1) << (7 - n);
        if (++n === 8) {
          bytes.push(acc);
          acc = 0;
          n = 0;
        }
      }
    };
    put(EOS_HI, 16);
    put(EOS_LO, 32);
    put(this.#combined, 32);
    if (n > 0) bytes.push(acc);
    this.#started = false;
    this.#combined = 0;
    this.#acc = 0;
    this.#nacc = 0;
    return new Uint8Array(bytes);
  }

  /** Append `len` bits of `src` starting at byte `at` (byte-aligned) to the output. */
  #append(src: Uint8Array, at: number, len: number): Uint8Array {
    const sh = this.#nacc;
    const out = new Uint8Array((sh + len) >>> 3);
    const full = len >>> 3;
    const rem = len & 7;
    let acc = this.#acc;
    let o = 0;
    if (sh === 0) {
      out.set(src.subarray(at, at + full));
      o = full;
    } else {
      const back = 8 - sh;
      for (let i = 0; i < full; i++) {
        const v = src[at + i];
        out[o++] = acc | (v >>> sh);
        acc = (v << back) & 0xff;
      }
    }
    let n = sh;
    if (rem > 0) {
      const v = src[at + full] & (0xff << (8 - rem)) & 0xff;
      acc |= v >>> sh;
      n = sh + rem;
      if (n >= 8) {
        out[o++] = acc;
        acc = (v << (8 - sh)) & 0xff;
        n -= 8;
      }
    }
    this.#acc = acc;
    this.#nacc = n;
    return out;
  }
}

/** Bit position of the end-of-stream magic of a stream (it ends 80 bits + padding before
 * the end), or -1. */
function findEos(s: Uint8Array): number {
  for (let pad = 0; pad < 8; pad++) {
    const e = s.length * 8 - 80 - pad;
    if (e < 32) return -1;
    if (bitsAt(s, e, 16) === EOS_HI && bitsAt(s, e + 16, 32) === EOS_LO) return e;
  }
  return -1;
}

/** n <= 32 bits at bit position p, MSB first, unsigned. */
function bitsAt(s: Uint8Array, p: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++, p++) v = v * 2 + ((s[p >>> 3] >>> (7 - (p & 7))) & 1);
  return v;
}

function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
