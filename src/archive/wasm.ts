/**
 * The embedded bzip2.wasm on the main thread: compiles it once (from the base64 copy in
 * bzip2_wasm.ts, so the compiled binary needs no file beside it), runs the kernel
 * (bzip2_kernel.ts) directly, and turns libbzip2 error codes into HopError.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { HopError } from "../errors.ts";
import { BZIP2_WASM_BASE64 } from "./bzip2_wasm.ts";
import { type Bzip2Kernel, bzip2Kernel, type KernelResult } from "./bzip2_kernel.ts";

let compiled: WebAssembly.Module | undefined;
let mainKernel: Bzip2Kernel | undefined;

/** The bzip2.wasm bytes embedded in hop. */
export function bzip2WasmBytes(): Uint8Array {
  return new Uint8Array(Buffer.from(BZIP2_WASM_BASE64, "base64"));
}

/** The compiled bzip2.wasm module (compiled once, shared with the workers). */
export function bzip2Module(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(bzip2WasmBytes() as BufferSource);
  return compiled;
}

/** The kernel instance of the main thread. */
export function kernel(): Bzip2Kernel {
  mainKernel ??= bzip2Kernel(bzip2Module());
  return mainKernel;
}

/** What a libbzip2 return code means, in words. */
export function bzip2ErrorText(code: number): string {
  switch (code) {
    case -1:
      return "sequence error (BZ_SEQUENCE_ERROR)";
    case -2:
      return "bad parameter (BZ_PARAM_ERROR)";
    case -3:
      return "out of memory (BZ_MEM_ERROR)";
    case -4:
      return "data error, CRC or structure mismatch (BZ_DATA_ERROR)";
    case -5:
      return "not bzip2 data, bad magic (BZ_DATA_ERROR_MAGIC)";
    case -7:
      return "data ends unexpectedly (BZ_UNEXPECTED_EOF)";
    case -8:
      return "output larger than a bzip2 block can produce (BZ_OUTBUFF_FULL)";
    default:
      return `libbzip2 error ${code}`;
  }
}

/** The HopError for corrupt bzip2 input read from `source`. */
export function corruptError(source: string, problem: string, cause?: unknown): HopError {
  return new HopError(`corrupt bzip2 data in ${source}: ${problem}`, {
    hint: "the file is damaged or not bzip2; fetch it again, or check it with `bzip2 -t`",
    cause,
  });
}

function unwrap(r: KernelResult, source: string, what: string): Uint8Array {
  if (typeof r === "number") {
    if (what === "compress") {
      throw new HopError(`bzip2 compression failed: ${bzip2ErrorText(r)}`);
    }
    throw corruptError(source, bzip2ErrorText(r));
  }
  return r;
}

/**
 * Compress `bytes` as one bzip2 stream on the main thread (block size `level` * 100 kB).
 *
 * @example
 * ```ts
 * const bz = compressBlock(new TextEncoder().encode("index"), 9);
 * ```
 */
export function compressBlock(bytes: Uint8Array, level = 9): Uint8Array {
  return unwrap(kernel().compress(bytes, level), "", "compress");
}

/**
 * Decompress one bzip2 block given by bits (see Bzip2Kernel.decompressBlock) on the main
 * thread; throws the "corrupt bzip2 data in <source>" HopError on bad data.
 */
export function decompressBlockBits(
  src: Uint8Array,
  bitOffset: number,
  bitLength: number,
  level: number,
  source: string,
  sizeHint = level * 100000 + 65536,
): Uint8Array {
  return unwrap(
    kernel().decompressBlock(src, bitOffset, bitLength, level, sizeHint),
    source,
    "decompress",
  );
}

/** Decompress one whole single bzip2 stream on the main thread (small inputs). */
export function decompressSingleStream(src: Uint8Array, source: string): Uint8Array {
  return unwrap(kernel().decompressStream(src, src.length * 4 + 65536), source, "decompress");
}
