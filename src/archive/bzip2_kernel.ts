/**
 * The bzip2 kernel: one self-contained function that instantiates bzip2.wasm (npm
 * `bzip2-wasm`, without its emscripten glue) and offers whole-buffer compress and
 * single-block decompress. The very same function runs on the main thread (wasm.ts) and,
 * turned into source text, inside pool workers (pool.ts): it must not refer to anything
 * outside its own body (no imports, no module-scope names), because only its source travels.
 *
 * @module
 */

/** What the kernel returns: output bytes, or a libbzip2 error code (a negative number). */
export type KernelResult = Uint8Array | number;

/** The operations of one bzip2.wasm instance. */
export interface Bzip2Kernel {
  /** bzip2-compress `src` as one stream (`level` 1..9 = block size in 100 kB). */
  compress(src: Uint8Array, level: number): KernelResult;
  /**
   * Decompress one bzip2 block given as bits: `bitLength` bits starting at bit `bitOffset`
   * (0..7, most significant first) of `src`, from its 48-bit block magic up to (not
   * including) the next magic. The block is re-wrapped as a standalone single-block stream
   * (`BZh<level>`, block, end-of-stream magic, combined CRC = the block's CRC) and handed to
   * BZ2_bzBuffToBuffDecompress; the output buffer starts at `sizeHint` bytes and grows on
   * BZ_OUTBUFF_FULL.
   */
  decompressBlock(
    src: Uint8Array,
    bitOffset: number,
    bitLength: number,
    level: number,
    sizeHint: number,
  ): KernelResult;
  /** Decompress a whole single stream (for tests and small inputs). */
  decompressStream(src: Uint8Array, sizeHint: number): KernelResult;
}

/**
 * Instantiate bzip2.wasm from its compiled module and return the kernel operations.
 *
 * @example
 * ```ts
 * const k = bzip2Kernel(new WebAssembly.Module(bytes));
 * const packed = k.compress(new TextEncoder().encode("hello"), 9);
 * ```
 */
export function bzip2Kernel(module: WebAssembly.Module): Bzip2Kernel {
  // libbzip2 return codes used here.
  const BZ_OK = 0;
  const BZ_OUTBUFF_FULL = -8;
  // A block holds at most level*100000 RLE1 symbols; one symbol run of 5 bytes can stand for
  // 259 bytes, so a block never decompresses to more than ~52x its block size.
  const MAX_EXPANSION = 52;

  // Assigned once the instance exists; the imports below only run after that.
  // deno-lint-ignore prefer-const
  let memory: WebAssembly.Memory;
  const env = {
    exit(code: number): never {
      throw new Error(`bzip2.wasm called exit(${code})`);
    },
    emscripten_memcpy_big(dest: number, src: number, num: number): void {
      new Uint8Array(memory.buffer).copyWithin(dest, src, src + num);
    },
    emscripten_resize_heap(requested: number): number {
      requested = requested >>> 0;
      const old = memory.buffer.byteLength;
      if (requested <= old) return 1;
      const max = 2147483648 - 65536;
      if (requested > max) return 0;
      // Grow geometrically (+20%, as emscripten does) to keep the number of grows low.
      let target = Math.max(requested, Math.min(max, old + Math.ceil(old / 5)));
      target = Math.ceil(target / 65536) * 65536;
      try {
        memory.grow((target - old) / 65536);
        return 1;
      } catch {
        try {
          memory.grow(Math.ceil((requested - old) / 65536));
          return 1;
        } catch {
          return 0;
        }
      }
    },
  };
  const wasi = {
    fd_close(): number {
      return 0;
    },
    fd_seek(): number {
      return 70; // ESPIPE: nothing is seekable here
    },
    fd_write(_fd: number, iov: number, iovcnt: number, pnum: number): number {
      // libbzip2 only writes with verbosity > 0, which hop never asks for: discard.
      const view = new DataView(memory.buffer);
      let n = 0;
      for (let i = 0; i < iovcnt; i++) n += view.getUint32(iov + i * 8 + 4, true);
      view.setUint32(pnum, n, true);
      return 0;
    },
  };
  const instance = new WebAssembly.Instance(module, { env, wasi_snapshot_preview1: wasi });
  // deno-lint-ignore no-explicit-any
  const x = instance.exports as any;
  memory = x.memory as WebAssembly.Memory;
  x.emscripten_stack_init();
  x.__wasm_call_ctors();

  const malloc = x.malloc as (n: number) => number;
  const free = x.free as (p: number) => void;
  const buffCompress = x.BZ2_bzBuffToBuffCompress as (
    dest: number,
    destLenPtr: number,
    src: number,
    srcLen: number,
    blockSize100k: number,
    verbosity: number,
    workFactor: number,
  ) => number;
  const buffDecompress = x.BZ2_bzBuffToBuffDecompress as (
    dest: number,
    destLenPtr: number,
    src: number,
    srcLen: number,
    small: number,
    verbosity: number,
  ) => number;

  const lenPtr = malloc(8);

  function alloc(n: number): number {
    const p = malloc(Math.max(1, n));
    if (p === 0) throw new Error(`bzip2.wasm: out of memory allocating ${n} bytes`);
    return p;
  }

  /** Run `call` with an output buffer of `size` bytes, growing on BZ_OUTBUFF_FULL. */
  function withOutput(
    srcPtr: number,
    srcLen: number,
    size: number,
    maxSize: number,
    call: (dest: number, srcPtr: number, srcLen: number) => number,
  ): KernelResult {
    for (;;) {
      const dest = alloc(size);
      try {
        new DataView(memory.buffer).setUint32(lenPtr, size, true);
        const rc = call(dest, srcPtr, srcLen);
        if (rc === BZ_OK) {
          const n = new DataView(memory.buffer).getUint32(lenPtr, true);
          return new Uint8Array(memory.buffer, dest, n).slice();
        }
        if (rc !== BZ_OUTBUFF_FULL || size >= maxSize) return rc;
        size = Math.min(maxSize, size * 4);
      } finally {
        free(dest);
      }
    }
  }

  function compress(src: Uint8Array, level: number): KernelResult {
    const srcPtr = alloc(src.length);
    try {
      new Uint8Array(memory.buffer).set(src, srcPtr);
      // libbzip2 guarantees the output fits in 1% + 600 bytes over the input.
      const size = src.length + Math.ceil(src.length / 100) + 600;
      return withOutput(
        srcPtr,
        src.length,
        size,
        size * 2,
        (d, s, n) => buffCompress(d, lenPtr, s, n, level, 0, 0),
      );
    } finally {
      free(srcPtr);
    }
  }

  function decompressBlock(
    src: Uint8Array,
    bitOffset: number,
    bitLength: number,
    level: number,
    sizeHint: number,
  ): KernelResult {
    // Stream: "BZh" + level (32 bits), the block, eos magic (48), combined CRC (32), padding.
    const total = Math.ceil((32 + bitLength + 80) / 8);
    const ptr = alloc(total);
    try {
      const out = new Uint8Array(memory.buffer, ptr, total);
      out[0] = 0x42;
      out[1] = 0x5a;
      out[2] = 0x68;
      out[3] = 0x30 + level;
      const nbytes = Math.ceil(bitLength / 8);
      if (bitOffset === 0) {
        out.set(src.subarray(0, nbytes), 4);
      } else {
        const l = bitOffset;
        const r = 8 - bitOffset;
        const last = src.length - 1;
        for (let i = 0; i < nbytes; i++) {
          out[4 + i] = (src[i] << l) | (i < last ? src[i + 1] >>> r : 0);
        }
      }
      // The block CRC: 32 bits after the 48-bit block magic.
      let crc = 0;
      for (let b = 48; b < 80; b++) {
        const p = bitOffset + b;
        crc = (crc << 1) | ((src[p >>> 3] >>> (7 - (p & 7))) & 1);
      }
      // Append the end-of-stream magic and the combined CRC after the block's last bit.
      let bit = 32 + bitLength;
      const hi = 0x1772;
      const lo = 0x45385090;
      const put = (v: number) => {
        const i = bit >>> 3;
        const m = 0x80 >>> (bit & 7);
        out[i] = v ? out[i] | m : out[i] & ~m;
        bit++;
      };
      // Clear the trailing bits of the last copied byte first.
      const tailBit = 32 + bitLength;
      if (tailBit & 7) out[tailBit >>> 3] &= 0xff << (8 - (tailBit & 7));
      for (let b = 15; b >= 0; b--) put((hi >>> b) & 1);
      for (let b = 31; b >= 0; b--) put((lo >>> b) & 1);
      for (let b = 31; b >= 0; b--) put((crc >>> b) & 1);
      while (bit & 7) put(0);
      const maxSize = level * 100000 * MAX_EXPANSION + 65536;
      return withOutput(
        ptr,
        total,
        Math.min(maxSize, Math.max(65536, sizeHint)),
        maxSize,
        (d, s, n) => buffDecompress(d, lenPtr, s, n, 0, 0),
      );
    } finally {
      free(ptr);
    }
  }

  function decompressStream(src: Uint8Array, sizeHint: number): KernelResult {
    const srcPtr = alloc(src.length);
    try {
      new Uint8Array(memory.buffer).set(src, srcPtr);
      return withOutput(
        srcPtr,
        src.length,
        Math.max(65536, sizeHint),
        2147483648 - 65536 * 64,
        (d, s, n) => buffDecompress(d, lenPtr, s, n, 0, 0),
      );
    } finally {
      free(srcPtr);
    }
  }

  return { compress, decompressBlock, decompressStream };
}
